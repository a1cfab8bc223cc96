use std::sync::Arc;

use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct AppError;

struct Client;

impl Client {
    #[self_healing]
    fn consume(self) -> Result<(), AppError> {
        Ok(())
    }

    #[self_healing]
    async fn consume_mut(mut self) -> Result<(), AppError> {
        let _ = &mut self;
        Ok(())
    }

    #[self_healing]
    fn boxed(self: Box<Self>) -> Result<(), AppError> {
        Ok(())
    }

    #[self_healing]
    fn shared(self: Arc<Self>) -> Result<(), AppError> {
        Ok(())
    }
}

fn main() {
    let _ = Client.consume();
    let _ = Client.consume_mut();
    let _ = Box::new(Client).boxed();
    let _ = Arc::new(Client).shared();
}

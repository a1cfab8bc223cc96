use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
enum MailError {
    #[error("failed")]
    Failed,
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

// The outbox is async: a sync function cannot be queued.
#[self_healing(source = "sendSync", queue_for_later)]
fn send_sync(to: String) -> Result<(), MailError> {
    let _ = to;
    Err(MailError::Failed)
}

// Arguments are kept as JSON: by value only, and no receiver.
struct Mailer;

impl Mailer {
    #[self_healing(source = "sendBorrowed", queue_for_later)]
    async fn send(&self, to: &str) -> Result<(), MailError> {
        let _ = to;
        Err(MailError::Failed)
    }
}

// Generic functions cannot be replayed.
#[self_healing(source = "sendGeneric", queue_for_later)]
async fn send_generic<T: Clone>(to: T) -> Result<(), MailError> {
    let _ = to;
    Err(MailError::Failed)
}

// Queued work returns nothing.
#[self_healing(source = "sendCounted", queue_for_later)]
async fn send_counted(to: String) -> Result<u32, MailError> {
    let _ = to;
    Ok(1)
}

fn main() {}

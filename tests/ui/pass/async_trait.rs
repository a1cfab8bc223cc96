#![deny(warnings)]
//! `#[async_trait]`: the attribute recognises the boxed future it produces and wraps the body
//! inside it; the future stays `Send`.

use async_trait::async_trait;
use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
#[error("mailer failed")]
struct MailError;

impl From<Rejected> for MailError {
    fn from(_: Rejected) -> Self {
        MailError
    }
}

#[async_trait]
trait Mailer: Send + Sync {
    async fn send(&self, to: String, body: &str) -> Result<u64, MailError>;
    async fn flush(&mut self) -> Result<usize, MailError>;

    #[self_healing(category = "api")]
    async fn ping(&self) -> Result<(), MailError> {
        Ok(())
    }
}

#[derive(Default)]
struct Outbox {
    queued: Vec<String>,
}

#[async_trait]
impl Mailer for Outbox {
    #[self_healing(source = "sendMail", category = "api")]
    async fn send(&self, to: String, body: &str) -> Result<u64, MailError> {
        tokio::task::yield_now().await;
        Ok((to.len() + body.len()) as u64)
    }

    #[self_healing(category = "api")]
    async fn flush(&mut self) -> Result<usize, MailError> {
        let n = self.queued.len();
        self.queued.clear();
        Ok(n)
    }
}

#[async_trait]
trait Joiner {
    async fn join(&self, pair: (String, String), sep: &str) -> Result<String, MailError>;
}

struct Pair;

#[async_trait]
impl Joiner for Pair {
    /// Pattern arguments under `#[async_trait]`.
    #[self_healing]
    async fn join(&self, (a, b): (String, String), sep: &str) -> Result<String, MailError> {
        Ok(format!("{a}{sep}{b}"))
    }
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut outbox = Outbox {
        queued: vec!["a".into(), "b".into()],
    };
    let send = outbox.send("ada@example.com".into(), "hi");
    assert_send(&send);
    assert_eq!(send.await.unwrap(), 17);
    assert_eq!(outbox.flush().await.unwrap(), 2);
    outbox.ping().await.unwrap();
    let site = self_healing::sites()
        .find(|s| s.source() == "sendMail")
        .unwrap();
    assert!(site.options().is_async());
    let mailer: Box<dyn Mailer> = Box::new(Outbox::default());
    assert_eq!(mailer.send("x".into(), "y").await.unwrap(), 2);
    let joined = Pair.join(("a".into(), "b".into()), "-");
    assert_send(&joined);
    assert_eq!(joined.await.unwrap(), "a-b");
}

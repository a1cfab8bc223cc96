#![deny(warnings)]
//! Methods: `&self` and `&mut self`, sync and async, with owned, `&` and `&mut` arguments.

use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
#[error("store failed")]
struct StoreError;

impl From<Rejected> for StoreError {
    fn from(_: Rejected) -> Self {
        StoreError
    }
}

#[derive(Default)]
struct Store {
    items: Vec<String>,
}

impl Store {
    #[self_healing(category = "database")]
    fn len(&self) -> Result<usize, StoreError> {
        Ok(self.items.len())
    }

    #[self_healing(category = "database")]
    async fn contains(&self, item: &str) -> Result<bool, StoreError> {
        Ok(self.items.iter().any(|i| i == item))
    }

    #[self_healing(category = "database")]
    fn push(&mut self, item: String) -> Result<(), StoreError> {
        self.items.push(item);
        Ok(())
    }

    /// Async `&mut self`: each attempt borrows `self` instead of moving it.
    #[self_healing(category = "database")]
    async fn push_all(
        &mut self,
        items: Vec<String>,
        log: &mut Vec<String>,
    ) -> Result<usize, StoreError> {
        for item in items {
            log.push(format!("push {item}"));
            self.items.push(item);
        }
        tokio::task::yield_now().await;
        Ok(self.items.len())
    }

    /// `self: &Self` is a reference receiver too.
    #[allow(clippy::needless_arbitrary_self_type)]
    #[self_healing]
    fn first(self: &Self) -> Result<Option<&String>, StoreError> {
        Ok(self.items.first())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut store = Store::default();
    store.push("a".to_owned()).unwrap();
    let mut log = Vec::new();
    let n = store
        .push_all(vec!["b".to_owned(), "c".to_owned()], &mut log)
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(log, ["push b", "push c"]);
    assert_eq!(store.len().unwrap(), 3);
    assert!(store.contains("b").await.unwrap());
    assert_eq!(store.first().unwrap().map(String::as_str), Some("a"));
}

#![deny(warnings)]
//! The receiver of a `cache = ".."` method is part of the key: `Hash` receivers in every method
//! shape, and `cache_skip(self)` for a receiver that is not `Hash`.

use std::hash::{Hash, Hasher};

use async_trait::async_trait;
use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
enum RepoError {
    #[error("replica down")]
    Down,
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

/// Hashed by its tenant alone: that is what tells two repositories apart.
struct TenantRepo {
    tenant: u32,
    rows: Vec<String>,
}

impl Hash for TenantRepo {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.tenant.hash(state);
    }
}

impl TenantRepo {
    #[self_healing(cache = "30s")]
    fn count(&self, min_len: usize) -> Result<usize, RepoError> {
        Ok(self.rows.iter().filter(|r| r.len() >= min_len).count())
    }

    #[self_healing(cache = "30s")]
    async fn first(&self) -> Result<Option<String>, RepoError> {
        Ok(self.rows.first().cloned())
    }

    // The key borrows `self` before the body's closure takes it mutably.
    #[self_healing(cache = "30s", idempotent = false)]
    fn push(&mut self, row: String) -> Result<usize, RepoError> {
        self.rows.push(row);
        Ok(self.rows.len())
    }

    #[self_healing(cache = "30s", fallback = Self::pop_none)]
    async fn pop(&mut self) -> Result<Option<String>, RepoError> {
        Ok(self.rows.pop())
    }

    async fn pop_none(&mut self) -> Result<Option<String>, RepoError> {
        Err(RepoError::Down)
    }
}

/// Not `Hash`: every instance shares one cache, which `cache_skip(self)` says out loud.
struct SharedCatalog {
    rows: Vec<String>,
}

impl SharedCatalog {
    #[self_healing(cache = "30s", cache_skip(self))]
    fn len(&self, prefix: String) -> Result<usize, RepoError> {
        Ok(self.rows.iter().filter(|r| r.starts_with(&prefix)).count())
    }

    #[self_healing(cache = "30s", cache_skip(self, prefix))]
    async fn any(&self, prefix: &str) -> Result<bool, RepoError> {
        Ok(self.rows.iter().any(|r| r.starts_with(prefix)))
    }
}

#[async_trait]
trait Rows: Send + Sync {
    async fn rows(&self) -> Result<usize, RepoError>;

    // A default method: `Self` may be any implementor, so the key needs `Self: Hash`.
    #[self_healing(cache = "30s")]
    async fn doubled(&self) -> Result<usize, RepoError>
    where
        Self: Hash,
    {
        Ok(self.rows().await? * 2)
    }
}

#[async_trait]
impl Rows for TenantRepo {
    #[self_healing(cache = "30s")]
    async fn rows(&self) -> Result<usize, RepoError> {
        Ok(self.rows.len())
    }
}

#[async_trait]
impl Rows for SharedCatalog {
    #[self_healing(cache = "30s", cache_skip(self))]
    async fn rows(&self) -> Result<usize, RepoError> {
        Ok(self.rows.len())
    }
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut repo = TenantRepo {
        tenant: 7,
        rows: vec!["a".into(), "bb".into()],
    };
    assert_eq!(repo.count(2).unwrap(), 1);
    assert_eq!(repo.first().await.unwrap().as_deref(), Some("a"));
    assert_eq!(repo.push("ccc".into()).unwrap(), 3);
    assert_eq!(repo.pop().await.unwrap().as_deref(), Some("ccc"));
    let rows = repo.rows();
    assert_send(&rows);
    assert_eq!(rows.await.unwrap(), 2);
    assert_eq!(repo.doubled().await.unwrap(), 4);
    assert_eq!(repo.tenant, 7);
    let catalog = SharedCatalog {
        rows: vec!["x1".into()],
    };
    assert_eq!(catalog.len("x".into()).unwrap(), 1);
    assert!(catalog.any("x").await.unwrap());
    assert_eq!(catalog.rows().await.unwrap(), 1);
    let _ = RepoError::Down;
}

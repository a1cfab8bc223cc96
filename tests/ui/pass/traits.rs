#![deny(warnings)]
//! Trait methods: in `impl Trait for Type`, and native `async fn` in traits (a default body and
//! an implementation).

use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
#[error("repository failed")]
struct RepoError;

impl From<Rejected> for RepoError {
    fn from(_: Rejected) -> Self {
        RepoError
    }
}

trait Repo {
    fn name(&self) -> Result<String, RepoError>;

    #[self_healing(category = "database")]
    async fn load(&self, id: u64) -> Result<String, RepoError> {
        let name = self.name()?;
        Ok(format!("{name}/{id}"))
    }

    async fn save(&mut self, value: String) -> Result<usize, RepoError>;
}

#[derive(Default)]
struct Memory {
    saved: Vec<String>,
}

impl Repo for Memory {
    #[self_healing]
    fn name(&self) -> Result<String, RepoError> {
        Ok("memory".to_owned())
    }

    #[self_healing(category = "database")]
    async fn save(&mut self, value: String) -> Result<usize, RepoError> {
        self.saved.push(value);
        Ok(self.saved.len())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut repo = Memory::default();
    assert_eq!(repo.load(4).await.unwrap(), "memory/4");
    assert_eq!(repo.save("x".into()).await.unwrap(), 1);
    assert_eq!(repo.save("y".into()).await.unwrap(), 2);
}

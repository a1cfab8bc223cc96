use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct AppError;

struct Repo {
    tenant: String,
}

impl Repo {
    // The receiver is part of the cache key: a receiver that is not `Hash` needs `cache_skip(self)`.
    #[self_healing(cache = "30s")]
    fn count(&self, table: String) -> Result<usize, AppError> {
        Ok(self.tenant.len() + table.len())
    }

    #[self_healing(cache = "30s", cache_skip(table))]
    async fn rename(&mut self, table: String) -> Result<usize, AppError> {
        self.tenant = table;
        Ok(self.tenant.len())
    }
}

fn main() {
    let mut repo = Repo {
        tenant: "acme".into(),
    };
    let _ = repo.count("orders".into());
    let _ = repo.rename("orders".into());
}

// Every wrapped function's error type represents a call the healer refused (kept last, so the
// lines above and their expected errors stay put).
impl From<self_healing::Rejected> for AppError {
    fn from(_: self_healing::Rejected) -> Self {
        AppError
    }
}

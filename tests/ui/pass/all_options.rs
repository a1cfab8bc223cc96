#![deny(warnings)]
//! Every option, on sync and async functions and methods, with fallbacks and caches.

use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
enum PriceError {
    #[error("quote service unavailable")]
    Unavailable,
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

struct Client {
    up: bool,
}

#[self_healing(
    source = "fetchPrice",
    category = "api",
    fallback = cached_price,
    idempotent = true,
    timeout = "2s",
    max_attempts = 3,
    cache = "30s",
    cache_skip(client),
    catch_panic = true,
)]
async fn fetch_price(client: &Client, symbol: String) -> Result<f64, PriceError> {
    if !client.up {
        return Err(PriceError::Unavailable);
    }
    Ok(symbol.len() as f64)
}

async fn cached_price(_client: &Client, _symbol: String) -> Result<f64, PriceError> {
    Ok(1.0)
}

mod backups {
    use super::PriceError;

    pub(crate) fn rate(_from: &str, _to: &str) -> Result<f64, PriceError> {
        Ok(1.0)
    }
}

#[self_healing(
    source = "exchangeRate",
    category = "performance",
    fallback = "backups::rate",
    idempotent = false,
    timeout = "250ms",
    max_attempts = 1,
    cache = "1.5s",
    catch_panic = false
)]
fn rate(from: &str, to: &str) -> Result<f64, PriceError> {
    if from == to {
        return Ok(1.0);
    }
    Err(PriceError::Unavailable)
}

#[derive(Hash)]
struct Ledger {
    entries: Vec<i64>,
}

impl Ledger {
    #[self_healing(category = "database", fallback = Self::append_local, idempotent = false, max_attempts = 2)]
    async fn append(&mut self, amount: i64, memo: String) -> Result<usize, PriceError> {
        self.entries.push(amount);
        let _ = memo;
        Ok(self.entries.len())
    }

    async fn append_local(&mut self, amount: i64, _memo: String) -> Result<usize, PriceError> {
        self.entries.push(amount);
        Ok(self.entries.len())
    }

    #[self_healing(category = "database", fallback = Self::total_unchecked, cache = "10s")]
    fn total(&self, since: usize) -> Result<i64, PriceError> {
        Ok(self.entries.iter().skip(since).sum())
    }

    fn total_unchecked(&self, _since: usize) -> Result<i64, PriceError> {
        Ok(0)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let client = Client { up: true };
    assert_eq!(fetch_price(&client, "ACME".into()).await.unwrap(), 4.0);
    assert_eq!(rate("EUR", "EUR").unwrap(), 1.0);
    let mut ledger = Ledger {
        entries: Vec::new(),
    };
    assert_eq!(ledger.append(5, "a".into()).await.unwrap(), 1);
    assert_eq!(ledger.total(0).unwrap(), 5);

    let site = self_healing::sites()
        .find(|s| s.source() == "fetchPrice")
        .unwrap();
    let o = site.options();
    assert_eq!(o.timeout(), Some(std::time::Duration::from_secs(2)));
    assert_eq!(o.max_attempts(), Some(3));
    assert_eq!(o.cache(), Some(std::time::Duration::from_secs(30)));
    assert_eq!(o.fallback(), Some("cached_price"));
    assert!(o.idempotent() && o.catch_panic() && o.is_async());
    let site = self_healing::sites()
        .find(|s| s.source() == "exchangeRate")
        .unwrap();
    let o = site.options();
    assert_eq!(o.timeout(), Some(std::time::Duration::from_millis(250)));
    assert_eq!(o.cache(), Some(std::time::Duration::from_millis(1500)));
    assert_eq!(o.fallback(), Some("backups::rate"));
    assert!(!o.idempotent() && !o.catch_panic() && !o.is_async());
    assert_eq!(site.category(), self_healing::Category::Performance);
}

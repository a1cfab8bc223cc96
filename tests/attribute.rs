//! Behaviour of `#[self_healing]` functions: exactly like the original on success, re-run on
//! retryable errors with fresh argument copies, and every option doing what it says.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use self_healing::{
    Healer, InMemoryStore, Outcome, Rejected, WithHealerExt, self_healing, with_healer,
};

#[derive(Debug, thiserror::Error, PartialEq)]
enum AppError {
    #[error("deadlock detected")]
    Deadlock,
    #[error("record {0} not found")]
    NotFound(u32),
    #[error("parse error: {0}")]
    Parse(#[from] std::num::ParseIntError),
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

fn healer() -> (Healer, InMemoryStore) {
    let store = InMemoryStore::new();
    let healer = Healer::builder()
        .store(store.clone())
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .blocking_sleep(|_| {})
        .seed(1)
        .build()
        .unwrap();
    (healer, store)
}

// ----- success path: exactly the original -----

#[self_healing(source = "parseTotal", category = "runtime")]
fn parse_total(input: &str, bonus: u32) -> Result<u32, AppError> {
    if input.is_empty() {
        return Ok(bonus);
    }
    let n: u32 = input.trim().parse()?;
    Ok(n + bonus)
}

#[test]
fn question_mark_and_return_work_inside_the_body() {
    assert_eq!(parse_total("", 5), Ok(5));
    assert_eq!(parse_total(" 40 ", 2), Ok(42));
    assert!(matches!(parse_total("x", 0), Err(AppError::Parse(_))));
}

thread_local! {
    static DROPS: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

struct Noisy(&'static str);
impl Drop for Noisy {
    fn drop(&mut self) {
        DROPS.with(|d| d.borrow_mut().push(self.0));
    }
}

fn bare_body() -> Result<(), AppError> {
    let _a = Noisy("a");
    let _b = Noisy("b");
    {
        let _c = Noisy("c");
    }
    Ok(())
}

#[self_healing(source = "dropOrder", category = "runtime")]
fn wrapped_body() -> Result<(), AppError> {
    let _a = Noisy("a");
    let _b = Noisy("b");
    {
        let _c = Noisy("c");
    }
    Ok(())
}

#[test]
fn drop_order_is_unchanged() {
    let order = |f: fn() -> Result<(), AppError>| {
        DROPS.with(|d| d.borrow_mut().clear());
        f().unwrap();
        DROPS.with(|d| d.borrow().clone())
    };
    assert_eq!(order(bare_body), ["c", "b", "a"]);
    assert_eq!(order(wrapped_body), order(bare_body));
}

// ----- re-runs with fresh copies -----

#[derive(Debug)]
struct Order {
    id: u32,
    clones: Arc<AtomicU32>,
}

impl Clone for Order {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Order {
            id: self.id,
            clones: self.clones.clone(),
        }
    }
}

#[self_healing(source = "saveOrder", category = "database")]
fn save_order(mut order: Order, attempts: &AtomicU32) -> Result<u32, AppError> {
    order.id += 1000; // mutates this attempt's copy only
    if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(AppError::Deadlock);
    }
    Ok(order.id)
}

#[test]
fn retryable_errors_rerun_with_fresh_argument_copies() {
    let (h, store) = healer();
    let clones = Arc::new(AtomicU32::new(0));
    let attempts = AtomicU32::new(0);
    let order = Order {
        id: 7,
        clones: clones.clone(),
    };
    let result = with_healer(&h, || save_order(order, &attempts));
    assert_eq!(
        result,
        Ok(1007),
        "each attempt saw the caller's value, not the previous attempt's"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(clones.load(Ordering::SeqCst), 3, "one copy per attempt");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(h.flush()).expect("flushed");
    let events = store.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, Outcome::Healed);
    assert_eq!(events[0].source, "saveOrder");
}

#[test]
fn permanent_errors_are_not_rerun() {
    #[self_healing(source = "loadRecord", category = "database")]
    fn load(id: u32, calls: &AtomicU32) -> Result<u32, AppError> {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(AppError::NotFound(id))
    }
    let (h, _) = healer();
    let calls = AtomicU32::new(0);
    assert_eq!(
        with_healer(&h, || load(3, &calls)),
        Err(AppError::NotFound(3))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// ----- methods -----

struct Counter {
    attempts: u32,
}

impl Counter {
    #[self_healing(source = "counterBump", category = "database")]
    async fn bump(&mut self, fail_first: u32) -> Result<u32, AppError> {
        self.attempts += 1;
        if self.attempts <= fail_first {
            return Err(AppError::Deadlock);
        }
        Ok(self.attempts)
    }

    #[self_healing(source = "counterPeek", category = "runtime")]
    fn peek(&self) -> Result<u32, AppError> {
        Ok(self.attempts)
    }
}

#[tokio::test(start_paused = true)]
async fn async_mut_self_methods_rerun_and_keep_their_state() {
    let (h, _) = healer();
    let mut c = Counter { attempts: 0 };
    assert_eq!(c.bump(2).with_healer(h.clone()).await, Ok(3));
    assert_eq!(c.peek(), Ok(3));
}

// ----- options -----

async fn cached_contacts(_org: u32) -> Result<Vec<&'static str>, AppError> {
    Ok(vec!["fallback contact"])
}

#[self_healing(source = "listContacts", category = "database", fallback = cached_contacts, max_attempts = 2)]
async fn list_contacts(org: u32) -> Result<Vec<&'static str>, AppError> {
    let _ = org;
    Err(AppError::Deadlock)
}

#[tokio::test(start_paused = true)]
async fn the_fallback_is_served_when_reruns_fail() {
    let (h, store) = healer();
    let contacts = list_contacts(1).with_healer(h.clone()).await;
    assert_eq!(contacts, Ok(vec!["fallback contact"]));
    h.flush().await.expect("flushed");
    let e = &store.events()[0];
    assert_eq!(e.outcome, Outcome::Healed);
    assert_eq!(e.strategy.as_deref(), Some("fallback"));
    assert_eq!(e.attempts, 2, "max_attempts = 2 capped the re-runs first");
}

struct Db {
    down: std::sync::atomic::AtomicBool,
}

#[self_healing(
    source = "getPrice",
    category = "api",
    cache = "30s",
    cache_skip(db),
    max_attempts = 1
)]
async fn get_price(db: &Db, sku: String) -> Result<u32, AppError> {
    if db.down.load(Ordering::SeqCst) {
        return Err(AppError::Deadlock);
    }
    Ok(sku.len() as u32 * 100)
}

#[tokio::test(start_paused = true)]
async fn the_last_good_value_is_served_while_down_and_expires() {
    let (h, store) = healer();
    let db = Db { down: false.into() };
    assert_eq!(
        get_price(&db, "abc".into()).with_healer(h.clone()).await,
        Ok(300)
    );
    db.down.store(true, Ordering::SeqCst);
    assert_eq!(
        get_price(&db, "abc".into()).with_healer(h.clone()).await,
        Ok(300),
        "served from cache"
    );
    assert_eq!(
        get_price(&db, "abcd".into()).with_healer(h.clone()).await,
        Err(AppError::Deadlock),
        "other arguments, other key: nothing cached"
    );
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(
        get_price(&db, "abc".into()).with_healer(h.clone()).await,
        Err(AppError::Deadlock),
        "older than 30s: not served"
    );
    h.flush().await.expect("flushed");
    let healed_by_cache = store
        .events()
        .iter()
        .filter(|e| e.strategy.as_deref() == Some("cached_value") && e.outcome == Outcome::Healed)
        .count();
    assert_eq!(healed_by_cache, 1);
}

/// One tenant's repository: hashed by its tenant, so each tenant has its own cached values.
struct TenantRepo {
    tenant: u32,
    down: std::sync::atomic::AtomicBool,
}

impl std::hash::Hash for TenantRepo {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.tenant.hash(state);
    }
}

impl TenantRepo {
    fn new(tenant: u32) -> Self {
        TenantRepo {
            tenant,
            down: false.into(),
        }
    }

    #[self_healing(
        source = "tenantBalance",
        category = "database",
        cache = "30s",
        max_attempts = 1
    )]
    async fn balance(&self, account: u32) -> Result<u32, AppError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(AppError::Deadlock);
        }
        Ok(self.tenant * 1000 + account)
    }

    #[self_healing(
        source = "tenantBalanceSync",
        category = "database",
        cache = "30s",
        max_attempts = 1
    )]
    fn balance_sync(&self, account: u32) -> Result<u32, AppError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(AppError::Deadlock);
        }
        Ok(self.tenant * 1000 + account)
    }
}

/// A client whose instances are interchangeable: not `Hash`, and `cache_skip(self)` says so.
struct Mirror {
    name: &'static str,
    down: std::sync::atomic::AtomicBool,
}

impl Mirror {
    #[self_healing(
        source = "mirrorVersion",
        category = "api",
        cache = "30s",
        cache_skip(self),
        max_attempts = 1
    )]
    async fn version(&self, package: &str) -> Result<String, AppError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(AppError::Deadlock);
        }
        Ok(format!("{package}@1.0 from {}", self.name))
    }
}

#[tokio::test(start_paused = true)]
async fn two_receivers_do_not_share_cached_values() {
    let (h, _) = healer();
    let (a, b) = (TenantRepo::new(1), TenantRepo::new(2));
    assert_eq!(a.balance(5).with_healer(h.clone()).await, Ok(1005));
    assert_eq!(b.balance(5).with_healer(h.clone()).await, Ok(2005));
    a.down.store(true, Ordering::SeqCst);
    b.down.store(true, Ordering::SeqCst);
    assert_eq!(
        a.balance(5).with_healer(h.clone()).await,
        Ok(1005),
        "tenant 1 gets its own cached value"
    );
    assert_eq!(
        b.balance(5).with_healer(h.clone()).await,
        Ok(2005),
        "tenant 2 gets its own, not tenant 1's"
    );
    let c = TenantRepo::new(3);
    c.down.store(true, Ordering::SeqCst);
    assert_eq!(
        c.balance(5).with_healer(h.clone()).await,
        Err(AppError::Deadlock),
        "same arguments, another receiver: nothing cached"
    );
}

#[test]
fn two_receivers_do_not_share_cached_values_sync() {
    let (h, _) = healer();
    with_healer(&h, || {
        let (a, b) = (TenantRepo::new(1), TenantRepo::new(2));
        assert_eq!(a.balance_sync(5), Ok(1005));
        a.down.store(true, Ordering::SeqCst);
        b.down.store(true, Ordering::SeqCst);
        assert_eq!(a.balance_sync(5), Ok(1005), "served from tenant 1's cache");
        assert_eq!(
            b.balance_sync(5),
            Err(AppError::Deadlock),
            "tenant 1's value is not served to tenant 2"
        );
    });
}

#[tokio::test(start_paused = true)]
async fn cache_skip_self_shares_cached_values_across_instances() {
    let (h, _) = healer();
    let primary = Mirror {
        name: "primary",
        down: false.into(),
    };
    let secondary = Mirror {
        name: "secondary",
        down: true.into(),
    };
    assert_eq!(
        primary.version("serde").with_healer(h.clone()).await,
        Ok("serde@1.0 from primary".to_owned())
    );
    assert_eq!(
        secondary.version("serde").with_healer(h.clone()).await,
        Ok("serde@1.0 from primary".to_owned()),
        "any instance serves the value another one cached"
    );
    assert_eq!(
        secondary.version("tokio").with_healer(h.clone()).await,
        Err(AppError::Deadlock),
        "the arguments are still the key"
    );
}

#[self_healing(source = "slowReport", category = "performance", timeout = "100ms")]
async fn slow_report(calls: &AtomicU32) -> Result<&'static str, AppError> {
    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    Ok("report")
}

#[tokio::test(start_paused = true)]
async fn timeouts_cancel_and_rerun() {
    let (h, _) = healer();
    let calls = AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    assert_eq!(
        slow_report(&calls).with_healer(h.clone()).await,
        Ok("report")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the hung attempt was cancelled"
    );
}

#[self_healing(source = "chargeCard", category = "api", idempotent = false)]
async fn charge_card(calls: &AtomicU32) -> Result<(), AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Deadlock)
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_writes_are_never_repeated() {
    let (h, _) = healer();
    let calls = AtomicU32::new(0);
    assert!(charge_card(&calls).with_healer(h.clone()).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn without_a_healer_a_wrapped_fn_is_the_original() {
    let attempts = AtomicU32::new(0);
    let order = Order {
        id: 1,
        clones: Arc::new(AtomicU32::new(0)),
    };
    assert_eq!(save_order(order, &attempts), Err(AppError::Deadlock));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

// ----- the registry -----

#[test]
fn every_wrapped_fn_is_registered_before_any_call() {
    let sites: Vec<_> = self_healing::sites().collect();
    let find = |source: &str| sites.iter().find(|s| s.source() == source).copied();
    let contacts = find("listContacts").expect("listContacts is registered");
    assert_eq!(contacts.category(), self_healing::Category::Database);
    assert_eq!(contacts.options().fallback(), Some("cached_contacts"));
    assert_eq!(contacts.options().max_attempts(), Some(2));
    assert!(contacts.info().file.ends_with("attribute.rs"));
    assert_eq!(contacts.info().function, "list_contacts");
    let price = find("getPrice").unwrap();
    assert_eq!(price.options().cache(), Some(Duration::from_secs(30)));
    assert!(!find("chargeCard").unwrap().options().idempotent());
    assert_eq!(
        find("slowReport").unwrap().options().timeout(),
        Some(Duration::from_millis(100))
    );
    assert!(find("counterBump").unwrap().options().is_async());
}

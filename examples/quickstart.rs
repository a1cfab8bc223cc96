//! Quick start: four failing functions, healed (or not) by self-healing, and what happened to each.
//!
//! Run: `cargo run --example quickstart`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use self_healing::{Category, Healer, InMemoryStore, self_healing};

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("deadlock detected while saving contact")]
    Deadlock,
    #[error("connection reset by peer")]
    ConnectionLost,
    #[error("HTTP 429 Too Many Requests (retry-after: 1)")]
    RateLimited,
    #[error("duplicate key value violates unique constraint \"contacts_email_key\"")]
    Duplicate,
    /// A call the healer refused (open circuit, full bulkhead, timeout).
    #[error(transparent)]
    Rejected(#[from] self_healing::Rejected),
}

static SAVES: AtomicU32 = AtomicU32::new(0);
static POOL_HEALTHY: AtomicBool = AtomicBool::new(false);
static EMAILS: AtomicU32 = AtomicU32::new(0);

/// Fails twice with a deadlock, then succeeds: healed by `retry`.
#[self_healing(source = "createContact", category = "database")]
async fn create_contact(name: String) -> Result<u64, AppError> {
    if SAVES.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(AppError::Deadlock);
    }
    println!("  createContact: saved {name}");
    Ok(42)
}

/// Fails until the pool is rebuilt: healed by `reconnect` (the hook registered below).
#[self_healing(source = "getContacts", category = "database")]
async fn get_contacts(org: u32) -> Result<Vec<String>, AppError> {
    if !POOL_HEALTHY.load(Ordering::SeqCst) {
        return Err(AppError::ConnectionLost);
    }
    Ok(vec![
        format!("Ada (org {org})"),
        format!("Grace (org {org})"),
    ])
}

/// Rate limited once: healed by `rate_limit_wait`, which honours Retry-After.
#[self_healing(source = "api/test-email", category = "api")]
async fn send_test_email(to: String) -> Result<(), AppError> {
    if EMAILS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(AppError::RateLimited);
    }
    println!("  api/test-email: sent to {to}");
    Ok(())
}

/// A permanent error: never re-run, escalated.
#[self_healing(source = "importContact", category = "database", idempotent = false)]
async fn import_contact(email: String) -> Result<u64, AppError> {
    let _ = email;
    Err(AppError::Duplicate)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = InMemoryStore::new();
    let rebuilds = Arc::new(AtomicU32::new(0));
    let hook_rebuilds = rebuilds.clone();
    Healer::builder()
        .store(store.clone())
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .on_reconnect(Category::Database, move || {
            let rebuilds = hook_rebuilds.clone();
            async move {
                rebuilds.fetch_add(1, Ordering::SeqCst);
                POOL_HEALTHY.store(true, Ordering::SeqCst);
                println!("  reconnect hook: pool rebuilt");
                Ok(())
            }
        })
        .build()?
        .install()?;

    println!(
        "Integration checklist ({} wrapped functions):",
        self_healing::sites().len()
    );
    for site in self_healing::sites() {
        println!(
            "  [ ] {:<16} {:<9} {}:{}",
            site.source(),
            site.category(),
            site.info().file,
            site.info().line
        );
    }

    println!("\nCalling them:");
    println!(
        "  createContact -> {:?}",
        create_contact("Ada Lovelace".into()).await
    );
    println!("  getContacts -> {:?}", get_contacts(7).await);
    println!(
        "  api/test-email -> {:?}",
        send_test_email("ops@example.com".into()).await
    );
    println!(
        "  importContact -> {:?}",
        import_contact("ada@example.com".into()).await
    );

    let healer = Healer::current().expect("installed above");
    healer.flush().await?;
    println!("\nWhat happened (events recorded, message scrubbed):");
    println!(
        "  {:<16} {:<16} {:<18} {:<9} {:>8} {:>10}",
        "source", "class", "strategy", "outcome", "attempts", "duration"
    );
    for e in store.events() {
        println!(
            "  {:<16} {:<16} {:<18} {:<9} {:>8} {:>10}",
            e.source,
            e.class.as_str(),
            e.strategy.as_deref().unwrap_or("-"),
            e.outcome.as_str(),
            e.attempts,
            format!("{:.0?}", e.duration),
        );
        println!("    message: {}", e.message);
    }
    println!("\nLearned so far (fingerprint × strategy → healed/tried):");
    for row in healer.patterns().snapshot() {
        println!(
            "  {} {:<18} {}/{}",
            row.fingerprint, row.strategy, row.stat.healed, row.stat.tried
        );
    }
    println!(
        "\nreconnect hook ran {} time(s)",
        rebuilds.load(Ordering::SeqCst)
    );
    Ok(())
}

//! Installing the process-wide healer (its own test binary: the global is process-wide).

use self_healing::{ConfigError, Healer, InMemoryStore, Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
enum DbError {
    #[error("deadlock detected")]
    Deadlock,
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

#[self_healing(source = "installedSite", category = "database")]
fn flaky(calls: &std::sync::atomic::AtomicU32) -> Result<u32, DbError> {
    if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
        return Err(DbError::Deadlock);
    }
    Ok(1)
}

#[test]
fn install_once_then_every_wrapped_fn_heals() {
    let calls = std::sync::atomic::AtomicU32::new(0);
    assert!(
        flaky(&calls).is_err(),
        "no healer yet: the error passes through"
    );
    let build = || {
        Healer::builder()
            .store(InMemoryStore::new())
            .blocking_sleep(|_| {})
            .build()
            .unwrap()
    };
    build().install().unwrap();
    assert_eq!(build().install(), Err(ConfigError::AlreadyInstalled));
    assert!(
        ConfigError::AlreadyInstalled
            .to_string()
            .contains("with_healer")
    );
    calls.store(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(flaky(&calls).unwrap(), 1);
    assert!(Healer::current().is_some());
}

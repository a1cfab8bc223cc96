#![deny(warnings)]
//! `site!` with the runtime's `heal` functions, for closures and blocks.

use self_healing::{heal, heal_blocking, site};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rates = heal(site!(source = "fetchRates", category = "api"), || async {
        Ok::<_, std::io::Error>(vec![1.08, 0.86])
    })
    .await;
    assert_eq!(rates.unwrap().len(), 2);

    let site = site!(
        source = "parseConfig",
        category = "runtime",
        idempotent = false,
        timeout = "2s",
        max_attempts = 3,
        catch_panic = true,
    );
    // `catch_panic` needs an error type that represents a rejection: `io::Error` does.
    let parsed = heal_blocking(site, || "42".parse::<u32>().map_err(std::io::Error::other));
    assert_eq!(parsed.unwrap(), 42);
    assert_eq!(site.info().function, "closure");
    assert_eq!(site.options().max_attempts(), Some(3));
    assert!(!site.options().is_async());

    // Each `site!` is its own site.
    let a = site!(source = "siteA");
    let b = site!(source = "siteB");
    assert!(!std::ptr::eq(a, b));
    assert!(self_healing::sites().any(|s| s.source() == "fetchRates"));
}

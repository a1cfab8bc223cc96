#![deny(warnings)]
//! A call the healer refused reaches the caller as an error of the function's own type:
//! `std::io::Error` (the `Rejected` inside, kind `TimedOut` for a timeout), `anyhow::Error` and
//! `Box<dyn Error + Send + Sync>` need nothing more. A foreign error type opts out with
//! `fail_fast = false`.

use std::io;
use std::num::ParseIntError;
use std::time::Duration;

use self_healing::{
    ErrorOps, Healer, InMemoryStore, Rejected, WithHealerExt, heal_with, self_healing, site,
};

async fn hang() {
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[self_healing(category = "api", timeout = "50ms", max_attempts = 1)]
async fn with_io() -> io::Result<u32> {
    hang().await;
    Ok(1)
}

#[self_healing(category = "api", timeout = "50ms", max_attempts = 1)]
async fn with_anyhow() -> anyhow::Result<u32> {
    hang().await;
    Ok(1)
}

#[self_healing(category = "api", timeout = "50ms", max_attempts = 1)]
async fn with_boxed() -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    hang().await;
    Ok(1)
}

// `ParseIntError` is another crate's type: the site opts out of failing fast.
#[self_healing(category = "runtime", fail_fast = false)]
fn parse_count(text: &str) -> Result<u32, ParseIntError> {
    text.trim().parse()
}

// The default, written out.
#[self_healing(category = "runtime", fail_fast = true)]
fn parse_io(text: &str) -> io::Result<u32> {
    text.trim().parse().map_err(io::Error::other)
}

fn timed_out(rejected: Option<&Rejected>) -> bool {
    matches!(rejected, Some(Rejected::TimedOut { .. }))
}

fn fail_fast(source: &str) -> bool {
    self_healing::sites()
        .find(|s| s.source() == source)
        .expect("registered")
        .options()
        .fail_fast()
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    // In memory: the default store would write `self-healing.db` into the working directory.
    let healer = Healer::builder()
        .store(InMemoryStore::new())
        .build()
        .expect("valid healer");

    let err = with_io().with_healer(healer.clone()).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(timed_out(err.get_ref().and_then(|e| e.downcast_ref())));

    let err = with_anyhow().with_healer(healer.clone()).await.unwrap_err();
    assert!(timed_out(err.downcast_ref()));

    let err = with_boxed().with_healer(healer.clone()).await.unwrap_err();
    assert!(timed_out(err.downcast_ref()));

    assert_eq!(parse_count(" 12 ").unwrap(), 12);
    assert!(parse_count("x").is_err());
    assert_eq!(parse_io("7").unwrap(), 7);
    assert!(!fail_fast("parse_count"));
    assert!(fail_fast("parse_io"));
    assert!(fail_fast("with_io"));

    // `site!` too: `heal_with` and ops without a reject function serve such a site.
    let site = site!(source = "parseLimit", fail_fast = false);
    assert!(!site.options().fail_fast());
    let ops = ErrorOps::<ParseIntError>::without_rejections(|e| e);
    let limit = heal_with(site, ops, || async { "64".parse::<u32>() })
        .with_healer(healer)
        .await;
    assert_eq!(limit, Ok(64));
}

//! The functions that can replay outbox entries: one per `queue_for_later` site, registered at
//! link time by the attribute (a `linkme` slice, like the sites themselves).

use std::future::Future;
use std::pin::Pin;

/// The future of one replay: `Err` carries the function's error as text.
pub type ReplayFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Turns an entry's JSON arguments into a call of the function (`Err`: they no longer parse).
pub type ReplayFn = fn(payload: &str) -> Result<ReplayFuture, String>;

/// A `queue_for_later` function, as the outbox worker finds it by `source`.
#[derive(Debug)]
pub struct Replayer {
    /// The site's `source`.
    pub source: &'static str,
    /// Calls the function with an entry's arguments.
    pub replay: ReplayFn,
}

/// Every `queue_for_later` function of the program.
#[linkme::distributed_slice]
pub static REPLAYERS: [Replayer];

/// The function that replays entries of `source`.
pub(crate) fn find(source: &str) -> Option<&'static Replayer> {
    REPLAYERS.iter().find(|r| r.source == source)
}

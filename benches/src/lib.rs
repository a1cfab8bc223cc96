//! Shared pieces of the benchmarks: the operation every wrapper wraps, and a runtime helper.

use std::hint::black_box;

use self_healing::Rejected;

/// The error of the benchmarked operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OpError(pub &'static str);

/// `#[self_healing]` and `heal` need the error type to represent a refused call; the message
/// stays `&'static str` so peers are measured with the same type.
impl From<Rejected> for OpError {
    fn from(rejected: Rejected) -> Self {
        OpError(match rejected {
            Rejected::CircuitOpen { .. } => "refused: circuit open",
            Rejected::Shed { .. } => "refused: bulkhead full",
            Rejected::TimedOut { .. } => "refused: attempt timed out",
            _ => "refused by the healer",
        })
    }
}

/// About 25 ns of work that always succeeds: the same operation peers are measured with.
#[inline(never)]
pub fn op(x: u64) -> Result<u64, OpError> {
    let mut acc = black_box(x);
    for i in 0..16u64 {
        acc = acc.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7) ^ i;
    }
    Ok(acc)
}

/// [`op`] as an async fn (the operation of every async variant).
pub async fn op_async(x: u64) -> Result<u64, OpError> {
    op(x)
}

/// A current-thread runtime for `iter_custom` loops.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

//! Idempotency keys: one per logical call, the same for every attempt of it, different for every
//! other call (across processes and restarts too: 128 random bits).
//!
//! A site declared `idempotent = "keyed"` (or `queue_for_later`) gives its body a key, read with
//! [`call_key`]. A write that records it under a unique constraint
//! (`INSERT … ON CONFLICT (request_id) DO NOTHING`) can then be re-run after a connection lost
//! mid-commit: the second attempt finds the first one's row instead of writing another. Other
//! sites pay nothing for keys: no key is drawn, and `call_key()` is `None` in their bodies.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

/// The idempotency key of one logical call: 128 random bits, shown as 32 lowercase hex digits.
//
// Two words, not a `u128`: a `u128` is 16-aligned, and an `Option<CallKey>` lives in every
// driver; the non-zero low word makes that `Option` free.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey {
    hi: u64,
    lo: NonZeroU64,
}

impl CallKey {
    /// A fresh key.
    pub fn random() -> Self {
        CallKey {
            hi: fastrand::u64(..),
            lo: NonZeroU64::new(fastrand::u64(1..)).unwrap_or(NonZeroU64::MIN),
        }
    }

    /// The key for a keyed call starting now, and whether the call is an outbox replay: the
    /// replayed entry's key if it is, else a fresh one.
    pub(crate) fn for_call() -> (Self, bool) {
        match REPLAYING.with(Cell::take) {
            Some(key) => (key, true),
            None => (CallKey::random(), false),
        }
    }

    /// The key as a number.
    pub fn as_u128(&self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo.get())
    }

    fn from_u128(n: u128) -> Option<Self> {
        Some(CallKey {
            hi: (n >> 64) as u64,
            lo: NonZeroU64::new(n as u64)?,
        })
    }
}

impl fmt::Display for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.as_u128())
    }
}

impl fmt::Debug for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallKey({self})")
    }
}

/// How a keyed call starts: its key, and whether it replays an outbox entry. Drawn by generated
/// code once per call.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct CallStart {
    /// The call's key.
    pub key: CallKey,
    /// The call replays an outbox entry.
    pub replay: bool,
}

impl CallStart {
    /// The start of a keyed call: the replayed entry's key, or a fresh one.
    #[inline]
    pub fn new() -> Self {
        let (key, replay) = CallKey::for_call();
        CallStart { key, replay }
    }
}

impl Default for CallStart {
    fn default() -> Self {
        CallStart::new()
    }
}

/// A string that is not a call key (32 hex digits, the last 16 not all zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseCallKeyError;

impl fmt::Display for ParseCallKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a call key is 32 hexadecimal digits")
    }
}

impl std::error::Error for ParseCallKeyError {}

impl FromStr for CallKey {
    type Err = ParseCallKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The low word of a key is never zero.
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseCallKeyError);
        }
        u128::from_str_radix(s, 16)
            .ok()
            .and_then(CallKey::from_u128)
            .ok_or(ParseCallKeyError)
    }
}

thread_local! {
    /// The key of the body running on this thread right now.
    static CURRENT: Cell<Option<CallKey>> = const { Cell::new(None) };
    /// The key the next keyed call on this thread takes (an outbox replay's).
    static REPLAYING: Cell<Option<CallKey>> = const { Cell::new(None) };
}

/// The idempotency key of the call whose body is running, if its site is keyed
/// (`idempotent = "keyed"` or `queue_for_later`); the same for every attempt of that call.
///
/// ```
/// # async fn demo() {
/// // Outside a keyed body there is no key.
/// assert!(self_healing_runtime::call_key().is_none());
/// # }
/// ```
pub fn call_key() -> Option<CallKey> {
    CURRENT.with(Cell::get)
}

/// Restores the previous key when a scope ends (or unwinds).
struct Restore(Option<CallKey>);

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

fn enter(key: CallKey) -> Restore {
    Restore(CURRENT.with(|c| c.replace(Some(key))))
}

/// Runs `f` with `key` as the current call key.
pub fn with_call_key_sync<R>(key: CallKey, f: impl FnOnce() -> R) -> R {
    let _restore = enter(key);
    f()
}

/// Makes the first keyed call that `f` starts on this thread take `key` (an outbox replay).
pub(crate) fn replaying<R>(key: CallKey, f: impl FnOnce() -> R) -> R {
    REPLAYING.with(|r| r.set(Some(key)));
    let out = f();
    REPLAYING.with(|r| r.set(None));
    out
}

pin_project_lite::pin_project! {
    /// An outbox replay: the first keyed call its first poll starts takes the entry's key.
    #[derive(Debug)]
    pub(crate) struct Replaying<F> {
        key: Option<CallKey>,
        #[pin]
        inner: F,
    }
}

/// Runs `fut` as the replay of the outbox entry `key`.
pub(crate) fn replay<F: Future>(key: CallKey, fut: F) -> Replaying<F> {
    Replaying {
        key: Some(key),
        inner: fut,
    }
}

impl<F: Future> Future for Replaying<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        match this.key.take() {
            // The generated function takes its key before its first await.
            Some(key) => replaying(key, || this.inner.poll(cx)),
            None => this.inner.poll(cx),
        }
    }
}

pin_project_lite::pin_project! {
    /// A future that runs with a call key as the current one (each poll sets it, and restores
    /// what was there after).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct WithCallKey<F> {
        key: CallKey,
        #[pin]
        inner: F,
    }
}

/// Runs `fut` with `key` as the current call key.
pub fn with_call_key<F: Future>(key: CallKey, fut: F) -> WithCallKey<F> {
    WithCallKey { key, inner: fut }
}

impl<F: Future> Future for WithCallKey<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _restore = enter(*this.key);
        this.inner.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_and_parse_as_32_hex_digits() {
        let key = CallKey::random();
        let text = key.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<CallKey>(), Ok(key));
        assert!("xyz".parse::<CallKey>().is_err());
        assert!("g".repeat(32).parse::<CallKey>().is_err());
    }

    #[test]
    fn keys_differ_between_calls() {
        let keys: std::collections::HashSet<CallKey> =
            (0..10_000).map(|_| CallKey::random()).collect();
        assert_eq!(keys.len(), 10_000);
    }

    #[test]
    fn a_scope_sets_the_key_and_restores_the_outer_one() {
        assert_eq!(call_key(), None);
        let (outer, inner) = (CallKey::random(), CallKey::random());
        with_call_key_sync(outer, || {
            assert_eq!(call_key(), Some(outer));
            with_call_key_sync(inner, || assert_eq!(call_key(), Some(inner)));
            assert_eq!(call_key(), Some(outer));
        });
        assert_eq!(call_key(), None);
    }

    #[test]
    fn a_replay_hands_its_key_to_the_next_call_only() {
        let key = CallKey::random();
        let first = replaying(key, CallKey::for_call);
        assert_eq!(first, (key, true));
        let (next, replay) = CallKey::for_call();
        assert!(!replay);
        assert_ne!(next, key);
    }

    #[tokio::test]
    async fn the_key_follows_the_future_across_awaits() {
        let key = CallKey::random();
        let seen = with_call_key(key, async {
            tokio::task::yield_now().await;
            call_key()
        })
        .await;
        assert_eq!(seen, Some(key));
        assert_eq!(call_key(), None);
    }
}

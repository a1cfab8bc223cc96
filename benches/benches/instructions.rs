//! Instruction counts per call, for numbers that do not depend on how busy the machine is.
//!
//! Each variant runs `N` calls of the success path; run it under callgrind twice (with `N` and
//! with zero calls) and divide the difference by `N`:
//!
//! ```sh
//! cargo bench -p self-healing-benches --bench instructions --no-run
//! BIN=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
//! for v in bare attribute backon recloser; do
//!   for n in 0 1000000; do
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" $v $n 2>&1 | grep 'Collected'
//!   done
//! done
//! ```
//!
//! `scripts/instructions.sh` does exactly that and prints instructions per call.

use std::hint::black_box;

use self_healing::self_healing;
use self_healing_benches::{OpError, op};

#[self_healing(source = "instrSync", category = "runtime")]
fn wrapped(x: u64) -> Result<u64, OpError> {
    op(x)
}

#[self_healing(source = "instrAsync", category = "runtime")]
async fn wrapped_async(x: u64) -> Result<u64, OpError> {
    op(x)
}

/// Makes the next call of the `heals_once` functions fail.
static FAIL_NEXT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn op_or_fail(x: u64) -> Result<u64, OpError> {
    if FAIL_NEXT.swap(false, std::sync::atomic::Ordering::Relaxed) {
        return Err(OpError("connection reset by peer"));
    }
    op(x)
}

// Counted with `--toggle-collect` on these names (scripts/instructions.sh): only the caller's
// work inside them, not the event worker's on its own thread.
#[self_healing(source = "instrHealsOnce", category = "database")]
#[inline(never)]
fn instr_heals_once(x: u64) -> Result<u64, OpError> {
    op_or_fail(x)
}

#[self_healing(source = "instrHealsOnceAsync", category = "database")]
#[inline(never)]
async fn instr_heals_once_async(x: u64) -> Result<u64, OpError> {
    op_or_fail(x)
}

/// One async call, polled to its end: a frame of its own for `--toggle-collect` (the future's
/// poll may be inlined into its caller).
#[inline(never)]
fn instr_poll_heals_once_async(x: u64) -> Result<u64, OpError> {
    ready(instr_heals_once_async(x))
}

/// A healer that re-runs at once (zero backoff), with its event worker on a thread of its own.
fn quick_healer() -> self_healing::Healer {
    self_healing::Healer::builder()
        .store(self_healing::InMemoryStore::new())
        .backoff(std::time::Duration::ZERO, std::time::Duration::ZERO)
        .build()
        .expect("a healer")
}

/// `n` calls that fail once and are healed by one re-run, after one that builds what is built
/// once (the rule automata), so that both runs of the script pay it.
fn healed(n: u64, asynchronous: bool) {
    use std::sync::atomic::Ordering;
    let healer = quick_healer();
    self_healing::with_healer(&healer, || {
        for i in 0..=n {
            FAIL_NEXT.store(true, Ordering::Relaxed);
            let value = if asynchronous {
                instr_poll_heals_once_async(black_box(i))
            } else {
                instr_heals_once(black_box(i))
            };
            black_box(value.expect("healed"));
        }
    });
}

/// Polls a future that never waits, without a runtime: the counts are the futures' own.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("the operation never waits"),
    }
}

#[derive(Clone)]
struct Attempts(usize);

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for Attempts {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        match result {
            Err(_) if self.0 > 0 => {
                self.0 -= 1;
                Some(std::future::ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let variant = args.next().unwrap_or_else(|| "bare".to_owned());
    let n: u64 = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    // Warm the site once so its first-call flag is cleared in every run, counted or not.
    let _ = wrapped(0);
    let _ = ready(wrapped_async(0));
    match variant.as_str() {
        "healed" => healed(n, false),
        "healed_async" => healed(n, true),
        "bare" => (0..n).for_each(|i| {
            black_box(op(black_box(i)).ok());
        }),
        "attribute" => (0..n).for_each(|i| {
            black_box(wrapped(black_box(i)).ok());
        }),
        "heal_blocking" => {
            let site = self_healing::site!(source = "instrHealBlocking", category = "runtime");
            let _ = self_healing::heal_blocking(site, || op(0));
            (0..n).for_each(|i| {
                black_box(self_healing::heal_blocking(site, || op(black_box(i))).ok());
            })
        }
        "backon" => {
            use backon::{BlockingRetryable, ExponentialBuilder};
            (0..n).for_each(|i| {
                black_box(
                    (|| op(black_box(i)))
                        .retry(ExponentialBuilder::default())
                        .call()
                        .ok(),
                );
            })
        }
        "recloser" => {
            let r = recloser::Recloser::default();
            (0..n).for_each(|i| {
                black_box(r.call(|| op(black_box(i))).ok());
            })
        }
        "bare_async" => (0..n).for_each(|i| {
            black_box(ready(self_healing_benches::op_async(black_box(i))).ok());
        }),
        "attribute_async" => (0..n).for_each(|i| {
            black_box(ready(wrapped_async(black_box(i))).ok());
        }),
        "tower_async" => {
            use tower::{Service, ServiceBuilder, ServiceExt};
            let mut svc = ServiceBuilder::new()
                .retry(Attempts(3))
                .service(tower::service_fn(|x: u64| async move { op(x) }));
            (0..n).for_each(|i| {
                black_box(
                    ready(async {
                        let ready_svc = svc.ready().await.expect("always ready");
                        ready_svc.call(black_box(i)).await
                    })
                    .ok(),
                );
            })
        }
        "backon_async" => {
            use backon::{ExponentialBuilder, Retryable};
            (0..n).for_each(|i| {
                black_box(
                    ready(
                        (|| self_healing_benches::op_async(black_box(i)))
                            .retry(ExponentialBuilder::default()),
                    )
                    .ok(),
                );
            })
        }
        other => panic!("unknown variant {other}"),
    }
}

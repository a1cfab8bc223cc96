//! Success path: a wrapped call that succeeds, against the same call bare and against peers doing
//! the same job. Overhead = wrapper − bare, compared within one run.
//!
//! Run: `cargo bench -p self-healing-benches --bench success_path`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use self_healing::{heal, heal_blocking, site};
use self_healing_benches::{op, op_async, runtime};

mod wrapped {
    use std::sync::atomic::{AtomicBool, Ordering};

    use self_healing::self_healing;
    use self_healing_benches::{OpError, op};

    /// Makes the next call of the "recently failed" functions fail once.
    pub(crate) static FAIL_NEXT: AtomicBool = AtomicBool::new(false);

    fn op_or_fail(x: u64) -> Result<u64, OpError> {
        // One relaxed load: the same work in the healthy and the recently failed variants.
        if FAIL_NEXT.load(Ordering::Relaxed) {
            FAIL_NEXT.store(false, Ordering::Relaxed);
            return Err(OpError("connection reset by peer"));
        }
        op(x)
    }

    // The same body on two sites: one healthy, one that failed (and healed) just before the
    // measurement. The difference is what a recent failure costs the success path.
    #[self_healing(source = "benchHealthySync", category = "database")]
    pub fn healthy_sync(x: u64) -> Result<u64, OpError> {
        op_or_fail(x)
    }

    #[self_healing(source = "benchFailedSync", category = "database")]
    pub fn failed_sync(x: u64) -> Result<u64, OpError> {
        op_or_fail(x)
    }

    #[self_healing(source = "benchHealthyAsync", category = "database")]
    pub async fn healthy_async(x: u64) -> Result<u64, OpError> {
        op_or_fail(x)
    }

    #[self_healing(source = "benchFailedAsync", category = "database")]
    pub async fn failed_async(x: u64) -> Result<u64, OpError> {
        op_or_fail(x)
    }

    // The same bodies as `op` and `op_async` (what the peers wrap), with the attribute: the
    // difference in time is the attribute's cost on the success path.
    #[self_healing(source = "benchSync", category = "runtime")]
    pub fn sync_op(x: u64) -> Result<u64, OpError> {
        op(x)
    }

    #[self_healing(source = "benchAsync", category = "runtime")]
    pub async fn async_op(x: u64) -> Result<u64, OpError> {
        op(x)
    }

    // Keyed writes draw an idempotency key per call and run the body with it: what that costs.
    #[self_healing(source = "benchKeyedSync", category = "database", idempotent = "keyed")]
    pub fn keyed_sync_op(x: u64) -> Result<u64, OpError> {
        std::hint::black_box(self_healing::call_key());
        op(x)
    }

    #[self_healing(
        source = "benchKeyedAsync",
        category = "database",
        idempotent = "keyed"
    )]
    pub async fn keyed_async_op(x: u64) -> Result<u64, OpError> {
        std::hint::black_box(self_healing::call_key());
        op(x)
    }
}

fn sync_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("success_path_sync");
    g.bench_function("bare", |b| b.iter(|| op(black_box(7))));
    g.bench_function("self_healing_attribute", |b| {
        b.iter(|| wrapped::sync_op(black_box(7)))
    });
    let site = site!(source = "benchHealBlocking", category = "runtime");
    g.bench_function("self_healing_keyed", |b| {
        b.iter(|| wrapped::keyed_sync_op(black_box(7)))
    });
    g.bench_function("self_healing_heal_blocking", |b| {
        b.iter(|| heal_blocking(site, || op(black_box(7))))
    });
    g.bench_function("backon_blocking", |b| {
        use backon::{BlockingRetryable, ExponentialBuilder};
        b.iter(|| {
            (|| op(black_box(7)))
                .retry(ExponentialBuilder::default())
                .call()
        })
    });
    let recloser = recloser::Recloser::default();
    g.bench_function("recloser", |b| {
        b.iter(|| recloser.call(|| op(black_box(7))))
    });
    let failsafe = failsafe::Config::new().build();
    g.bench_function("failsafe", |b| {
        use failsafe::CircuitBreaker;
        b.iter(|| failsafe.call(|| op(black_box(7))))
    });
    g.finish();
}

/// Awaits `iters` calls inside one `block_on`, so the runtime's entry is not measured.
fn async_loop<F, Fut, T>(rt: &tokio::runtime::Runtime, iters: u64, mut call: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            black_box(call(black_box(i)).await);
        }
        start.elapsed()
    })
}

#[derive(Clone)]
struct Attempts(usize);

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for Attempts {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        match result {
            Ok(_) => None,
            Err(_) if self.0 > 0 => {
                self.0 -= 1;
                Some(std::future::ready(()))
            }
            Err(_) => None,
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

fn async_group(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("success_path_async");
    g.bench_function("bare", |b| b.iter_custom(|n| async_loop(&rt, n, op_async)));
    g.bench_function("self_healing_attribute", |b| {
        b.iter_custom(|n| async_loop(&rt, n, wrapped::async_op))
    });
    g.bench_function("self_healing_keyed", |b| {
        b.iter_custom(|n| async_loop(&rt, n, wrapped::keyed_async_op))
    });
    let site = site!(source = "benchHeal", category = "runtime");
    g.bench_function("self_healing_heal", |b| {
        b.iter_custom(|n| async_loop(&rt, n, |x| heal(site, move || op_async(x))))
    });
    g.bench_function("backon_async", |b| {
        use backon::{ExponentialBuilder, Retryable};
        b.iter_custom(|n| {
            async_loop(&rt, n, |x| {
                (move || op_async(x)).retry(ExponentialBuilder::default())
            })
        })
    });
    let recloser = recloser::AsyncRecloser::from(recloser::Recloser::default());
    g.bench_function("recloser_async", |b| {
        b.iter_custom(|n| async_loop(&rt, n, |x| recloser.call(op_async(x))))
    });
    let failsafe = failsafe::Config::new().build();
    g.bench_function("failsafe_async", |b| {
        use failsafe::futures::CircuitBreaker;
        b.iter_custom(|n| async_loop(&rt, n, |x| failsafe.call(op_async(x))))
    });
    g.bench_function("tower_retry", |b| {
        use tower::{Service, ServiceBuilder, ServiceExt};
        let mut svc = ServiceBuilder::new()
            .retry(Attempts(3))
            .service(tower::service_fn(|x: u64| async move { op(x) }));
        b.iter_custom(|n| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..n {
                    let ready = svc.ready().await.expect("always ready");
                    black_box(ready.call(black_box(i)).await.ok());
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// A healer with no waits, so the failure before the measurement heals at once.
fn quick_healer() -> self_healing::Healer {
    self_healing::Healer::builder()
        .store(self_healing::InMemoryStore::new())
        .backoff(Duration::ZERO, Duration::ZERO)
        .build()
        .expect("a healer")
}

/// Success after a recent failure: the site failed and healed once under the healer (installed
/// for the process, as in production); its circuit is closed and every call after that
/// succeeds. The healthy site runs the same body.
fn recently_failed_group(c: &mut Criterion) {
    use std::sync::atomic::Ordering;
    let rt = runtime();
    let _enter = rt.enter();
    quick_healer()
        .install()
        .expect("no healer installed before");
    wrapped::FAIL_NEXT.store(true, Ordering::Relaxed);
    assert!(wrapped::failed_sync(1).is_ok(), "the failure heals");
    rt.block_on(async {
        wrapped::FAIL_NEXT.store(true, Ordering::Relaxed);
        assert!(wrapped::failed_async(1).await.is_ok(), "the failure heals");
    });
    let mut g = c.benchmark_group("success_after_failure");
    g.bench_function("sync_healthy_site", |b| {
        b.iter(|| wrapped::healthy_sync(black_box(7)))
    });
    g.bench_function("sync_recently_failed_site", |b| {
        b.iter(|| wrapped::failed_sync(black_box(7)))
    });
    g.bench_function("async_healthy_site", |b| {
        b.iter_custom(|n| async_loop(&rt, n, wrapped::healthy_async))
    });
    g.bench_function("async_recently_failed_site", |b| {
        b.iter_custom(|n| async_loop(&rt, n, wrapped::failed_async))
    });
    g.finish();
}

criterion_group!(benches, sync_group, async_group, recently_failed_group);
criterion_main!(benches);

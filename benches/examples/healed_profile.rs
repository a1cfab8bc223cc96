//! N calls healed by one re-run, for a profiler: `valgrind --tool=callgrind target/release/examples/healed_profile 20000`.
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use self_healing::{Healer, InMemoryStore, self_healing, with_healer};
use self_healing_benches::{OpError, op};

static FAIL_NEXT: AtomicBool = AtomicBool::new(false);

#[self_healing(source = "profileHealOnce", category = "database")]
#[inline(never)]
fn heals_once(x: u64) -> Result<u64, OpError> {
    if FAIL_NEXT.swap(false, Ordering::Relaxed) {
        return Err(OpError("connection reset by peer"));
    }
    op(x)
}

#[self_healing(source = "profileHealOnceAsync", category = "database")]
async fn heals_once_async(x: u64) -> Result<u64, OpError> {
    if FAIL_NEXT.swap(false, Ordering::Relaxed) {
        return Err(OpError("connection reset by peer"));
    }
    op(x)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    if std::env::args().nth(2).as_deref() == Some("sizes") {
        let site = self_healing::site!(source = "sizesSite", category = "database");
        let boxed = self_healing::__private::run_async_slow(
            site,
            self_healing::ErrorOps::<std::io::Error>::of_error(),
            || async { Ok::<u64, std::io::Error>(1) },
            None,
        );
        println!("slow path future: {} bytes", std::mem::size_of_val(&*boxed));
        println!(
            "driver: {} bytes",
            std::mem::size_of::<self_healing::__private::Driver<std::io::Error>>()
        );
        println!(
            "inline slow: {} bytes",
            std::mem::size_of::<self_healing::__private::Slow<std::io::Error>>()
        );
        return;
    }
    if std::env::args().nth(2).as_deref() == Some("async") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let healer = rt.block_on(async {
            Healer::builder()
                .store(InMemoryStore::new())
                .backoff(Duration::ZERO, Duration::ZERO)
                .build()
                .unwrap()
        });
        let local = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        local.block_on(self_healing::WithHealerExt::with_healer(
            async {
                for i in 0..n {
                    FAIL_NEXT.store(true, Ordering::Relaxed);
                    black_box(heals_once_async(black_box(i)).await.unwrap());
                }
            },
            healer,
        ));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let healer = rt.block_on(async {
        Healer::builder()
            .store(InMemoryStore::new())
            .backoff(Duration::ZERO, Duration::ZERO)
            .build()
            .unwrap()
    });
    with_healer(&healer, || {
        for i in 0..n {
            FAIL_NEXT.store(true, Ordering::Relaxed);
            black_box(heals_once(black_box(i)).unwrap());
        }
    });
}

//! `HealingLayer` (feature `tower`) around hand-made flaky `tower` services. Time is tokio's
//! paused clock: backoff and Retry-After waits cost nothing, and no test reads the wall clock.

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use self_healing_runtime::tower::{BoxError, HealingLayer, NotRerunnable};
use self_healing_runtime::{
    BreakerConfig, CircuitState, ErrorClass, Healer, HealingEvent, InMemoryStore, Outcome,
    Rejected, WithHealerExt,
};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn healer(store: &InMemoryStore) -> self_healing_runtime::HealerBuilder {
    Healer::builder().store(store.clone()).seed(7)
}

async fn events(healer: &Healer, store: &InMemoryStore) -> Vec<HealingEvent> {
    healer.flush().await.expect("flushed");
    store.events()
}

/// A service that fails its first `failures` calls with `message`, then echoes the request.
fn flaky(
    failures: u32,
    message: &'static str,
    calls: Arc<AtomicU32>,
) -> impl Service<String, Response = String, Error = BoxError, Future: Send> + Clone + Send + 'static
{
    service_fn(move |req: String| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < failures {
                Err::<String, BoxError>(message.into())
            } else {
                Ok(format!("echo {req}"))
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_flaky_service_is_healed_by_retry() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let site = test_site!("towerFlaky", Api);
    let svc = ServiceBuilder::new()
        .layer(HealingLayer::new(site))
        .service(flaky(2, "connection reset by peer", calls.clone()));

    let answer = svc.oneshot("hello".to_owned()).with_healer(h.clone()).await;
    assert_eq!(answer.unwrap(), "echo hello");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let events = events(&h, &store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, Outcome::Healed);
    assert_eq!(events[0].source, "towerFlaky");
    assert_eq!(events[0].attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn without_a_healer_the_service_runs_once() {
    let calls = Arc::new(AtomicU32::new(0));
    let site = test_site!("towerNoHealer", Api);
    let svc = ServiceBuilder::new()
        .layer(HealingLayer::new(site))
        .service(flaky(1, "connection reset by peer", calls.clone()));
    let err = svc.oneshot("hello".to_owned()).await.unwrap_err();
    assert_eq!(err.to_string(), "connection reset by peer");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A request that is not `Clone`, as an `http::Request` with a streaming body.
#[derive(Debug)]
struct Upload {
    bytes: Vec<u8>,
    /// Whether the body can be produced again (kept bytes), or was a one-shot stream.
    replayable: bool,
}

fn uploads(
    failures: u32,
    calls: Arc<AtomicU32>,
) -> impl Service<Upload, Response = usize, Error = BoxError, Future: Send> + Clone + Send + 'static
{
    service_fn(move |req: Upload| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < failures {
                Err::<usize, BoxError>("connection reset by peer".into())
            } else {
                Ok(req.bytes.len())
            }
        }
    })
}

fn rebuild(req: &Upload) -> Option<Upload> {
    req.replayable.then(|| Upload {
        bytes: req.bytes.clone(),
        replayable: true,
    })
}

#[tokio::test(start_paused = true)]
async fn a_request_that_is_not_clone_is_rerun_through_the_user_function() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let site = test_site!("towerUpload", Api);
    let svc = ServiceBuilder::new()
        .layer(HealingLayer::new(site).rerun_with(rebuild))
        .service(uploads(1, calls.clone()));

    let req = Upload {
        bytes: vec![1, 2, 3],
        replayable: true,
    };
    let sent = svc.oneshot(req).with_healer(h.clone()).await.unwrap();
    assert_eq!(sent, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(events(&h, &store).await[0].outcome, Outcome::Healed);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_cannot_be_rebuilt_is_sent_once() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let site = test_site!("towerStream", Api);
    let svc = ServiceBuilder::new()
        .layer(HealingLayer::new(site).rerun_with(rebuild))
        .service(uploads(1, calls.clone()));

    let req = Upload {
        bytes: vec![1, 2, 3],
        replayable: false,
    };
    let err = svc.oneshot(req).with_healer(h.clone()).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the original went once");
    let not_rerunnable = err
        .downcast_ref::<NotRerunnable>()
        .unwrap_or_else(|| panic!("a NotRerunnable error: {err}"));
    assert_eq!(
        not_rerunnable.previous(),
        Some("connection reset by peer"),
        "it carries the error of the attempt that went"
    );
    let events = events(&h, &store).await;
    assert_eq!(events.len(), 1);
    assert_ne!(events[0].outcome, Outcome::Healed);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_not_rerun() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let site = test_site!("towerPermanent", Api);
    let counter = calls.clone();
    let svc = ServiceBuilder::new()
        .layer(HealingLayer::new(site))
        .service(service_fn(move |_req: u32| {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<u32, io::Error>(io::Error::new(
                    io::ErrorKind::NotFound,
                    "contact 7 does not exist",
                ))
            }
        }));

    let err = svc.oneshot(7).with_healer(h.clone()).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "not re-run");
    let io = err
        .downcast_ref::<io::Error>()
        .expect("the service's own error");
    assert_eq!(io.kind(), io::ErrorKind::NotFound);
    let events = events(&h, &store).await;
    assert_eq!(events[0].class, ErrorClass::Permanent);
}

#[tokio::test(start_paused = true)]
async fn the_circuit_refuses_calls_when_open() {
    let store = InMemoryStore::new();
    let h = healer(&store)
        .max_attempts(1)
        .breaker(BreakerConfig {
            minimum_calls: 5,
            probe_after: Duration::from_secs(10),
            probe_max: Duration::from_secs(10),
            half_open_probes: 1,
            ..BreakerConfig::default()
        })
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let site = test_site!("towerOutage", Api);
    let svc = ServiceBuilder::new()
        .layer(HealingLayer::new(site))
        .service(flaky(u32::MAX, "service unavailable (503)", calls.clone()));

    for _ in 0..5 {
        let result = svc
            .clone()
            .oneshot("x".to_owned())
            .with_healer(h.clone())
            .await;
        assert!(result.is_err());
    }
    assert_eq!(h.circuit_of(site), CircuitState::Open);
    let before = calls.load(Ordering::SeqCst);
    let err = svc
        .clone()
        .oneshot("x".to_owned())
        .with_healer(h.clone())
        .await
        .unwrap_err();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "the service was not called"
    );
    assert!(
        matches!(
            err.downcast_ref::<Rejected>(),
            Some(Rejected::CircuitOpen { .. })
        ),
        "failed fast with a boxed Rejected: {err}"
    );
}

/// The state of a gate: services are ready only while it is open.
#[derive(Debug, Default)]
struct GateState {
    open: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
    calls: AtomicU32,
    /// Calls made on a clone that `poll_ready` had not prepared.
    unready_calls: AtomicU32,
}

impl GateState {
    fn set(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
        if open {
            for waker in self.wakers.lock().unwrap().drain(..) {
                waker.wake();
            }
        }
    }
}

/// A service with backpressure: not ready while the gate is closed. Its first call fails.
#[derive(Debug, Clone)]
struct Gated {
    state: Arc<GateState>,
    ready: bool,
}

impl Service<u32> for Gated {
    type Response = u32;
    type Error = BoxError;
    type Future = std::future::Ready<Result<u32, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.state.open.load(Ordering::SeqCst) {
            self.ready = true;
            Poll::Ready(Ok(()))
        } else {
            self.state.wakers.lock().unwrap().push(cx.waker().clone());
            Poll::Pending
        }
    }

    fn call(&mut self, req: u32) -> Self::Future {
        if !std::mem::take(&mut self.ready) {
            self.state.unready_calls.fetch_add(1, Ordering::SeqCst);
        }
        let n = self.state.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(if n == 0 {
            Err("connection reset by peer".into())
        } else {
            Ok(req * 2)
        })
    }
}

#[tokio::test(start_paused = true)]
async fn poll_ready_backpressure_is_honoured() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let state = Arc::new(GateState::default());
    let site = test_site!("towerGated", Api);
    let mut svc = ServiceBuilder::new()
        .layer(HealingLayer::new(site))
        .service(Gated {
            state: state.clone(),
            ready: false,
        });

    // Closed gate: the healing service is not ready either.
    let waited = tokio::time::timeout(Duration::from_secs(5), svc.ready()).await;
    assert!(waited.is_err(), "not ready while the inner service is not");

    // Open: the first attempt goes and fails; the gate closes before the re-run.
    state.set(true);
    let call = svc.ready().await.unwrap().call(21).with_healer(h.clone());
    let task = tokio::spawn(call);
    // The gate closes as soon as the first attempt went.
    while state.calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    state.set(false);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        state.calls.load(Ordering::SeqCst),
        1,
        "the re-run waits for readiness, however long the backoff was"
    );
    assert!(!task.is_finished());

    state.set(true);
    assert_eq!(task.await.unwrap().unwrap(), 42);
    assert_eq!(state.calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        state.unready_calls.load(Ordering::SeqCst),
        0,
        "every call went to a service poll_ready had prepared"
    );
}

/// An HTTP-like response: a status and an optional Retry-After in seconds.
#[derive(Debug, Clone, PartialEq)]
struct Response {
    status: u16,
    retry_after: Option<u64>,
}

fn unavailable(resp: &Response) -> Option<String> {
    match (resp.status, resp.retry_after) {
        (503 | 429, Some(secs)) => Some(format!(
            "HTTP {} from upstream; Retry-After: {secs}",
            resp.status
        )),
        (500.., _) => Some(format!("HTTP {} from upstream", resp.status)),
        _ => None,
    }
}

fn statuses(
    script: Vec<Response>,
    calls: Arc<AtomicU32>,
) -> impl Service<(), Response = Response, Error = io::Error, Future: Send> + Clone + Send + 'static
{
    service_fn(move |()| {
        let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
        let resp = script.get(n).cloned().unwrap_or(Response {
            status: 200,
            retry_after: None,
        });
        async move { Ok::<_, io::Error>(resp) }
    })
}

#[tokio::test(start_paused = true)]
async fn a_failing_response_is_healed_honouring_retry_after() {
    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let site = test_site!("towerStatus", Api);
    let busy = Response {
        status: 429,
        retry_after: Some(2),
    };
    let svc = ServiceBuilder::new()
        .layer(HealingLayer::new(site).fail_when(unavailable))
        .service(statuses(vec![busy], calls.clone()));

    let resp = svc.oneshot(()).with_healer(h.clone()).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let events = events(&h, &store).await;
    assert_eq!(events[0].outcome, Outcome::Healed);
    assert_eq!(
        events[0].class,
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_response_that_keeps_failing_is_returned_as_it_came() {
    let store = InMemoryStore::new();
    let h = healer(&store).max_attempts(3).build().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let site = test_site!("towerDown", Api);
    let down = Response {
        status: 503,
        retry_after: None,
    };
    let svc = ServiceBuilder::new()
        .layer(HealingLayer::new(site).fail_when(unavailable))
        .service(statuses(vec![down.clone(); 10], calls.clone()));

    let resp = svc.oneshot(()).with_healer(h.clone()).await.unwrap();
    assert_eq!(resp, down, "the last response, not an error");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let events = events(&h, &store).await;
    assert_ne!(events[0].outcome, Outcome::Healed);
}

#[cfg(feature = "chaos")]
#[tokio::test(start_paused = true)]
async fn injected_faults_reach_the_layer_and_are_healed() {
    use self_healing_runtime::chaos::{Chaos, Fault, WithChaosExt};

    let store = InMemoryStore::new();
    let h = healer(&store).build().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let site = test_site!("towerChaos", Api);
    // Every call of the first second is a 503 saying to come back in 2 s.
    let chaos = Chaos::builder()
        .fault(
            "towerChaos",
            Fault::unavailable_retry_after(1.0, Duration::from_secs(2))
                .between(Duration::ZERO, Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(HealingLayer::new(site))
        .service(flaky(0, "unused", calls.clone()));

    let answer = svc
        .oneshot("hi".to_owned())
        .with_healer(h.clone())
        .with_chaos(chaos.clone())
        .await;
    assert_eq!(answer.unwrap(), "echo hi");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the injected 503 never reached it"
    );
    let stats = chaos.stats("towerChaos");
    assert_eq!(stats.injected, 1);
    assert_eq!(
        stats.early_reruns, 0,
        "the re-run waited for the Retry-After"
    );
    assert_eq!(events(&h, &store).await[0].outcome, Outcome::Healed);
}

//! Alternate endpoints of a dependency (two providers of one API, a region and its standby, an
//! OpenAI-compatible service and a local model), for the `switch_endpoint` strategy.
//!
//! The body asks [`Endpoints::current`] where to send each attempt. When an attempt fails in a
//! way another endpoint may not (unreachable, timing out, overloaded, out of quota), the
//! strategy marks the endpoint in use down for a cool-down and re-runs the call on the next
//! healthy one. Order is preference: once the primary's cool-down is over, traffic goes back to
//! it. Every endpoint's traffic and failures are counted ([`Endpoints::report`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How long a failed endpoint is passed over by default.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);

/// A dependency's endpoints, most preferred first. Cheap to clone: clones share their state.
///
/// ```
/// use self_healing_runtime::endpoints::Endpoints;
///
/// let providers = Endpoints::new("https://api.primary.example").or("http://127.0.0.1:11434");
/// let url = providers.current().url().to_owned();
/// assert_eq!(url, "https://api.primary.example");
/// // What the `switch_endpoint` strategy does when a call there fails:
/// providers.switch().unwrap();
/// assert_eq!(providers.current().url(), "http://127.0.0.1:11434");
/// ```
#[derive(Clone)]
pub struct Endpoints {
    inner: Arc<Inner>,
}

struct Inner {
    list: Vec<State>,
    /// The endpoint the latest call was sent to: the one a switch marks down.
    active: AtomicUsize,
    cooldown: Duration,
}

struct State {
    url: Arc<str>,
    down_until: Mutex<Option<Instant>>,
    served: AtomicU64,
    failed: AtomicU64,
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoints")
            .field("endpoints", &self.report())
            .field("cooldown", &self.inner.cooldown)
            .finish()
    }
}

/// The endpoint a call should use now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    index: usize,
    url: Arc<str>,
}

impl Endpoint {
    /// Its place in the list (0 is the primary).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its URL (or whatever names it).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// One endpoint's health, for reports and dashboards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    /// Its URL.
    pub url: String,
    /// Calls sent to it.
    pub served: u64,
    /// Times a failure there made the site switch away from it.
    pub failed: u64,
    /// Whether it is passed over right now (in its cool-down).
    pub down: bool,
}

/// No endpoint other than the failing one is healthy: the switch cannot help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoHealthyEndpoint {
    /// The endpoint that failed.
    pub failed: String,
}

impl fmt::Display for NoHealthyEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no healthy endpoint to switch to from {} (every alternate is cooling down)",
            self.failed
        )
    }
}

impl std::error::Error for NoHealthyEndpoint {}

impl Endpoints {
    /// The primary endpoint; add alternates with [`or`](Self::or).
    pub fn new(primary: impl Into<String>) -> Self {
        Endpoints {
            inner: Arc::new(Inner {
                list: vec![State::new(primary.into())],
                active: AtomicUsize::new(0),
                cooldown: DEFAULT_COOLDOWN,
            }),
        }
    }

    /// Adds an alternate, less preferred than those before it.
    pub fn or(self, alternate: impl Into<String>) -> Self {
        self.rebuild(|list, _| list.push(State::new(alternate.into())))
    }

    /// How long a failed endpoint is passed over (default 30 s).
    pub fn cooldown(self, cooldown: Duration) -> Self {
        self.rebuild(|_, c| *c = cooldown)
    }

    /// Configuration happens before the endpoints are shared: a fresh state each time.
    fn rebuild(self, change: impl FnOnce(&mut Vec<State>, &mut Duration)) -> Self {
        let mut list: Vec<State> = self
            .inner
            .list
            .iter()
            .map(|s| State::new(s.url.to_string()))
            .collect();
        let mut cooldown = self.inner.cooldown;
        change(&mut list, &mut cooldown);
        Endpoints {
            inner: Arc::new(Inner {
                list,
                active: AtomicUsize::new(0),
                cooldown,
            }),
        }
    }

    /// The endpoint to use now: the most preferred one that is not cooling down (the primary
    /// when all are). Counts the call as served by it.
    pub fn current(&self) -> Endpoint {
        let now = Instant::now();
        let index = self.first_healthy(now, None).unwrap_or(0);
        let state = &self.inner.list[index];
        state.served.fetch_add(1, Ordering::Relaxed);
        self.inner.active.store(index, Ordering::Relaxed);
        Endpoint {
            index,
            url: state.url.clone(),
        }
    }

    /// Marks the endpoint in use down for the cool-down and moves to the next healthy one.
    ///
    /// # Errors
    /// [`NoHealthyEndpoint`] when every other endpoint is cooling down (the failed one is marked
    /// down all the same).
    pub fn switch(&self) -> Result<Endpoint, NoHealthyEndpoint> {
        let now = Instant::now();
        let failed = self.inner.active.load(Ordering::Relaxed);
        let state = &self.inner.list[failed];
        state.failed.fetch_add(1, Ordering::Relaxed);
        *state.down_until.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(crate::clock::after(now, self.inner.cooldown));
        match self.first_healthy(now, Some(failed)) {
            Some(next) => {
                self.inner.active.store(next, Ordering::Relaxed);
                Ok(Endpoint {
                    index: next,
                    url: self.inner.list[next].url.clone(),
                })
            }
            None => Err(NoHealthyEndpoint {
                failed: state.url.to_string(),
            }),
        }
    }

    fn first_healthy(&self, now: Instant, except: Option<usize>) -> Option<usize> {
        self.inner
            .list
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != except)
            .find(|(_, s)| {
                s.down_until
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_none_or(|until| until <= now)
            })
            .map(|(i, _)| i)
    }

    /// Every endpoint's traffic, failures and state, in order of preference.
    pub fn report(&self) -> Vec<EndpointHealth> {
        let now = Instant::now();
        self.inner
            .list
            .iter()
            .map(|s| EndpointHealth {
                url: s.url.to_string(),
                served: s.served.load(Ordering::Relaxed),
                failed: s.failed.load(Ordering::Relaxed),
                down: s
                    .down_until
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_some_and(|until| until > now),
            })
            .collect()
    }

    /// How many endpoints there are.
    pub fn len(&self) -> usize {
        self.inner.list.len()
    }

    /// Always `false`: there is at least the primary.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl State {
    fn new(url: String) -> Self {
        State {
            url: url.into(),
            down_until: Mutex::new(None),
            served: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failed_endpoint_cools_down_then_the_primary_serves_again() {
        let e = Endpoints::new("a")
            .or("b")
            .or("c")
            .cooldown(Duration::from_secs(10));
        assert_eq!(e.current().url(), "a");
        assert_eq!(e.switch().unwrap().url(), "b");
        assert_eq!(e.current().url(), "b");
        assert_eq!(e.switch().unwrap().url(), "c");
        assert_eq!(e.current().url(), "c");
        let err = e.switch().unwrap_err();
        assert_eq!(err.failed, "c");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(
            e.current().url(),
            "a",
            "preference returns after the cool-down"
        );
        let report = e.report();
        assert_eq!(
            report
                .iter()
                .map(|h| (h.served, h.failed, h.down))
                .collect::<Vec<_>>(),
            [(2, 1, false), (1, 1, false), (1, 1, false)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_their_state() {
        let e = Endpoints::new("a").or("b");
        let clone = e.clone();
        e.current();
        e.switch().unwrap();
        assert_eq!(clone.current().url(), "b");
        assert!(clone.report()[0].down);
    }
}

//! A per-client limit on wrong secrets: the login form and `Authorization: Bearer` share it.
//!
//! A client (an IP address; an IPv6 /64, which one host usually owns whole) gets
//! [`MAX_FAILURES`] wrong tokens per [`WINDOW`], counted from its first failure; then every
//! attempt is refused with 429 and `Retry-After` until the window has passed, without the token
//! being compared at all (otherwise a right guess would still show as a success). Right tokens
//! cost nothing and are not counted; session cookies never go through here, so a logged-in
//! browser keeps working while its address is locked out.
//!
//! The table is bounded ([`MAX_CLIENTS`]): past it, windows that have passed go first, then the
//! oldest. Times are tokio's [`Instant`], so tests run on a paused clock.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Extensions;
use tokio::time::Instant;

/// Wrong tokens a client may send per [`WINDOW`].
pub(crate) const MAX_FAILURES: u32 = 10;
/// How long a client's failures count, from the first one.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Clients remembered at most (a few hundred kilobytes).
pub(crate) const MAX_CLIENTS: usize = 4096;

/// Who is counted: the peer's address, IPv6 cut to its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Client(IpAddr);

impl Client {
    /// The client of a request, from the `ConnectInfo` the server recorded. Without one (a
    /// router served without `into_make_service_with_connect_info`), every client shares one
    /// budget: stricter, never looser. Behind a reverse proxy the peer is the proxy, so all of
    /// its clients share its budget too: forwarding headers are not trusted, as anyone can
    /// send them.
    pub(crate) fn of(extensions: &Extensions) -> Client {
        let ip = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |ConnectInfo(addr)| {
                addr.ip().to_canonical()
            });
        Client(match ip {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
            v4 => v4,
        })
    }
}

/// A client's failures in its current window.
struct Strikes {
    since: Instant,
    failures: u32,
}

/// The failures of every recent client.
pub(crate) struct Throttle {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    clients: Mutex<HashMap<Client, Strikes>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::with_limits(MAX_FAILURES, WINDOW, MAX_CLIENTS)
    }
}

impl Throttle {
    fn with_limits(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Throttle {
            max_failures,
            window,
            capacity,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `check` (the comparison of a presented token) for `client` unless it is locked
    /// out, and counts a `false` against it.
    ///
    /// # Errors
    /// How long until the client may try again, when it is locked out.
    pub(crate) fn attempt(
        &self,
        client: Client,
        now: Instant,
        check: impl FnOnce() -> bool,
    ) -> Result<bool, Duration> {
        // Held across `check` (a SHA-256): concurrent attempts cannot all slip past the count.
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = clients.get(&client) {
            let ends = s.since + self.window;
            if now >= ends {
                clients.remove(&client);
            } else if s.failures >= self.max_failures {
                return Err(ends - now);
            }
        }
        let ok = check();
        if !ok {
            if !clients.contains_key(&client) && clients.len() >= self.capacity {
                self.make_room(&mut clients, now);
            }
            clients
                .entry(client)
                .or_insert(Strikes {
                    since: now,
                    failures: 0,
                })
                .failures += 1;
        }
        Ok(ok)
    }

    /// Forgets clients whose window has passed; if none has, the one whose window started first.
    fn make_room(&self, clients: &mut HashMap<Client, Strikes>, now: Instant) {
        clients.retain(|_, s| now < s.since + self.window);
        if clients.len() >= self.capacity
            && let Some(oldest) = clients.iter().min_by_key(|(_, s)| s.since).map(|(c, _)| *c)
        {
            clients.remove(&oldest);
        }
    }
}

/// Whole seconds to put in `Retry-After` (rounded up: never "0" while still locked out).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(ip: &str) -> Client {
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::new(ip.parse().unwrap(), 40000)));
        Client::of(&ext)
    }

    #[test]
    fn failures_lock_a_client_out_until_its_window_passes() {
        let t = Throttle::with_limits(3, Duration::from_secs(60), 100);
        let (a, b) = (client("10.0.0.1"), client("10.0.0.2"));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.attempt(a, t0, || false), Ok(false));
        }
        let later = t0 + Duration::from_secs(20);
        let mut compared = false;
        let locked = t.attempt(a, later, || {
            compared = true;
            true
        });
        assert_eq!(locked, Err(Duration::from_secs(40)));
        assert!(
            !compared,
            "a locked-out client's token is not even compared"
        );
        assert_eq!(t.attempt(b, later, || false), Ok(false), "per client");
        assert_eq!(t.attempt(b, later, || true), Ok(true));
        let end = t0 + Duration::from_secs(60);
        assert_eq!(t.attempt(a, end, || false), Ok(false), "a new window");
        assert_eq!(t.attempt(a, end, || true), Ok(true));
    }

    #[test]
    fn right_tokens_are_not_counted() {
        let t = Throttle::with_limits(2, Duration::from_secs(60), 100);
        let a = client("10.0.0.1");
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(t.attempt(a, t0, || true), Ok(true));
        }
        assert_eq!(t.attempt(a, t0, || false), Ok(false));
        assert_eq!(t.attempt(a, t0, || true), Ok(true));
    }

    #[test]
    fn the_table_is_bounded() {
        let t = Throttle::with_limits(1, Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for (i, ip) in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
            .into_iter()
            .enumerate()
        {
            let now = t0 + Duration::from_secs(i as u64);
            assert_eq!(t.attempt(client(ip), now, || false), Ok(false));
        }
        let clients = t.clients.lock().unwrap();
        assert_eq!(clients.len(), 3);
        assert!(
            !clients.contains_key(&client("10.0.0.1")),
            "the oldest went"
        );
        drop(clients);
        // Passed windows go before anyone else.
        let much_later = t0 + Duration::from_secs(3600);
        assert_eq!(
            t.attempt(client("10.0.0.9"), much_later, || false),
            Ok(false)
        );
        assert_eq!(t.clients.lock().unwrap().len(), 1);
    }

    #[test]
    fn clients_are_addresses_and_ipv6_prefixes() {
        assert_eq!(
            client("2001:db8::1"),
            client("2001:db8::ffff:1"),
            "same /64"
        );
        assert_ne!(client("2001:db8::1"), client("2001:db8:0:1::1"));
        assert_eq!(client("::ffff:10.0.0.1"), client("10.0.0.1"));
        assert_ne!(client("10.0.0.1"), client("10.0.0.2"));
        assert_eq!(
            Client::of(&Extensions::new()),
            Client::of(&Extensions::new())
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
        assert_eq!(retry_after_secs(Duration::from_millis(29_001)), 30);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    }
}

//! The fault traces the lab replays: each is a set of chaos rules on one of the lab's two sites,
//! active during one phase of traffic.

use std::time::Duration;

use self_healing::chaos::{Fault, RetryAfter};

/// Which of the lab's wrapped functions a trace hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabSite {
    /// `labDb`, category `database` (reconnect hook registered).
    Database,
    /// `labApi`, category `api` (credential-refresh hook registered).
    Api,
}

impl LabSite {
    /// The site's `source`.
    pub fn source(self) -> &'static str {
        match self {
            LabSite::Database => "labDb",
            LabSite::Api => "labApi",
        }
    }
}

/// One fault trace.
#[derive(Debug, Clone, Copy)]
pub struct Trace {
    /// Its name on the command line and in the table.
    pub name: &'static str,
    /// What it imitates.
    pub about: &'static str,
    /// The site the faults hit.
    pub site: LabSite,
    /// The chaos rules, times measured from the start of the phase.
    pub faults: fn() -> Vec<Fault>,
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Every trace, in the order the table shows them.
pub fn all() -> Vec<Trace> {
    vec![
        Trace {
            name: "transient-20",
            about: "20 % of calls fail with a 503 (no Retry-After)",
            site: LabSite::Database,
            faults: || vec![Fault::unavailable(0.2)],
        },
        Trace {
            name: "lost-connection",
            about: "the connection breaks at 5 s and stays broken until the reconnect hook runs",
            site: LabSite::Database,
            faults: || vec![Fault::broken_connection().after(secs(5))],
        },
        Trace {
            name: "expired-token",
            about: "the token lives 8 s; 401 until the refresh hook issues a new one",
            site: LabSite::Api,
            faults: || vec![Fault::expiring_token(secs(8))],
        },
        Trace {
            name: "outage-30s",
            about: "every call refused from 10 s to 40 s",
            site: LabSite::Database,
            faults: || vec![Fault::outage().between(secs(10), secs(40))],
        },
        Trace {
            name: "outage-5s",
            about: "every call refused from 10 s to 15 s",
            site: LabSite::Database,
            faults: || vec![Fault::outage().between(secs(10), secs(15))],
        },
        Trace {
            name: "429-exact",
            about: "at most 40 calls in any second; 429s carry the exact time until a slot frees",
            site: LabSite::Api,
            faults: || vec![Fault::rate_limit(40, secs(1))],
        },
        Trace {
            name: "429-whole-seconds",
            about: "at most 40 calls in any second; 429s say `Retry-After: 1`",
            site: LabSite::Api,
            faults: || vec![Fault::rate_limit(40, secs(1)).retry_after(RetryAfter::WholeSeconds)],
        },
        Trace {
            name: "throttled-3",
            about: "3 % of calls answered 503 with `Retry-After: 0.2 s` at random: no quota behind it",
            site: LabSite::Api,
            faults: || {
                vec![Fault::unavailable_retry_after(
                    0.03,
                    Duration::from_millis(200),
                )]
            },
        },
        Trace {
            name: "stale-connection",
            about: "from 5 s queries hang 500 ms and time out until the reconnect hook runs",
            site: LabSite::Database,
            faults: || vec![Fault::stale_connection(Duration::from_millis(500)).after(secs(5))],
        },
        Trace {
            name: "fail-once",
            about: "one bad backend of two, served in turn to each client: every call's first attempt fails, its re-run succeeds",
            site: LabSite::Database,
            faults: || vec![Fault::bad_backend(2)],
        },
    ]
}

/// The trace called `name`.
pub fn find(name: &str) -> Option<Trace> {
    all().into_iter().find(|t| t.name == name)
}

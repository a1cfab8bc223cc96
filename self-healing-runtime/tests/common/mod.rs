//! Shared helpers: scripted flaky dependencies and static sites.

#![allow(dead_code, unreachable_pub)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// A static call site for a test, the way `site!` declares one.
#[macro_export]
macro_rules! test_site {
    ($source:literal, $category:ident) => {
        test_site!($source, $category, self_healing_runtime::SiteOptions::new())
    };
    ($source:literal, $category:ident, $options:expr) => {{
        #[linkme::distributed_slice(self_healing_runtime::__private::SITES)]
        static ENTRY: &self_healing_runtime::Site = &SITE;
        static SITE: self_healing_runtime::Site =
            self_healing_runtime::Site::new(self_healing_runtime::SiteInfo {
                source: $source,
                category: self_healing_runtime::Category::$category,
                function: "test",
                module_path: module_path!(),
                file: file!(),
                line: line!(),
                options: $options,
            });
        &SITE
    }};
}

/// An error whose message is chosen by the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// A refused call (open circuit, full bulkhead, timeout, panic) keeps its message, which is what
/// the tests read.
impl From<self_healing_runtime::Rejected> for Failure {
    fn from(rejected: self_healing_runtime::Rejected) -> Self {
        Failure(rejected.to_string())
    }
}

/// A dependency that answers from a script: `Err(message)` for the first calls, then `Ok`.
#[derive(Debug)]
pub struct Flaky {
    script: Mutex<Vec<Option<String>>>,
    /// Calls made so far.
    pub calls: AtomicU32,
}

impl Flaky {
    /// Fails with `message` `n` times, then succeeds forever.
    pub fn failing(n: usize, message: &str) -> Self {
        Flaky {
            script: Mutex::new(vec![Some(message.to_owned()); n]),
            calls: AtomicU32::new(0),
        }
    }

    /// The next answer.
    pub fn call(&self) -> Result<u32, Failure> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let mut script = self.script.lock().unwrap();
        if script.is_empty() {
            return Ok(n + 1);
        }
        match script.remove(0) {
            Some(message) => Err(Failure(message)),
            None => Ok(n + 1),
        }
    }

    /// Calls made so far.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A healer that never re-runs (one attempt) and opens a site's circuit after `minimum_calls`
/// failed calls: for tests about what the circuit does.
pub fn opening_healer(minimum_calls: u32) -> self_healing_runtime::HealerBuilder {
    self_healing_runtime::Healer::builder()
        .store(self_healing_runtime::InMemoryStore::new())
        .seed(5)
        .max_attempts(1)
        .breaker(self_healing_runtime::BreakerConfig {
            minimum_calls,
            ..self_healing_runtime::BreakerConfig::default()
        })
}

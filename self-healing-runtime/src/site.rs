//! Call sites: the static record every wrapped function carries, and the registry that lists them.

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// What kind of work a wrapped function does. It biases diagnosis and strategy choice.
///
/// The four categories of the integration guide:
///
/// | category | when to use | examples |
/// |---|---|---|
/// | [`Database`](Category::Database) | database queries, ORM operations | contacts, deals, projects CRUD |
/// | [`Api`](Category::Api) | calls to external APIs | LLMs, email, SMS, uploads |
/// | [`Runtime`](Category::Runtime) | general application logic | business rules, calculations |
/// | [`Performance`](Category::Performance) | performance-sensitive operations | large data processing |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Database queries and ORM operations.
    Database,
    /// Calls to external APIs.
    Api,
    /// General application logic.
    Runtime,
    /// Performance-sensitive operations.
    Performance,
}

impl Category {
    /// Every category, in the order the guide lists them.
    pub const ALL: [Category; 4] = [
        Category::Database,
        Category::Api,
        Category::Runtime,
        Category::Performance,
    ];

    /// The name used in the attribute, events and the dashboard (`"database"`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Database => "database",
            Category::Api => "api",
            Category::Runtime => "runtime",
            Category::Performance => "performance",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

/// A category name that is not one of `database`, `api`, `runtime`, `performance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCategory(pub String);

impl fmt::Display for UnknownCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown category `{}`: expected one of database, api, runtime, performance",
            self.0
        )
    }
}

impl std::error::Error for UnknownCategory {}

/// What a site declared to answer with when healing cannot produce its value: one of these at
/// most (the attribute refuses two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `fallback = path`: call this function with the same arguments (the path as written).
    Fallback(&'static str),
    /// `default = expr`: this value of the function's own type (the expression as written).
    Default(&'static str),
    /// `skip`: the work may be dropped; the call returns `Ok(())`, recorded as skipped.
    Skip,
    /// `queue_for_later`: the call is written to the store's outbox and replayed later.
    Queue,
}

impl Answer {
    /// The strategy that serves this answer.
    pub const fn strategy(&self) -> &'static str {
        match self {
            Answer::Fallback(_) => "fallback",
            Answer::Default(_) => "default_value",
            Answer::Skip => "skip",
            Answer::Queue => "queue_for_later",
        }
    }
}

/// The options given in `#[self_healing(...)]`, fixed at compile time.
///
/// Built with `const` methods by the generated code; read by the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteOptions {
    idempotent: bool,
    keyed: bool,
    timeout: Option<Duration>,
    max_attempts: Option<u32>,
    cache: Option<Duration>,
    answer: Option<Answer>,
    catch_panic: bool,
    fail_fast: bool,
    is_async: bool,
}

impl SiteOptions {
    /// The defaults: idempotent, no timeout, the healer's attempt cap, no cache, no fallback,
    /// guards that fail fast.
    pub const fn new() -> Self {
        SiteOptions {
            idempotent: true,
            keyed: false,
            timeout: None,
            max_attempts: None,
            cache: None,
            answer: None,
            catch_panic: false,
            fail_fast: true,
            is_async: false,
        }
    }

    /// `idempotent = false`: never re-run unless the call provably never reached the other side.
    pub const fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// `idempotent = "keyed"`: each call gets an idempotency key its body reads with
    /// [`call_key`](crate::call_key) and writes with its effect, which makes re-runs safe.
    pub const fn with_keyed(mut self) -> Self {
        self.idempotent = true;
        self.keyed = true;
        self
    }

    /// `default = expr`: the expression as written.
    pub const fn with_default(mut self, expr: &'static str) -> Self {
        self.answer = Some(Answer::Default(expr));
        self
    }

    /// `skip`: the work may be dropped when healing cannot do it.
    pub const fn with_skip(mut self) -> Self {
        self.answer = Some(Answer::Skip);
        self
    }

    /// `queue_for_later`: the call is queued in the outbox when healing cannot do it now. Its
    /// calls are keyed, so a replay reuses the key the first attempt wrote with.
    pub const fn with_queue_for_later(mut self) -> Self {
        self.answer = Some(Answer::Queue);
        self.keyed = true;
        self
    }

    /// `timeout = "2s"`: the deadline of each attempt.
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// `max_attempts = N`: attempts in all, the first one included.
    pub const fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// `cache = "30s"`: keep the last good value per arguments, served for this long after it.
    pub const fn with_cache(mut self, max_age: Duration) -> Self {
        self.cache = Some(max_age);
        self
    }

    /// `fallback = path`: the path of the declared fallback, as written.
    pub const fn with_fallback(mut self, path: &'static str) -> Self {
        self.answer = Some(Answer::Fallback(path));
        self
    }

    /// `catch_panic = true`: a panic in the body becomes a failure of class `bug`.
    pub const fn with_catch_panic(mut self, catch_panic: bool) -> Self {
        self.catch_panic = catch_panic;
        self
    }

    /// `fail_fast = false`: the site's error type (another crate's) cannot represent a
    /// [`Rejected`](crate::Rejected), so the wrapper gives the guards no way to answer a call
    /// (its [`ErrorOps`](crate::ErrorOps) have no reject function): an open circuit or a full
    /// bulkhead lets every call run. The default `true` needs `From<Rejected>` on the error type.
    pub const fn with_fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Whether the wrapped function is `async`.
    pub const fn with_async(mut self, is_async: bool) -> Self {
        self.is_async = is_async;
        self
    }

    /// Whether the function may be re-run after a failure that reached the other side.
    pub const fn idempotent(&self) -> bool {
        self.idempotent
    }

    /// Whether each call gets an idempotency key (`idempotent = "keyed"`, `queue_for_later`).
    pub const fn keyed(&self) -> bool {
        self.keyed
    }

    /// What the site answers with when healing cannot produce its value, if it declared one.
    pub const fn answer(&self) -> Option<Answer> {
        self.answer
    }

    /// The per-attempt deadline, if any.
    pub const fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The attempt cap given in the attribute, if any.
    pub const fn max_attempts(&self) -> Option<u32> {
        self.max_attempts
    }

    /// The max age of a cached last-good value, if caching is on.
    pub const fn cache(&self) -> Option<Duration> {
        self.cache
    }

    /// The declared fallback's path, if any.
    pub const fn fallback(&self) -> Option<&'static str> {
        match self.answer {
            Some(Answer::Fallback(path)) => Some(path),
            _ => None,
        }
    }

    /// Whether panics are caught and treated as failures.
    pub const fn catch_panic(&self) -> bool {
        self.catch_panic
    }

    /// Whether the site was declared to let its guards answer a call with a
    /// [`Rejected`](crate::Rejected) instead of running it (`false` only with `fail_fast = false`).
    pub const fn fail_fast(&self) -> bool {
        self.fail_fast
    }

    /// Whether the wrapped function is `async`.
    pub const fn is_async(&self) -> bool {
        self.is_async
    }
}

impl Default for SiteOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a wrapped function lives and how it was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteInfo {
    /// The `source` name: the function name unless given.
    pub source: &'static str,
    /// The category.
    pub category: Category,
    /// The Rust function name (`"closure"` for the `site!` form).
    pub function: &'static str,
    /// `module_path!()` at the definition.
    pub module_path: &'static str,
    /// `file!()` at the definition.
    pub file: &'static str,
    /// `line!()` at the definition.
    pub line: u32,
    /// The attribute's options.
    pub options: SiteOptions,
}

/// Bits of [`Site::flags`]: any set bit sends a call through the slower, guarded path.
pub(crate) mod flag {
    /// The dependency asked to wait (Retry-After): calls are paced until that instant.
    pub(crate) const PACED: u8 = 1;
    /// The breaker is open or half-open.
    pub(crate) const CIRCUIT: u8 = 1 << 1;
    /// A bulkhead caps the concurrent calls of this site.
    pub(crate) const BULKHEAD: u8 = 1 << 2;
    /// Static options that need work on every call (timeout, cache, catch_panic).
    pub(crate) const STATIC: u8 = 1 << 3;
    /// Never called yet: the first call clears it (the checklist's "exercised").
    pub(crate) const FRESH: u8 = 1 << 4;
    /// A fault-injection rule targets this site (feature `chaos`).
    #[cfg_attr(not(feature = "chaos"), allow(dead_code))]
    pub(crate) const CHAOS: u8 = 1 << 5;
    /// A healer's settings give the site work on every call (a timeout set by configuration).
    pub(crate) const TUNED: u8 = 1 << 6;

    /// The bits healers hold per site (see [`Site::hold_flag`]); the others are the site's own.
    pub(crate) const HELD: [u8; 4] = [PACED, CIRCUIT, BULKHEAD, TUNED];

    /// The index of a held bit in [`HELD`].
    pub(crate) const fn held_index(bit: u8) -> usize {
        match bit {
            PACED => 0,
            CIRCUIT => 1,
            BULKHEAD => 2,
            _ => 3,
        }
    }
}

/// Serialises the rare changes of held bits, so that a bit is set exactly while some healer
/// holds it (several healers, e.g. parallel tests' scoped ones, share a site's static flags).
static HOLD_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The static record of one wrapped function: what it is, plus its process-wide healing state.
///
/// Generated by `#[self_healing]` and `site!`; listed by [`sites()`].
pub struct Site {
    info: SiteInfo,
    flags: AtomicU8,
    /// Calls the dependency answered without an unhealthy failure: the breaker's and the retry
    /// budget's view of the site's traffic, bumped once per successful call.
    ok: AtomicU64,
    /// How many healers hold each of [`flag::HELD`] (changed under `HOLD_LOCK`).
    holders: [AtomicU32; 4],
    /// When the site was first called: its success counter counts from there.
    first_call: std::sync::OnceLock<tokio::time::Instant>,
}

impl Site {
    /// A site for `info`. Called in a `static` initializer by generated code.
    pub const fn new(info: SiteInfo) -> Self {
        let o = &info.options;
        let needs_static = o.timeout.is_some() || o.cache.is_some() || o.catch_panic;
        Site {
            info,
            flags: AtomicU8::new(if needs_static {
                flag::STATIC | flag::FRESH
            } else {
                flag::FRESH
            }),
            ok: AtomicU64::new(0),
            holders: [const { AtomicU32::new(0) }; 4],
            first_call: std::sync::OnceLock::new(),
        }
    }

    /// What the attribute declared.
    pub fn info(&self) -> &SiteInfo {
        &self.info
    }

    /// The `source` name.
    pub fn source(&self) -> &'static str {
        self.info.source
    }

    /// The category.
    pub fn category(&self) -> Category {
        self.info.category
    }

    /// The attribute's options.
    pub fn options(&self) -> &SiteOptions {
        &self.info.options
    }

    /// The state of this site's circuit under the healer in effect here (closed with none).
    pub fn circuit(&self) -> crate::CircuitState {
        crate::Healer::current().map_or(crate::CircuitState::Closed, |h| h.circuit_of(self))
    }

    /// The one load the success path pays: zero means "nothing to guard, just run".
    #[inline(always)]
    pub(crate) fn flags(&self) -> u8 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Counts a call the dependency answered well: one relaxed increment, no clock, no lock.
    #[inline(always)]
    pub(crate) fn count_ok(&self) {
        self.ok.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls counted by [`count_ok`](Self::count_ok) so far.
    pub(crate) fn ok_calls(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    pub(crate) fn set_flag(&self, bit: u8) {
        self.flags.fetch_or(bit, Ordering::Relaxed);
    }

    pub(crate) fn clear_flag(&self, bit: u8) {
        self.flags.fetch_and(!bit, Ordering::Relaxed);
    }

    /// Marks the site's first call (what the checklist calls exercised).
    pub(crate) fn mark_called(&self, now: tokio::time::Instant) {
        let _ = self.first_call.set(now);
        self.clear_flag(flag::FRESH);
    }

    /// When the site was first called, if it was.
    pub(crate) fn first_call(&self) -> Option<tokio::time::Instant> {
        self.first_call.get().copied()
    }

    /// `healer` now needs `bit` on this site: the bit is set while at least one healer holds it.
    /// `held`: the healer's own record of the bits it holds, changed under the same lock.
    pub(crate) fn hold_flag(&self, held: &AtomicU8, bit: u8) -> bool {
        if held.load(Ordering::Relaxed) & bit != 0 {
            return false;
        }
        let _guard = HOLD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if held.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            self.holders[flag::held_index(bit)].fetch_add(1, Ordering::Relaxed);
            self.set_flag(bit);
            return true;
        }
        false
    }

    /// The opposite of [`hold_flag`](Self::hold_flag): the bit clears once no healer holds it.
    pub(crate) fn release_flag(&self, held: &AtomicU8, bit: u8) -> bool {
        if held.load(Ordering::Relaxed) & bit == 0 {
            return false;
        }
        let _guard = HOLD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if held.fetch_and(!bit, Ordering::Relaxed) & bit != 0 {
            let left = self.holders[flag::held_index(bit)].fetch_sub(1, Ordering::Relaxed) - 1;
            if left == 0 {
                self.clear_flag(bit);
            }
            return true;
        }
        false
    }

    /// What this process saw of the site so far, under the healer in effect here: the
    /// integration checklist's row.
    pub fn report(&self) -> SiteReport {
        let exercised = self.flags() & flag::FRESH == 0;
        match crate::Healer::current() {
            Some(healer) => healer.report_of(self, exercised),
            None => SiteReport {
                exercised,
                failures: 0,
                healed: 0,
                last_error: None,
                last_healed: None,
                circuit: crate::CircuitState::Closed,
                can_fail_fast: true,
            },
        }
    }
}

/// The integration checklist's row for one site, as seen by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteReport {
    /// The site was called at least once.
    pub exercised: bool,
    /// Failed attempts seen.
    pub failures: u64,
    /// Calls healed.
    pub healed: u64,
    /// When the last failure happened.
    pub last_error: Option<std::time::SystemTime>,
    /// When the last call was healed.
    pub last_healed: Option<std::time::SystemTime>,
    /// The circuit's state.
    pub circuit: crate::CircuitState,
    /// False once a guard wanted to fail fast but could not say so: a `fail_fast = false`
    /// site, or [`ErrorOps`](crate::ErrorOps) built without rejections. The call ran instead.
    pub can_fail_fast: bool,
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("source", &self.info.source)
            .field("category", &self.info.category)
            .field(
                "location",
                &format_args!("{}:{}", self.info.file, self.info.line),
            )
            .finish_non_exhaustive()
    }
}

/// Every call site registered at link time. Generated code adds entries; read it with [`sites()`].
#[linkme::distributed_slice]
#[doc(hidden)]
pub static SITES: [&'static Site];

/// Every function wrapped by `#[self_healing]` (and every `site!`) in the program, known at
/// startup without any call having failed: the integration checklist.
///
/// ```
/// for site in self_healing_runtime::sites() {
///     println!("{} ({}) at {}:{}", site.source(), site.category(), site.info().file, site.info().line);
/// }
/// ```
pub fn sites() -> impl ExactSizeIterator<Item = &'static Site> + Clone {
    SITES.iter().copied()
}

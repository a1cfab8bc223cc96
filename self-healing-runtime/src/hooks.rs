//! Hooks: async actions strategies run before a re-run (rebuild a pool, refresh a token).
//! Registered per source, per category, or for every site; the most specific one wins.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::{Category, Site};

/// Which hook a strategy asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// Re-establish lost connections (rebuild a pool). Run by the `reconnect` strategy.
    Reconnect,
    /// Get fresh credentials. Run by the `credential_refresh` strategy.
    RefreshCredentials,
    /// Drop cached data the failure may come from (a stale entry, a poisoned local cache). Run
    /// by the `clear_cache` strategy.
    ClearCache,
    /// Move to the next healthy endpoint of the site's alternates. Registered by
    /// [`HealerBuilder::endpoints`](crate::HealerBuilder::endpoints), run by `switch_endpoint`.
    SwitchEndpoint,
    /// A hook of your own, for your own strategies.
    Custom(&'static str),
}

impl HookKind {
    /// The name shown in events and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            HookKind::Reconnect => "reconnect",
            HookKind::RefreshCredentials => "refresh_credentials",
            HookKind::ClearCache => "clear_cache",
            HookKind::SwitchEndpoint => "switch_endpoint",
            HookKind::Custom(name) => name,
        }
    }
}

/// Which sites a hook serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookScope {
    /// Every site.
    Any,
    /// Sites of one category.
    Category(Category),
    /// The site with this `source`.
    Source(String),
}

impl HookScope {
    /// Sites with this `source`.
    pub fn source(source: impl Into<String>) -> Self {
        HookScope::Source(source.into())
    }

    fn matches(&self, site: &Site) -> bool {
        match self {
            HookScope::Any => true,
            HookScope::Category(c) => *c == site.category(),
            HookScope::Source(s) => s == site.source(),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            HookScope::Source(_) => 0,
            HookScope::Category(_) => 1,
            HookScope::Any => 2,
        }
    }
}

/// The error a hook may return.
pub type HookError = Box<dyn Error + Send + Sync>;
/// The future a hook returns.
pub type HookFuture = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send>>;
type HookFn = Arc<dyn Fn(HookContext) -> HookFuture + Send + Sync>;

/// What a hook registered with [`HealerBuilder::hook_with_context`](crate::HealerBuilder::hook_with_context)
/// learns of the call it runs for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HookContext {
    /// The failing site (`None` when a health check runs the hook).
    pub site: Option<&'static Site>,
    /// The strategy (or the health check) that asked for the hook.
    pub asked_by: &'static str,
    /// The kind of failure (`None` for a health check).
    pub class: Option<crate::ErrorClass>,
    /// The family of the failure (`None` for a health check).
    pub fingerprint: Option<crate::Fingerprint>,
    /// The attempt that failed (1 for the first; 0 for a health check).
    pub attempt: u32,
    /// The call's idempotency key (keyed sites).
    pub call_key: Option<crate::CallKey>,
}

impl HookContext {
    /// The context of a hook a health check runs.
    pub(crate) fn health(check: &'static str) -> Self {
        HookContext {
            site: None,
            asked_by: check,
            class: None,
            fingerprint: None,
            attempt: 0,
            call_key: None,
        }
    }
}

pub(crate) struct Hook {
    kind: HookKind,
    scope: HookScope,
    run: HookFn,
    /// A repair shared by every call of its sites (reconnect, refresh, clear a cache, switch
    /// endpoints): a failure that started before its last successful run is already repaired.
    /// Hooks that take the call's context run for each call.
    shared: bool,
    /// When the last successful run finished: a failure that started before it is already healed
    /// by that run, so concurrent failures share one reconnect instead of stampeding.
    last_ok: Mutex<Option<Instant>>,
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hook")
            .field("kind", &self.kind)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// What running a hook did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HookRun {
    /// It ran and succeeded.
    Ran,
    /// Another failure's run finished after this attempt started: nothing more to do.
    AlreadyDone,
    /// It failed or timed out; the text says why.
    Failed(String),
}

/// The registered hooks.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    hooks: Vec<Arc<Hook>>,
    pub(crate) timeout: Option<Duration>,
}

impl Hooks {
    pub(crate) fn add<F, Fut>(&mut self, kind: HookKind, scope: HookScope, f: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.push(Arc::new(Hook {
            kind,
            scope,
            run: Arc::new(move |_| Box::pin(f())),
            shared: true,
            last_ok: Mutex::new(None),
        }));
    }

    /// A hook that sees the call it runs for, run once per call that asks for it.
    pub(crate) fn add_with_context<F, Fut>(&mut self, kind: HookKind, scope: HookScope, f: F)
    where
        F: Fn(HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.push(Arc::new(Hook {
            kind,
            scope,
            run: Arc::new(move |cx| Box::pin(f(cx))),
            shared: false,
            last_ok: Mutex::new(None),
        }));
    }

    /// The most specific hook of `kind` for `site`.
    pub(crate) fn find(&self, kind: HookKind, site: &Site) -> Option<&Arc<Hook>> {
        self.hooks
            .iter()
            .filter(|h| h.kind == kind && h.scope.matches(site))
            .min_by_key(|h| h.scope.rank())
    }

    /// The least specific hook of `kind` (for health checks, which have no site).
    pub(crate) fn find_any(&self, kind: HookKind) -> Option<&Arc<Hook>> {
        self.hooks
            .iter()
            .filter(|h| h.kind == kind)
            .max_by_key(|h| h.scope.rank())
    }

    /// The sources hooks were registered for by name (checked against the registered sites).
    pub(crate) fn sources(&self) -> impl Iterator<Item = &str> {
        self.hooks.iter().filter_map(|h| match &h.scope {
            HookScope::Source(s) => Some(s.as_str()),
            _ => None,
        })
    }

    pub(crate) fn has(&self, kind: HookKind, site: &Site) -> bool {
        self.find(kind, site).is_some()
    }
}

impl Hook {
    /// Which hook this is.
    #[cfg_attr(not(feature = "chaos"), allow(dead_code))]
    pub(crate) fn kind(&self) -> HookKind {
        self.kind
    }

    fn already_done(&self, attempt_started: Instant) -> bool {
        if !self.shared {
            return false;
        }
        let last = *self.last_ok.lock().unwrap_or_else(|p| p.into_inner());
        last.is_some_and(|t| t >= attempt_started)
    }

    fn finish(&self, result: Result<(), String>) -> HookRun {
        match result {
            Ok(()) => {
                *self.last_ok.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                HookRun::Ran
            }
            Err(why) => HookRun::Failed(why),
        }
    }

    /// Runs the hook from async code.
    pub(crate) async fn run(
        &self,
        attempt_started: Instant,
        timeout: Option<Duration>,
        cx: HookContext,
    ) -> HookRun {
        if self.already_done(attempt_started) {
            return HookRun::AlreadyDone;
        }
        let fut = (self.run)(cx);
        let result = match timeout {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!("hook timed out after {t:?}")),
            },
            None => fut.await.map_err(|e| e.to_string()),
        };
        self.finish(result)
    }

    /// Runs the hook from a sync site: on the current multi-thread runtime when there is one,
    /// on a private current-thread runtime when there is none. On a current-thread runtime a
    /// sync caller cannot wait for async work without deadlocking, so the hook is not run.
    pub(crate) fn run_blocking(
        &self,
        attempt_started: Instant,
        timeout: Option<Duration>,
        cx: HookContext,
    ) -> HookRun {
        use tokio::runtime::{Builder, Handle, RuntimeFlavor};
        if self.already_done(attempt_started) {
            return HookRun::AlreadyDone;
        }
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| {
                    handle.block_on(self.run(attempt_started, timeout, cx))
                })
            }
            Ok(_) => HookRun::Failed(
                "a sync site cannot run an async hook on a current-thread runtime".to_owned(),
            ),
            Err(_) => match Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(self.run(attempt_started, timeout, cx)),
                Err(e) => HookRun::Failed(format!("could not start a runtime for the hook: {e}")),
            },
        }
    }
}

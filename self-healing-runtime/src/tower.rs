//! Tower middleware (feature `tower`): [`HealingLayer`] heals any [`Service`], an axum route
//! stack, a tonic-style client or a hyper client, through the same interceptor as
//! `#[self_healing]`: diagnosis, strategies, the circuit, the retry budget, events and learning
//! all apply to each call.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use self_healing_runtime::tower::{BoxError, HealingLayer};
//! use self_healing_runtime::{Category, Healer, InMemoryStore, Site, SiteInfo, SiteOptions, WithHealerExt};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! // What `site!(source = "quotes", category = "api")` expands to, more or less.
//! static SITE: Site = Site::new(SiteInfo {
//!     source: "quotes", category: Category::Api, function: "service",
//!     module_path: module_path!(), file: file!(), line: line!(), options: SiteOptions::new(),
//! });
//!
//! // A dependency that fails its first call with a transient error.
//! let calls = Arc::new(AtomicU32::new(0));
//! let flaky = service_fn(move |symbol: String| {
//!     let n = calls.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         if n == 0 { Err::<String, BoxError>("connection reset by peer".into()) }
//!         else { Ok(format!("{symbol}: 42.0")) }
//!     }
//! });
//! let quotes = ServiceBuilder::new().layer(HealingLayer::new(&SITE)).service(flaky);
//!
//! let healer = Healer::builder().store(InMemoryStore::new()).build().unwrap();
//! let quote = quotes.oneshot("ACME".to_owned()).with_healer(healer).await;
//! assert_eq!(quote.unwrap(), "ACME: 42.0"); // healed by a re-run
//! # }
//! ```
//!
//! # Requests
//!
//! A re-run needs the request again. By default the request is cloned before each attempt
//! (`Req: Clone`), as tower's `Retry` does. For a request that is not `Clone`, such as an
//! `http::Request<B>` with a streaming body, [`HealingLayer::rerun_with`] takes a function that
//! rebuilds it (or returns `None` when it cannot: the request is then sent as it is, once, and the
//! call ends with a [`NotRerunnable`] error should healing want to run it again).
//!
//! # Readiness
//!
//! `poll_ready` is the inner service's. Each call takes the service that was made ready and leaves
//! a clone in its place (tower's contract, and what its `Retry` does); a re-run waits for a clone
//! of the service to be ready before it sends the request again, so backpressure is honoured on
//! every attempt. The inner service must therefore be `Clone` (wrap it in tower's `Buffer` if it
//! is not). A call costs two clones of the inner service (the one left in place, and one kept for
//! re-runs), a clone of the request, and one boxed future.
//!
//! # Errors
//!
//! The layer's error type is [`BoxError`], as for tower's `Timeout` or `LoadShed`: the inner
//! service's error (`S::Error: Into<BoxError>`), boxed, or a [`Rejected`] when
//! the site's guards answered the call (an open circuit, a full bulkhead, a timeout). Downcast to
//! tell them apart. Behind axum's `Router::layer`, which needs an infallible service, put axum's
//! `HandleErrorLayer` in front to turn them into responses.
//!
//! # Failing responses
//!
//! An HTTP stack answers `Ok(503)` rather than `Err`. [`HealingLayer::fail_when`] classifies such a
//! response as a failure, with an error that diagnosis reads (a message such as
//! `"HTTP 503 Service Unavailable; Retry-After: 2"` is a rate limit honoured for 2 s). When
//! healing cannot do better, the caller gets the last response as it came, not an error.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::error_ops::ErrorOps;
use crate::{Rejected, Site, heal_with};

/// The error of a [`HealingService`]: a boxed error, as tower's own middleware returns
/// (`tower::BoxError`).
pub type BoxError = Box<dyn Error + Send + Sync>;

/// How a request is made again for each attempt.
///
/// Implemented by [`CloneRequest`] (the default) and by [`RerunWith`]; implement it yourself for
/// a reusable policy.
pub trait Rerun<Req> {
    /// A copy of `req` to send, or `None` when it cannot be made.
    fn rerun(&self, req: &Req) -> Option<Req>;
}

/// The default [`Rerun`]: each attempt sends a clone of the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneRequest;

impl<Req: Clone> Rerun<Req> for CloneRequest {
    #[inline]
    fn rerun(&self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// A [`Rerun`] by a function of the request (see [`HealingLayer::rerun_with`]).
#[derive(Clone, Copy)]
pub struct RerunWith<F>(F);

impl<F> fmt::Debug for RerunWith<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RerunWith(..)")
    }
}

impl<Req, F> Rerun<Req> for RerunWith<F>
where
    F: Fn(&Req) -> Option<Req>,
{
    #[inline]
    fn rerun(&self, req: &Req) -> Option<Req> {
        (self.0)(req)
    }
}

/// Which responses are failures to heal.
///
/// Implemented by [`AnyResponse`] (the default: every response is a success) and by [`FailWhen`].
pub trait ClassifyResponse<Resp> {
    /// The error describing why `resp` is a failure, or `None` when it is a success.
    fn failure(&self, resp: &Resp) -> Option<BoxError>;
}

/// The default [`ClassifyResponse`]: every response is a success; only errors are healed.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyResponse;

impl<Resp> ClassifyResponse<Resp> for AnyResponse {
    #[inline(always)]
    fn failure(&self, _: &Resp) -> Option<BoxError> {
        None
    }
}

/// A [`ClassifyResponse`] by a function of the response (see [`HealingLayer::fail_when`]).
pub struct FailWhen<F, E> {
    classify: F,
    _error: PhantomData<fn() -> E>,
}

impl<F: Clone, E> Clone for FailWhen<F, E> {
    fn clone(&self) -> Self {
        FailWhen {
            classify: self.classify.clone(),
            _error: PhantomData,
        }
    }
}

impl<F, E> fmt::Debug for FailWhen<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FailWhen(..)")
    }
}

impl<Resp, F, E> ClassifyResponse<Resp> for FailWhen<F, E>
where
    F: Fn(&Resp) -> Option<E>,
    E: Into<BoxError>,
{
    #[inline]
    fn failure(&self, resp: &Resp) -> Option<BoxError> {
        (self.classify)(resp).map(Into::into)
    }
}

/// A [`Layer`] that runs every call of the service it wraps through the healer of a
/// [`Site`]: `ServiceBuilder::new().layer(HealingLayer::new(site!(source = "quotes", category = "api")))`.
///
/// `R` says how a request is sent again ([`CloneRequest`] by default, or
/// [`rerun_with`](Self::rerun_with)), `C` which responses are failures ([`AnyResponse`] by
/// default, or [`fail_when`](Self::fail_when)). See the [module docs](self).
///
/// A tonic-style client: generated code holds a `tower::Service` (a channel) and calls it with a
/// request message, which is `Clone`. Healing it is one layer around the channel:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), self_healing_runtime::tower::BoxError> {
/// use self_healing_runtime::tower::{BoxError, HealingLayer};
/// use self_healing_runtime::{Category, Healer, InMemoryStore, Site, SiteInfo, SiteOptions};
/// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
///
/// #[derive(Debug, Clone)]
/// struct GetQuote { symbol: String }
/// #[derive(Debug)]
/// struct Quote { price: f64 }
///
/// /// What tonic generates, reduced: a client generic over its transport.
/// struct QuotesClient<T> { inner: T }
///
/// impl<T> QuotesClient<T>
/// where
///     T: Service<GetQuote, Response = Quote, Error = BoxError>,
/// {
///     async fn get_quote(&mut self, req: GetQuote) -> Result<Quote, BoxError> {
///         self.inner.ready().await?.call(req).await
///     }
/// }
///
/// // `site!(source = "getQuote", category = "api")` with the facade.
/// static SITE: Site = Site::new(SiteInfo {
///     source: "getQuote", category: Category::Api, function: "client",
///     module_path: module_path!(), file: file!(), line: line!(), options: SiteOptions::new(),
/// });
///
/// Healer::builder().store(InMemoryStore::new()).build()?.install()?;
/// // The channel: any `Service<GetQuote>` that is `Clone` (tonic's `Channel` is).
/// let channel = service_fn(|req: GetQuote| async move {
///     Ok::<_, BoxError>(Quote { price: if req.symbol == "ACME" { 42.0 } else { 1.0 } })
/// });
/// let mut client = QuotesClient {
///     inner: ServiceBuilder::new().layer(HealingLayer::new(&SITE)).service(channel),
/// };
/// let quote = client.get_quote(GetQuote { symbol: "ACME".into() }).await?;
/// assert_eq!(quote.price, 42.0);
/// # Ok(()) }
/// ```
pub struct HealingLayer<R = CloneRequest, C = AnyResponse> {
    site: &'static Site,
    rerun: Arc<R>,
    classify: Arc<C>,
}

impl<R, C> Clone for HealingLayer<R, C> {
    fn clone(&self) -> Self {
        HealingLayer {
            site: self.site,
            rerun: self.rerun.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<R, C> fmt::Debug for HealingLayer<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealingLayer")
            .field("source", &self.site.source())
            .finish_non_exhaustive()
    }
}

impl HealingLayer {
    /// A layer healing calls as the site `site` (its source, category and options, as given to
    /// `site!`). Requests are cloned for each attempt; every response is a success.
    pub fn new(site: &'static Site) -> Self {
        HealingLayer {
            site,
            rerun: Arc::new(CloneRequest),
            classify: Arc::new(AnyResponse),
        }
    }
}

impl<R, C> HealingLayer<R, C> {
    /// Makes each attempt's request with `rebuild` instead of cloning it: for requests that are
    /// not `Clone`, such as an `http::Request<B>` whose body you can rebuild from bytes you kept.
    ///
    /// `rebuild` is called before every attempt, the first included (the original is kept for
    /// the next one). When it returns `None`, the original request is sent as it is; should
    /// healing then want to run the call again, it ends with a [`NotRerunnable`] error, which is
    /// not re-run.
    ///
    /// ```
    /// use self_healing_runtime::tower::HealingLayer;
    /// # use self_healing_runtime::{Category, Site, SiteInfo, SiteOptions};
    /// # static SITE: Site = Site::new(SiteInfo {
    /// #     source: "upload", category: Category::Api, function: "client",
    /// #     module_path: module_path!(), file: file!(), line: line!(), options: SiteOptions::new(),
    /// # });
    ///
    /// /// A request whose body is a stream, unless its bytes were kept.
    /// struct Upload { path: String, kept: Option<Vec<u8>> /* , stream: BodyStream */ }
    ///
    /// let layer = HealingLayer::new(&SITE).rerun_with(|req: &Upload| {
    ///     let bytes = req.kept.clone()?; // a stream that was not kept cannot be sent again
    ///     Some(Upload { path: req.path.clone(), kept: Some(bytes) })
    /// });
    /// # let _ = layer;
    /// ```
    pub fn rerun_with<Req, F>(self, rebuild: F) -> HealingLayer<RerunWith<F>, C>
    where
        F: Fn(&Req) -> Option<Req>,
    {
        HealingLayer {
            site: self.site,
            rerun: Arc::new(RerunWith(rebuild)),
            classify: self.classify,
        }
    }

    /// Treats a response for which `classify` returns an error as a failure to heal: a
    /// `503 Service Unavailable` or `429 Too Many Requests` an HTTP stack answers with `Ok`.
    ///
    /// The error is what diagnosis reads, as it would read a service's error: say what happened,
    /// with a `Retry-After: N` hint when the response has one (`format!("HTTP 429 Too Many
    /// Requests; Retry-After: {secs}")`). If healing does not produce a successful response, the
    /// caller gets the last response, not the error.
    ///
    /// ```
    /// use self_healing_runtime::tower::HealingLayer;
    /// # use self_healing_runtime::{Category, Site, SiteInfo, SiteOptions};
    /// # static SITE: Site = Site::new(SiteInfo {
    /// #     source: "rates", category: Category::Api, function: "client",
    /// #     module_path: module_path!(), file: file!(), line: line!(), options: SiteOptions::new(),
    /// # });
    ///
    /// /// An HTTP response, reduced (with `http::Response<B>`, read `status()` and `headers()`).
    /// struct Response { status: u16, retry_after: Option<u64> }
    ///
    /// let layer = HealingLayer::new(&SITE).fail_when(|resp: &Response| match resp.status {
    ///     429 | 503 => Some(match resp.retry_after {
    ///         Some(secs) => format!("HTTP {} from upstream; Retry-After: {secs}", resp.status),
    ///         None => format!("HTTP {} from upstream", resp.status),
    ///     }),
    ///     500.. => Some(format!("HTTP {} from upstream", resp.status)),
    ///     _ => None,
    /// });
    /// # let _ = layer;
    /// ```
    pub fn fail_when<Resp, E, F>(self, classify: F) -> HealingLayer<R, FailWhen<F, E>>
    where
        F: Fn(&Resp) -> Option<E>,
        E: Into<BoxError>,
    {
        HealingLayer {
            site: self.site,
            rerun: self.rerun,
            classify: Arc::new(FailWhen {
                classify,
                _error: PhantomData,
            }),
        }
    }

    /// The site calls are healed as.
    pub fn site(&self) -> &'static Site {
        self.site
    }
}

impl<S, R, C> Layer<S> for HealingLayer<R, C> {
    type Service = HealingService<S, R, C>;

    fn layer(&self, inner: S) -> Self::Service {
        HealingService {
            inner,
            site: self.site,
            rerun: self.rerun.clone(),
            classify: self.classify.clone(),
        }
    }
}

/// The [`Service`] made by [`HealingLayer`]: each call runs the inner service through the
/// interceptor of the layer's site.
pub struct HealingService<S, R = CloneRequest, C = AnyResponse> {
    inner: S,
    site: &'static Site,
    rerun: Arc<R>,
    classify: Arc<C>,
}

impl<S: Clone, R, C> Clone for HealingService<S, R, C> {
    fn clone(&self) -> Self {
        HealingService {
            inner: self.inner.clone(),
            site: self.site,
            rerun: self.rerun.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<S: fmt::Debug, R, C> fmt::Debug for HealingService<S, R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealingService")
            .field("source", &self.site.source())
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, R, C> HealingService<S, R, C> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req, R, C> Service<Req> for HealingService<S, R, C>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    Req: Send + 'static,
    R: Rerun<Req> + Send + Sync + 'static,
    C: ClassifyResponse<S::Response> + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // The service `poll_ready` prepared goes with this call's first attempt; a clone stays
        // for the next call, another is kept for re-runs.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let mut attempts = Attempts {
            spare: ready.clone(),
            ready: Some(ready),
            original: Original::Kept(req),
            rerun: self.rerun.clone(),
            classify: self.classify.clone(),
            source: self.site.source(),
        };
        let site = self.site;
        ResponseFuture {
            inner: Box::pin(async move {
                match heal_with(site, failure_ops(), || attempts.next()).await {
                    Ok(resp) | Err(Failure::Response(resp, _)) => Ok(resp),
                    Err(Failure::Error(e)) => Err(e),
                }
            }),
        }
    }
}

/// The future of a [`HealingService`] call.
pub struct ResponseFuture<Resp> {
    inner: Pin<Box<dyn Future<Output = Result<Resp, BoxError>> + Send>>,
}

impl<Resp> fmt::Debug for ResponseFuture<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture(..)")
    }
}

impl<Resp> Future for ResponseFuture<Resp> {
    type Output = Result<Resp, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// A re-run the request could not be rebuilt for: [`HealingLayer::rerun_with`]'s function
/// returned `None`, the original request was sent already, and healing wanted to run the call
/// again. Diagnosed as permanent, so healing stops there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRerunnable {
    source: &'static str,
    previous: Option<String>,
}

impl NotRerunnable {
    /// The `source` of the site.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// The error of the attempt that sent the original request, as text.
    pub fn previous(&self) -> Option<&str> {
        self.previous.as_deref()
    }
}

impl fmt::Display for NotRerunnable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` was not run again: its request could not be rebuilt for a re-run",
            self.source
        )?;
        if let Some(previous) = &self.previous {
            write!(f, " (the last attempt failed with: {previous})")?;
        }
        Ok(())
    }
}

impl Error for NotRerunnable {}

/// How an attempt failed, as the interceptor sees it.
enum Failure<Resp> {
    /// The service's error, or a rejection.
    Error(BoxError),
    /// A response classified as a failure, with why.
    Response(Resp, BoxError),
}

impl<Resp> fmt::Debug for Failure<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => f.debug_tuple("Error").field(e).finish(),
            Failure::Response(_, e) => f.debug_tuple("Response").field(e).finish(),
        }
    }
}

fn view<Resp>(failure: &Failure<Resp>) -> &(dyn Error + 'static) {
    match failure {
        Failure::Error(e) | Failure::Response(_, e) => &**e,
    }
}

fn reject<Resp>(rejected: Rejected) -> Failure<Resp> {
    Failure::Error(Box::new(rejected))
}

/// The interceptor's view of a failure. No `adopt`: an error a fault-injection rule makes is of
/// a concrete type, never a `BoxError`, so it comes back as a boxed `Rejected::Injected` whose
/// source is that error.
fn failure_ops<Resp>() -> ErrorOps<Failure<Resp>> {
    ErrorOps {
        view: view::<Resp>,
        reject: Some(reject::<Resp>),
        adopt: None,
    }
}

/// The per-call state that makes each attempt.
struct Attempts<S, Req, R, C> {
    /// The service `poll_ready` prepared, for the first attempt.
    ready: Option<S>,
    /// Cloned for each re-run, which waits until its clone is ready.
    spare: S,
    /// The original request.
    original: Original<Req>,
    rerun: Arc<R>,
    classify: Arc<C>,
    /// The site's source, for [`NotRerunnable`].
    source: &'static str,
}

/// Where the original request is.
enum Original<Req> {
    /// Kept, for the next attempt's copy.
    Kept(Req),
    /// It could not be copied: the first attempt polled takes it (an attempt the guards refused
    /// leaves it for the next).
    Once(Arc<Once<Req>>),
}

/// A request that can be sent once, and the error of the attempt that sent it.
struct Once<Req> {
    request: Mutex<Option<Req>>,
    error: Mutex<Option<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S, Req, R, C> Attempts<S, Req, R, C>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    Req: Send + 'static,
    R: Rerun<Req> + Send + Sync + 'static,
    C: ClassifyResponse<S::Response> + Send + Sync + 'static,
{
    /// The next attempt. Nothing is sent until it is polled: a call the guards refuse never
    /// reaches the service.
    fn next(
        &mut self,
    ) -> impl Future<Output = Result<S::Response, Failure<S::Response>>> + Send + use<S, Req, R, C>
    {
        // A copy when one can be made, else the original, once.
        let request = match &self.original {
            Original::Kept(original) => self.rerun.rerun(original).map(Ok),
            Original::Once(_) => None,
        }
        .unwrap_or_else(|| Err(self.once()));
        let service = match self.ready.take() {
            Some(ready) => Ok(ready),
            None => Err(self.spare.clone()),
        };
        let classify = self.classify.clone();
        let source = self.source;
        async move {
            let (req, once) = match request {
                Ok(copy) => (copy, None),
                Err(once) => match lock(&once.request).take() {
                    Some(original) => (original, Some(once.clone())),
                    None => {
                        let previous = lock(&once.error).take();
                        return Err(Failure::Error(Box::new(NotRerunnable { source, previous })));
                    }
                },
            };
            // Errors are boxed at once: the service's own error type need not be `Send`.
            let result: Result<S::Response, BoxError> = match service {
                Ok(mut ready) => ready.call(req).await.map_err(Into::into),
                Err(mut clone) => {
                    let readiness = std::future::poll_fn(|cx| clone.poll_ready(cx))
                        .await
                        .map_err(Into::into);
                    match readiness {
                        Ok(()) => clone.call(req).await.map_err(Into::into),
                        Err(e) => Err(e),
                    }
                }
            };
            let failure = match result {
                Ok(resp) => match classify.failure(&resp) {
                    None => return Ok(resp),
                    Some(why) => Failure::Response(resp, why),
                },
                Err(e) => Failure::Error(e),
            };
            if let Some(once) = once {
                *lock(&once.error) = Some(view(&failure).to_string());
            }
            Err(failure)
        }
    }

    /// The original request as one that can be sent once, moved there the first time no copy
    /// could be made.
    fn once(&mut self) -> Arc<Once<Req>> {
        if let Original::Once(once) = &self.original {
            return once.clone();
        }
        let empty = Arc::new(Once {
            request: Mutex::new(None),
            error: Mutex::new(None),
        });
        if let Original::Kept(req) =
            std::mem::replace(&mut self.original, Original::Once(empty.clone()))
        {
            *lock(&empty.request) = Some(req);
        }
        empty
    }
}

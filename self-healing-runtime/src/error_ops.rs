//! How the typed interceptor sees a function's error type, chosen at the call site.
//!
//! `#[self_healing]` accepts any `E: std::error::Error + 'static`, `anyhow::Error`, and boxed
//! `dyn Error`s. No single blanket impl covers all three (coherence forbids it), so the generated
//! code picks a view with autoref specialisation on the concrete error type: a method call on
//! `&&&&Probe<E>` resolves to the first impl whose bounds hold. Only the error path calls the
//! resulting function pointers.
//!
//! The error type must also represent a rejection (`From<Rejected>`): the generated code checks
//! that with `__private::RequireReject`, and the reject probes below keep that check the only
//! error a missing impl produces.

use std::any::Any;
use std::error::Error;
use std::marker::PhantomData;

use crate::Rejected;

/// Views an error as `dyn Error` for diagnosis.
pub type ViewFn<E> = fn(&E) -> &(dyn Error + 'static);
/// Turns a [`Rejected`] into the function's error type, when it supports that.
pub type RejectFn<E> = fn(Rejected) -> E;
/// Takes back a value of the function's error type that travelled type-erased (an error a
/// fault-injection rule made), or hands the value back when it is of another type.
pub type AdoptFn<E> = fn(Box<dyn Any + Send>) -> Result<E, Box<dyn Any + Send>>;

/// The error-type facts the interceptor needs; built once per call, a few constant stores.
#[derive(Debug)]
pub struct ErrorOps<E> {
    pub(crate) view: ViewFn<E>,
    pub(crate) reject: Option<RejectFn<E>>,
    /// Read by fault injection only.
    #[cfg_attr(not(feature = "chaos"), allow(dead_code))]
    pub(crate) adopt: Option<AdoptFn<E>>,
}

fn adopt<E: 'static>(value: Box<dyn Any + Send>) -> Result<E, Box<dyn Any + Send>> {
    value.downcast::<E>().map(|e| *e)
}

impl<E> Clone for ErrorOps<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for ErrorOps<E> {}

impl<E> ErrorOps<E> {
    /// Built by generated code from the probes below.
    #[inline(always)]
    pub fn new(view: impl IntoViewFn<E>, reject: Option<RejectFn<E>>) -> Self {
        let adopt = view.adopt_fn();
        ErrorOps {
            view: view.into_view_fn(),
            reject,
            adopt,
        }
    }

    /// Ops for an error type that implements `Error` and can represent a rejection (used by the
    /// `heal` functions): the site's guards fail fast with a `Rejected` converted into `E`.
    #[inline(always)]
    pub fn of_error() -> Self
    where
        E: Error + From<Rejected> + 'static,
    {
        ErrorOps {
            view: |e| e,
            reject: Some(E::from),
            adopt: Some(adopt::<E>),
        }
    }

    /// Ops from a view function alone, for an error type that cannot represent a rejection: the
    /// site's guards cannot fail fast with these ops (an open circuit or a full bulkhead lets the
    /// call run, and there is no `Rejected` to hand back). It exists for sites declared with
    /// `fail_fast = false`, whose error type comes from another crate:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use self_healing_runtime::{Category, ErrorOps, Site, SiteInfo, SiteOptions, heal_with};
    ///
    /// // What `site!(source = "parseCount", fail_fast = false)` expands to, more or less.
    /// static SITE: Site = Site::new(SiteInfo {
    ///     source: "parseCount", category: Category::Runtime, function: "closure",
    ///     module_path: module_path!(), file: file!(), line: line!(),
    ///     options: SiteOptions::new().with_fail_fast(false),
    /// });
    /// let ops = ErrorOps::<std::num::ParseIntError>::without_rejections(|e| e);
    /// let n = heal_with(&SITE, ops, || async { "42".parse::<u32>() }).await;
    /// assert_eq!(n, Ok(42));
    /// # }
    /// ```
    #[inline(always)]
    pub fn without_rejections(view: ViewFn<E>) -> Self {
        ErrorOps {
            view,
            reject: None,
            adopt: None,
        }
    }

    /// Lets rejections become errors of this type.
    #[inline(always)]
    pub fn with_reject(mut self, reject: RejectFn<E>) -> Self {
        self.reject = Some(reject);
        self
    }
}

impl ErrorOps<Box<dyn Error + Send + Sync>> {
    /// Ops for boxed errors; rejections become boxed [`Rejected`]s.
    pub fn boxed() -> Self {
        ErrorOps {
            view: |e| {
                let inner: &(dyn Error + Send + Sync + 'static) = &**e;
                inner
            },
            reject: Some(|r| Box::new(r)),
            adopt: Some(adopt::<Box<dyn Error + Send + Sync>>),
        }
    }
}

/// A zero-sized probe on which the view and reject methods are resolved.
#[derive(Debug)]
pub struct Probe<E>(PhantomData<fn() -> E>);

impl<E> Probe<E> {
    /// A probe for `E`.
    #[inline(always)]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

impl<E> Default for Probe<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// The marker returned when the error type is none of the supported kinds.
#[derive(Debug)]
pub struct MissingErrorImpl<E>(PhantomData<fn() -> E>);

/// Accepted by [`ErrorOps::new`]; not implemented for [`MissingErrorImpl`], which is what turns an
/// unsupported error type into a readable compile error.
#[diagnostic::on_unimplemented(
    message = "the error type `{E}` of a `#[self_healing]` function must implement `std::error::Error + 'static`",
    label = "this function's error type cannot be diagnosed",
    note = "use your own error type (with `From<self_healing::Rejected>`), `std::io::Error`, `anyhow::Error` or `Box<dyn std::error::Error + Send + Sync>`"
)]
pub trait IntoViewFn<E> {
    /// The view as a function pointer.
    fn into_view_fn(self) -> ViewFn<E>;
    /// How to take back a type-erased `E`, when the probe knows `E: 'static`.
    fn adopt_fn(&self) -> Option<AdoptFn<E>> {
        None
    }
}

impl<E> IntoViewFn<E> for ViewFn<E> {
    #[inline(always)]
    fn into_view_fn(self) -> ViewFn<E> {
        self
    }
}

/// What a view probe found for a `'static` error type: its view, and how to take it back from
/// a `Box<dyn Any + Send>`.
#[derive(Debug)]
pub struct ErrorView<E> {
    view: ViewFn<E>,
    adopt: AdoptFn<E>,
}

impl<E: 'static> ErrorView<E> {
    #[inline(always)]
    fn of(view: ViewFn<E>) -> Self {
        ErrorView {
            view,
            adopt: adopt::<E>,
        }
    }
}

impl<E> IntoViewFn<E> for ErrorView<E> {
    #[inline(always)]
    fn into_view_fn(self) -> ViewFn<E> {
        self.view
    }
    #[inline(always)]
    fn adopt_fn(&self) -> Option<AdoptFn<E>> {
        Some(self.adopt)
    }
}

/// The type whose `From<Rejected>` `__private::RequireReject` asks for, given the view the probes
/// found: the function's error type when it can be diagnosed. When it cannot, [`IntoViewFn`]
/// already reports the one error, so the check asks for a type that always passes.
pub trait RejectTarget {
    /// The type that must implement `From<Rejected>`.
    type Err;
}

impl<E> RejectTarget for ViewFn<E> {
    type Err = E;
}

impl<E> RejectTarget for ErrorView<E> {
    type Err = E;
}

impl<E> RejectTarget for MissingErrorImpl<E> {
    type Err = Rejected;
}

/// First choice: `E: Error + 'static`.
pub trait ViaStdError<E> {
    /// The view.
    fn __self_healing_view(&self) -> ErrorView<E>;
}
impl<E: Error + 'static> ViaStdError<E> for &&&Probe<E> {
    #[inline(always)]
    fn __self_healing_view(&self) -> ErrorView<E> {
        ErrorView::of(|e| e)
    }
}

/// Second choice: `anyhow::Error`, `Box<dyn Error + Send + Sync>` (deref to a `Send + Sync` error).
pub trait ViaDerefSendSync<E> {
    /// The view.
    fn __self_healing_view(&self) -> ErrorView<E>;
}
impl<E> ViaDerefSendSync<E> for &&Probe<E>
where
    E: std::ops::Deref<Target = dyn Error + Send + Sync + 'static> + 'static,
{
    #[inline(always)]
    fn __self_healing_view(&self) -> ErrorView<E> {
        ErrorView::of(|e| {
            let inner: &(dyn Error + Send + Sync + 'static) = &**e;
            inner
        })
    }
}

/// Third choice: `Box<dyn Error>`.
pub trait ViaDeref<E> {
    /// The view.
    fn __self_healing_view(&self) -> ErrorView<E>;
}
impl<E> ViaDeref<E> for &Probe<E>
where
    E: std::ops::Deref<Target = dyn Error + 'static> + 'static,
{
    #[inline(always)]
    fn __self_healing_view(&self) -> ErrorView<E> {
        ErrorView::of(|e| &**e)
    }
}

/// Last resort: reports the unsupported type through [`IntoViewFn`].
pub trait ViaMissing<E> {
    /// The marker.
    fn __self_healing_view(&self) -> MissingErrorImpl<E>;
}
impl<E> ViaMissing<E> for Probe<E> {
    #[inline(always)]
    fn __self_healing_view(&self) -> MissingErrorImpl<E> {
        MissingErrorImpl(PhantomData)
    }
}

/// First choice: `E: From<Rejected>`.
pub trait ViaRejectFrom<E> {
    /// The conversion.
    fn __self_healing_reject(&self) -> Option<RejectFn<E>>;
}
impl<E: From<Rejected>> ViaRejectFrom<E> for &Probe<E> {
    #[inline(always)]
    fn __self_healing_reject(&self) -> Option<RejectFn<E>> {
        Some(E::from)
    }
}

/// Fallback: the error type cannot represent a rejection. Generated code only lands here when
/// `RequireReject` has already reported the missing `From<Rejected>`: answering `None` instead of
/// failing keeps that report the only error.
pub trait ViaNoReject<E> {
    /// No conversion.
    fn __self_healing_reject(&self) -> Option<RejectFn<E>>;
}
impl<E> ViaNoReject<E> for Probe<E> {
    #[inline(always)]
    fn __self_healing_reject(&self) -> Option<RejectFn<E>> {
        None
    }
}

/// Splits a function's return type into its `Ok` and `Err` parts.
#[diagnostic::on_unimplemented(
    message = "`#[self_healing]` functions must return `Result<T, E>`, found `{Self}`",
    label = "expected a `Result` here",
    note = "a function that cannot fail has nothing to heal; return `Result<T, E>` or remove the attribute"
)]
pub trait ResultParts {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
}

impl<T, E> ResultParts for Result<T, E> {
    type Ok = T;
    type Err = E;
}

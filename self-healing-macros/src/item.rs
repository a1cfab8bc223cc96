//! The wrapped function: a free fn, an `impl` method or a trait method, and the facts the expansion
//! needs about it (how each argument is passed, whether it is async, the `#[async_trait]` shape).

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident};
use syn::{
    Attribute, Block, Expr, ExprAsync, FnArg, GenericArgument, Ident, ImplItemFn, ItemFn, Pat,
    PathArguments, Signature, Stmt, Token, TraitItemFn, Type, TypeParamBound, Visibility,
};

/// A function in any of the three places an attribute can sit.
pub(crate) struct Func {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    /// `default fn` in a specializing impl.
    pub(crate) defaultness: Option<Token![default]>,
    pub(crate) sig: Signature,
    /// `None` for a trait method declared without a body.
    pub(crate) block: Option<Block>,
    pub(crate) semi: Option<Token![;]>,
}

impl Func {
    /// Parses the item as a free fn, then as an impl method, then as a trait method.
    pub(crate) fn parse(item: TokenStream) -> syn::Result<Func> {
        if let Ok(f) = syn::parse2::<ItemFn>(item.clone()) {
            return Ok(Func {
                attrs: f.attrs,
                vis: f.vis,
                defaultness: None,
                sig: f.sig,
                block: Some(*f.block),
                semi: None,
            });
        }
        if let Ok(f) = syn::parse2::<ImplItemFn>(item.clone()) {
            return Ok(Func {
                attrs: f.attrs,
                vis: f.vis,
                defaultness: f.defaultness,
                sig: f.sig,
                block: Some(f.block),
                semi: None,
            });
        }
        match syn::parse2::<TraitItemFn>(item.clone()) {
            Ok(f) => Ok(Func {
                attrs: f.attrs,
                vis: Visibility::Inherited,
                defaultness: None,
                sig: f.sig,
                block: f.default,
                semi: f.semi_token,
            }),
            Err(_) => Err(syn::Error::new_spanned(
                item,
                "`#[self_healing]` can only be applied to a function (a free fn, a method, or a trait method with a body)",
            )),
        }
    }
}

impl ToTokens for Func {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        for attr in &self.attrs {
            attr.to_tokens(tokens);
        }
        self.vis.to_tokens(tokens);
        self.defaultness.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.block.to_tokens(tokens);
        self.semi.to_tokens(tokens);
    }
}

/// How the body runs.
pub(crate) enum Shape {
    /// A plain `fn`: the body runs in a closure.
    Sync,
    /// An `async fn`: the body runs in an async block.
    Async,
    /// What `#[async_trait]` made of an `async fn`: a `fn` returning a boxed future of `output`,
    /// whose body is `Box::pin(async move { .. })`. Treated as async, inside that block.
    AsyncTrait { output: Box<Type> },
}

impl Shape {
    pub(crate) fn of(sig: &Signature, block: &Block) -> Shape {
        if sig.asyncness.is_some() {
            return Shape::Async;
        }
        if let (Some(_), syn::ReturnType::Type(_, ty)) = (boxed_async(block), &sig.output)
            && let Some(output) = future_output(ty)
        {
            return Shape::AsyncTrait {
                output: Box::new(output.clone()),
            };
        }
        Shape::Sync
    }

    pub(crate) fn is_async(&self) -> bool {
        !matches!(self, Shape::Sync)
    }
}

/// The callee and the `async move { .. }` of a body that is only `Box::pin(async move { .. })`.
pub(crate) fn boxed_async(block: &Block) -> Option<(&Expr, &ExprAsync)> {
    let [Stmt::Expr(Expr::Call(call), None)] = block.stmts.as_slice() else {
        return None;
    };
    let Expr::Path(func) = &*call.func else {
        return None;
    };
    let mut names = func.path.segments.iter().rev().map(|s| s.ident.to_string());
    let (Some(last), Some(before)) = (names.next(), names.next()) else {
        return None;
    };
    if last != "pin" || before != "Box" || call.args.len() != 1 {
        return None;
    }
    match &call.args[0] {
        Expr::Async(inner) if inner.capture.is_some() => Some((&call.func, inner)),
        _ => None,
    }
}

/// `X` of `Pin<Box<dyn Future<Output = X> + ..>>`, `BoxFuture<'a, X>` or `LocalBoxFuture<'a, X>`.
fn future_output(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = unwrap_type(ty) else {
        return None;
    };
    let last = path.path.segments.last()?;
    let args = type_args(&last.arguments);
    match last.ident.to_string().as_str() {
        "BoxFuture" | "LocalBoxFuture" => args.last().copied(),
        "Pin" => {
            let Type::Path(boxed) = unwrap_type(args.first()?) else {
                return None;
            };
            let boxed = boxed.path.segments.last()?;
            if boxed.ident != "Box" {
                return None;
            }
            let Type::TraitObject(object) = unwrap_type(type_args(&boxed.arguments).first()?)
            else {
                return None;
            };
            object.bounds.iter().find_map(|bound| match bound {
                TypeParamBound::Trait(t) => {
                    let future = t.path.segments.last()?;
                    if future.ident != "Future" {
                        return None;
                    }
                    let PathArguments::AngleBracketed(args) = &future.arguments else {
                        return None;
                    };
                    args.args.iter().find_map(|arg| match arg {
                        GenericArgument::AssocType(assoc) if assoc.ident == "Output" => {
                            Some(&assoc.ty)
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
        }
        _ => None,
    }
}

fn type_args(arguments: &PathArguments) -> Vec<&Type> {
    match arguments {
        PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The `E` of a written `Result<T, E>` (any path whose last segment has two type arguments); `None`
/// for aliases such as `io::Result<T>`, whose error type is not written out.
pub(crate) fn error_part(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = unwrap_type(ty) else {
        return None;
    };
    match type_args(&p.path.segments.last()?.arguments).as_slice() {
        [_, err] => Some(err),
        _ => None,
    }
}

/// Looks through invisible groups and parentheses.
pub(crate) fn unwrap_type(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => unwrap_type(&g.elem),
        Type::Paren(p) => unwrap_type(&p.elem),
        other => other,
    }
}

/// How an argument reaches the body.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Pass {
    /// By value: each attempt gets a clone.
    Owned,
    /// `&T`: copied.
    Shared,
    /// `&mut T`: reborrowed for each attempt.
    Unique,
}

impl Pass {
    fn of(ty: &Type) -> Pass {
        match unwrap_type(ty) {
            Type::Reference(r) if r.mutability.is_some() => Pass::Unique,
            Type::Reference(_) => Pass::Shared,
            _ => Pass::Owned,
        }
    }
}

/// One argument of the wrapped function.
pub(crate) enum Arg {
    /// `self` in any form; `by_value` for `self`, `mut self`, `self: Box<Self>`, ….
    Receiver {
        by_value: bool,
        mutable: bool,
        tokens: TokenStream,
        /// The `self` keyword as written: generated code that names the receiver uses it, so it
        /// resolves to the method's `self` and errors point at the receiver.
        self_span: Span,
    },
    /// `name: Type` or `mut name: Type`.
    Named {
        ident: Ident,
        mutability: Option<Token![mut]>,
        ty: Type,
        pass: Pass,
        cfgs: Vec<Attribute>,
    },
    /// Any other pattern (`(a, b): (u32, u32)`, `_: T`): renamed `__self_healing_arg{i}` in the
    /// signature and destructured per attempt.
    Pattern {
        ident: Ident,
        pat: Pat,
        ty: Type,
        pass: Pass,
        cfgs: Vec<Attribute>,
    },
}

impl Arg {
    /// The arguments of `sig`, in order.
    pub(crate) fn all(sig: &Signature) -> Vec<Arg> {
        sig.inputs
            .iter()
            .enumerate()
            .map(|(i, input)| match input {
                FnArg::Receiver(r) => {
                    let (by_value, mutable) = match (&r.reference, &r.colon_token) {
                        (Some(_), _) => (false, r.mutability.is_some()),
                        (None, None) => (true, false),
                        (None, Some(_)) => match unwrap_type(&r.ty) {
                            Type::Reference(t) => (false, t.mutability.is_some()),
                            _ => (true, false),
                        },
                    };
                    Arg::Receiver {
                        by_value,
                        mutable,
                        tokens: r.to_token_stream(),
                        self_span: r.self_token.span,
                    }
                }
                FnArg::Typed(typed) => {
                    let cfgs = typed
                        .attrs
                        .iter()
                        .filter(|a| a.path().is_ident("cfg"))
                        .cloned()
                        .collect();
                    let ty = (*typed.ty).clone();
                    let pass = Pass::of(&ty);
                    match &*typed.pat {
                        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Arg::Named {
                            ident: p.ident.clone(),
                            mutability: p.mutability,
                            ty,
                            pass,
                            cfgs,
                        },
                        pat => Arg::Pattern {
                            ident: format_ident!(
                                "__self_healing_arg{}",
                                i,
                                span = Span::call_site()
                            ),
                            pat: pat.clone(),
                            ty,
                            pass,
                            cfgs,
                        },
                    }
                }
            })
            .collect()
    }
}

// Input:  fn f(mut x: T, (a, b): (u32, u32), _: U)
// Output: fn f(x: T, __self_healing_arg1: (u32, u32), __self_healing_arg2: U)
// (`mut` moves to the per-attempt re-binding, patterns are destructured there.)
/// The signature to emit: patterns replaced by their generated names, `mut` removed from bindings.
pub(crate) fn rewrite_signature(sig: &Signature, args: &[Arg]) -> Signature {
    let mut sig = sig.clone();
    for (input, arg) in sig.inputs.iter_mut().zip(args) {
        let FnArg::Typed(typed) = input else { continue };
        match (&mut *typed.pat, arg) {
            (Pat::Ident(p), Arg::Named { .. }) => p.mutability = None,
            (pat, Arg::Pattern { ident, .. }) => {
                *pat = Pat::Ident(syn::PatIdent {
                    attrs: Vec::new(),
                    by_ref: None,
                    mutability: None,
                    ident: ident.clone(),
                    subpat: None,
                });
            }
            _ => {}
        }
    }
    sig
}

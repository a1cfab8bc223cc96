//! Code generation for `#[self_healing]`: the site statics, the error view, and the loop that runs
//! the unchanged body once per attempt. The entry point turns any error into "the errors plus the
//! original item", so the rest of the crate (and the IDE) keeps working.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Ident, ReturnType, Type};

use crate::attr::{Form, Options};
use crate::item::{Arg, Func, Shape, error_part, rewrite_signature};
use crate::validate::{Errors, Target, validate};

mod forms;
mod parts;
mod queue;

/// `#[self_healing(args)] item`: the wrapped item, or the errors next to the item as written.
pub(crate) fn self_healing(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand_attribute(args, item.clone()) {
        Ok(tokens) => tokens,
        Err(errors) => {
            let errors = errors.into_compile_error();
            quote!(#errors #item)
        }
    }
}

/// Parses, validates and expands; every error found on the way is in the `Err`.
pub(crate) fn expand_attribute(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let options = match Options::parse(args.clone(), Form::Attribute, &mut errors) {
        Ok(options) => options,
        Err(e) => {
            errors.push(e);
            Options::default()
        }
    };
    let func = match Func::parse(item) {
        Ok(func) => func,
        Err(e) => {
            errors.push(e);
            return errors.into_result().map(|()| TokenStream::new());
        }
    };
    let args_list = Arg::all(&func.sig);
    let shape = func.block.as_ref().map(|b| Shape::of(&func.sig, b));
    let target = Target {
        func: &func,
        args: &args_list,
        shape: shape.as_ref(),
        attr_args: &args,
    };
    validate(&options, Form::Attribute, Some(&target), &mut errors);
    errors.into_result()?;
    let shape = shape.expect("validation rejects functions without a body");
    Ok(Wrapper::new(&options, &func, args_list, shape).expand())
}

/// The `crate = ".."` path, or `::self_healing`.
pub(crate) fn crate_path(options: &Options) -> TokenStream {
    match &options.krate {
        Some(setting) => setting.value.to_token_stream(),
        None => quote!(::self_healing),
    }
}

/// What the site statics need to know.
pub(crate) struct SiteDecl<'a> {
    pub(crate) krate: &'a TokenStream,
    pub(crate) options: &'a Options,
    pub(crate) source: String,
    pub(crate) function: String,
    /// Where `line!()` is taken.
    pub(crate) line_span: Span,
    pub(crate) is_async: bool,
}

// Input:  source = "createContact", category = "database", timeout = "2s"
// Output: static __SELF_HEALING_SITE: K::__private::Site = K::__private::Site::new(SiteInfo { .. });
//         #[distributed_slice(K::__private::SITES)]
//         static __SELF_HEALING_SITE_ENTRY: &K::__private::Site = &__SELF_HEALING_SITE;
/// The call-site record and its registration in the runtime's list of sites.
pub(crate) fn site_statics(decl: &SiteDecl<'_>) -> TokenStream {
    let k = decl.krate;
    let o = decl.options;
    let source = &decl.source;
    let function = &decl.function;
    let category = o
        .category
        .as_ref()
        .map_or(crate::attr::Category::Runtime, |s| s.value)
        .variant();
    let is_async = decl.is_async;
    let mut chain = quote!(#k::__private::SiteOptions::new().with_async(#is_async));
    match o.idempotent.as_ref().map(|s| s.value) {
        Some(crate::attr::Idempotent::Keyed) => chain.extend(quote!(.with_keyed())),
        Some(crate::attr::Idempotent::No) => chain.extend(quote!(.with_idempotent(false))),
        Some(crate::attr::Idempotent::Yes) => chain.extend(quote!(.with_idempotent(true))),
        None => {}
    }
    if let Some(s) = &o.timeout {
        let nanos = proc_macro2::Literal::u64_unsuffixed(s.value);
        chain.extend(quote!(.with_timeout(::core::time::Duration::from_nanos(#nanos))));
    }
    if let Some(s) = &o.max_attempts {
        let n = proc_macro2::Literal::u64_unsuffixed(s.value);
        chain.extend(quote!(.with_max_attempts(#n)));
    }
    if let Some(s) = &o.cache {
        let nanos = proc_macro2::Literal::u64_unsuffixed(s.value);
        chain.extend(quote!(.with_cache(::core::time::Duration::from_nanos(#nanos))));
    }
    if let Some(s) = &o.fallback {
        let text = s.value.to_token_stream().to_string().replace(' ', "");
        chain.extend(quote!(.with_fallback(#text)));
    }
    if let Some(s) = &o.default {
        let text = s.value.to_token_stream().to_string();
        chain.extend(quote!(.with_default(#text)));
    }
    if o.skip.is_some() {
        chain.extend(quote!(.with_skip()));
    }
    if o.queue_for_later.is_some() {
        chain.extend(quote!(.with_queue_for_later()));
    }
    if let Some(s) = &o.catch_panic {
        let v = s.value;
        chain.extend(quote!(.with_catch_panic(#v)));
    }
    if let Some(s) = &o.fail_fast {
        let v = s.value;
        chain.extend(quote!(.with_fail_fast(#v)));
    }
    let line = quote_spanned!(decl.line_span=> ::core::line!());
    quote! {
        static __SELF_HEALING_SITE: #k::__private::Site =
            #k::__private::Site::new(#k::__private::SiteInfo {
                source: #source,
                category: #k::__private::Category::#category,
                function: #function,
                module_path: ::core::module_path!(),
                file: ::core::file!(),
                line: #line,
                options: #chain,
            });
        #[#k::__private::linkme::distributed_slice(#k::__private::SITES)]
        #[linkme(crate = #k::__private::linkme)]
        static __SELF_HEALING_SITE_ENTRY: &#k::__private::Site = &__SELF_HEALING_SITE;
    }
}

/// Names of generated locals: `Span::mixed_site()`, so the body can neither see nor shadow them.
struct Locals {
    ops: Ident,
    probe: Ident,
    driver: Ident,
    key: Ident,
    attempt: Ident,
    result: Ident,
    fallback: Ident,
    start: Ident,
    fake_return: Ident,
    body: Ident,
}

impl Locals {
    fn new() -> Self {
        let name = |n: &str| format_ident!("__self_healing_{}", n, span = Span::mixed_site());
        Locals {
            ops: name("ops"),
            probe: name("probe"),
            driver: name("driver"),
            key: name("key"),
            attempt: name("attempt"),
            result: name("result"),
            fallback: name("fallback"),
            start: name("start"),
            fake_return: name("fake_return"),
            body: name("body"),
        }
    }
}

/// Everything the expansion of one function needs.
struct Wrapper<'a> {
    k: TokenStream,
    options: &'a Options,
    func: &'a Func,
    args: Vec<Arg>,
    shape: Shape,
    /// The return type (the future's output for `#[async_trait]`), `impl Trait` replaced by `_`:
    /// for type ascriptions.
    ret: Type,
    /// The same with `impl Trait` replaced by `()`: for naming the error type, which must not
    /// contain inference variables.
    ret_named: Type,
    ret_span: Span,
    /// The `E` of a written `Result<T, E>`, else the whole return type: where "cannot represent a
    /// rejection" points.
    err_span: Span,
    /// The body takes `&mut self`: the attempt borrows `self` instead of moving it.
    mut_self: bool,
    locals: Locals,
}

impl<'a> Wrapper<'a> {
    fn new(options: &'a Options, func: &'a Func, args: Vec<Arg>, shape: Shape) -> Self {
        let declared: Type = match (&shape, &func.sig.output) {
            (Shape::AsyncTrait { output }, _) => (**output).clone(),
            (_, ReturnType::Type(_, ty)) => (**ty).clone(),
            (_, ReturnType::Default) => syn::parse_quote!(()),
        };
        let ret_span = declared.span();
        let err_span = error_part(&declared).map_or(ret_span, last_segment_span);
        let ret = replace_impl_trait(
            &declared,
            &Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](ret_span),
            }),
        );
        let ret_named = replace_impl_trait(&declared, &syn::parse_quote_spanned!(ret_span=> ()));
        let mut_self = args
            .iter()
            .any(|a| matches!(a, Arg::Receiver { mutable: true, .. }));
        Wrapper {
            k: crate_path(options),
            options,
            func,
            args,
            shape,
            ret,
            ret_named,
            ret_span,
            err_span,
            mut_self,
            locals: Locals::new(),
        }
    }

    /// The function with its body replaced; attributes, signature and generics as written.
    fn expand(&self) -> TokenStream {
        let Func {
            attrs,
            vis,
            defaultness,
            sig,
            block,
            ..
        } = self.func;
        let sig = rewrite_signature(sig, &self.args);
        let block = block.as_ref().expect("validated: the function has a body");
        let body = match &self.shape {
            Shape::Sync | Shape::Async => self.wrap(&block.stmts),
            Shape::AsyncTrait { .. } => self.wrap_async_trait(block),
        };
        quote! {
            #(#attrs)*
            #vis #defaultness #sig {
                #body
            }
        }
    }
}

/// Where an error about a type points: the last segment of a path (`ParseIntError` in
/// `std::num::ParseIntError`: spans do not join on stable, and the name says more than `std`).
fn last_segment_span(ty: &Type) -> Span {
    match crate::item::unwrap_type(ty) {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .map_or_else(|| ty.span(), |s| s.ident.span()),
        other => other.span(),
    }
}

/// Replaces every `impl Trait` in `ty` with `with`.
fn replace_impl_trait(ty: &Type, with: &Type) -> Type {
    struct Replace<'a>(&'a Type);
    impl VisitMut for Replace<'_> {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(_) = ty {
                *ty = self.0.clone();
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut ty = ty.clone();
    Replace(with).visit_type_mut(&mut ty);
    ty
}

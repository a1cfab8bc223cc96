//! Semantic checks, run in one step after parsing: across options, and of the options against the
//! function. Every independent problem is reported in the same compile (`Error::combine`).

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Error, Ident, ReturnType, Type};

use crate::attr::{Form, Options};
use crate::item::{Arg, Func, Shape, boxed_async, error_part, unwrap_type};
use crate::suggest::{self, Quote};

/// Errors collected so far, combined into one `syn::Error`.
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn into_result(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Generic names that say nothing about the operation (compared lowercased, trailing digits and
/// `_digits` removed).
const PLACEHOLDERS: [&str; 20] = [
    "action",
    "fn",
    "func",
    "function",
    "test",
    "foo",
    "bar",
    "baz",
    "qux",
    "handler",
    "tmp",
    "temp",
    "example",
    "my_action",
    "myaction",
    "untitled",
    "todo",
    "xxx",
    "name",
    "source",
];

/// The longest `source` accepted: it is a label on a dashboard, not a description.
const MAX_SOURCE_LEN: usize = 128;

/// What is being checked besides the options.
pub(crate) struct Target<'a> {
    pub(crate) func: &'a Func,
    pub(crate) args: &'a [Arg],
    /// `None` when the function has no body.
    pub(crate) shape: Option<&'a Shape>,
    /// The attribute's own tokens, where an already-expanded body is reported.
    pub(crate) attr_args: &'a TokenStream,
}

/// All semantic checks: the options on their own, then (for the attribute) against the function.
pub(crate) fn validate(
    options: &Options,
    form: Form,
    target: Option<&Target<'_>>,
    errors: &mut Errors,
) {
    check_options(options, form, target.map(|t| &t.func.sig.ident), errors);
    if let Some(target) = target {
        check_function(target, errors);
        check_cache_skip(options, target, errors);
        check_queue(options, target, errors);
        if options.skip.is_some() {
            check_unit_return(
                target,
                "`skip` drops work that returns `Result<(), E>`: a value cannot be skipped (declare `default = ..` instead)",
                errors,
            );
        }
    }
}

/// Reports a written `Result<T, E>` whose `T` is not `()`.
fn check_unit_return(target: &Target<'_>, message: &str, errors: &mut Errors) {
    if let ReturnType::Type(_, ty) = &target.func.sig.output
        && let Some(ok) = ok_part(ty)
        && !matches!(unwrap_type(ok), Type::Tuple(t) if t.elems.is_empty())
    {
        errors.push(Error::new_spanned(ok, message));
    }
}

/// The answers for when healing cannot produce a value: at most one, reported at the second.
fn check_answers(options: &Options, form: Form, errors: &mut Errors) {
    let declared = [
        options.fallback.as_ref().map(|s| &s.key),
        options.default.as_ref().map(|s| &s.key),
        options.skip.as_ref().map(|s| &s.key),
        options.queue_for_later.as_ref().map(|s| &s.key),
    ];
    let mut declared = declared.into_iter().flatten();
    if let Some(first) = declared.next() {
        for other in declared {
            errors.push(Error::new(
                other.span(),
                format!(
                    "`{other}` and `{first}` both say what a call answers with when healing fails; keep one"
                ),
            ));
        }
    }
    if form == Form::Site {
        let keyed = options
            .idempotent
            .as_ref()
            .filter(|s| s.value == crate::attr::Idempotent::Keyed)
            .map(|s| &s.key);
        let keys = [
            options.default.as_ref().map(|s| &s.key),
            options.skip.as_ref().map(|s| &s.key),
            options.queue_for_later.as_ref().map(|s| &s.key),
            keyed,
        ];
        for key in keys.into_iter().flatten() {
            errors.push(Error::new(
                key.span(),
                format!("`{key}` needs a function signature; use #[self_healing] on a fn"),
            ));
        }
    }
}

/// The `T` of a written `Result<T, E>`.
fn ok_part(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = unwrap_type(ty) else {
        return None;
    };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// `queue_for_later` replays the function later with its arguments from JSON: an `async` free
/// function, not generic, whose arguments are all owned.
fn check_queue(options: &Options, target: &Target<'_>, errors: &mut Errors) {
    let Some(queue) = &options.queue_for_later else {
        return;
    };
    let sig = &target.func.sig;
    if sig.asyncness.is_none() || matches!(target.shape, Some(Shape::AsyncTrait { .. })) {
        errors.push(Error::new(
            queue.span,
            "`queue_for_later` needs an `async fn`: the call is written to the store's outbox, which is async",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &sig.generics,
            "`queue_for_later` cannot replay a generic function: the outbox keeps arguments, not their types",
        ));
    }
    check_unit_return(
        target,
        "`queue_for_later` functions return `Result<(), E>`: a call done later has no value to give now",
        errors,
    );
    for arg in target.args {
        match arg {
            Arg::Receiver { tokens, .. } => errors.push(Error::new_spanned(
                tokens,
                "`queue_for_later` replays the call later, without this receiver: make it a free function whose arguments say everything the work needs",
            )),
            Arg::Named { ty, pass, .. } | Arg::Pattern { ty, pass, .. }
                if *pass != crate::item::Pass::Owned =>
            {
                errors.push(Error::new_spanned(
                    ty,
                    "`queue_for_later` keeps the arguments in the outbox as JSON: take them by value (`String`, not `&str`)",
                ));
            }
            _ => {}
        }
    }
}

fn check_options(options: &Options, form: Form, fn_name: Option<&Ident>, errors: &mut Errors) {
    if let Some(source) = &options.source {
        if let Err(message) = check_source(&source.value.value(), fn_name) {
            errors.push(Error::new(source.span, message));
        }
    } else if form == Form::Site {
        errors.push(Error::new(
            proc_macro2::Span::call_site(),
            "`site!` needs a `source`, as in `site!(source = \"fetchRates\", category = \"api\")`",
        ));
    }
    if let Some(max) = &options.max_attempts {
        match max.value {
            0 => errors.push(Error::new(
                max.span,
                "`max_attempts` must be at least 1 (the first call counts)",
            )),
            101.. => errors.push(Error::new(
                max.span,
                "`max_attempts` must be at most 100; a site that needs more should fail fast and let its callers retry",
            )),
            _ => {}
        }
    }
    for (name, setting) in [("timeout", &options.timeout), ("cache", &options.cache)] {
        if let Some(setting) = setting.as_ref().filter(|s| s.value == 0) {
            errors.push(Error::new(
                setting.span,
                format!("`{name}` must be greater than zero; leave it out to disable it"),
            ));
        }
    }
    check_fail_fast(options, errors);
    check_answers(options, form, errors);
    if form == Form::Site {
        let keys = [
            options.fallback.as_ref().map(|s| &s.key),
            options.cache.as_ref().map(|s| &s.key),
            options.cache_skip.as_ref().map(|s| &s.key),
        ];
        for key in keys.into_iter().flatten() {
            errors.push(Error::new(
                key.span(),
                format!("`{key}` needs a function signature; use #[self_healing] on a fn"),
            ));
        }
    } else if let (Some(skip), None) = (&options.cache_skip, &options.cache) {
        errors.push(Error::new(
            skip.key.span(),
            "`cache_skip` only applies together with `cache = \"..\"`",
        ));
    }
}

/// `fail_fast = false` leaves the error type without `From<Rejected>`, so nothing can stand for a
/// cancelled or panicked attempt: `timeout` and `catch_panic = true` need that conversion.
fn check_fail_fast(options: &Options, errors: &mut Errors) {
    let Some(fail_fast) = options.fail_fast.as_ref().filter(|s| !s.value) else {
        return;
    };
    let timeout = options.timeout.is_some();
    let catch_panic = options.catch_panic.as_ref().is_some_and(|s| s.value);
    let (needs, attempt) = match (timeout, catch_panic) {
        (false, false) => return,
        (true, false) => ("`timeout`", "a cancelled attempt"),
        (false, true) => ("`catch_panic = true`", "a panicked attempt"),
        (true, true) => (
            "`timeout` and `catch_panic = true`",
            "a cancelled or panicked attempt",
        ),
    };
    errors.push(Error::new(
        fail_fast.key.span(),
        format!(
            "`fail_fast = false` cannot be combined with {needs}: {attempt} has no error of the function's type to return; remove {needs}, or give the error type `From<self_healing::Rejected>` and drop `fail_fast = false`"
        ),
    ));
}

/// The rules of an explicit `source`. The defaulted fn name is not checked.
fn check_source(source: &str, fn_name: Option<&Ident>) -> Result<(), String> {
    if source.is_empty() {
        return Err(
            "`source` is empty; name the operation, as in `source = \"createContact\"`".into(),
        );
    }
    if source.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`source = \"{}\"` contains whitespace or control characters; use one word such as `\"createContact\"` or `\"create_contact\"`",
            source.escape_default()
        ));
    }
    let len = source.chars().count();
    if len > MAX_SOURCE_LEN {
        return Err(format!(
            "`source` is {len} characters long; the limit is {MAX_SOURCE_LEN} (it is a name on the dashboard, not a description)"
        ));
    }
    if is_placeholder(source) {
        let example = match fn_name {
            Some(name) if !is_placeholder(&name.to_string()) => {
                format!("the function name (`{name}`)")
            }
            _ => "`createContact`".to_owned(),
        };
        return Err(format!(
            "`source = \"{source}\"` is a placeholder name; use a descriptive name such as {example} so the dashboard can tell sites apart"
        ));
    }
    Ok(())
}

fn is_placeholder(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit());
    let stem = if stem.len() < lower.len() {
        stem.strip_suffix('_').unwrap_or(stem)
    } else {
        stem
    };
    PLACEHOLDERS.contains(&stem)
}

fn check_function(target: &Target<'_>, errors: &mut Errors) {
    let Target {
        func,
        args,
        shape,
        attr_args,
    } = target;
    let sig = &func.sig;
    let name = &sig.ident;
    let twice = format!(
        "`#[self_healing]` is applied twice to `{name}`; remove one (double wrapping would heal every failure twice)"
    );
    for attr in &func.attrs {
        if attr
            .path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "self_healing")
        {
            errors.push(Error::new_spanned(attr, &twice));
        }
    }
    if func.block.as_ref().is_some_and(already_expanded) {
        let error = if attr_args.is_empty() {
            Error::new(proc_macro2::Span::call_site(), &twice)
        } else {
            Error::new_spanned(attr_args, &twice)
        };
        errors.push(error);
    }
    if let Some(constness) = &sig.constness {
        errors.push(Error::new_spanned(
            constness,
            "`#[self_healing]` cannot wrap a `const fn`: healing happens at run time; remove `const`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(Error::new_spanned(
            abi,
            format!(
                "`#[self_healing]` cannot wrap an `{}` function; wrap a Rust function that calls it instead",
                abi.to_token_stream()
            ),
        ));
    }
    if func.block.is_none() {
        let semi = &func.semi;
        errors.push(Error::new_spanned(
            quote::quote!(#sig #semi),
            "`#[self_healing]` needs a body to wrap; put it on the method in each `impl` instead",
        ));
    }
    for arg in args.iter() {
        if let Arg::Receiver {
            by_value: true,
            tokens,
            ..
        } = arg
        {
            errors.push(Error::new_spanned(
                tokens,
                "a `#[self_healing]` method cannot take `self` by value: each attempt needs its own receiver; take `&self` or `&mut self`",
            ));
        }
    }
    let ret = match (shape, &sig.output) {
        (Some(Shape::AsyncTrait { output }), _) => Some(&**output),
        (_, ReturnType::Type(_, ty)) => Some(&**ty),
        (_, ReturnType::Default) => None,
    };
    const NOT_RESULT: &str = "`#[self_healing]` functions must return `Result<T, E>`; a function that cannot fail has nothing to heal";
    match ret {
        None => errors.push(Error::new_spanned(quote::quote!(#sig), NOT_RESULT)),
        Some(ty) if obviously_not_result(ty) => errors.push(Error::new_spanned(ty, NOT_RESULT)),
        Some(ty) => {
            if let Some(err) = opaque_error_type(ty) {
                errors.push(Error::new_spanned(
                    err,
                    "the error type of a `#[self_healing]` function must be nameable: `impl Trait` is not supported in the error position",
                ));
            }
        }
    }
}

/// A body that already went through `#[self_healing]` (under another name) starts with our static.
fn already_expanded(block: &syn::Block) -> bool {
    let first = match boxed_async(block) {
        Some((_, inner)) => inner.block.stmts.first(),
        None => block.stmts.first(),
    };
    matches!(first, Some(syn::Stmt::Item(syn::Item::Static(s))) if s.ident.to_string().starts_with("__SELF_HEALING_"))
}

/// Types that can never be a `Result`. Other paths (aliases such as `io::Result<T>`) are left to
/// the type system, through `ResultParts`.
fn obviously_not_result(ty: &Type) -> bool {
    const NOT_RESULT: [&str; 22] = [
        "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64", "String", "Option", "Vec", "Box", "Pin",
    ];
    match unwrap_type(ty) {
        Type::Tuple(_)
        | Type::Reference(_)
        | Type::Never(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::ImplTrait(_)
        | Type::TraitObject(_)
        | Type::Ptr(_)
        | Type::BareFn(_) => true,
        Type::Path(p) if p.qself.is_none() => {
            let segments = &p.path.segments;
            let std_prefix = segments
                .iter()
                .take(segments.len().saturating_sub(1))
                .all(|s| {
                    matches!(
                        s.ident.to_string().as_str(),
                        "std" | "core" | "alloc" | "option" | "string" | "vec" | "boxed" | "pin"
                    )
                });
            std_prefix
                && segments
                    .last()
                    .is_some_and(|s| NOT_RESULT.contains(&s.ident.to_string().as_str()))
        }
        _ => false,
    }
}

/// `impl Trait` as the `E` of `Result<T, E>`: the error view must name the type.
fn opaque_error_type(ty: &Type) -> Option<&Type> {
    error_part(ty).filter(|err| contains_impl_trait(err))
}

pub(crate) fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    syn::visit::Visit::visit_type(&mut finder, ty);
    finder.0
}

fn check_cache_skip(options: &Options, target: &Target<'_>, errors: &mut Errors) {
    let Some(skip) = &options.cache_skip else {
        return;
    };
    let names: Vec<String> = target
        .args
        .iter()
        .filter_map(|a| match a {
            Arg::Named { ident, .. } => Some(ident.to_string()),
            _ => None,
        })
        .collect();
    let has_receiver = target
        .args
        .iter()
        .any(|a| matches!(a, Arg::Receiver { .. }));
    let fn_name = &target.func.sig.ident;
    let mut seen: Vec<String> = Vec::new();
    for ident in &skip.value {
        let name = ident.to_string();
        if seen.contains(&name) {
            errors.push(Error::new(
                ident.span(),
                format!("`{name}` is listed twice in `cache_skip`"),
            ));
        } else if name == "self" {
            // The receiver is part of the key of a method; `cache_skip(self)` lets every instance
            // share cached values. A free function has no receiver to leave out.
            if !has_receiver {
                errors.push(Error::new(
                    ident.span(),
                    format!("`cache_skip` names `self`, but `{fn_name}` takes no `self`; list only its arguments"),
                ));
            }
        } else if !names.contains(&name) {
            let candidates: Vec<&str> = has_receiver
                .then_some("self")
                .into_iter()
                .chain(names.iter().map(String::as_str))
                .collect();
            let hint = suggest::hint(suggest::did_you_mean(&name, &candidates, &[]), Quote::Code);
            let message = if candidates.is_empty() {
                format!("`cache_skip` names `{name}`, but `{fn_name}` has no named arguments")
            } else {
                format!(
                    "`cache_skip` names `{name}`, which is not an argument of `{fn_name}`: expected {}{hint}",
                    suggest::list(&candidates, Quote::Code)
                )
            };
            errors.push(Error::new(ident.span(), message));
        }
        seen.push(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        for name in [
            "action",
            "Action1",
            "action_2",
            "FOO",
            "handler",
            "my_action",
            "TODO",
            "xxx99",
            "source",
        ] {
            assert!(is_placeholder(name), "{name}");
        }
        for name in [
            "createContact",
            "create_contact",
            "fetch_rates",
            "action_items",
            "foobar",
            "test_db_pool",
        ] {
            assert!(!is_placeholder(name), "{name}");
        }
    }

    #[test]
    fn sources() {
        let f = Ident::new("create_contact", proc_macro2::Span::call_site());
        assert_eq!(
            check_source("action1", Some(&f)).unwrap_err(),
            "`source = \"action1\"` is a placeholder name; use a descriptive name such as the function name (`create_contact`) so the dashboard can tell sites apart"
        );
        assert!(
            check_source("", None)
                .unwrap_err()
                .starts_with("`source` is empty")
        );
        assert!(
            check_source("create contact", None)
                .unwrap_err()
                .contains("whitespace")
        );
        assert!(check_source("a\tb", None).unwrap_err().contains("\\t"));
        assert!(
            check_source(&"x".repeat(129), None)
                .unwrap_err()
                .contains("129 characters")
        );
        assert!(check_source(&"x".repeat(128), None).is_ok());
        assert!(check_source("createContact", Some(&f)).is_ok());
        let test_fn = Ident::new("test", proc_macro2::Span::call_site());
        assert!(
            check_source("tmp", Some(&test_fn))
                .unwrap_err()
                .contains("such as `createContact`")
        );
    }

    #[test]
    fn not_results() {
        let not = |ty: &str| obviously_not_result(&syn::parse_str(ty).unwrap());
        for ty in [
            "()",
            "(u32, E)",
            "&'static str",
            "bool",
            "std::option::Option<u32>",
            "Option<u32>",
            "impl Iterator<Item = u8>",
            "!",
            "[u8; 4]",
            "String",
            "dyn Error",
        ] {
            assert!(not(ty), "{ty}");
        }
        for ty in [
            "Result<u32, E>",
            "io::Result<u32>",
            "anyhow::Result<()>",
            "MyResult<T>",
            "std::result::Result<u32, E>",
            "Outcome",
        ] {
            assert!(!not(ty), "{ty}");
        }
    }
}

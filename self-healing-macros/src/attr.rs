//! Parsing `#[self_healing(key = value, ..)]` and `site!(key = value, ..)` into one [`Options`].
//!
//! Each option is set at most once: [`Options::claim`] is the one place that reports a repeated
//! key, at its second occurrence. Values are checked for their kind here (a string, a bool, an
//! integer, a path, a duration, a category); checks across options and against the function live
//! in `validate.rs`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, Ident, Lit, LitStr, Path, Token};

use crate::duration;
use crate::suggest::{self, Quote};
use crate::validate::Errors;

/// Which macro the options belong to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Form {
    /// `#[self_healing(..)]` on a function.
    Attribute,
    /// `site!(..)` for closures and blocks.
    Site,
}

impl Form {
    /// The keys this form accepts.
    pub(crate) fn keys(self) -> &'static [&'static str] {
        match self {
            Form::Attribute => &KEYS,
            Form::Site => &SITE_KEYS,
        }
    }
}

/// Every key of `#[self_healing]`, in the order the docs list them.
pub(crate) const KEYS: [&str; 14] = [
    "source",
    "category",
    "fallback",
    "default",
    "skip",
    "queue_for_later",
    "idempotent",
    "timeout",
    "max_attempts",
    "cache",
    "cache_skip",
    "catch_panic",
    "fail_fast",
    "crate",
];

/// The keys of `site!`: those of the attribute that need no function signature.
const SITE_KEYS: [&str; 8] = [
    "source",
    "category",
    "idempotent",
    "timeout",
    "max_attempts",
    "catch_panic",
    "fail_fast",
    "crate",
];

/// Names people reach for, from other retry libraries, mapped to ours.
const KEY_ALIASES: [(&str, &str); 16] = [
    ("default_value", "default"),
    ("or_default", "default"),
    ("queue", "queue_for_later"),
    ("defer", "queue_for_later"),
    ("name", "source"),
    ("kind", "category"),
    ("retries", "max_attempts"),
    ("max_retries", "max_attempts"),
    ("attempts", "max_attempts"),
    ("retry", "max_attempts"),
    ("deadline", "timeout"),
    ("ttl", "cache"),
    ("fallback_fn", "fallback"),
    ("catch_unwind", "catch_panic"),
    ("fast_fail", "fail_fast"),
    ("krate", "crate"),
];

/// A value given in the options, with where it was written.
#[derive(Clone, Debug)]
pub(crate) struct Setting<T> {
    /// The parsed value.
    pub(crate) value: T,
    /// The key as written (for errors about the option itself).
    pub(crate) key: Ident,
    /// The value's tokens (for errors about the value, and spans of generated checks).
    pub(crate) span: Span,
}

/// The category of a site; mirrors `self_healing_runtime::Category`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Category {
    Database,
    Api,
    Runtime,
    Performance,
}

impl Category {
    const ALL: [Category; 4] = [
        Category::Database,
        Category::Api,
        Category::Runtime,
        Category::Performance,
    ];
    const NAMES: [&'static str; 4] = ["database", "api", "runtime", "performance"];
    /// Words people use for a category, mapped to its name.
    const ALIASES: [(&'static str, &'static str); 10] = [
        ("db", "database"),
        ("sql", "database"),
        ("orm", "database"),
        ("http", "api"),
        ("external", "api"),
        ("network", "api"),
        ("rest", "api"),
        ("perf", "performance"),
        ("logic", "runtime"),
        ("general", "runtime"),
    ];

    /// The variant name of the runtime's enum (`Database`).
    pub(crate) fn variant(self) -> Ident {
        let name = match self {
            Category::Database => "Database",
            Category::Api => "Api",
            Category::Runtime => "Runtime",
            Category::Performance => "Performance",
        };
        Ident::new(name, Span::call_site())
    }

    /// Reads `category = ".."`; the error points at the literal and names the categories.
    fn from_lit(lit: &LitStr) -> syn::Result<Category> {
        let text = lit.value();
        if let Some(i) = Self::NAMES.iter().position(|n| *n == text) {
            return Ok(Self::ALL[i]);
        }
        let hint = suggest::hint(
            suggest::did_you_mean(&text, &Self::NAMES, &Self::ALIASES),
            Quote::Str,
        );
        let names = suggest::list(&Self::NAMES, Quote::Str);
        Err(Error::new(
            lit.span(),
            format!("unknown category `\"{text}\"`: expected {names}{hint}"),
        ))
    }
}

/// Everything the user wrote in the attribute or in `site!`; unset options are `None`.
#[derive(Default, Debug)]
pub(crate) struct Options {
    pub(crate) source: Option<Setting<LitStr>>,
    pub(crate) category: Option<Setting<Category>>,
    pub(crate) fallback: Option<Setting<Path>>,
    /// `default = <expr>`: a value of the function's own `Ok` type.
    pub(crate) default: Option<Setting<Expr>>,
    /// `skip`: droppable `Result<(), E>` work.
    pub(crate) skip: Option<Setting<()>>,
    /// `queue_for_later`: durable deferral through the store's outbox.
    pub(crate) queue_for_later: Option<Setting<()>>,
    pub(crate) idempotent: Option<Setting<Idempotent>>,
    /// Nanoseconds.
    pub(crate) timeout: Option<Setting<u64>>,
    pub(crate) max_attempts: Option<Setting<u64>>,
    /// Nanoseconds.
    pub(crate) cache: Option<Setting<u64>>,
    pub(crate) cache_skip: Option<Setting<Vec<Ident>>>,
    pub(crate) catch_panic: Option<Setting<bool>>,
    /// `false` opts out of the `From<Rejected>` requirement (and of failing fast).
    pub(crate) fail_fast: Option<Setting<bool>>,
    pub(crate) krate: Option<Setting<Path>>,
    /// Keys seen so far, to report a repeated key even when its first value was invalid.
    seen: Vec<String>,
}

/// `idempotent = true | false | "keyed"`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Idempotent {
    Yes,
    No,
    /// Each call gets an idempotency key that its body writes with.
    Keyed,
}

/// What follows a key.
enum Value {
    /// `key = expr`
    Expr(Expr),
    /// `key(a, b)`: the tokens inside the parentheses, and the parentheses' span.
    List(TokenStream, Span),
    /// `key` alone
    Missing,
}

impl Options {
    /// Parses the option list. A syntax error stops parsing (`Err`); an invalid value is added to
    /// `errors` and parsing goes on, so one compile reports every bad option.
    pub(crate) fn parse(tokens: TokenStream, form: Form, errors: &mut Errors) -> syn::Result<Self> {
        let parser = |input: ParseStream<'_>| {
            let mut options = Options::default();
            while !input.is_empty() {
                let key = input.call(Ident::parse_any)?;
                let value = if input.peek(Token![=]) {
                    input.parse::<Token![=]>()?;
                    Value::Expr(input.parse()?)
                } else if input.peek(syn::token::Paren) {
                    let content;
                    let parens = syn::parenthesized!(content in input);
                    Value::List(content.parse()?, parens.span.join())
                } else if input.is_empty() || input.peek(Token![,]) {
                    Value::Missing
                } else {
                    return Err(input.error(format!(
                        "expected `=` after `{key}`, as in {}",
                        example(&key.unraw().to_string())
                    )));
                };
                if let Err(e) = options.set(key, value, form) {
                    errors.push(e);
                }
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
            }
            Ok(options)
        };
        parser.parse2(tokens)
    }

    /// Records that `key` was given; the second time, that is the error.
    fn claim(&mut self, key: &Ident, whole: &dyn ToTokens) -> syn::Result<()> {
        let name = key.unraw().to_string();
        if self.seen.contains(&name) {
            return Err(Error::new_spanned(
                whole,
                format!("`{name}` is set more than once"),
            ));
        }
        self.seen.push(name);
        Ok(())
    }

    fn set(&mut self, key: Ident, value: Value, form: Form) -> syn::Result<()> {
        let name = key.unraw().to_string();
        if !KEYS.contains(&name.as_str()) {
            let keys = form.keys();
            let hint = suggest::hint(
                suggest::did_you_mean(&name, keys, &KEY_ALIASES),
                Quote::Code,
            );
            let keys = suggest::list(keys, Quote::Code);
            return Err(Error::new(
                key.span(),
                format!("unknown option `{name}`: expected {keys}{hint}"),
            ));
        }
        let whole = match &value {
            Value::Expr(expr) => quote!(#key = #expr),
            Value::List(..) | Value::Missing => key.to_token_stream(),
        };
        self.claim(&key, &whole)?;
        if matches!(name.as_str(), "skip" | "queue_for_later") {
            let Value::Missing = value else {
                return Err(Error::new_spanned(
                    whole,
                    format!("`{name}` takes no value: write `{name}` alone"),
                ));
            };
            let setting = Some(Setting {
                value: (),
                span: key.span(),
                key,
            });
            if name == "skip" {
                self.skip = setting;
            } else {
                self.queue_for_later = setting;
            }
            return Ok(());
        }
        if name == "cache_skip" {
            let Value::List(list, span) = value else {
                return Err(Error::new_spanned(
                    whole,
                    "expected a list of arguments: `cache_skip(db, request_id)`",
                ));
            };
            let names = argument_names.parse2(list)?;
            if names.is_empty() {
                return Err(Error::new(span, "`cache_skip()` lists no arguments"));
            }
            self.cache_skip = Some(Setting {
                value: names,
                key,
                span,
            });
            return Ok(());
        }
        let expr = match value {
            Value::Expr(expr) => unwrap_groups(expr),
            Value::List(_, span) => {
                return Err(Error::new(
                    span,
                    format!("expected `{name} = ..`, as in {}", example(&name)),
                ));
            }
            Value::Missing => {
                return Err(Error::new(
                    key.span(),
                    format!("`{name}` needs a value, as in {}", example(&name)),
                ));
            }
        };
        let span = expr_span(&expr);
        match name.as_str() {
            "source" => {
                let lit = string(&name, &expr)?;
                self.source = Some(Setting {
                    value: lit,
                    key,
                    span,
                });
            }
            "category" => {
                let value = Category::from_lit(&string(&name, &expr)?)?;
                self.category = Some(Setting { value, key, span });
            }
            "fallback" => {
                let value = path(&name, &expr)?;
                self.fallback = Some(Setting { value, key, span });
            }
            "crate" => {
                let value = path(&name, &expr)?;
                self.krate = Some(Setting { value, key, span });
            }
            "default" => {
                self.default = Some(Setting {
                    value: expr,
                    key,
                    span,
                });
            }
            "idempotent" => {
                let value = match literal(&expr) {
                    Some(Lit::Str(s)) if s.value() == "keyed" => Idempotent::Keyed,
                    Some(Lit::Str(s)) if !matches!(s.value().as_str(), "true" | "false") => {
                        return Err(Error::new(
                            s.span(),
                            format!(
                                "unknown idempotency `\"{}\"`: expected `true`, `false` or `\"keyed\"`",
                                s.value()
                            ),
                        ));
                    }
                    _ => {
                        if boolean(&name, &expr)? {
                            Idempotent::Yes
                        } else {
                            Idempotent::No
                        }
                    }
                };
                self.idempotent = Some(Setting { value, key, span });
            }
            "catch_panic" => {
                let value = boolean(&name, &expr)?;
                self.catch_panic = Some(Setting { value, key, span });
            }
            "fail_fast" => {
                let value = boolean(&name, &expr)?;
                self.fail_fast = Some(Setting { value, key, span });
            }
            "timeout" => {
                let value = nanos(&name, &expr)?;
                self.timeout = Some(Setting { value, key, span });
            }
            "cache" => {
                let value = nanos(&name, &expr)?;
                self.cache = Some(Setting { value, key, span });
            }
            "max_attempts" => {
                let value = integer(&name, &expr)?;
                self.max_attempts = Some(Setting { value, key, span });
            }
            _ => unreachable!("every key of KEYS is handled"),
        }
        Ok(())
    }
}

/// `db, request_id` in `cache_skip(db, request_id)`.
fn argument_names(input: ParseStream<'_>) -> syn::Result<Vec<Ident>> {
    let mut names = Vec::new();
    while !input.is_empty() {
        if !(input.peek(Ident::peek_any)) {
            return Err(
                input.error("expected the name of an argument, as in `cache_skip(db, request_id)`")
            );
        }
        names.push(input.call(Ident::parse_any)?);
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(names)
}

/// An example of the key in use, for error messages.
fn example(key: &str) -> &'static str {
    match key {
        "source" => "`source = \"createContact\"`",
        "category" => "`category = \"database\"`",
        "fallback" => "`fallback = backup_fn`",
        "default" => "`default = Vec::new()`",
        "skip" => "`skip`",
        "queue_for_later" => "`queue_for_later`",
        "idempotent" => "`idempotent = false` or `idempotent = \"keyed\"`",
        "timeout" => "`timeout = \"2s\"`",
        "max_attempts" => "`max_attempts = 3`",
        "cache" => "`cache = \"30s\"`",
        "cache_skip" => "`cache_skip(db)`",
        "catch_panic" => "`catch_panic = true`",
        "fail_fast" => "`fail_fast = false`",
        "crate" => "`crate = \"self_healing\"`",
        _ => "`source = \"createContact\"`",
    }
}

/// `$value:expr` from a `macro_rules!` macro arrives wrapped in an invisible group.
fn unwrap_groups(expr: Expr) -> Expr {
    match expr {
        Expr::Group(group) => unwrap_groups(*group.expr),
        other => other,
    }
}

/// The span of a whole expression (its first token on stable, where spans do not join).
fn expr_span(expr: &Expr) -> Span {
    match expr {
        Expr::Lit(lit) => lit.lit.span(),
        other => other.span(),
    }
}

fn literal(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, attrs }) if attrs.is_empty() => Some(lit),
        _ => None,
    }
}

fn string(key: &str, expr: &Expr) -> syn::Result<LitStr> {
    match literal(expr) {
        Some(Lit::Str(lit)) => Ok(lit.clone()),
        _ => {
            let written = expr.to_token_stream().to_string();
            let quoted = if matches!(expr, Expr::Path(_)) {
                format!("; quote it: `{key} = \"{written}\"`")
            } else {
                format!(", as in {}", example(key))
            };
            Err(Error::new_spanned(
                expr,
                format!("expected a string literal{quoted}"),
            ))
        }
    }
}

fn boolean(key: &str, expr: &Expr) -> syn::Result<bool> {
    match literal(expr) {
        Some(Lit::Bool(b)) => Ok(b.value),
        Some(Lit::Str(s)) if matches!(s.value().as_str(), "true" | "false") => Err(Error::new(
            s.span(),
            format!(
                "expected `true` or `false` without quotes: `{key} = {}`",
                s.value()
            ),
        )),
        _ => Err(Error::new_spanned(expr, "expected `true` or `false`")),
    }
}

fn integer(key: &str, expr: &Expr) -> syn::Result<u64> {
    match (literal(expr), expr) {
        (Some(Lit::Int(int)), _) => int.base10_parse::<u64>().map_err(|_| {
            Error::new(
                int.span(),
                format!("`{key}` must be an integer from 1 to 100"),
            )
        }),
        (_, Expr::Unary(unary)) if matches!(unary.op, syn::UnOp::Neg(_)) => Err(
            Error::new_spanned(expr, format!("`{key}` must be an integer from 1 to 100")),
        ),
        (Some(Lit::Str(s)), _) if s.value().trim().parse::<u64>().is_ok() => Err(Error::new(
            s.span(),
            format!(
                "expected an integer without quotes: `{key} = {}`",
                s.value().trim()
            ),
        )),
        _ => Err(Error::new_spanned(
            expr,
            format!("expected an integer, as in {}", example(key)),
        )),
    }
}

fn nanos(key: &str, expr: &Expr) -> syn::Result<u64> {
    match literal(expr) {
        Some(Lit::Str(lit)) => {
            duration::parse_nanos(&lit.value()).map_err(|message| Error::new(lit.span(), message))
        }
        Some(Lit::Int(int)) => Err(Error::new(
            int.span(),
            format!(
                "`{key}` needs a unit: write `{key} = \"{}s\"` or `\"{}ms\"`; {}",
                int.base10_digits(),
                int.base10_digits(),
                duration::EXPECTED
            ),
        )),
        _ => Err(Error::new_spanned(expr, duration::EXPECTED)),
    }
}

/// A path, written bare (`fallback = backup`) or as a string (`fallback = "backup"`).
fn path(key: &str, expr: &Expr) -> syn::Result<Path> {
    let what = if key == "crate" {
        "expected the path of the `self_healing` crate, as in `crate = \"self_healing\"`"
    } else {
        "expected the path of a function with the same signature, as in `fallback = backup_fn` or `fallback = Self::backup`"
    };
    match expr {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => Ok(p.path.clone()),
        _ => match literal(expr) {
            Some(Lit::Str(lit)) => lit.parse::<Path>().map_err(|_| {
                Error::new(
                    lit.span(),
                    format!("`\"{}\"` is not a path: {what}", lit.value()),
                )
            }),
            _ => Err(Error::new_spanned(expr, what)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (Options, Vec<String>) {
        let mut errors = Errors::default();
        let options = match Options::parse(tokens, Form::Attribute, &mut errors) {
            Ok(options) => options,
            Err(e) => {
                errors.push(e);
                Options::default()
            }
        };
        let messages = errors.into_result().err().map_or(Vec::new(), |e| {
            e.into_iter().map(|e| e.to_string()).collect()
        });
        (options, messages)
    }

    #[test]
    fn every_option() {
        let (o, errors) = parse(quote!(
            source = "createContact",
            category = "database",
            fallback = Self::backup,
            idempotent = false,
            timeout = "1.5s",
            max_attempts = 3,
            cache = "30s",
            cache_skip(db, tx),
            catch_panic = true,
            fail_fast = true,
            crate = "sh",
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(o.source.unwrap().value.value(), "createContact");
        assert_eq!(o.category.unwrap().value, Category::Database);
        let fallback = o.fallback.unwrap().value;
        assert_eq!(quote!(#fallback).to_string(), "Self :: backup");
        assert_eq!(o.idempotent.unwrap().value, Idempotent::No);
        assert_eq!(o.timeout.unwrap().value, 1_500_000_000);
        assert_eq!(o.max_attempts.unwrap().value, 3);
        assert_eq!(o.cache.unwrap().value, 30_000_000_000);
        assert_eq!(o.cache_skip.unwrap().value.len(), 2);
        assert!(o.catch_panic.unwrap().value);
        assert!(o.fail_fast.unwrap().value);
        let krate = o.krate.unwrap().value;
        assert_eq!(quote!(#krate).to_string(), "sh");
    }

    #[test]
    fn fallback_as_a_string() {
        let (o, errors) = parse(quote!(fallback = "backups::create"));
        assert!(errors.is_empty(), "{errors:?}");
        let path = o.fallback.unwrap().value;
        assert_eq!(quote!(#path).to_string(), "backups :: create");
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let (_, errors) = parse(quote!(
            category = "databse",
            idempotent = "no",
            timeout = "2sec",
            max_attempts = "3",
            catch_panic = 1,
            source = create_contact,
        ));
        assert_eq!(
            errors,
            [
                "unknown category `\"databse\"`: expected `\"database\"`, `\"api\"`, `\"runtime\"` or `\"performance\"`; did you mean `\"database\"`?",
                "unknown idempotency `\"no\"`: expected `true`, `false` or `\"keyed\"`",
                "unknown unit `sec` in `\"2sec\"`: expected a duration such as \"250ms\", \"2s\" or \"1m\" (units: us, ms, s, m, h); did you mean `s`?",
                "expected an integer without quotes: `max_attempts = 3`",
                "expected `true` or `false`",
                "expected a string literal; quote it: `source = \"create_contact\"`",
            ]
        );
    }

    #[test]
    fn repeated_key_is_reported_at_the_second() {
        let (_, errors) = parse(quote!(source = "a_b", category = "api", source = "c_d"));
        assert_eq!(errors, ["`source` is set more than once"]);
        // Even when the first value was invalid.
        let (_, errors) = parse(quote!(timeout = "x", timeout = "2s"));
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1], "`timeout` is set more than once");
    }

    #[test]
    fn unknown_key_lists_the_keys() {
        let (_, errors) = parse(quote!(retries = 3));
        assert_eq!(
            errors,
            [
                "unknown option `retries`: expected `source`, `category`, `fallback`, `default`, `skip`, `queue_for_later`, `idempotent`, `timeout`, `max_attempts`, `cache`, `cache_skip`, `catch_panic`, `fail_fast` or `crate`; did you mean `max_attempts`?"
            ]
        );
        let (_, errors) = parse(quote!(categroy = "api"));
        assert!(
            errors[0].ends_with("did you mean `category`?"),
            "{errors:?}"
        );
        for written in [quote!(failfast = false), quote!(fast_fail = false)] {
            let (_, errors) = parse(written);
            assert!(
                errors[0].ends_with("did you mean `fail_fast`?"),
                "{errors:?}"
            );
        }
    }

    #[test]
    fn shapes_of_values() {
        let (_, errors) = parse(quote!(idempotent));
        assert_eq!(
            errors,
            ["`idempotent` needs a value, as in `idempotent = false` or `idempotent = \"keyed\"`"]
        );
        let (_, errors) = parse(quote!(cache_skip = "db"));
        assert_eq!(
            errors,
            ["expected a list of arguments: `cache_skip(db, request_id)`"]
        );
        let (_, errors) = parse(quote!(source("x")));
        assert_eq!(
            errors,
            ["expected `source = ..`, as in `source = \"createContact\"`"]
        );
        let (_, errors) = parse(quote!(source "x"));
        assert_eq!(
            errors,
            ["expected `=` after `source`, as in `source = \"createContact\"`"]
        );
        let (_, errors) = parse(quote!(timeout = 2));
        assert!(errors[0].starts_with("`timeout` needs a unit: write `timeout = \"2s\"`"));
        let (_, errors) = parse(quote!(max_attempts = -1));
        assert_eq!(errors, ["`max_attempts` must be an integer from 1 to 100"]);
        let (_, errors) = parse(quote!(fallback = "not a path"));
        assert!(
            errors[0].starts_with("`\"not a path\"` is not a path"),
            "{errors:?}"
        );
        let (_, errors) = parse(quote!(idempotent = "false"));
        assert_eq!(
            errors,
            ["expected `true` or `false` without quotes: `idempotent = false`"]
        );
        let (_, errors) = parse(quote!(fail_fast));
        assert_eq!(
            errors,
            ["`fail_fast` needs a value, as in `fail_fast = false`"]
        );
        let (_, errors) = parse(quote!(fail_fast = "no"));
        assert_eq!(errors, ["expected `true` or `false`"]);
    }
}

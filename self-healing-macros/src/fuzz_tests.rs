//! Property tests ("fuzzing") of the parsing entry points: whatever tokens reach
//! `#[self_healing(..)]` or `site!(..)`, the macro answers with a compile error or with code that
//! parses, and never panics (a panic in a proc macro is an internal compiler error to the user).

use std::str::FromStr;

use proc_macro2::TokenStream;
use proptest::prelude::*;

use crate::expand::{expand_attribute, self_healing};
use crate::site_macro::{expand_site, site};

/// A function the attribute accepts, so that the options decide the outcome.
const ITEM: &str = "fn create_contact(db: &Db, id: u64) -> Result<u32, E> { Ok(1) }";

/// Pieces of option lists: every key and alias, values of every kind, right and wrong, and
/// punctuation that breaks the grammar.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        // Every key, and aliases and words that are none.
        prop::sample::select(
            crate::attr::KEYS
                .iter()
                .copied()
                .chain(["retries", "ttl", "name", "self", "db", "id"])
                .collect::<Vec<_>>()
        )
        .prop_map(str::to_owned),
        prop::sample::select(vec![
            "=", ",", "(", ")", "[", "]", "{", "}", "::", ".", "-", "#", "!", "'a", "_",
        ])
        .prop_map(str::to_owned),
        prop::sample::select(vec![
            "\"database\"",
            "\"api\"",
            "\"runtime\"",
            "\"performance\"",
            "\"\"",
            "\"2s\"",
            "\"0s\"",
            "\"1.5ms\"",
            "\"18446744073709551616s\"",
            "\"-1s\"",
            "\"30 s\"",
            "\"x\"",
            "\"createContact\"",
            "\"::self_healing\"",
            "\"a b\"",
            "true",
            "false",
            "0",
            "1",
            "3",
            "4294967296",
            "-1",
            "1.5",
            "b'x'",
            "'c'",
            "r#\"raw\"#",
            "fallback_fn",
            "crate::fallback",
        ])
        .prop_map(str::to_owned),
        "[a-z_][a-z0-9_]{0,8}",
        "\"[^\"\\\\]{0,12}\"",
        "[0-9]{1,25}",
    ]
}

/// An option list made of [`piece`]s, separated by spaces.
fn option_string() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..16).prop_map(|p| p.join(" "))
}

/// `tokens` lexed, or `None` when the text is not valid Rust tokens (rustc would stop first).
fn lex(text: &str) -> Option<TokenStream> {
    TokenStream::from_str(text).ok()
}

/// The macro's answer is a compile error or parses as items.
fn answered(output: &TokenStream) -> Result<(), TestCaseError> {
    let text = output.to_string();
    if text.contains("compile_error") {
        return Ok(());
    }
    syn::parse2::<syn::File>(output.clone())
        .map(|_| ())
        .map_err(|e| TestCaseError::fail(format!("invalid output ({e}): {text}")))
}

/// `expand_attribute` gives valid code or errors whose compile error is a `compile_error!`.
fn attribute_holds(args: TokenStream, item: TokenStream) -> Result<(), TestCaseError> {
    match expand_attribute(args.clone(), item.clone()) {
        Ok(tokens) => answered(&tokens)?,
        Err(e) => prop_assert!(e.into_compile_error().to_string().contains("compile_error")),
    }
    let whole = self_healing(args, item);
    prop_assert!(!whole.is_empty());
    Ok(())
}

/// `expand_site` gives a valid expression or errors; `site` always gives an expression.
fn site_holds(input: TokenStream) -> Result<(), TestCaseError> {
    match expand_site(input.clone()) {
        Ok(tokens) => {
            syn::parse2::<syn::Expr>(tokens.clone())
                .map_err(|e| TestCaseError::fail(format!("invalid site ({e}): {tokens}")))?;
        }
        Err(e) => prop_assert!(e.into_compile_error().to_string().contains("compile_error")),
    }
    let whole = site(input);
    syn::parse2::<syn::Expr>(whole.clone())
        .map_err(|e| TestCaseError::fail(format!("invalid site ({e}): {whole}")))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Option lists built from the grammar's own pieces.
    #[test]
    fn attribute_options_never_panic(options in option_string()) {
        if let (Some(args), Some(item)) = (lex(&options), lex(ITEM)) {
            attribute_holds(args, item)?;
        }
    }

    /// The same pieces as `site!`'s input.
    #[test]
    fn site_options_never_panic(options in option_string()) {
        if let Some(input) = lex(&options) {
            site_holds(input)?;
        }
    }

    /// Any text at all, arbitrary unicode included, as the options and as the item.
    #[test]
    fn arbitrary_text_never_panics(args in any::<String>(), item in any::<String>()) {
        let item_tokens = lex(&item);
        if let Some(args) = lex(&args) {
            if let Some(fixed) = lex(ITEM) {
                attribute_holds(args.clone(), fixed)?;
            }
            if let Some(item) = item_tokens.clone() {
                attribute_holds(args.clone(), item)?;
            }
            site_holds(args)?;
        }
        if let (Some(item), Some(args)) = (item_tokens, lex("")) {
            attribute_holds(args, item)?;
        }
    }

    /// Function items with arbitrary options in front of arbitrary pieces of signatures.
    #[test]
    fn arbitrary_items_never_panic(
        options in option_string(),
        asyncness in any::<bool>(),
        receiver in prop::sample::select(vec!["", "&self, ", "&mut self, ", "self, ", "mut self: Box<Self>, "]),
        args in prop::sample::select(vec!["", "id: u64", "(a, b): (u8, u8)", "x: impl Fn()", "db: &mut Db, id: &str"]),
        ret in prop::sample::select(vec!["", "-> Result<u32, E>", "-> Option<u8>", "-> Result<impl Display, E>", "-> io::Result<()>", "-> Result<(), Box<dyn Error>>"]),
        body in prop::sample::select(vec!["{ Ok(1) }", "{}", ";", "{ todo!() }"]),
    ) {
        let item = format!(
            "{}fn f({receiver}{args}) {ret} {body}",
            if asyncness { "async " } else { "" }
        );
        if let (Some(args), Some(item)) = (lex(&options), lex(&item)) {
            attribute_holds(args, item)?;
        }
    }
}

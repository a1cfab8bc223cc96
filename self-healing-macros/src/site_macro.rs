//! `site!(..)`: the site record alone, for closures and blocks run through the runtime's `heal`.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::attr::{Form, Options};
use crate::expand::{SiteDecl, crate_path, site_statics};
use crate::validate::{Errors, validate};

// Input:  site!(source = "fetchRates", category = "api")
// Output: { static __SELF_HEALING_SITE: Site = ..; #[distributed_slice] static ..ENTRY ..; &__SELF_HEALING_SITE }
/// `site!(..)`: a `&'static Site` expression, or the errors.
pub(crate) fn site(input: TokenStream) -> TokenStream {
    match expand_site(input.clone()) {
        Ok(tokens) => tokens,
        Err(errors) => {
            // Next to the errors, a valid site with default options, so the surrounding call
            // type-checks and reports nothing more.
            let mut ignored = Errors::default();
            let options = Options::parse(input, Form::Site, &mut ignored).unwrap_or_default();
            let krate = crate_path(&options);
            let statics = site_statics(&SiteDecl {
                krate: &krate,
                options: &Options::default(),
                source: "site!".to_owned(),
                function: "closure".to_owned(),
                line_span: Span::call_site(),
                is_async: false,
            });
            let errors = errors.into_compile_error();
            quote!({ #errors #statics &__SELF_HEALING_SITE })
        }
    }
}

/// Parses, validates and expands `site!`'s options.
pub(crate) fn expand_site(input: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let options = match Options::parse(input, Form::Site, &mut errors) {
        Ok(options) => options,
        Err(e) => {
            errors.push(e);
            return errors.into_result().map(|()| TokenStream::new());
        }
    };
    validate(&options, Form::Site, None, &mut errors);
    errors.into_result()?;
    let source = options
        .source
        .as_ref()
        .map(|s| s.value.value())
        .expect("validated: `site!` has a source");
    let krate = crate_path(&options);
    let statics = site_statics(&SiteDecl {
        krate: &krate,
        options: &options,
        source,
        function: "closure".to_owned(),
        line_span: Span::call_site(),
        is_async: false,
    });
    Ok(quote!({ #statics &__SELF_HEALING_SITE }))
}

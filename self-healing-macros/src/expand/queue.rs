//! `queue_for_later`: the replay function registered with the runtime, so the outbox worker can
//! call the function again with a queued call's arguments.

use proc_macro2::TokenStream;
use quote::{format_ident, quote_spanned};
use syn::ext::IdentExt;

use crate::item::Arg;

use super::Wrapper;

impl Wrapper<'_> {
    // Input:  #[self_healing(source = "sendWelcome", queue_for_later)] async fn send_welcome(to: String, n: u32) -> Result<(), E>
    // Output: #[distributed_slice(K::__private::REPLAYERS)]
    //         static __SELF_HEALING_REPLAYER: Replayer = Replayer { source: "sendWelcome", replay: {
    //             fn replay(payload: &str) -> Result<ReplayFuture, String> {
    //                 let (to, n,): (String, u32,) = replay_args(payload)?;
    //                 Ok(Box::pin(async move { send_welcome(to, n).await.map_err(|e| replay_error(&e)) }))
    //             }
    //             replay
    //         } };
    /// The replay function of a `queue_for_later` site; nothing for other sites.
    pub(super) fn replayer(&self) -> TokenStream {
        let Some(queue) = &self.options.queue_for_later else {
            return TokenStream::new();
        };
        let k = &self.k;
        let source = self.options.source.as_ref().map_or_else(
            || self.func.sig.ident.unraw().to_string(),
            |s| s.value.value(),
        );
        let function = &self.func.sig.ident;
        let (names, types): (Vec<_>, Vec<_>) = self
            .args
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Arg::Named { ty, .. } | Arg::Pattern { ty, .. } => {
                    Some((format_ident!("__self_healing_arg{}", i), ty))
                }
                Arg::Receiver { .. } => None,
            })
            .unzip();
        let replay = format_ident!("__self_healing_replay");
        // Spanned at `queue_for_later`: "not `Deserialize`", "not `Send`" and "not `Display`"
        // point at the option that asks for them.
        quote_spanned! {queue.span=>
            #[#k::__private::linkme::distributed_slice(#k::__private::REPLAYERS)]
            #[linkme(crate = #k::__private::linkme)]
            static __SELF_HEALING_REPLAYER: #k::__private::Replayer = #k::__private::Replayer {
                source: #source,
                replay: {
                    fn #replay(
                        payload: &str,
                    ) -> ::core::result::Result<#k::__private::ReplayFuture, ::std::string::String> {
                        let (#(#names,)*): (#(#types,)*) = #k::__private::replay_args(payload)?;
                        ::core::result::Result::Ok(::std::boxed::Box::pin(async move {
                            #function(#(#names),*)
                                .await
                                .map_err(|e| #k::__private::replay_error(&e))
                        }))
                    }
                    #replay
                },
            };
        }
    }
}

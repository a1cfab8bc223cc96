//! The HTTPS client of the background features (`llm`, `notify`): reqwest over rustls.
//!
//! The crypto provider is the process default when the program installed one, else `ring`, which
//! builds with a C compiler alone (no cmake, no nasm). Certificates are checked by the platform
//! verifier (the system's trust store), as reqwest's own rustls setup does.

use std::sync::Arc;
use std::time::Duration;

use rustls_platform_verifier::BuilderVerifierExt;

/// A client with the given connect timeout; the error says what failed.
pub(crate) fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, String> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("self-healing/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|e| format!("HTTP client setup failed: {}", e.without_url()))
}

//! Serving the dashboard on its own: [`serve`] refuses a non-loopback address when no admin
//! token is configured.

use std::fmt;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::state::DashboardState;

/// Why [`serve`] did not serve.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// No admin token is configured and the address is not a loopback address.
    NoAdminToken {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The listener failed.
    Io(std::io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::NoAdminToken { addr } => write!(
                f,
                "refusing to serve the self-healing dashboard on {addr} without an admin token: \
                 anyone who can reach that address would see it. Set SELF_HEALING_ADMIN_TOKEN \
                 (at least 16 characters, e.g. `openssl rand -base64 32`), or listen on a \
                 loopback address such as 127.0.0.1"
            ),
            ServeError::Io(e) => write!(f, "the dashboard's listener failed: {e}"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Io(e) => Some(e),
            ServeError::NoAdminToken { .. } => None,
        }
    }
}

impl From<std::io::Error> for ServeError {
    fn from(e: std::io::Error) -> Self {
        ServeError::Io(e)
    }
}

/// Serves [`router`](crate::router) on `listener` until `shutdown` completes, with the client's
/// address available to the loopback check.
///
/// # Errors
/// [`ServeError::NoAdminToken`] before serving anything when no admin token is configured and
/// the listener is not on a loopback address; [`ServeError::Io`] when the listener fails.
pub async fn serve(
    listener: TcpListener,
    state: DashboardState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    state.check_bind(listener.local_addr()?)?;
    let app = crate::router(state.clone());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        state.close_streams();
    })
    .await?;
    Ok(())
}

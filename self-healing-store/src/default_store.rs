//! The store a healer persists to when it was given none: [`DieselStore::open_default`].

use std::sync::OnceLock;

use crate::error::{ErrorKind, StoreError};
use crate::store::DieselStore;

/// Where the default store and the `self-healing` CLI look when `DATABASE_URL` is unset: a
/// SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://self-healing.db";

impl DieselStore {
    /// The store a healer built without `.store(..)` persists to (the `self-healing` facade
    /// registers it): the database at `database_url`, else at [`DEFAULT_DATABASE_URL`],
    /// opened with [`connect_lazy`](crate::StoreBuilder::connect_lazy) so it never waits for the
    /// database. The writer runs on the current tokio runtime, or, when there is none (a
    /// synchronous program), on a background runtime of its own that lives as long as the
    /// process.
    ///
    /// # Errors
    /// A bad URL or a backend whose feature is off, as [`connect_lazy`](crate::StoreBuilder::connect_lazy);
    /// a background runtime that cannot start.
    pub fn open_default(database_url: Option<&str>) -> Result<DieselStore, StoreError> {
        let url = database_url.unwrap_or(DEFAULT_DATABASE_URL);
        let builder = DieselStore::builder(url);
        if tokio::runtime::Handle::try_current().is_ok() {
            return builder.connect_lazy();
        }
        let runtime = background_runtime().map_err(|e| {
            StoreError::new(
                ErrorKind::InvalidConfig,
                &crate::mask_password(url),
                format!("no tokio runtime here, and a background one could not start: {e}"),
            )
        })?;
        let _entered = runtime.enter();
        builder.connect_lazy()
    }
}

/// One runtime for every store opened outside a runtime. Never dropped: its writer must outlive
/// whatever opened the store, up to the process's exit (`Healer::shutdown` commits before it).
fn background_runtime() -> std::io::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("self-healing-store")
        .enable_all()
        .build()?;
    // A racing thread may have set it first: its runtime is used, this one dropped unused.
    Ok(RUNTIME.get_or_init(|| rt))
}

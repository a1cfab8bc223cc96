//! A Diesel transaction that tells the interceptor when it rolled back (feature `diesel-async`).

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, TransactionManager};

/// Runs `work` in a transaction on `conn`: committed if it succeeds, rolled back if it fails.
///
/// What [`AsyncConnection::transaction`] does, plus one thing: when the transaction certainly
/// left nothing behind (its work failed and no `COMMIT` was sent, or the `COMMIT` itself failed
/// with a serialization failure), the attempt is [marked rolled back](super::mark_rolled_back),
/// so the `rollback` strategy may re-run the whole call, as PostgreSQL advises for
/// serialization failures and deadlocks, even on a site that is not idempotent. A `COMMIT` lost
/// with its connection is not marked: it may have happened.
///
/// ```no_run
/// # #[cfg(any())] mod doc {
/// #[self_healing(source = "transferCredits", category = "database", idempotent = false)]
/// async fn transfer(db: &Db, from: i64, to: i64, n: i64) -> Result<(), AppError> {
///     let mut conn = db.get().await?;
///     self_healing::rollback::transaction(&mut *conn, async |c| {
///         debit(c, from, n).await?;
///         credit(c, to, n).await
///     })
///     .await
/// }
/// # }
/// ```
///
/// # Errors
/// The work's error, or Diesel's error from `BEGIN`, `COMMIT` or `ROLLBACK`, converted into `E`.
pub async fn transaction<C, R, E, F>(conn: &mut C, work: F) -> Result<R, E>
where
    C: AsyncConnection,
    F: AsyncFnOnce(&mut C) -> Result<R, E>,
    E: From<DieselError>,
{
    C::TransactionManager::begin_transaction(conn).await?;
    match work(conn).await {
        Ok(value) => match C::TransactionManager::commit_transaction(conn).await {
            Ok(()) => Ok(value),
            Err(e) => {
                if matches!(
                    e,
                    DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _)
                ) {
                    super::mark_rolled_back();
                }
                Err(e.into())
            }
        },
        Err(e) => {
            // No COMMIT was sent: whether ROLLBACK succeeds or the connection broke on the way,
            // the server keeps none of the transaction's work.
            if let Err(rollback) = C::TransactionManager::rollback_transaction(conn).await {
                tracing::debug!(error = %rollback, "self-healing: ROLLBACK failed after the transaction's work failed");
            }
            super::mark_rolled_back();
            Err(e)
        }
    }
}

//! The SQLite checkpointer: copies the write-ahead log back into the database file on a
//! connection of its own, beside the writer rather than inside its commits.
//!
//! SQLite's automatic checkpoint runs in the commit that crosses its threshold: the writer
//! stops to read the log, write the database file and sync both (a third of its time in a
//! profile of the throughput bench). Here the writer only appends to the log; after each of its
//! commits this task runs a `PASSIVE` checkpoint, which never blocks the writer or readers, and
//! once the writer has been quiet for a moment a `TRUNCATE` one, which empties the log file. A log fully
//! copied back is rewound by the writer's next transaction instead of growing. The connections'
//! own automatic checkpoint stays as a safety net at a high threshold (see `db.rs`), should
//! this task fall behind.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use diesel::connection::SimpleConnection;

use crate::store::Shared;

/// How long the writer must have been quiet before the log file is emptied.
const QUIET: Duration = Duration::from_millis(250);

/// Runs until the store closes and its writers have stopped.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut failures = 0u32;
    let mut due = false;
    loop {
        if !due {
            shared.checkpoint_due.notified().await;
        }
        let stopping = shared.closing.load(Ordering::SeqCst) && shared.writer_done();
        let mode = if stopping {
            Mode::Truncate
        } else {
            Mode::Passive
        };
        if !attempt(&shared, mode, &mut failures).await {
            due = false;
            continue;
        }
        if stopping {
            break;
        }
        // Another commit soon: copy it too. A quiet moment: empty the log file.
        due = tokio::time::timeout(QUIET, shared.checkpoint_due.notified())
            .await
            .is_ok();
        if !due {
            attempt(&shared, Mode::Truncate, &mut failures).await;
        }
    }
}

/// Which checkpoint to run.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Copies what it can without making anyone wait (while the writer writes).
    Passive,
    /// Copies everything and empties the log file; a writer arriving meanwhile waits (run when
    /// the writer is quiet or stopped).
    Truncate,
}

/// Runs one checkpoint; false (after a pause) when it failed.
async fn attempt(shared: &Shared, mode: Mode, failures: &mut u32) -> bool {
    match checkpoint(shared, mode).await {
        Ok(()) => {
            *failures = 0;
            true
        }
        Err(e) => {
            *failures += 1;
            // The writer's commits stay safe in the log; the safety-net checkpoint (or the
            // next one here) copies them back. Said once per run of failures.
            if *failures == 1 {
                tracing::debug!(error = %e, "self-healing store: checkpoint failed; retrying after the next commit");
            }
            tokio::time::sleep(Duration::from_millis(50 * u64::from((*failures).min(20)))).await;
            false
        }
    }
}

async fn checkpoint(shared: &Shared, mode: Mode) -> Result<(), String> {
    let generation = shared
        .ready_connections()
        .await
        .map_err(|e| e.to_string())?;
    match generation.pools {
        #[cfg(feature = "sqlite")]
        crate::db::Pools::Sqlite(ref pool) => {
            let sql = match mode {
                Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
                Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
            };
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            conn.spawn_blocking(move |c| c.batch_execute(sql))
                .await
                .map_err(|e| e.to_string())
        }
        #[cfg(feature = "postgres")]
        crate::db::Pools::Postgres(_) => {
            let _ = mode;
            Ok(())
        }
    }
}

//! Writes that do not go through the event buffer: call sites, health checks, notifications;
//! and retention.

use std::time::{Duration, SystemTime};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use self_healing_runtime::Site;

use crate::db::with_conn;
use crate::error::StoreError;
use crate::postings::{entries, write_entries};
use crate::records::{HealthCheckRecord, NotificationRecord, PruneReport};
use crate::rows::{clean_text, duration_us, json_str, time_us};
use crate::schema::{call_sites, health_checks, notifications};
use crate::store::DieselStore;

/// Rows deleted per statement by [`DieselStore::prune`].
pub(crate) const PRUNE_BATCH: usize = 5_000;
/// Batch markers are kept at least this long, so a batch retried after a long outage is still
/// recognised.
const MARKER_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Insertable)]
#[diesel(table_name = call_sites)]
struct NewSite {
    source: String,
    module_path: String,
    function: String,
    category: String,
    file: String,
    line: i32,
    options: String,
    instance: String,
    first_seen_us: i64,
    last_seen_us: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = health_checks)]
struct NewHealthCheck {
    time_us: i64,
    instance: String,
    name: String,
    status: String,
    latency_us: i64,
    message: String,
    details: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = notifications)]
struct NewNotification {
    time_us: i64,
    instance: String,
    channel: String,
    severity: String,
    source: Option<String>,
    fingerprint: Option<String>,
    title: String,
    body: String,
    status: String,
    error: Option<String>,
}

/// The options of a site as JSON: `{"idempotent":true,"async":false,"timeout_ms":2000,…}`.
pub(crate) fn options_json(site: &Site) -> String {
    let o = site.options();
    let mut out = format!(
        "{{\"idempotent\":{},\"async\":{},\"catch_panic\":{}",
        o.idempotent(),
        o.is_async(),
        o.catch_panic()
    );
    if let Some(t) = o.timeout() {
        out.push_str(&format!(",\"timeout_ms\":{}", t.as_millis()));
    }
    if let Some(n) = o.max_attempts() {
        out.push_str(&format!(",\"max_attempts\":{n}"));
    }
    if let Some(c) = o.cache() {
        out.push_str(&format!(",\"cache_ms\":{}", c.as_millis()));
    }
    if let Some(f) = o.fallback() {
        out.push_str(",\"fallback\":");
        json_str(&mut out, f);
    }
    out.push('}');
    out
}

impl DieselStore {
    /// Upserts every call site of this program ([`self_healing_runtime::sites()`]) into
    /// `call_sites`: the integration checklist. Call it once at startup. Returns how many sites
    /// were registered.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn sync_sites(&self) -> Result<usize, StoreError> {
        self.upsert_sites(self_healing_runtime::sites()).await
    }

    /// Upserts the given sites into `call_sites` (what [`sync_sites`](Self::sync_sites) does for
    /// every site of the program).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn upsert_sites(
        &self,
        sites: impl IntoIterator<Item = &'static Site>,
    ) -> Result<usize, StoreError> {
        self.shared.ensure_ready().await?;
        let now = time_us(SystemTime::now());
        let rows: Vec<NewSite> = sites
            .into_iter()
            .map(|s| {
                let i = s.info();
                NewSite {
                    source: i.source.to_owned(),
                    module_path: i.module_path.to_owned(),
                    function: i.function.to_owned(),
                    category: i.category.as_str().to_owned(),
                    file: i.file.to_owned(),
                    line: i32::try_from(i.line).unwrap_or(i32::MAX),
                    options: options_json(s),
                    instance: self.shared.instance.clone(),
                    first_seen_us: now,
                    last_seen_us: now,
                }
            })
            .collect();
        let n = rows.len();
        with_conn!(self.shared, |conn, _B| {
            conn.transaction(async |c| {
                use crate::schema::call_sites::dsl::*;
                use diesel::upsert::excluded;
                for row in &rows {
                    diesel::insert_into(call_sites)
                        .values(row)
                        .on_conflict((source, module_path, function))
                        .do_update()
                        .set((
                            category.eq(excluded(category)),
                            file.eq(excluded(file)),
                            line.eq(excluded(line)),
                            options.eq(excluded(options)),
                            instance.eq(excluded(instance)),
                            last_seen_us.eq(excluded(last_seen_us)),
                        ))
                        .execute(c)
                        .await?;
                }
                Ok::<_, diesel::result::Error>(())
            })
            .await
            .map_err(|e| self.shared.query_error(e))?
        });
        Ok(n)
    }

    /// Records one health check result (written at once, not buffered).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn record_health_check(&self, check: &HealthCheckRecord) -> Result<(), StoreError> {
        self.shared.ensure_ready().await?;
        let max = self.shared.settings.max_message_bytes;
        let row = NewHealthCheck {
            time_us: time_us(check.time),
            instance: self.shared.instance.clone(),
            name: clean_text(&check.name, 256),
            status: check.status.as_str().to_owned(),
            latency_us: duration_us(check.latency),
            message: clean_text(&check.message, max),
            details: check.details.as_deref().map(|d| clean_text(d, 64 * 1024)),
        };
        with_conn!(self.shared, |conn, _B| {
            diesel::insert_into(health_checks::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(())
    }

    /// Records one notification (written at once, not buffered).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn record_notification(&self, n: &NotificationRecord) -> Result<(), StoreError> {
        self.shared.ensure_ready().await?;
        let max = self.shared.settings.max_message_bytes;
        let row = NewNotification {
            time_us: time_us(n.time),
            instance: self.shared.instance.clone(),
            channel: clean_text(&n.channel, 256),
            severity: n.severity.as_str().to_owned(),
            source: n.source.as_deref().map(|s| clean_text(s, 256)),
            fingerprint: n.fingerprint.map(|f| f.to_hex()),
            title: clean_text(&n.title, 1024),
            body: clean_text(&n.body, 16 * max),
            status: n.status.as_str().to_owned(),
            error: n.error.as_deref().map(|e| clean_text(e, max)),
        };
        with_conn!(self.shared, |conn, _B| {
            diesel::insert_into(notifications::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(())
    }

    /// Deletes events, health checks, notifications and delivered outbox entries older than
    /// `max_age` (an outbox entry's age counts from its delivery), 5,000 rows per statement with
    /// a pause between statements, so writers are never locked out for long. Learned patterns,
    /// call sites, and pending and dead outbox entries are kept (those wait for a replay or for
    /// someone to act). Writer batch markers are kept at least 7 days. Circuit news follows its
    /// own retention ([`prune_circuit_notices`](Self::prune_circuit_notices)).
    ///
    /// # Errors
    /// When the database cannot be written; rows deleted before the error stay deleted.
    pub async fn prune(&self, max_age: Duration) -> Result<PruneReport, StoreError> {
        self.prune_in_batches(max_age, PRUNE_BATCH).await
    }

    /// [`prune`](Self::prune) with `batch` rows per statement.
    ///
    /// # Errors
    /// See [`prune`](Self::prune).
    pub async fn prune_in_batches(
        &self,
        max_age: Duration,
        batch: usize,
    ) -> Result<PruneReport, StoreError> {
        self.shared.ensure_ready().await?;
        let now = SystemTime::now();
        let cutoff = time_us(now.checked_sub(max_age).unwrap_or(std::time::UNIX_EPOCH));
        let marker_cutoff = time_us(
            now.checked_sub(max_age.max(MARKER_RETENTION))
                .unwrap_or(std::time::UNIX_EPOCH),
        );
        let batch = batch.max(1);
        let events = self
            .prune_table(
                "healing_events",
                "time_us, id",
                &format!("time_us < {cutoff}"),
                batch,
            )
            .await?;
        self.prune_table(
            "event_postings",
            "id",
            &format!("max_time_us < {cutoff}"),
            batch,
        )
        .await?;
        self.trim_postings(cutoff).await?;
        Ok(PruneReport {
            events,
            health_checks: self
                .prune_table("health_checks", "id", &format!("time_us < {cutoff}"), batch)
                .await?,
            notifications: self
                .prune_table("notifications", "id", &format!("time_us < {cutoff}"), batch)
                .await?,
            batches: self
                .prune_table(
                    "store_batches",
                    "batch_id",
                    &format!("time_us < {marker_cutoff}"),
                    batch,
                )
                .await?,
            circuit_notices: self.prune_circuit_notices().await?,
            outbox: self
                .prune_table(
                    "outbox",
                    "id",
                    &format!("status = 'delivered' AND updated_at_us < {cutoff}"),
                    batch,
                )
                .await?,
        })
    }

    /// Rewrites the postings that name events on both sides of `cutoff` (the events before it
    /// were just deleted) so that they name only the events kept: family totals and filtered
    /// lists then count exactly what is stored.
    async fn trim_postings(&self, cutoff: i64) -> Result<(), StoreError> {
        use crate::schema::event_postings::dsl as p;
        use crate::schema::healing_events::dsl as e;
        let straddling: Vec<(i64, String)> = with_conn!(self.shared, |conn, _B| {
            p::event_postings
                .select((p::id, p::entries))
                .filter(p::min_time_us.lt(cutoff))
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        for (posting, text) in straddling {
            let kept: Vec<(i64, i64)> = entries(&text).filter(|&(t, _)| t >= cutoff).collect();
            let times: Vec<i64> = kept.iter().map(|&(t, _)| t).collect();
            let ids: Vec<i64> = kept.iter().map(|&(_, id)| id).collect();
            with_conn!(self.shared, |conn, _B| {
                // By time and id: PostgreSQL keys events by both.
                let counts: Vec<i64> = e::healing_events
                    .select(e::count)
                    .filter(e::time_us.eq_any(&times).and(e::id.eq_any(&ids)))
                    .load(conn)
                    .await
                    .map_err(|e| self.shared.query_error(e))?;
                let target = p::event_postings.filter(p::id.eq(posting));
                let done = match (kept.iter().map(|k| k.0).min(), ids.iter().max()) {
                    (Some(min_time), Some(&last)) => {
                        let listed = write_entries(kept.iter().copied());
                        diesel::update(target)
                            .set((
                                p::min_time_us.eq(min_time),
                                p::last_id.eq(last),
                                p::events.eq(i64::try_from(kept.len()).unwrap_or(i64::MAX)),
                                p::calls.eq(counts.iter().fold(0i64, |a, c| a.saturating_add(*c))),
                                p::entries.eq(listed),
                            ))
                            .execute(conn)
                            .await
                    }
                    _ => diesel::delete(target).execute(conn).await,
                };
                done.map_err(|e| self.shared.query_error(e))?
            });
        }
        Ok(())
    }

    /// Deletes the rows of `table` matching `condition` (only integers are interpolated into
    /// it), `batch` per statement, in the order of `key` (its primary key's columns).
    async fn prune_table(
        &self,
        table: &str,
        key: &str,
        condition: &str,
        batch: usize,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM {table} WHERE ({key}) IN \
             (SELECT {key} FROM {table} WHERE {condition} ORDER BY {key} LIMIT {batch})"
        );
        let mut total = 0u64;
        loop {
            let deleted: usize = with_conn!(self.shared, |conn, _B| {
                diesel::sql_query(sql.as_str())
                    .execute(conn)
                    .await
                    .map_err(|e| self.shared.query_error(e))?
            });
            total += deleted as u64;
            if deleted < batch {
                return Ok(total);
            }
            // Let writers in between statements.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

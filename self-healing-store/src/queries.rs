//! Queries for the dashboard and the CLI. Aggregations are plain SQL that both backends run
//! unchanged (only integers are interpolated); row queries use Diesel's DSL.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::RunQueryDsl;
use self_healing_runtime::diagnosis::Fingerprint;
use self_healing_runtime::event::{DiagnosisRecord, Step, StepResult};
use self_healing_runtime::selection::{PatternRow, PatternStat};
use self_healing_runtime::{Category, Outcome};

use crate::db::with_conn;
use crate::error::{ErrorKind, StoreError};
use crate::records::{
    EventCursor, EventFilter, EventPage, EventRecord, FailingFingerprint, FailingSource,
    HealthCheckRecord, HealthStatus, HourlyCount, NotificationRecord, NotificationStatus,
    PatternRecord, SiteRecord, StoredHealthCheck, StoredNotification, StrategyRate, parse_severity,
};
use crate::rows::{from_duration_us, from_time_us, time_us};
use crate::schema::{healing_events, healing_patterns, health_checks, notifications};
use crate::store::DieselStore;

/// Most events one page returns.
pub const MAX_PAGE: usize = 1_000;

#[derive(Queryable, Selectable)]
#[diesel(table_name = healing_events)]
pub(crate) struct EventRow {
    pub(crate) id: i64,
    pub(crate) time_us: i64,
    instance: String,
    source: String,
    category: String,
    fingerprint: String,
    class: String,
    message: String,
    severity: String,
    strategy: Option<String>,
    outcome: String,
    attempts: i32,
    duration_us: i64,
    count: i64,
    analyzer: String,
    diagnosis: String,
    call_key: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = healing_patterns)]
struct PatternDbRow {
    fingerprint: String,
    strategy: String,
    tried: i64,
    healed: i64,
    failed: i64,
    total_duration_us: i64,
    first_seen_us: i64,
    last_seen_us: i64,
    ai_diagnosis: Option<String>,
}

#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = health_checks)]
struct HealthRow {
    id: i64,
    time_us: i64,
    instance: String,
    name: String,
    status: String,
    latency_us: i64,
    message: String,
    details: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = notifications)]
struct NotificationRow {
    id: i64,
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

#[derive(QueryableByName)]
struct HourRow {
    #[diesel(sql_type = BigInt)]
    hour: i64,
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = BigInt)]
    calls: i64,
}

#[derive(QueryableByName)]
struct RateRow {
    #[diesel(sql_type = Text)]
    strategy: String,
    #[diesel(sql_type = BigInt)]
    calls: i64,
    #[diesel(sql_type = BigInt)]
    healed: i64,
}

#[derive(QueryableByName)]
struct SourceRow {
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = BigInt)]
    failures: i64,
    #[diesel(sql_type = BigInt)]
    last_us: i64,
}

#[derive(QueryableByName)]
struct FingerprintRow {
    #[diesel(sql_type = Text)]
    fingerprint: String,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Text)]
    class: String,
    #[diesel(sql_type = Text)]
    message: String,
    #[diesel(sql_type = BigInt)]
    failures: i64,
    #[diesel(sql_type = BigInt)]
    last_us: i64,
}

#[derive(QueryableByName)]
struct SiteRow {
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Text)]
    module_path: String,
    #[diesel(sql_type = Text)]
    function: String,
    #[diesel(sql_type = Text)]
    category: String,
    #[diesel(sql_type = Text)]
    file: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    line: i32,
    #[diesel(sql_type = Text)]
    options: String,
    #[diesel(sql_type = Text)]
    instance: String,
    #[diesel(sql_type = BigInt)]
    first_seen_us: i64,
    #[diesel(sql_type = BigInt)]
    last_seen_us: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_error_us: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_healed_us: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    failures: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    healed: Option<i64>,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn since_us(since: Option<SystemTime>) -> i64 {
    since.map_or(i64::MIN, time_us)
}

impl DieselStore {
    pub(crate) fn corrupt(&self, table: &str, column: &str, value: &str) -> StoreError {
        StoreError::new(
            ErrorKind::Query,
            &self.shared.url.masked,
            format!("unexpected value `{value}` in {table}.{column}"),
        )
        .with_hint("the table was written by something else than this version of self-healing")
    }

    fn event_record(&self, r: EventRow) -> Result<EventRecord, StoreError> {
        let bad = |column: &str, value: &str| self.corrupt("healing_events", column, value);
        Ok(EventRecord {
            id: r.id,
            time: from_time_us(r.time_us),
            category: Category::from_str(&r.category).map_err(|_| bad("category", &r.category))?,
            fingerprint: Fingerprint::from_hex(&r.fingerprint)
                .ok_or_else(|| bad("fingerprint", &r.fingerprint))?,
            severity: parse_severity(&r.severity).ok_or_else(|| bad("severity", &r.severity))?,
            outcome: Outcome::parse(&r.outcome).ok_or_else(|| bad("outcome", &r.outcome))?,
            diagnosis: parse_diagnosis(&r.analyzer, &r.diagnosis)
                .ok_or_else(|| bad("diagnosis", &r.diagnosis))?,
            instance: r.instance,
            source: r.source,
            class: r.class,
            message: r.message,
            strategy: r.strategy,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            duration: from_duration_us(r.duration_us),
            count: to_u64(r.count),
            call_key: r.call_key,
        })
    }

    /// Events matching `filter`, newest first, `limit` at most (capped at 1,000), starting after
    /// `after` (the `next` cursor of the previous page). Keyset pagination on (time, id): pages
    /// stay stable while events are being written.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn events(
        &self,
        filter: &EventFilter,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<EventPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let rows: Vec<EventRow> = if filter.uses_postings() {
            self.events_by_postings(filter, after, limit + 1).await?
        } else {
            self.events_by_time(filter, after, limit + 1).await?
        };
        let more = rows.len() > limit;
        let events = rows
            .into_iter()
            .take(limit)
            .map(|r| self.event_record(r))
            .collect::<Result<Vec<_>, _>>()?;
        let next = more.then(|| {
            let last = &events[events.len() - 1];
            EventCursor {
                time_us: time_us(last.time),
                id: last.id,
            }
        });
        Ok(EventPage { events, next })
    }

    /// The first `want` events in the time window of `filter` (which narrows nothing else)
    /// after `after`, newest first: the time index serves it.
    async fn events_by_time(
        &self,
        filter: &EventFilter,
        after: Option<EventCursor>,
        want: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        use crate::schema::healing_events::dsl as e;
        Ok(with_conn!(self.shared, |conn, B| {
            let mut q = e::healing_events
                .select(EventRow::as_select())
                .into_boxed::<B>();
            if let Some(v) = filter.since {
                q = q.filter(e::time_us.ge(time_us(v)));
            }
            if let Some(v) = filter.until {
                q = q.filter(e::time_us.lt(time_us(v)));
            }
            if let Some(c) = after {
                q = q.filter(
                    e::time_us
                        .lt(c.time_us)
                        .or(e::time_us.eq(c.time_us).and(e::id.lt(c.id))),
                );
            }
            q.order((e::time_us.desc(), e::id.desc()))
                .limit(i64::try_from(want).unwrap_or(i64::MAX))
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        }))
    }

    /// Calls per hour (UTC) and outcome in `[since, until)`, oldest hour first.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn counts_per_hour(
        &self,
        since: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<HourlyCount>, StoreError> {
        let sql = format!(
            "SELECT (time_us / 3600000000) AS hour, outcome, CAST(SUM(count) AS BIGINT) AS calls \
             FROM healing_events WHERE time_us >= {} AND time_us < {} \
             GROUP BY (time_us / 3600000000), outcome ORDER BY hour, outcome",
            time_us(since),
            time_us(until)
        );
        let rows: Vec<HourRow> = with_conn!(self.shared, |conn, _B| {
            diesel::sql_query(sql)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        rows.into_iter()
            .map(|r| {
                Ok(HourlyCount {
                    hour: UNIX_EPOCH + std::time::Duration::from_secs(to_u64(r.hour) * 3600),
                    outcome: Outcome::parse(&r.outcome)
                        .ok_or_else(|| self.corrupt("healing_events", "outcome", &r.outcome))?,
                    calls: to_u64(r.calls),
                })
            })
            .collect()
    }

    /// Per strategy named in events since `since`: calls, and how many were healed. Most calls
    /// first.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn heal_rate_by_strategy(
        &self,
        since: Option<SystemTime>,
    ) -> Result<Vec<StrategyRate>, StoreError> {
        let sql = format!(
            "SELECT strategy, CAST(SUM(count) AS BIGINT) AS calls, \
             CAST(SUM(CASE WHEN outcome = 'healed' THEN count ELSE 0 END) AS BIGINT) AS healed \
             FROM healing_events WHERE time_us >= {} AND strategy IS NOT NULL \
             GROUP BY strategy ORDER BY calls DESC, strategy",
            since_us(since)
        );
        let rows: Vec<RateRow> = with_conn!(self.shared, |conn, _B| {
            diesel::sql_query(sql)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(rows
            .into_iter()
            .map(|r| StrategyRate {
                strategy: r.strategy,
                calls: to_u64(r.calls),
                healed: to_u64(r.healed),
            })
            .collect())
    }

    /// The sources with the most calls not healed since `since`, `limit` at most.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn top_failing_sources(
        &self,
        since: Option<SystemTime>,
        limit: usize,
    ) -> Result<Vec<FailingSource>, StoreError> {
        let sql = format!(
            "SELECT source, CAST(SUM(count) AS BIGINT) AS failures, MAX(time_us) AS last_us \
             FROM healing_events WHERE time_us >= {} AND outcome <> 'healed' \
             GROUP BY source ORDER BY failures DESC, source LIMIT {}",
            since_us(since),
            limit.clamp(1, MAX_PAGE)
        );
        let rows: Vec<SourceRow> = with_conn!(self.shared, |conn, _B| {
            diesel::sql_query(sql)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(rows
            .into_iter()
            .map(|r| FailingSource {
                source: r.source,
                failures: to_u64(r.failures),
                last: from_time_us(r.last_us),
            })
            .collect())
    }

    /// The failure families with the most calls not healed since `since`, `limit` at most.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn top_failing_fingerprints(
        &self,
        since: Option<SystemTime>,
        limit: usize,
    ) -> Result<Vec<FailingFingerprint>, StoreError> {
        let sql = format!(
            "SELECT fingerprint, MAX(source) AS source, MAX(class) AS class, MAX(message) AS message, \
             CAST(SUM(count) AS BIGINT) AS failures, MAX(time_us) AS last_us \
             FROM healing_events WHERE time_us >= {} AND outcome <> 'healed' \
             GROUP BY fingerprint ORDER BY failures DESC, fingerprint LIMIT {}",
            since_us(since),
            limit.clamp(1, MAX_PAGE)
        );
        let rows: Vec<FingerprintRow> = with_conn!(self.shared, |conn, _B| {
            diesel::sql_query(sql)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        rows.into_iter()
            .map(|r| {
                Ok(FailingFingerprint {
                    fingerprint: Fingerprint::from_hex(&r.fingerprint).ok_or_else(|| {
                        self.corrupt("healing_events", "fingerprint", &r.fingerprint)
                    })?,
                    source: r.source,
                    class: r.class,
                    message: r.message,
                    failures: to_u64(r.failures),
                    last: from_time_us(r.last_us),
                })
            })
            .collect()
    }

    /// Every learned statistic, for a healer's warm start:
    /// `healer.patterns().merge(&store.load_patterns().await?, &names)`.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn load_patterns(&self) -> Result<Vec<PatternRow>, StoreError> {
        Ok(self
            .patterns(None)
            .await?
            .into_iter()
            .map(|p| p.row)
            // The empty strategy's row holds a family's advice, not statistics.
            .filter(|row| !row.strategy.is_empty())
            .collect())
    }

    /// Learned statistics with their timestamps and AI diagnosis, of one family or all,
    /// ordered by fingerprint and strategy.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn patterns(
        &self,
        fingerprint: Option<Fingerprint>,
    ) -> Result<Vec<PatternRecord>, StoreError> {
        use crate::schema::healing_patterns::dsl as p;
        let rows: Vec<PatternDbRow> = with_conn!(self.shared, |conn, B| {
            let mut q = p::healing_patterns
                .select(PatternDbRow::as_select())
                .into_boxed::<B>();
            if let Some(f) = fingerprint {
                q = q.filter(p::fingerprint.eq(f.to_hex()));
            }
            q.order((p::fingerprint, p::strategy))
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        rows.into_iter()
            .map(|r| {
                Ok(PatternRecord {
                    row: PatternRow {
                        fingerprint: Fingerprint::from_hex(&r.fingerprint).ok_or_else(|| {
                            self.corrupt("healing_patterns", "fingerprint", &r.fingerprint)
                        })?,
                        strategy: r.strategy,
                        stat: PatternStat {
                            tried: to_u64(r.tried),
                            healed: to_u64(r.healed),
                            failed: to_u64(r.failed),
                            total_duration: from_duration_us(r.total_duration_us),
                        },
                    },
                    first_seen: from_time_us(r.first_seen_us),
                    last_seen: from_time_us(r.last_seen_us),
                    ai_diagnosis: r.ai_diagnosis,
                })
            })
            .collect()
    }

    /// Every registered call site (see [`sync_sites`](Self::sync_sites)) with its last failure,
    /// last heal and counts from the events: the integration checklist.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn sites(&self) -> Result<Vec<SiteRecord>, StoreError> {
        let sql = "SELECT s.source, s.module_path, s.function, s.category, s.file, s.line, s.options, \
             s.instance, s.first_seen_us, s.last_seen_us, e.last_error_us, e.last_healed_us, \
             e.failures, e.healed \
             FROM call_sites s LEFT JOIN ( \
               SELECT source, MAX(time_us) AS last_error_us, \
               MAX(CASE WHEN outcome = 'healed' THEN time_us END) AS last_healed_us, \
               CAST(SUM(count) AS BIGINT) AS failures, \
               CAST(SUM(CASE WHEN outcome = 'healed' THEN count ELSE 0 END) AS BIGINT) AS healed \
               FROM healing_events GROUP BY source \
             ) e ON e.source = s.source \
             ORDER BY s.source, s.module_path, s.function";
        let rows: Vec<SiteRow> = with_conn!(self.shared, |conn, _B| {
            diesel::sql_query(sql)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(rows
            .into_iter()
            .map(|r| SiteRecord {
                source: r.source,
                module_path: r.module_path,
                function: r.function,
                category: r.category,
                file: r.file,
                line: u32::try_from(r.line).unwrap_or(0),
                options: r.options,
                instance: r.instance,
                first_seen: from_time_us(r.first_seen_us),
                last_seen: from_time_us(r.last_seen_us),
                last_error: r.last_error_us.map(from_time_us),
                last_healed: r.last_healed_us.map(from_time_us),
                failures: r.failures.map_or(0, to_u64),
                healed: r.healed.map_or(0, to_u64),
            })
            .collect())
    }

    /// The latest result of each health check, by name.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn latest_health_checks(&self) -> Result<Vec<StoredHealthCheck>, StoreError> {
        let sql = "SELECT id, time_us, instance, name, status, latency_us, message, details \
                   FROM health_checks WHERE id IN (SELECT MAX(id) FROM health_checks GROUP BY name) \
                   ORDER BY name";
        let rows: Vec<HealthRow> = with_conn!(self.shared, |conn, _B| {
            diesel::sql_query(sql)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        rows.into_iter().map(|r| self.health_record(r)).collect()
    }

    /// The results of one health check, newest first, `limit` at most.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn health_history(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<StoredHealthCheck>, StoreError> {
        use crate::schema::health_checks::dsl as h;
        let rows: Vec<HealthRow> = with_conn!(self.shared, |conn, _B| {
            h::health_checks
                .select(HealthRow::as_select())
                .filter(h::name.eq(name))
                .order(h::id.desc())
                .limit(limit.clamp(1, MAX_PAGE) as i64)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        rows.into_iter().map(|r| self.health_record(r)).collect()
    }

    fn health_record(&self, r: HealthRow) -> Result<StoredHealthCheck, StoreError> {
        Ok(StoredHealthCheck {
            id: r.id,
            instance: r.instance,
            check: HealthCheckRecord {
                time: from_time_us(r.time_us),
                name: r.name,
                status: HealthStatus::parse(&r.status)
                    .ok_or_else(|| self.corrupt("health_checks", "status", &r.status))?,
                latency: from_duration_us(r.latency_us),
                message: r.message,
                details: r.details,
            },
        })
    }

    /// Notifications, newest first, `limit` at most.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn recent_notifications(
        &self,
        limit: usize,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        use crate::schema::notifications::dsl as n;
        let rows: Vec<NotificationRow> = with_conn!(self.shared, |conn, _B| {
            n::notifications
                .select(NotificationRow::as_select())
                .order(n::id.desc())
                .limit(limit.clamp(1, MAX_PAGE) as i64)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        rows.into_iter()
            .map(|r| {
                let bad = |c: &str, v: &str| self.corrupt("notifications", c, v);
                Ok(StoredNotification {
                    id: r.id,
                    instance: r.instance,
                    notification: NotificationRecord {
                        time: from_time_us(r.time_us),
                        channel: r.channel,
                        severity: parse_severity(&r.severity)
                            .ok_or_else(|| bad("severity", &r.severity))?,
                        source: r.source,
                        fingerprint: match r.fingerprint {
                            Some(f) => Some(
                                Fingerprint::from_hex(&f).ok_or_else(|| bad("fingerprint", &f))?,
                            ),
                            None => None,
                        },
                        title: r.title,
                        body: r.body,
                        status: NotificationStatus::parse(&r.status)
                            .ok_or_else(|| bad("status", &r.status))?,
                        error: r.error,
                    },
                })
            })
            .collect()
    }
}

/// Reads the diagnosis JSON written by [`crate::rows`].
fn parse_diagnosis(analyzer: &str, json: &str) -> Option<DiagnosisRecord> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let text = |v: &serde_json::Value, k: &str| v.get(k)?.as_str().map(str::to_owned);
    let steps = v
        .get("steps")?
        .as_array()?
        .iter()
        .map(|s| {
            Some(Step {
                strategy: Cow::Owned(text(s, "strategy")?),
                result: match s.get("result")?.as_str()? {
                    "healed" => StepResult::Healed,
                    "failed" => StepResult::Failed,
                    _ => StepResult::Skipped,
                },
                took: from_duration_us(s.get("took_us")?.as_i64()?),
                note: Cow::Owned(text(s, "note")?),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(DiagnosisRecord {
        analyzer: Cow::Owned(analyzer.to_owned()),
        confidence: v.get("confidence")?.as_f64()? as f32,
        reason: Cow::Owned(text(&v, "reason")?),
        never_reached: v.get("never_reached")?.as_bool()?,
        steps,
    })
}

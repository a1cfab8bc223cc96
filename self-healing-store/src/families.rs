//! Failure families, as error trackers show them: the events grouped by fingerprint (calls,
//! first and last seen, sources, the latest message), the strategy learned for each in
//! `healing_patterns`, and what people decided about it in `failure_families` (resolved or
//! ignored, when, by whom).
//!
//! A family without a row in `failure_families` is open. A family resolved at `resolved_at`
//! that has an event after that time is *regressed*: it shows as open again, and its row keeps
//! who resolved it and when. An ignored family stays ignored whatever happens.

use std::collections::HashMap;
use std::time::SystemTime;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use self_healing_runtime::diagnosis::Fingerprint;

use crate::db::with_conn;
use crate::error::StoreError;
use crate::queries::MAX_PAGE;
use crate::rows::{clean_text, from_time_us, time_us};
use crate::schema::{event_postings, failure_families, healing_patterns};
use crate::store::DieselStore;

/// Longest `changed_by` kept.
const MAX_BY: usize = 256;

/// What people decided about a failure family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FamilyStatus {
    /// Not looked at yet, or reopened.
    Open,
    /// Fixed: a new event after the resolution makes the family regressed.
    Resolved,
    /// Known and accepted: stays ignored whatever happens.
    Ignored,
}

impl FamilyStatus {
    /// Every status, in the order above.
    pub const ALL: [FamilyStatus; 3] = [
        FamilyStatus::Open,
        FamilyStatus::Resolved,
        FamilyStatus::Ignored,
    ];

    /// `open`, `resolved` or `ignored`: the stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FamilyStatus::Open => "open",
            FamilyStatus::Resolved => "resolved",
            FamilyStatus::Ignored => "ignored",
        }
    }

    /// The status named `s` (what [`as_str`](Self::as_str) writes).
    pub fn parse(s: &str) -> Option<FamilyStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// The strategy learned for a family: of its `healing_patterns` rows, the one that healed it
/// most often (ties: the fewest failures, then the name).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LearnedStrategy {
    /// The strategy's name.
    pub strategy: String,
    /// Times it was tried on this family.
    pub tried: u64,
    /// Times it healed the call.
    pub healed: u64,
    /// Times it failed.
    pub failed: u64,
}

impl LearnedStrategy {
    /// Healed share of the tries; `None` when it was never tried (not 0: nothing to rate).
    pub fn heal_rate(&self) -> Option<f64> {
        (self.tried > 0).then(|| self.healed as f64 / self.tried as f64)
    }
}

/// One failure family: every event of one fingerprint.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FamilyRecord {
    /// The family.
    pub fingerprint: Fingerprint,
    /// Calls in all its events (the sum of their `count`).
    pub count: u64,
    /// Its oldest event still stored.
    pub first_seen: SystemTime,
    /// Its newest event.
    pub last_seen: SystemTime,
    /// The sources it failed in, sorted.
    pub sources: Vec<String>,
    /// The error class of its latest event.
    pub class: String,
    /// The message of its latest event (the last written).
    pub message: String,
    /// The strategy learned for it, if any was tried.
    pub learned: Option<LearnedStrategy>,
    /// What people decided ([`FamilyStatus::Open`] when nobody did).
    pub status: FamilyStatus,
    /// Resolved, then seen again after [`resolved_at`](Self::resolved_at).
    pub regressed: bool,
    /// When it was resolved or ignored.
    pub resolved_at: Option<SystemTime>,
    /// Who last changed its status.
    pub changed_by: Option<String>,
}

impl FamilyRecord {
    /// What the family needs now: `open` (nobody decided, or it was reopened), `resolved`,
    /// `regressed` (resolved, then seen again after [`resolved_at`](Self::resolved_at): open
    /// again) or `ignored` (stays ignored whatever happens).
    pub fn state(&self) -> &'static str {
        match (self.status, self.regressed) {
            (FamilyStatus::Resolved, true) => "regressed",
            (s, _) => s.as_str(),
        }
    }

    /// Whether it needs someone's attention: open or regressed.
    pub fn needs_attention(&self) -> bool {
        matches!(self.state(), "open" | "regressed")
    }
}

#[derive(QueryableByName)]
struct FamilyRow {
    #[diesel(sql_type = Text)]
    fingerprint: String,
    #[diesel(sql_type = BigInt)]
    calls: i64,
    #[diesel(sql_type = BigInt)]
    first_us: i64,
    #[diesel(sql_type = BigInt)]
    last_us: i64,
    #[diesel(sql_type = Text)]
    class: String,
    #[diesel(sql_type = Text)]
    message: String,
}

#[derive(Queryable)]
struct StatusRow {
    fingerprint: String,
    status: String,
    resolved_at_us: Option<i64>,
    changed_by: String,
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = failure_families, primary_key(fingerprint))]
#[diesel(treat_none_as_null = true)]
struct NewStatus {
    fingerprint: String,
    status: &'static str,
    resolved_at_us: Option<i64>,
    changed_by: String,
    changed_us: i64,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The learned strategy among `(strategy, tried, healed, failed)` rows of one family.
fn learned(rows: Vec<(String, i64, i64, i64)>) -> Option<LearnedStrategy> {
    rows.into_iter()
        // The empty strategy's row holds a family's advice, not statistics.
        .filter(|(s, tried, _, _)| !s.is_empty() && *tried > 0)
        .map(|(strategy, tried, healed, failed)| LearnedStrategy {
            strategy,
            tried: to_u64(tried),
            healed: to_u64(healed),
            failed: to_u64(failed),
        })
        .min_by(|a, b| {
            b.healed
                .cmp(&a.healed)
                .then(a.failed.cmp(&b.failed))
                .then(a.strategy.cmp(&b.strategy))
        })
}

impl DieselStore {
    /// The failure families with the most recent events, `limit` at most (capped at 1,000),
    /// newest first: calls, first and last seen, sources, the latest message, the learned
    /// strategy and what people decided (see [`FamilyRecord::state`]).
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn families(&self, limit: usize) -> Result<Vec<FamilyRecord>, StoreError> {
        let sql = format!(
            "SELECT a.fingerprint, a.calls, a.first_us, a.last_us, e.class, e.message FROM ( \
               SELECT fingerprint, CAST(SUM(calls) AS BIGINT) AS calls, \
               MIN(min_time_us) AS first_us, MAX(max_time_us) AS last_us \
               FROM event_postings GROUP BY fingerprint \
               ORDER BY last_us DESC, fingerprint LIMIT {} \
             ) a JOIN healing_events e ON e.time_us = a.last_us AND e.id = ( \
               SELECT MAX(l.id) FROM healing_events l \
               WHERE l.time_us = a.last_us AND l.fingerprint = a.fingerprint) \
             ORDER BY a.last_us DESC, a.fingerprint",
            limit.clamp(1, MAX_PAGE)
        );
        let rows: Vec<FamilyRow> = with_conn!(self.shared, |conn, _B| {
            diesel::sql_query(sql)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        let keys: Vec<String> = rows.iter().map(|r| r.fingerprint.clone()).collect();
        let (sources, patterns, statuses) = self.family_details(&keys).await?;
        let mut sources = group(sources);
        let mut patterns = group(patterns);
        let mut statuses: HashMap<String, StatusRow> = statuses
            .into_iter()
            .map(|s| (s.fingerprint.clone(), s))
            .collect();
        rows.into_iter()
            .map(|r| {
                let bad = |c: &str, v: &str| self.corrupt("healing_events", c, v);
                let fingerprint = Fingerprint::from_hex(&r.fingerprint)
                    .ok_or_else(|| bad("fingerprint", &r.fingerprint))?;
                let decided = statuses.remove(&r.fingerprint);
                let status = match &decided {
                    Some(s) => FamilyStatus::parse(&s.status)
                        .ok_or_else(|| self.corrupt("failure_families", "status", &s.status))?,
                    None => FamilyStatus::Open,
                };
                let resolved_at_us = decided.as_ref().and_then(|s| s.resolved_at_us);
                let mut srcs = sources.remove(&r.fingerprint).unwrap_or_default();
                srcs.sort();
                srcs.dedup();
                Ok(FamilyRecord {
                    fingerprint,
                    count: to_u64(r.calls),
                    first_seen: from_time_us(r.first_us),
                    last_seen: from_time_us(r.last_us),
                    sources: srcs,
                    class: r.class,
                    message: r.message,
                    learned: learned(patterns.remove(&r.fingerprint).unwrap_or_default()),
                    status,
                    regressed: status == FamilyStatus::Resolved
                        && resolved_at_us.is_some_and(|at| r.last_us > at),
                    resolved_at: resolved_at_us.map(from_time_us),
                    changed_by: decided.map(|s| s.changed_by),
                })
            })
            .collect()
    }

    /// The sources, pattern rows and statuses of the families `keys`.
    #[allow(clippy::type_complexity)]
    async fn family_details(
        &self,
        keys: &[String],
    ) -> Result<
        (
            Vec<(String, String)>,
            Vec<(String, (String, i64, i64, i64))>,
            Vec<StatusRow>,
        ),
        StoreError,
    > {
        if keys.is_empty() {
            return Ok((Vec::new(), Vec::new(), Vec::new()));
        }
        let details = with_conn!(self.shared, |conn, _B| {
            let sources: Vec<(String, String)> = event_postings::table
                .select((event_postings::fingerprint, event_postings::source))
                .filter(event_postings::fingerprint.eq_any(keys))
                .distinct()
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?;
            let patterns: Vec<(String, String, i64, i64, i64)> = healing_patterns::table
                .select((
                    healing_patterns::fingerprint,
                    healing_patterns::strategy,
                    healing_patterns::tried,
                    healing_patterns::healed,
                    healing_patterns::failed,
                ))
                .filter(healing_patterns::fingerprint.eq_any(keys))
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?;
            let statuses: Vec<StatusRow> = failure_families::table
                .select((
                    failure_families::fingerprint,
                    failure_families::status,
                    failure_families::resolved_at_us,
                    failure_families::changed_by,
                ))
                .filter(failure_families::fingerprint.eq_any(keys))
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?;
            (sources, patterns, statuses)
        });
        let (sources, patterns, statuses) = details;
        let patterns = patterns
            .into_iter()
            .map(|(f, s, t, h, x)| (f, (s, t, h, x)))
            .collect();
        Ok((sources, patterns, statuses))
    }

    /// Records what `by` decided about the family `fingerprint`, now: [`FamilyStatus::Resolved`]
    /// or [`FamilyStatus::Ignored`] (with the time, as `resolved_at`), or
    /// [`FamilyStatus::Open`] to reopen it. The family need not have events.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn set_family_status(
        &self,
        fingerprint: Fingerprint,
        status: FamilyStatus,
        by: &str,
    ) -> Result<(), StoreError> {
        self.shared.ensure_ready().await?;
        let now = time_us(SystemTime::now());
        let row = NewStatus {
            fingerprint: fingerprint.to_hex(),
            status: status.as_str(),
            resolved_at_us: (status != FamilyStatus::Open).then_some(now),
            changed_by: clean_text(by, MAX_BY),
            changed_us: now,
        };
        with_conn!(self.shared, |conn, _B| {
            diesel::insert_into(failure_families::table)
                .values(&row)
                .on_conflict(failure_families::fingerprint)
                .do_update()
                .set(&row)
                .execute(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(())
    }
}

/// `(key, value)` pairs grouped by key.
fn group<V>(pairs: Vec<(String, V)>) -> HashMap<String, Vec<V>> {
    let mut map: HashMap<String, Vec<V>> = HashMap::new();
    for (k, v) in pairs {
        map.entry(k).or_default().push(v);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_learned_strategy_healed_most() {
        let rows = vec![
            ("".to_owned(), 0, 0, 0),
            ("retry".to_owned(), 10, 2, 8),
            ("reconnect".to_owned(), 5, 5, 0),
            ("never".to_owned(), 0, 0, 0),
        ];
        let l = learned(rows).unwrap();
        assert_eq!(l.strategy, "reconnect");
        assert_eq!(l.heal_rate(), Some(1.0));
        assert_eq!(learned(vec![("".to_owned(), 0, 0, 0)]), None);
        for s in FamilyStatus::ALL {
            assert_eq!(FamilyStatus::parse(s.as_str()), Some(s));
        }
    }
}

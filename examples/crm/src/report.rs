//! The summary table and the CRM tables' integrity check.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use self_healing::Healer;

use crate::db::schema::{contacts, credits, deals, onboarding_sessions, projects};
use crate::db::with_conn;
use crate::{Calls, CrmError, Tally};

/// One line per source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRow {
    /// The site's `source`.
    pub source: String,
    /// Calls made by the load driver.
    pub calls: u64,
    /// Calls that returned an error to the caller.
    pub errors: u64,
    /// Failed calls the healer healed.
    pub healed: u64,
    /// Failed calls the healer could not heal (every outcome but `healed`, `queued` and
    /// `skipped`).
    pub failed: u64,
}

/// One line per strategy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrategyRow {
    /// The strategy (`-` when none applied).
    pub strategy: String,
    /// Calls it healed.
    pub healed: u64,
    /// Calls whose work it put off or dropped as declared (queued for later, skipped): the
    /// caller got `Ok(())`.
    pub deferred: u64,
    /// Calls where it was the last one tried and the error went back.
    pub failed: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// How long the load ran.
    pub elapsed: Duration,
    /// Per source.
    pub sources: Vec<SourceRow>,
    /// Per strategy.
    pub strategies: Vec<StrategyRow>,
    /// Healing events by outcome (folded records counted by their `count`).
    pub outcomes: BTreeMap<String, u64>,
    /// Error classes per source.
    pub classes: BTreeMap<(String, String), u64>,
    /// Per source: (calls its open circuit refused, of which healed).
    pub circuit_refused: BTreeMap<String, (u64, u64)>,
    /// Faults the fault layer injected, per class.
    pub injected: Vec<(&'static str, u64)>,
    /// Learned preferences: (fingerprint, strategy, healed, tried).
    pub learned: Vec<(String, String, u64, u64)>,
    /// Times the reconnect hook rebuilt the pool.
    pub reconnects: u64,
    /// Times the refresh hook fetched a new token (the first one at start-up included).
    pub token_refreshes: u64,
    /// Mails the callers were told were queued for later.
    pub queued: u64,
    /// The outbox after the run (and after it was drained).
    pub outbox: self_healing::outbox::OutboxCounts,
    /// The provider's regions: calls served and failures that switched away from them.
    pub endpoints: Vec<self_healing::endpoints::EndpointHealth>,
    /// Mails the provider sent.
    pub mails_sent: u64,
    /// Requests the provider acknowledged without sending: a mail under a key sent already.
    pub mails_deduplicated: u64,
    /// Recipients sent more than one mail (must be empty).
    pub mails_delivered_twice: Vec<String>,
}

impl Summary {
    /// Total calls, errors, healed, failed.
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        self.sources.iter().fold((0, 0, 0, 0), |a, r| {
            (
                a.0 + r.calls,
                a.1 + r.errors,
                a.2 + r.healed,
                a.3 + r.failed,
            )
        })
    }

    /// Calls healed by `strategy`.
    pub fn healed_by(&self, strategy: &str) -> u64 {
        self.strategies
            .iter()
            .find(|r| r.strategy == strategy)
            .map_or(0, |r| r.healed)
    }
}

pub(crate) fn summarize(
    calls: &Calls,
    tally: &Tally,
    healer: &Healer,
    crm: &crate::crm::Crm,
    elapsed: Duration,
) -> Summary {
    let mut sources: BTreeMap<String, SourceRow> = BTreeMap::new();
    for (s, (c, e)) in calls.by_source.lock().expect("calls").iter() {
        let row = sources.entry((*s).to_owned()).or_default();
        row.calls = *c;
        row.errors = *e;
    }
    let mut strategies: BTreeMap<String, StrategyRow> = BTreeMap::new();
    let mut outcomes = BTreeMap::new();
    for ((source, strategy, outcome), n) in tally.rows() {
        let row = sources.entry(source.clone()).or_default();
        let srow = strategies.entry(strategy.clone()).or_default();
        if outcome == "healed" {
            row.healed += n;
            srow.healed += n;
        } else if outcome == "queued" || outcome == "skipped" {
            // The caller got `Ok(())`: neither healed nor failed.
            srow.deferred += n;
        } else {
            row.failed += n;
            srow.failed += n;
        }
        *outcomes.entry(outcome).or_default() += n;
    }
    let mut learned: Vec<_> = healer
        .patterns()
        .snapshot()
        .into_iter()
        .map(|r| {
            (
                r.fingerprint.to_string(),
                r.strategy,
                r.stat.healed,
                r.stat.tried,
            )
        })
        .collect();
    learned.sort_by_key(|row| std::cmp::Reverse(row.3));
    Summary {
        elapsed,
        sources: sources
            .into_iter()
            .map(|(k, mut v)| {
                v.source = k;
                v
            })
            .collect(),
        strategies: strategies
            .into_iter()
            .map(|(k, mut v)| {
                v.strategy = k;
                v
            })
            .collect(),
        outcomes,
        classes: tally.classes(),
        circuit_refused: tally.circuit_refused(),
        injected: crm.faults.injected(),
        learned,
        reconnects: crm.db.rebuilds(),
        token_refreshes: std::sync::atomic::AtomicU64::load(&crm.refreshes, Ordering::Relaxed),
        queued: std::sync::atomic::AtomicU64::load(&calls.queued, Ordering::Relaxed),
        ..Summary::default()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, e, h, x) = self.totals();
        writeln!(f, "Summary after {:.1?}", self.elapsed)?;
        writeln!(
            f,
            "  {:<20} {:>7} {:>7} {:>7} {:>7}",
            "source", "calls", "errors", "healed", "failed"
        )?;
        for r in &self.sources {
            writeln!(
                f,
                "  {:<20} {:>7} {:>7} {:>7} {:>7}",
                r.source, r.calls, r.errors, r.healed, r.failed
            )?;
        }
        writeln!(f, "  {:<20} {:>7} {:>7} {:>7} {:>7}", "TOTAL", c, e, h, x)?;
        writeln!(
            f,
            "\n  {:<20} {:>7} {:>8} {:>7}",
            "strategy", "healed", "deferred", "failed"
        )?;
        for r in &self.strategies {
            writeln!(
                f,
                "  {:<20} {:>7} {:>8} {:>7}",
                r.strategy, r.healed, r.deferred, r.failed
            )?;
        }
        writeln!(f, "\n  outcomes: {:?}", self.outcomes)?;
        writeln!(f, "  error classes by source:")?;
        for ((source, class), n) in &self.classes {
            writeln!(f, "    {source:<20} {class:<18} {n}")?;
        }
        writeln!(f, "  faults injected: {:?}", self.injected)?;
        for (source, (refused, healed)) in &self.circuit_refused {
            writeln!(
                f,
                "  circuit of {source}: refused {refused} call(s) while open, {healed} of them healed"
            )?;
        }
        writeln!(
            f,
            "  hooks: reconnect ran {} time(s), token refreshed {} time(s)",
            self.reconnects, self.token_refreshes
        )?;
        let o = &self.outbox;
        writeln!(
            f,
            "  outbox: {} mail(s) queued during the load; now {} delivered, {} pending, {} dead",
            self.queued, o.delivered, o.pending, o.dead
        )?;
        writeln!(
            f,
            "  mails: {} sent, {} resent under a key already sent (not sent again), recipients mailed twice: {:?}",
            self.mails_sent, self.mails_deduplicated, self.mails_delivered_twice
        )?;
        for e in &self.endpoints {
            writeln!(
                f,
                "  provider region {}: {} call(s), switched away {} time(s){}",
                e.url,
                e.served,
                e.failed,
                if e.down { " (cooling down)" } else { "" }
            )?;
        }
        writeln!(
            f,
            "\n  learned preferences (fingerprint, strategy, healed/tried):"
        )?;
        for (fp, s, healed, tried) in self.learned.iter().take(12) {
            writeln!(f, "    {fp} {s:<18} {healed}/{tried}")?;
        }
        Ok(())
    }
}

/// Integrity of the CRM tables after a run.
#[derive(Debug, Clone, Default)]
pub struct CrmCheck {
    /// Rows per table.
    pub rows: BTreeMap<&'static str, i64>,
    /// Request ids written more than once, per table (must be empty).
    pub duplicated: BTreeMap<&'static str, Vec<String>>,
}

macro_rules! dupes {
    ($conn:expr, $table:ident) => {{
        $table::table
            .group_by($table::request_id)
            .having(diesel::dsl::count_star().gt(1))
            .select($table::request_id)
            .load::<String>($conn)
            .await?
    }};
}

pub(crate) async fn check_crm(crm: &crate::crm::Crm) -> Result<CrmCheck, CrmError> {
    if crm.db.conn().await.is_err() {
        crm.db.rebuild().await?;
    }
    let check = with_conn!(crm.db, |c| {
        let mut check = CrmCheck::default();
        check.rows.insert(
            "contacts",
            contacts::table.count().get_result(&mut *c).await?,
        );
        check
            .rows
            .insert("deals", deals::table.count().get_result(&mut *c).await?);
        check
            .rows
            .insert("credits", credits::table.count().get_result(&mut *c).await?);
        check.rows.insert(
            "projects",
            projects::table.count().get_result(&mut *c).await?,
        );
        check.rows.insert(
            "onboarding_sessions",
            onboarding_sessions::table
                .count()
                .get_result(&mut *c)
                .await?,
        );
        check
            .duplicated
            .insert("contacts", dupes!(&mut *c, contacts));
        check.duplicated.insert("deals", dupes!(&mut *c, deals));
        check.duplicated.insert("credits", dupes!(&mut *c, credits));
        check
            .duplicated
            .insert("projects", dupes!(&mut *c, projects));
        check
            .duplicated
            .insert("onboarding_sessions", dupes!(&mut *c, onboarding_sessions));
        check
    });
    Ok(check)
}

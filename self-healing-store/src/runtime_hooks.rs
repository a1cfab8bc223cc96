//! The parts of the runtime's `EventStore` beyond writing events: advice, learned statistics,
//! health reports and a ping, so a healer warm-starts from (and a fleet shares) what the store
//! knows.
//!
//! Advice is per failure family, not per strategy: it is kept in the `ai_diagnosis` column of a
//! `healing_patterns` row whose strategy is the empty string (no strategy has that name, so the
//! row never counts as statistics).

use std::time::SystemTime;

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use self_healing_runtime::diagnosis::Fingerprint;
use self_healing_runtime::event::{BoxFuture, StoreError as RuntimeStoreError};
use self_healing_runtime::health::HealthReport;
use self_healing_runtime::selection::{Advice, PatternRow};

use crate::db::with_conn;
use crate::records::{HealthCheckRecord, HealthStatus};
use crate::rows::time_us;
use crate::schema::healing_patterns;
use crate::{DieselStore, StoreError};

/// The `strategy` of the row that holds a family's advice.
const ADVICE_ROW: &str = "";

impl DieselStore {
    /// Stores an analyzer's advice for a family of failures (replacing earlier advice).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn save_advice(
        &self,
        fingerprint: Fingerprint,
        advice: &Advice,
    ) -> Result<(), StoreError> {
        self.shared.ensure_ready().await?;
        let json = serde_json::json!({
            "strategy": advice.strategy,
            "confidence": advice.confidence,
            "diagnosis": advice.diagnosis,
            "analyzer": advice.analyzer,
        })
        .to_string();
        let now = time_us(SystemTime::now());
        let fp = fingerprint.to_hex();
        with_conn!(self.shared, |conn, _B| {
            diesel::insert_into(healing_patterns::table)
                .values((
                    healing_patterns::fingerprint.eq(&fp),
                    healing_patterns::strategy.eq(ADVICE_ROW),
                    healing_patterns::tried.eq(0i64),
                    healing_patterns::healed.eq(0i64),
                    healing_patterns::failed.eq(0i64),
                    healing_patterns::total_duration_us.eq(0i64),
                    healing_patterns::first_seen_us.eq(now),
                    healing_patterns::last_seen_us.eq(now),
                    healing_patterns::ai_diagnosis.eq(Some(&json)),
                ))
                .on_conflict((healing_patterns::fingerprint, healing_patterns::strategy))
                .do_update()
                .set((
                    healing_patterns::ai_diagnosis.eq(excluded(healing_patterns::ai_diagnosis)),
                    healing_patterns::last_seen_us.eq(excluded(healing_patterns::last_seen_us)),
                ))
                .execute(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(())
    }

    /// Every family's stored advice.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn load_advice(&self) -> Result<Vec<(Fingerprint, Advice)>, StoreError> {
        self.shared.ensure_ready().await?;
        let rows: Vec<(String, Option<String>)> = with_conn!(self.shared, |conn, _B| {
            healing_patterns::table
                .filter(healing_patterns::strategy.eq(ADVICE_ROW))
                .filter(healing_patterns::ai_diagnosis.is_not_null())
                .select((
                    healing_patterns::fingerprint,
                    healing_patterns::ai_diagnosis,
                ))
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(fp, json)| Some((Fingerprint::from_hex(&fp)?, parse_advice(&json?)?)))
            .collect())
    }

    /// Checks that the database answers, and (SQLite) that its file is still the one the store
    /// has open: a deleted or replaced file is an error, and the store opens the path again.
    ///
    /// # Errors
    /// When it does not answer, or its file moved.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let generation = self.shared.ready_connections().await?;
        self.shared.check_file(&generation)?;
        let _: Vec<String> = with_conn!(self.shared, |conn, _B| {
            healing_patterns::table
                .select(healing_patterns::fingerprint)
                .limit(1)
                .load(conn)
                .await
                .map_err(|e| self.shared.query_error(e))?
        });
        Ok(())
    }

    /// Stores one health report: a row per check.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn save_health_report(&self, report: &HealthReport) -> Result<(), StoreError> {
        for check in &report.checks {
            let details = check
                .healing
                .as_ref()
                .map(|h| serde_json::json!({ "healing": h }).to_string());
            self.record_health_check(&HealthCheckRecord {
                time: report.time,
                name: check.name.clone(),
                status: HealthStatus::parse(check.result.status.as_str())
                    .unwrap_or(HealthStatus::Unhealthy),
                latency: check.duration,
                message: check.result.detail.clone(),
                details,
            })
            .await?;
        }
        Ok(())
    }
}

fn parse_advice(json: &str) -> Option<Advice> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(Advice {
        strategy: v.get("strategy")?.as_str()?.to_owned(),
        confidence: v
            .get("confidence")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0) as f32,
        diagnosis: v
            .get("diagnosis")
            .and_then(|d| d.as_str())
            .unwrap_or_default()
            .to_owned(),
        analyzer: v
            .get("analyzer")
            .and_then(|a| a.as_str())
            .unwrap_or("llm")
            .to_owned(),
    })
}

/// Boxes a store error for the runtime's trait.
fn boxed(e: StoreError) -> RuntimeStoreError {
    Box::new(e)
}

/// The `EventStore` methods besides `write_batch` (which lives with the writer).
pub(crate) fn write_advice<'a>(
    store: &'a DieselStore,
    fingerprint: Fingerprint,
    advice: &'a Advice,
) -> BoxFuture<'a, Result<(), RuntimeStoreError>> {
    Box::pin(async move { store.save_advice(fingerprint, advice).await.map_err(boxed) })
}

pub(crate) fn load_patterns(
    store: &DieselStore,
) -> BoxFuture<'_, Result<Vec<PatternRow>, RuntimeStoreError>> {
    Box::pin(async move { store.load_patterns().await.map_err(boxed) })
}

pub(crate) fn load_advice(
    store: &DieselStore,
) -> BoxFuture<'_, Result<Vec<(Fingerprint, Advice)>, RuntimeStoreError>> {
    Box::pin(async move { DieselStore::load_advice(store).await.map_err(boxed) })
}

pub(crate) fn ping(store: &DieselStore) -> BoxFuture<'_, Result<(), RuntimeStoreError>> {
    Box::pin(async move { DieselStore::ping(store).await.map_err(boxed) })
}

pub(crate) fn write_health<'a>(
    store: &'a DieselStore,
    report: &'a HealthReport,
) -> BoxFuture<'a, Result<(), RuntimeStoreError>> {
    Box::pin(async move { store.save_health_report(report).await.map_err(boxed) })
}

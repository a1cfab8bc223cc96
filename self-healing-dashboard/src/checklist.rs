//! The integration checklist: every registered site, from this process's registry and from the
//! store's `call_sites` (what every instance registered), with what the events say about it.

use std::collections::BTreeMap;

use self_healing_runtime::{CircuitState, Healer, sites};
use self_healing_store::SiteRecord;
use serde::Serialize;

use crate::time_fmt;

/// One row of the integration checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteRow {
    /// The `source` name.
    pub source: String,
    /// The category.
    pub category: String,
    /// The Rust function and module.
    pub function: String,
    /// `file:line` of the definition.
    pub location: String,
    /// Whether the site was called: `Some(true)` when this process called it or an event
    /// names it, `Some(false)` when this process knows it never did, `None` when unknown (a
    /// dashboard running apart from the application sees only failing calls).
    pub exercised: Option<bool>,
    /// Failing calls recorded (healed or not).
    pub failures: u64,
    /// Of those, healed.
    pub healed: u64,
    /// The circuit's state in this process (`None` when the site lives in another process).
    pub circuit: Option<String>,
    /// The last failure, RFC 3339.
    pub last_error: Option<String>,
    /// The last healed call, RFC 3339.
    pub last_healed: Option<String>,
    /// Whether this process registered the site (else only the store knows it).
    pub in_process: bool,
}

impl SiteRow {
    /// The checklist's verdict: `failed` (some failing calls were not healed), `healed` (every
    /// failing call was), `exercised`, `not exercised`, or `not seen` (unknown to a dashboard
    /// running apart from the application).
    pub fn status(&self) -> &'static str {
        if self.failures > self.healed {
            "failed"
        } else if self.healed > 0 {
            "healed"
        } else {
            match self.exercised {
                Some(true) => "exercised",
                Some(false) => "not exercised",
                None => "not seen",
            }
        }
    }

    /// [`status`](Self::status) as a CSS class suffix (`not-exercised`).
    pub fn status_class(&self) -> String {
        self.status().replace(' ', "-")
    }

    /// `yes`, `no` or `?` for the exercised column.
    pub fn exercised_mark(&self) -> &'static str {
        match self.exercised {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        }
    }

    /// The last failure as people read it, or `—`.
    pub fn last_error_label(&self) -> String {
        self.last_error
            .as_deref()
            .map_or_else(|| "—".to_owned(), time_fmt::label_of_rfc3339)
    }

    /// The circuit, or `—`.
    pub fn circuit_label(&self) -> &str {
        self.circuit.as_deref().unwrap_or("—")
    }
}

/// The checklist: the store's sites merged with this process's (as `healer` sees them: see
/// [`healer_of`](crate::circuits::healer_of)), by source, function and module.
pub(crate) fn checklist(stored: &[SiteRecord], healer: Option<&Healer>) -> Vec<SiteRow> {
    let mut rows: BTreeMap<(String, String, String), SiteRow> = BTreeMap::new();
    for s in stored {
        let failures = s.failures;
        rows.insert(
            (s.source.clone(), s.module_path.clone(), s.function.clone()),
            SiteRow {
                source: s.source.clone(),
                category: s.category.clone(),
                function: format!("{}::{}", s.module_path, s.function),
                location: format!("{}:{}", s.file, s.line),
                exercised: (failures > 0).then_some(true),
                failures,
                healed: s.healed,
                circuit: None,
                last_error: s.last_error.map(time_fmt::rfc3339),
                last_healed: s.last_healed.map(time_fmt::rfc3339),
                in_process: false,
            },
        );
    }
    for site in sites() {
        let info = site.info();
        let report = crate::circuits::report(healer, site);
        let key = (
            info.source.to_owned(),
            info.module_path.to_owned(),
            info.function.to_owned(),
        );
        let row = rows.entry(key).or_insert_with(|| SiteRow {
            source: info.source.to_owned(),
            category: info.category.as_str().to_owned(),
            function: format!("{}::{}", info.module_path, info.function),
            location: format!("{}:{}", info.file, info.line),
            exercised: None,
            failures: 0,
            healed: 0,
            circuit: None,
            last_error: None,
            last_healed: None,
            in_process: true,
        });
        row.in_process = true;
        row.exercised = Some(report.exercised || row.exercised == Some(true));
        // The store counts calls of every instance; this process's counters only its own.
        if row.failures == 0 && row.healed == 0 {
            row.failures = report.failures;
            row.healed = report.healed;
            row.last_error = report.last_error.map(time_fmt::rfc3339);
            row.last_healed = report.last_healed.map(time_fmt::rfc3339);
        }
        row.circuit = Some(report.circuit.as_str().to_owned());
    }
    rows.into_values().collect()
}

/// Sites of this process whose circuit is not closed under `healer`.
pub(crate) fn open_circuits(healer: Option<&Healer>) -> Vec<(&'static str, CircuitState)> {
    sites()
        .filter_map(|s| {
            let state = match healer {
                Some(h) => h.circuit_of(s),
                None => s.circuit(),
            };
            (state != CircuitState::Closed).then_some((s.source(), state))
        })
        .collect()
}

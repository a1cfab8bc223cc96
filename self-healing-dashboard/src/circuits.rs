//! Circuits steered by hand from the dashboard and the CLI, and what both need: which healer's
//! view to show, and whether a source exists (with a did-you-mean when it does not).

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use self_healing_runtime::circuit_control::CircuitCommand;
use self_healing_runtime::{ConfigError, Healer, Site, SiteReport};
use self_healing_store::DieselStore;
use serde::Deserialize;

use crate::state::DashboardState;

/// Who the dashboard's commands are recorded as.
const BY: &str = "dashboard";

/// The healer whose state the dashboard shows: its own (given to the builder), else the one in
/// effect here (installed). Handlers run outside any `with_healer` scope, so [`Site::report`]
/// alone would miss a healer that was given but not installed.
pub(crate) fn healer_of(state: &DashboardState) -> Option<Healer> {
    state.inner.healer.clone().or_else(Healer::current)
}

/// `site`'s checklist row under `healer` (closed and empty when there is none).
pub(crate) fn report(healer: Option<&Healer>, site: &Site) -> SiteReport {
    match healer {
        Some(h) => h.report(site),
        None => site.report(),
    }
}

/// Why a source cannot be steered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownSource {
    pub(crate) source: String,
    pub(crate) suggestion: Option<String>,
    /// Some of the sources known, for the message.
    pub(crate) known: Vec<String>,
}

impl std::fmt::Display for UnknownSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown source `{}`", self.source)?;
        if let Some(s) = &self.suggestion {
            write!(f, ": did you mean `{s}`?")?;
        }
        if self.known.is_empty() {
            f.write_str(" (the store has seen no source yet: sources appear once the application registers its sites or records events)")
        } else {
            const SHOWN: usize = 12;
            let mut list = self.known[..self.known.len().min(SHOWN)].join(", ");
            if self.known.len() > SHOWN {
                list.push_str(&format!(", and {} more", self.known.len() - SHOWN));
            }
            write!(f, " (known: {list})")
        }
    }
}

/// Checks `source` against the sources the store has seen (call sites, events, circuit news)
/// and this process's registered sites.
///
/// # Errors
/// `Ok(Err(_))` for an unknown source, `Err(_)` when the store cannot be read.
pub(crate) async fn check_source(
    store: &DieselStore,
    source: &str,
) -> Result<Result<(), UnknownSource>, self_healing_store::StoreError> {
    if self_healing_runtime::sites().any(|s| s.source() == source)
        || store.source_known(source).await?
    {
        return Ok(Ok(()));
    }
    let mut known = store.known_sources().await?;
    known.extend(self_healing_runtime::sites().map(|s| s.source().to_owned()));
    known.sort();
    known.dedup();
    Ok(Err(UnknownSource {
        source: source.to_owned(),
        suggestion: closest(source, &known).map(str::to_owned),
        known,
    }))
}

/// The fields of a circuit button's form.
#[derive(Debug, Deserialize)]
pub(crate) struct SteerForm {
    /// The page's anti-CSRF token.
    #[serde(default)]
    pub(crate) csrf: String,
}

/// The path of the form that applies `command` to `source`'s circuit.
pub(crate) fn action(source: &str, command: CircuitCommand) -> String {
    let mut path = format!("{}/circuits/", crate::BASE);
    for b in source.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            path.push(char::from(b));
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path.push('/');
    path.push_str(command.as_str());
    path
}

/// `POST /platform/system-health/circuits/{source}/{command}` (admin; same origin; the page's
/// token unless the request carries the bearer token): applies `open`, `close` or `reset` to
/// the circuit of `source` here and on every instance sharing the store (through the
/// dashboard's healer when it has one and knows the source, else through the store), then
/// redirects back to the page (303). `400` for an unknown command, `403` for a cross-site
/// request or a missing or stale token, `404` for an unknown source (with a did-you-mean),
/// `503` when the store cannot take the command.
pub(crate) async fn steer(
    State(state): State<DashboardState>,
    Path((source, command)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<SteerForm>, FormRejection>,
) -> Response {
    // A bearer client may send no body at all.
    let presented = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Err((status, why)) = crate::guard::check_post(&state, &headers, &presented) {
        return crate::pages::error_page(status, &why);
    }
    let command: CircuitCommand = match command.parse() {
        Ok(c) => c,
        Err(e) => return crate::pages::error_page(StatusCode::BAD_REQUEST, &e),
    };
    if let Some(healer) = &state.inner.healer {
        match healer.steer_fleet(&source, command, BY) {
            Ok(_) => return back(),
            // Not a site of this process: the store may still know it (other instances).
            Err(ConfigError::UnknownSource { .. }) => {}
            Err(e) => {
                return crate::pages::error_page(StatusCode::BAD_REQUEST, &e.to_string());
            }
        }
    }
    let store = &state.inner.store;
    match check_source(store, &source).await {
        Ok(Ok(())) => {}
        Ok(Err(unknown)) => {
            return crate::pages::error_page(StatusCode::NOT_FOUND, &unknown.to_string());
        }
        Err(e) => return crate::pages::error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    match store
        .publish_circuit_command(BY, &source, command, BY)
        .await
    {
        Ok(()) => back(),
        Err(e) => {
            tracing::warn!(error = %e, source, command = command.as_str(), "self-healing dashboard: could not publish a circuit command");
            crate::pages::error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

/// 303 back to the page's circuits.
fn back() -> Response {
    Redirect::to(&format!("{}#circuits", crate::BASE)).into_response()
}

/// The name in `known` nearest to `name`, when it is close enough to be a typo.
pub(crate) fn closest<'k>(name: &str, known: &'k [String]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (distance(name, k), k.as_str()))
        .filter(|(d, k)| *d <= (k.chars().count() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance with adjacent transpositions (optimal string alignment), case-insensitive.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_source() {
        let known = vec!["chargeCard".to_owned(), "sendMail".to_owned()];
        assert_eq!(closest("chargeCrad", &known), Some("chargeCard"));
        assert_eq!(closest("chargecard", &known), Some("chargeCard"));
        assert_eq!(closest("sendmial", &known), Some("sendMail"));
        assert_eq!(closest("refundOrder", &known), None);
        let e = UnknownSource {
            source: "chargeCrad".into(),
            suggestion: Some("chargeCard".into()),
            known,
        };
        assert_eq!(
            e.to_string(),
            "unknown source `chargeCrad`: did you mean `chargeCard`? (known: chargeCard, sendMail)"
        );
    }
}

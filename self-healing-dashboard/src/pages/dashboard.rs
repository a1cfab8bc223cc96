//! `GET /platform/system-health`: the whole dashboard in one server-rendered page. The live feed
//! then grows through `assets/app.js` and the SSE stream.

use std::time::SystemTime;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::Response;
use self_healing_runtime::circuit_control::CircuitCommand;
use self_healing_runtime::{Category, Outcome, sites};

use crate::api::{EventsQuery, ParsedQuery, event_views};
use crate::charts::{self, Chart, OUTCOMES};
use crate::checklist::{SiteRow, checklist, open_circuits};
use crate::families::{FamilyView, PAGE_FAMILIES};
use crate::health::{current_report, overall};
use crate::outbox::{OutboxPanel, PANEL_ENTRIES};
use crate::state::DashboardState;
use crate::status::{Recent, badge};
use crate::storm::{FeedRow, collapse};
use crate::summary::{DEFAULT_HOURS, Summary, outcome_label};
use crate::time_fmt;
use crate::views::AdviceView;

/// A number with a label and a CSS class.
struct Tile {
    label: String,
    count: u64,
    class: &'static str,
}

/// An option of a filter's `<select>`.
struct Choice {
    value: &'static str,
    selected: bool,
}

/// The filter form as submitted.
struct FilterForm {
    source: String,
    category: String,
    outcome: String,
    severity: String,
    fingerprint: String,
    categories: Vec<Choice>,
    outcomes: Vec<Choice>,
    severities: Vec<Choice>,
}

/// A circuit button: a form posting to `path`.
struct Action {
    label: &'static str,
    path: String,
}

fn actions(source: &str) -> Vec<Action> {
    [
        CircuitCommand::Open,
        CircuitCommand::Close,
        CircuitCommand::Reset,
    ]
    .into_iter()
    .map(|c| Action {
        label: c.as_str(),
        path: crate::circuits::action(source, c),
    })
    .collect()
}

/// A circuit of this process.
struct CircuitRow {
    source: &'static str,
    category: &'static str,
    state: &'static str,
    held_open: bool,
    actions: Vec<Action>,
}

/// An instance's circuit, as it last published it to the store.
struct FleetRow {
    source: String,
    instance: String,
    state: &'static str,
    held_open: bool,
    since: String,
    actions: Vec<Action>,
}

struct CheckRow {
    name: String,
    status: &'static str,
    detail: String,
    took: String,
    healing: Option<String>,
}

struct StoredCheckRow {
    name: String,
    instance: String,
    status: &'static str,
    message: String,
    time: String,
}

struct CounterGroup {
    group: String,
    counters: Vec<(&'static str, u64)>,
}

struct FingerprintRow {
    fingerprint: String,
    source: String,
    class: String,
    message: String,
    failures: u64,
    last: String,
    advice: Option<AdviceView>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    status: &'static str,
    generated: String,
    hours: u32,
    calls: u64,
    heal_rate: String,
    totals: Vec<Tile>,
    legend: Vec<Tile>,
    hourly: Chart,
    rates: Chart,
    sources: Chart,
    /// The activity list, runs of identical events collapsed.
    events: Vec<FeedRow>,
    older: Option<String>,
    form: FilterForm,
    filtered: bool,
    /// An older page or a closed time range: live events are not added to it.
    paused: bool,
    circuits: Vec<CircuitRow>,
    /// This process's instance id, when the dashboard has a healer.
    instance: Option<String>,
    fleet: Vec<FleetRow>,
    /// The circuit forms' anti-CSRF token (empty for bearer clients, which need none).
    csrf: String,
    checks: Vec<CheckRow>,
    checks_time: Option<String>,
    stored_checks: Vec<StoredCheckRow>,
    sites: Vec<SiteRow>,
    fingerprints: Vec<FingerprintRow>,
    families: Vec<FamilyView>,
    /// The outbox of `queue_for_later` sites.
    outbox: OutboxPanel,
    pipeline: Vec<CounterGroup>,
    can_logout: bool,
}

/// The event pipeline's counters: the healer's queue, the store, and any added groups (LLM,
/// notifications).
fn pipeline(state: &DashboardState) -> Vec<CounterGroup> {
    let i = &state.inner;
    let mut groups = Vec::new();
    if let Some(h) = &i.healer {
        let q = h.queue_stats();
        groups.push(CounterGroup {
            group: "event queue".into(),
            counters: vec![
                ("recorded", q.recorded),
                ("written", q.written),
                ("folded", q.folded),
                ("dropped", q.dropped),
                ("lost to store", q.lost_to_store),
                ("waiting", q.depth),
            ],
        });
    }
    let s = i.store.stats();
    groups.push(CounterGroup {
        group: format!("store ({})", i.store.backend().as_str()),
        counters: vec![
            ("written", s.written),
            ("buffered", s.buffered),
            ("folded", s.folded),
            ("dropped", s.dropped),
            ("failed writes", s.failed_writes),
        ],
    });
    for (group, read) in &i.counters {
        groups.push(CounterGroup {
            group: (*group).to_owned(),
            counters: read(),
        });
    }
    groups
}

fn choices<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str, current: &str) -> Vec<Choice> {
    all.iter()
        .map(|v| Choice {
            value: name(*v),
            selected: name(*v) == current,
        })
        .collect()
}

fn filter_form(q: &EventsQuery) -> FilterForm {
    let text = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_owned();
    let (category, outcome, severity) = (text(&q.category), text(&q.outcome), text(&q.severity));
    FilterForm {
        source: text(&q.source),
        fingerprint: text(&q.fingerprint),
        categories: choices(&Category::ALL, Category::as_str, &category),
        outcomes: choices(&Outcome::ALL, |o| o.as_str(), &outcome),
        severities: choices(&crate::api::SEVERITIES, |s| s.as_str(), &severity),
        category,
        outcome,
        severity,
    }
}

/// This process's circuits (under the dashboard's healer), one row per source.
fn circuit_rows(healer: Option<&self_healing_runtime::Healer>) -> Vec<CircuitRow> {
    let views = healer.map(|h| h.circuits());
    let mut rows: Vec<CircuitRow> = sites()
        .map(|s| {
            let (state, held_open) = match &views {
                Some(views) => views
                    .iter()
                    .find(|v| v.source == s.source())
                    .map_or((s.circuit(), false), |v| (v.state, v.held_open)),
                None => (s.circuit(), false),
            };
            CircuitRow {
                source: s.source(),
                category: s.category().as_str(),
                state: state.as_str(),
                held_open,
                actions: actions(s.source()),
            }
        })
        .collect();
    rows.sort_by_key(|r| r.source);
    rows.dedup_by_key(|r| r.source);
    rows
}

/// `GET /platform/system-health`, with the feed filtered by the query string (see
/// `api/events`).
pub(crate) async fn dashboard(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Response {
    let ParsedQuery {
        filter,
        after,
        limit,
    } = match q.parse(SystemTime::now()) {
        Ok(p) => p,
        Err(e) => return super::error_page(StatusCode::BAD_REQUEST, &e),
    };
    let store = &state.inner.store;
    let loaded = tokio::try_join!(
        Summary::load(store, DEFAULT_HOURS),
        store.events(&filter, after, limit),
        store.sites(),
        store.latest_health_checks(),
        store.circuit_states(),
        store.families(PAGE_FAMILIES),
        OutboxPanel::load(store, PANEL_ENTRIES),
    );
    let (summary, page, stored_sites, stored_checks, fleet, families, outbox) = match loaded {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "self-healing dashboard: store query failed");
            return super::error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
        }
    };
    let report = current_report(&state).await;
    let healer = crate::circuits::healer_of(&state);
    let open = open_circuits(healer.as_ref());
    let status = badge(
        overall(&report, &open),
        Recent::of(&summary.hourly, summary.now),
    );
    let totals = summary.totals();
    let advice = |fp| {
        state
            .inner
            .healer
            .as_ref()
            .and_then(|h| h.patterns().advice(fp))
            .map(|a| AdviceView::from(&a))
    };
    let page_view = DashboardPage {
        status: status.as_str(),
        generated: time_fmt::short(summary.now),
        hours: summary.hours,
        calls: summary.calls(),
        heal_rate: time_fmt::share(summary.healed(), summary.calls()),
        totals: OUTCOMES
            .iter()
            .zip(totals)
            .skip(1)
            .map(|((o, class), count)| Tile {
                label: outcome_label(*o),
                count,
                class,
            })
            .collect(),
        legend: OUTCOMES
            .iter()
            .map(|(o, class)| Tile {
                label: outcome_label(*o),
                count: 0,
                class,
            })
            .collect(),
        hourly: charts::hourly(&summary.hourly, summary.now, summary.hours),
        rates: charts::heal_rates(&summary.strategies),
        sources: charts::failing_sources(&summary.sources),
        events: collapse(event_views(&state, &page.events)),
        older: page.next.map(|c| q.with_after(&c)),
        form: filter_form(&q),
        filtered: q.is_filtered(),
        paused: after.is_some() || filter.until.is_some(),
        circuits: circuit_rows(healer.as_ref()),
        instance: healer.as_ref().map(|h| h.instance_id().to_owned()),
        fleet: fleet
            .iter()
            .map(|r| FleetRow {
                source: r.source.clone(),
                instance: r.instance.clone(),
                state: r.state.as_str(),
                held_open: r.held_open,
                since: time_fmt::short(r.since),
                actions: actions(&r.source),
            })
            .collect(),
        csrf: state.inner.csrf.token(&state, &headers).unwrap_or_default(),
        checks: report
            .checks
            .iter()
            .map(|c| CheckRow {
                name: c.name.clone(),
                status: c.result.status.as_str(),
                detail: c.result.detail.clone(),
                took: time_fmt::duration(c.duration),
                healing: c.healing.clone(),
            })
            .collect(),
        checks_time: Some(time_fmt::short(report.time)),
        stored_checks: stored_checks
            .iter()
            .map(|c| StoredCheckRow {
                name: c.check.name.clone(),
                instance: c.instance.clone(),
                status: c.check.status.as_str(),
                message: c.check.message.clone(),
                time: time_fmt::short(c.check.time),
            })
            .collect(),
        sites: checklist(&stored_sites, healer.as_ref()),
        fingerprints: summary
            .fingerprints
            .iter()
            .map(|f| FingerprintRow {
                fingerprint: f.fingerprint.to_hex(),
                source: f.source.clone(),
                class: f.class.clone(),
                message: f.message.clone(),
                failures: f.failures,
                last: time_fmt::short(f.last),
                advice: advice(f.fingerprint),
            })
            .collect(),
        families: families.iter().map(FamilyView::from).collect(),
        outbox,
        pipeline: pipeline(&state),
        can_logout: state.inner.admin.is_some(),
    };
    super::html(StatusCode::OK, page_view.render())
}

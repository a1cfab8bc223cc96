//! The CRM actions, each wrapped by `#[self_healing]` with the guide's source names and categories.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use self_healing::self_healing;
use tokio::sync::RwLock;

use crate::db::schema::{contacts, credits, deals, onboarding_sessions, projects, templates};
use crate::db::{Db, with_conn};
use crate::error::CrmError;
use crate::faults::{DbFault, Faults};

/// The pipeline's stages. `move_deal` trusts this list; the load driver (like a real client)
/// also sends "archived", which nobody added here: the genuine bug of the demo.
pub(crate) const STAGES: [&str; 5] = ["lead", "qualified", "proposal", "won", "lost"];

/// The application state every action gets.
#[derive(Debug)]
pub(crate) struct Crm {
    pub(crate) db: Db,
    pub(crate) faults: Faults,
    pub(crate) http: reqwest::Client,
    /// The email provider's regions, primary first: `switch_endpoint` moves calls to the
    /// standby while the primary is down.
    pub(crate) providers: self_healing::endpoints::Endpoints,
    /// What the provider answered, and the switch of its primary region's outage.
    pub(crate) provider_stats: std::sync::Arc<crate::provider::ProviderStats>,
    pub(crate) token: RwLock<String>,
    pub(crate) refreshes: AtomicU64,
    pub(crate) seq: AtomicU64,
    /// Distinguishes this run's request ids from earlier runs on the same database.
    pub(crate) run: String,
}

impl Crm {
    /// A fresh request id, for writes made outside a keyed call (the HTTP API's).
    pub(crate) fn request_id(&self) -> String {
        format!("{}-{}", self.run, self.seq.fetch_add(1, Ordering::Relaxed))
    }

    /// Posts one mail to the provider region in use. A keyed call sends its key as the
    /// `Idempotency-Key`: a mail whose answer was lost, sent again, is not delivered twice.
    pub(crate) async fn post_email(&self, to: &str, subject: &str) -> Result<(), CrmError> {
        let token = self.token.read().await.clone();
        let mut request = self
            .http
            .post(format!("{}/emails", self.providers.current()))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(email_body(to, subject))
            .timeout(Duration::from_secs(5));
        if let Some(key) = self_healing::call_key() {
            request = request.header("idempotency-key", key.to_string());
        }
        let resp = request
            .send()
            .await
            .map_err(|e| CrmError::Http(e.to_string()))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 => Err(CrmError::TokenExpired),
            429 => Err(CrmError::RateLimited(
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("1")
                    .to_owned(),
            )),
            code => Err(CrmError::Provider(code)),
        }
    }

    /// Runs the fault layer before a statement.
    async fn before(&self, write: bool) -> Result<DbFault, CrmError> {
        match self.faults.db(write) {
            // Each backend's own word for "try again".
            DbFault::Locked if self.db.is_postgres() => Err(CrmError::SerializationFailure),
            DbFault::Locked => Err(CrmError::Locked),
            DbFault::LostConnection => {
                self.db.lose_connection().await;
                Err(CrmError::ConnectionLost)
            }
            DbFault::Slow => {
                tokio::time::sleep(self.faults.rates.slow_for).await;
                Ok(DbFault::Slow)
            }
            f => Ok(f),
        }
    }

    /// Runs the fault layer after a committed write.
    async fn after(&self, fault: DbFault) -> Result<(), CrmError> {
        if fault == DbFault::ResetAfterCommit {
            self.db.lose_connection().await;
            return Err(CrmError::ConnectionLost);
        }
        Ok(())
    }

    /// The credential-refresh hook: asks the provider for a new token.
    pub(crate) async fn refresh_token(&self) -> Result<(), CrmError> {
        let token = self
            .http
            .post(format!("{}/token", self.providers.current()))
            .send()
            .await
            .map_err(|e| CrmError::Http(e.to_string()))?
            .text()
            .await
            .map_err(|e| CrmError::Http(e.to_string()))?;
        *self.token.write().await = token;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The request id of a keyed write: its call's idempotency key, the same in every attempt, so a
/// re-run after a commit whose answer was lost finds its own row instead of writing another.
fn request_key() -> Result<String, CrmError> {
    self_healing::call_key()
        .map(|key| key.to_string())
        .ok_or_else(|| CrmError::Bug("a keyed write ran without a call key".into()))
}

/// `INSERT … ON CONFLICT (request_id) DO NOTHING RETURNING id`, or the id that an earlier
/// attempt of the same call inserted.
macro_rules! insert_keyed {
    ($c:expr, $table:ident, $rid:expr, ($($value:expr),* $(,)?)) => {{
        let inserted = diesel::insert_into($table::table)
            .values(($($value,)* $table::request_id.eq($rid)))
            .on_conflict($table::request_id)
            .do_nothing()
            .returning($table::id)
            .get_result::<i64>(&mut *$c)
            .await
            .optional()?;
        match inserted {
            Some(id) => id,
            None => {
                $table::table
                    .filter($table::request_id.eq($rid))
                    .select($table::id)
                    .first::<i64>(&mut *$c)
                    .await?
            }
        }
    }};
}

// ---------------------------------------------------------------- credits

/// Current balance of an organization.
pub(crate) async fn balance(crm: &Crm, org: i64) -> Result<i64, CrmError> {
    let deltas: Vec<i64> = with_conn!(crm.db, |c| {
        credits::table
            .filter(credits::org_id.eq(org))
            .select(credits::delta)
            .load::<i64>(c)
            .await?
    });
    Ok(deltas.iter().sum())
}

async fn ledger(crm: &Crm, org: i64, delta: i64, reason: &str, rid: &str) -> Result<i64, CrmError> {
    let fault = crm.before(true).await?;
    // One connection for the write and the read-back: a "connection refused" after the write
    // would tell the healer the call never reached the database, and it would re-run it.
    let balance = with_conn!(crm.db, |c| {
        // Written once per request id, however often the call runs.
        diesel::insert_into(credits::table)
            .values((
                credits::org_id.eq(org),
                credits::delta.eq(delta),
                credits::reason.eq(reason),
                credits::request_id.eq(rid),
            ))
            .on_conflict(credits::request_id)
            .do_nothing()
            .execute(&mut *c)
            .await?;
        credits::table
            .filter(credits::org_id.eq(org))
            .select(credits::delta)
            .load::<i64>(&mut *c)
            .await?
            .iter()
            .sum()
    });
    crm.after(fault).await?;
    Ok(balance)
}

/// Whether an earlier attempt of this call wrote its ledger row already.
async fn written(crm: &Crm, rid: &str) -> Result<bool, CrmError> {
    let n: i64 = with_conn!(crm.db, |c| {
        credits::table
            .filter(credits::request_id.eq(rid))
            .count()
            .get_result(&mut *c)
            .await?
    });
    Ok(n > 0)
}

/// Spends credits: keyed, so a re-run charges once.
#[self_healing(source = "useCredits", category = "database", idempotent = "keyed")]
pub(crate) async fn use_credits(crm: &Crm, org: i64, amount: i64) -> Result<i64, CrmError> {
    let rid = request_key()?;
    // The balance rule holds for the first write; a re-run after a lost commit finds it done.
    if !written(crm, &rid).await? && balance(crm, org).await? < amount {
        return Err(CrmError::Rule("insufficient credits".into()));
    }
    ledger(crm, org, -amount, "usage", &rid).await
}

/// Adds credits: keyed.
#[self_healing(source = "addCredits", category = "database", idempotent = "keyed")]
pub(crate) async fn add_credits(crm: &Crm, org: i64, amount: i64) -> Result<i64, CrmError> {
    let rid = request_key()?;
    ledger(crm, org, amount, "top-up", &rid).await
}

/// Moves credits between two organizations in one transaction: the debit and the credit are
/// written together or not at all. Not idempotent (nothing keys it), yet healable: a
/// serialization failure or a lock inside the transaction rolls it back whole, and
/// `rollback::transaction` tells the healer so, which lets the `rollback` strategy run it again.
#[self_healing(source = "transferCredits", category = "database", idempotent = false)]
pub(crate) async fn transfer_credits(
    crm: &Crm,
    from: i64,
    to: i64,
    amount: i64,
) -> Result<(), CrmError> {
    let rid = crm.request_id();
    let faults = &crm.faults;
    let is_postgres = crm.db.is_postgres();
    with_conn!(crm.db, |c| {
        self_healing::rollback::transaction(c, async |c| {
            diesel::insert_into(credits::table)
                .values((
                    credits::org_id.eq(from),
                    credits::delta.eq(-amount),
                    credits::reason.eq("transfer out"),
                    credits::request_id.eq(format!("{rid}-out")),
                ))
                .execute(&mut *c)
                .await?;
            // Contention between the two statements: the database aborts the transaction.
            if faults.db(true) == DbFault::Locked {
                return Err(if is_postgres {
                    CrmError::SerializationFailure
                } else {
                    CrmError::Locked
                });
            }
            diesel::insert_into(credits::table)
                .values((
                    credits::org_id.eq(to),
                    credits::delta.eq(amount),
                    credits::reason.eq("transfer in"),
                    credits::request_id.eq(format!("{rid}-in")),
                ))
                .execute(&mut *c)
                .await?;
            Ok(())
        })
        .await?
    });
    Ok(())
}

// ---------------------------------------------------------------- contacts

/// Creates a contact: keyed, so a re-run after a lost commit returns the same contact.
#[self_healing(source = "createContact", category = "database", idempotent = "keyed")]
pub(crate) async fn create_contact(
    crm: &Crm,
    org: i64,
    name: String,
    email: String,
) -> Result<i64, CrmError> {
    let rid = request_key()?;
    let fault = crm.before(true).await?;
    let id = with_conn!(crm.db, |c| {
        insert_keyed!(
            c,
            contacts,
            &rid,
            (
                contacts::org_id.eq(org),
                contacts::name.eq(&name),
                contacts::email.eq(&email),
            )
        )
    });
    crm.after(fault).await?;
    Ok(id)
}

/// Renames a contact (idempotent: setting the same name twice is harmless).
#[self_healing(source = "updateContact", category = "database")]
pub(crate) async fn update_contact(crm: &Crm, id: i64, name: String) -> Result<usize, CrmError> {
    let fault = crm.before(true).await?;
    let n = with_conn!(crm.db, |c| {
        diesel::update(contacts::table.find(id))
            .set(contacts::name.eq(&name))
            .execute(&mut *c)
            .await?
    });
    crm.after(fault).await?;
    Ok(n)
}

/// Deletes a contact (idempotent).
#[self_healing(source = "deleteContact", category = "database")]
pub(crate) async fn delete_contact(crm: &Crm, id: i64) -> Result<usize, CrmError> {
    let fault = crm.before(true).await?;
    let n = with_conn!(crm.db, |c| {
        diesel::delete(contacts::table.find(id))
            .execute(&mut *c)
            .await?
    });
    crm.after(fault).await?;
    Ok(n)
}

/// One contact by id; slow calls are cut at 150 ms and re-run.
#[self_healing(source = "getContact", category = "database", timeout = "150ms")]
pub(crate) async fn get_contact(crm: &Crm, id: i64) -> Result<Option<String>, CrmError> {
    crm.before(false).await?;
    with_conn!(crm.db, |c| Ok(contacts::table
        .find(id)
        .select(contacts::name)
        .first::<String>(&mut *c)
        .await
        .optional()?))
}

/// The contact list of an organization, from the replica; served from cache during an outage.
#[self_healing(
    source = "getContacts",
    category = "database",
    cache = "60s",
    cache_skip(crm)
)]
pub(crate) async fn get_contacts(crm: &Crm, org: i64) -> Result<Vec<String>, CrmError> {
    if crm.faults.outage() {
        return Err(CrmError::Unavailable);
    }
    crm.before(false).await?;
    with_conn!(crm.db, |c| Ok(contacts::table
        .filter(contacts::org_id.eq(org))
        .select(contacts::name)
        .order(contacts::id.desc())
        .limit(20)
        .load::<String>(&mut *c)
        .await?))
}

// ---------------------------------------------------------------- deals

/// Creates a deal: keyed.
#[self_healing(source = "createDeal", category = "database", idempotent = "keyed")]
pub(crate) async fn create_deal(
    crm: &Crm,
    org: i64,
    title: String,
    amount: i64,
) -> Result<i64, CrmError> {
    let rid = request_key()?;
    let fault = crm.before(true).await?;
    let id = with_conn!(crm.db, |c| {
        insert_keyed!(
            c,
            deals,
            &rid,
            (
                deals::org_id.eq(org),
                deals::title.eq(&title),
                deals::stage.eq("lead"),
                deals::amount.eq(amount),
            )
        )
    });
    crm.after(fault).await?;
    Ok(id)
}

/// Changes a deal's amount (idempotent).
#[self_healing(source = "updateDeal", category = "database")]
pub(crate) async fn update_deal(crm: &Crm, id: i64, amount: i64) -> Result<usize, CrmError> {
    let fault = crm.before(true).await?;
    let n = with_conn!(crm.db, |c| {
        diesel::update(deals::table.find(id))
            .set(deals::amount.eq(amount))
            .execute(&mut *c)
            .await?
    });
    crm.after(fault).await?;
    Ok(n)
}

/// Moves a deal to another pipeline stage (idempotent). Has the demo's genuine bug.
#[self_healing(source = "moveDeal", category = "database")]
pub(crate) async fn move_deal(crm: &Crm, id: i64, stage: String) -> Result<usize, CrmError> {
    let index = STAGES.iter().position(|s| *s == stage).ok_or_else(|| {
        CrmError::Bug(format!(
            "unreachable: stage {stage:?} missing from the pipeline"
        ))
    })?;
    let fault = crm.before(true).await?;
    let n = with_conn!(crm.db, |c| {
        diesel::update(deals::table.find(id))
            .set(deals::stage.eq(STAGES[index]))
            .execute(&mut *c)
            .await?
    });
    crm.after(fault).await?;
    Ok(n)
}

// ---------------------------------------------------------------- projects

/// Creates a project: keyed (an unkeyed re-run would create two).
#[self_healing(source = "createProject", category = "database", idempotent = "keyed")]
pub(crate) async fn create_project(crm: &Crm, org: i64, name: String) -> Result<i64, CrmError> {
    let rid = request_key()?;
    let fault = crm.before(true).await?;
    let id = with_conn!(crm.db, |c| {
        insert_keyed!(
            c,
            projects,
            &rid,
            (
                projects::org_id.eq(org),
                projects::name.eq(&name),
                projects::status.eq("active"),
            )
        )
    });
    crm.after(fault).await?;
    Ok(id)
}

/// Changes a project's status (idempotent).
#[self_healing(source = "updateProject", category = "database")]
pub(crate) async fn update_project(crm: &Crm, id: i64, status: String) -> Result<usize, CrmError> {
    let fault = crm.before(true).await?;
    let n = with_conn!(crm.db, |c| {
        diesel::update(projects::table.find(id))
            .set(projects::status.eq(&status))
            .execute(&mut *c)
            .await?
    });
    crm.after(fault).await?;
    Ok(n)
}

/// Reads one project (a read: re-runs are safe).
#[self_healing(source = "getProjectById", category = "database")]
pub(crate) async fn get_project_by_id(crm: &Crm, id: i64) -> Result<Option<String>, CrmError> {
    crm.before(false).await?;
    with_conn!(crm.db, |c| Ok(projects::table
        .find(id)
        .select(projects::name)
        .first::<String>(&mut *c)
        .await
        .optional()?))
}

// ---------------------------------------------------------------- templates

/// The onboarding templates every new organization starts from.
const TEMPLATES: [(&str, &str); 3] = [
    ("welcome", "Welcome aboard, {{name}}!"),
    ("kickoff", "Your kickoff call is on {{date}}."),
    ("checklist", "Please complete your onboarding checklist."),
];

/// Seeds the onboarding templates (idempotent by construction: `ON CONFLICT (name) DO NOTHING`
/// on unique names, so a re-run adds nothing).
#[self_healing(source = "api/seed-templates", category = "database")]
pub(crate) async fn seed_templates(crm: &Crm) -> Result<usize, CrmError> {
    let fault = crm.before(true).await?;
    let inserted = with_conn!(crm.db, |c| {
        let mut inserted = 0;
        // One statement per row: diesel-async cannot batch SQLite inserts (diesel_async#277).
        for (name, body) in TEMPLATES {
            inserted += diesel::insert_into(templates::table)
                .values((templates::name.eq(name), templates::body.eq(body)))
                .on_conflict(templates::name)
                .do_nothing()
                .execute(&mut *c)
                .await?;
        }
        inserted
    });
    crm.after(fault).await?;
    Ok(inserted)
}

// ---------------------------------------------------------------- onboarding

/// Starts a client onboarding session: keyed (an unkeyed re-run would open two sessions).
#[self_healing(
    source = "startOnboarding",
    category = "database",
    idempotent = "keyed"
)]
pub(crate) async fn start_onboarding(crm: &Crm, email: String) -> Result<String, CrmError> {
    let rid = request_key()?;
    let fault = crm.before(true).await?;
    let token = format!("onb-{rid}");
    with_conn!(crm.db, |c| {
        insert_keyed!(
            c,
            onboarding_sessions,
            &rid,
            (
                onboarding_sessions::token.eq(&token),
                onboarding_sessions::email.eq(&email),
                onboarding_sessions::status.eq("started"),
                onboarding_sessions::responses.eq("{}"),
            )
        );
    });
    crm.after(fault).await?;
    Ok(token)
}

/// Saves the answer to one onboarding step (idempotent: the step's answer is overwritten).
#[self_healing(source = "saveStepResponse", category = "database")]
pub(crate) async fn save_step_response(
    crm: &Crm,
    token: String,
    step: u32,
    answer: String,
) -> Result<usize, CrmError> {
    let fault = crm.before(true).await?;
    let n = with_conn!(crm.db, |c| {
        let current: Option<String> = onboarding_sessions::table
            .filter(onboarding_sessions::token.eq(&token))
            .select(onboarding_sessions::responses)
            .first(&mut *c)
            .await
            .optional()?;
        let mut map: serde_json::Map<String, serde_json::Value> = current
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        map.insert(format!("step{step}"), answer.into());
        let json = serde_json::Value::Object(map).to_string();
        diesel::update(onboarding_sessions::table.filter(onboarding_sessions::token.eq(&token)))
            .set(onboarding_sessions::responses.eq(json))
            .execute(&mut *c)
            .await?
    });
    crm.after(fault).await?;
    Ok(n)
}

/// Completes an onboarding session (idempotent).
#[self_healing(source = "completeOnboarding", category = "database")]
pub(crate) async fn complete_onboarding(crm: &Crm, token: String) -> Result<usize, CrmError> {
    let fault = crm.before(true).await?;
    let n = with_conn!(crm.db, |c| {
        diesel::update(onboarding_sessions::table.filter(onboarding_sessions::token.eq(&token)))
            .set(onboarding_sessions::status.eq("completed"))
            .execute(&mut *c)
            .await?
    });
    crm.after(fault).await?;
    Ok(n)
}

// ---------------------------------------------------------------- email API

/// The provider's request for a mail to `to`: built by serde, so a `to` holding quotes stays
/// one string and cannot add fields (`a","bcc":"x@evil`).
pub(crate) fn email_body(to: &str, subject: &str) -> String {
    serde_json::json!({ "to": to, "subject": subject }).to_string()
}

/// Sends a test email through the provider (an external API).
#[self_healing(source = "api/test-email", category = "api")]
pub(crate) async fn send_test_email(crm: &Crm, to: String) -> Result<(), CrmError> {
    crm.post_email(&to, "Welcome").await
}

/// The CRM the queued mails are sent through: set by each run, read by the outbox worker's
/// replays (which get only the mail's own arguments).
static MAILER: std::sync::RwLock<Option<std::sync::Arc<Crm>>> = std::sync::RwLock::new(None);

/// Makes `crm` the one queued mails are sent through.
pub(crate) fn set_mailer(crm: std::sync::Arc<Crm>) {
    *MAILER.write().unwrap_or_else(|p| p.into_inner()) = Some(crm);
}

fn mailer() -> Result<std::sync::Arc<Crm>, CrmError> {
    MAILER
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or_else(|| CrmError::Setup("no CRM to send mail through".into()))
}

/// Welcomes a new contact by mail: fire-and-forget work. When the provider cannot take it now
/// (rate-limited, down) and the re-runs do not help, the call is queued in the store's outbox
/// and the outbox worker sends it later, under the same idempotency key.
#[self_healing(source = "sendWelcomeEmail", category = "api", queue_for_later)]
pub(crate) async fn send_welcome_email(to: String, name: String) -> Result<(), CrmError> {
    mailer()?
        .post_email(&to, &format!("Welcome aboard, {name}"))
        .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_test_email_body_is_built_by_serde() {
        let body = super::email_body("a\",\"bcc\":\"x@evil", "Welcome");
        let v: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        let fields = v.as_object().expect("an object");
        assert_eq!(fields.len(), 2, "no smuggled field: {body}");
        assert_eq!(v["to"], "a\",\"bcc\":\"x@evil");
        assert_eq!(v["subject"], "Welcome");
    }
}

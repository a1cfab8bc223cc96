#![deny(warnings)]
//! An axum-handler-like `async fn` (extractor patterns, shared state): its future is `Send`, so it
//! can be spawned and served.

use std::sync::Arc;

use self_healing::self_healing;

#[derive(Clone)]
struct State<T>(T);
#[derive(Clone)]
struct Json<T>(T);

#[derive(Clone, Debug, PartialEq)]
struct NewContact {
    name: String,
}

#[derive(Default)]
struct Db {
    rows: tokio::sync::Mutex<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("database unavailable")]
    Db,
    #[error(transparent)]
    Rejected(#[from] self_healing::Rejected),
}

#[self_healing(
    source = "createContact",
    category = "database",
    timeout = "2s",
    idempotent = false
)]
async fn create_contact(
    State(db): State<Arc<Db>>,
    Json(input): Json<NewContact>,
) -> Result<Json<u64>, AppError> {
    if input.name.is_empty() {
        return Err(AppError::Db);
    }
    let mut rows = db.rows.lock().await;
    rows.push(input.name);
    tokio::task::yield_now().await;
    Ok(Json(rows.len() as u64))
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::main]
async fn main() {
    let db = Arc::new(Db::default());
    let request = create_contact(State(db.clone()), Json(NewContact { name: "Ada".into() }));
    assert_send(&request);
    let Json(id) = tokio::spawn(request).await.unwrap().unwrap();
    assert_eq!(id, 1);
}

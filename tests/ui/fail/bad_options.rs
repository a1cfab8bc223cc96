use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("failed")]
    Failed,
    #[error(transparent)]
    Rejected(#[from] self_healing::Rejected),
}

#[self_healing(timeout = "2sec", cache = "0s")]
fn durations() -> Result<(), AppError> {
    Err(AppError::Failed)
}

#[self_healing(timeout = 2, cache = "fast")]
fn unitless() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(max_attempts = 0)]
fn no_attempts() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(max_attempts = 1000, idempotent = "no", catch_panic = 1)]
fn bad_values() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(cache_skip(db))]
fn skip_without_cache(db: &str) -> Result<(), AppError> {
    let _ = db;
    Ok(())
}

#[self_healing(cache = "10s", cache_skip(dbb))]
fn skip_unknown(db: &str, id: u64) -> Result<u64, AppError> {
    let _ = db;
    Ok(id)
}

#[self_healing(fallback = 42)]
fn fallback_not_a_path() -> Result<(), AppError> {
    Ok(())
}

fn main() {
    let _ = (durations(), unitless(), no_attempts(), bad_values());
    let _ = (
        skip_without_cache(""),
        skip_unknown("", 1),
        fallback_not_a_path(),
    );
}

use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("failed")]
    Failed,
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

fn backup() -> Result<u32, AppError> {
    Ok(0)
}

// Two answers for the same failure.
#[self_healing(source = "price", fallback = backup, default = 0)]
fn price() -> Result<u32, AppError> {
    Err(AppError::Failed)
}

// `skip` drops `()` work only.
#[self_healing(source = "count", skip)]
fn count() -> Result<u32, AppError> {
    Err(AppError::Failed)
}

// A default of another type.
#[self_healing(source = "displayName", default = 0)]
fn name() -> Result<String, AppError> {
    Err(AppError::Failed)
}

// `skip` and `queue_for_later` take no value; idempotency is a bool or "keyed".
#[self_healing(source = "track", skip = true, idempotent = "sometimes")]
fn track() -> Result<(), AppError> {
    Ok(())
}

fn main() {
    let _ = (price(), count(), name(), track());
    let _ = self_healing::site!(source = "inline", idempotent = "keyed");
}

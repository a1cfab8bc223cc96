use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct AppError;

fn fewer_args(id: u64) -> Result<String, AppError> {
    Ok(id.to_string())
}

#[self_healing(fallback = fewer_args)]
fn wrong_args(id: u64, name: String) -> Result<String, AppError> {
    Ok(format!("{id}{name}"))
}

fn other_return(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

#[self_healing(fallback = other_return)]
fn wrong_return(id: u64) -> Result<String, AppError> {
    Ok(id.to_string())
}

fn sync_backup(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

#[self_healing(fallback = sync_backup)]
async fn async_with_sync_fallback(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

async fn async_backup(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

#[self_healing(fallback = async_backup)]
fn sync_with_async_fallback(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

#[self_healing(fallback = missing_backup)]
fn missing(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

fn main() {
    let _ = wrong_args(1, String::new());
    let _ = wrong_return(1);
    let _ = async_with_sync_fallback(1);
    let _ = sync_with_async_fallback(1);
    let _ = missing(1);
}

// Every wrapped function's error type represents a call the healer refused (kept last, so the
// lines above and their expected errors stay put).
impl From<self_healing::Rejected> for AppError {
    fn from(_: self_healing::Rejected) -> Self {
        AppError
    }
}

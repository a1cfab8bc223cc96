use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct AppError;

struct Connection;

#[self_healing(category = "database")]
fn query(conn: Connection, sql: String) -> Result<u64, AppError> {
    let _ = (conn, sql);
    Ok(1)
}

#[self_healing]
async fn generic<T: std::fmt::Debug>(value: T) -> Result<String, AppError> {
    Ok(format!("{value:?}"))
}

fn main() {
    let _ = query(Connection, String::new());
    let _ = generic(1);
}

// Every wrapped function's error type represents a call the healer refused (kept last, so the
// lines above and their expected errors stay put).
impl From<self_healing::Rejected> for AppError {
    fn from(_: self_healing::Rejected) -> Self {
        AppError
    }
}

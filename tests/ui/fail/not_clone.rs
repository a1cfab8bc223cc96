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

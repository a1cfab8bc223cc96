use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct AppError;

#[self_healing(category = "databse")]
fn typo() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(category = "Database")]
fn capitalised() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(category = "http")]
fn alias() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(category = "business")]
fn unrelated() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(category = database)]
fn unquoted() -> Result<(), AppError> {
    Ok(())
}

fn main() {
    let _ = (typo(), capitalised(), alias(), unrelated(), unquoted());
}

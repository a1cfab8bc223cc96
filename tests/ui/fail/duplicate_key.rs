use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct AppError;

#[self_healing(source = "createContact", category = "database", source = "addContact")]
fn create_contact() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(
    timeout = "1s",
    max_attempts = 2,
    timeout = "2s",
    cache = "1m",
    cache_skip(id),
    cache_skip(id)
)]
fn find_contact(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

fn main() {
    let _ = (create_contact(), find_contact(1));
}

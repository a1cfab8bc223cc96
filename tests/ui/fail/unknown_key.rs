use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct AppError;

#[self_healing(sorce = "createContact")]
fn create_contact() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(retries = 3)]
fn retried() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(timout = "2s")]
fn timed() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(verbose = true)]
fn unrelated() -> Result<(), AppError> {
    Ok(())
}

fn main() {
    let _ = (create_contact(), retried(), timed(), unrelated());
}

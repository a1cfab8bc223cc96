use self_healing::self_healing;
use self_healing::self_healing as heal_me;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct AppError;

#[self_healing]
#[self_healing]
fn create_contact() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(category = "api")]
#[self_healing::self_healing(category = "api")]
fn send_mail() -> Result<(), AppError> {
    Ok(())
}

// Under a renamed import the name does not tell; the expanded body does.
#[self_healing(category = "database")]
#[heal_me(category = "database")]
fn delete_contact() -> Result<(), AppError> {
    Ok(())
}

fn main() {
    // The functions still exist: the rest of the crate keeps compiling.
    let _ = create_contact();
    let _ = send_mail();
    let _ = delete_contact();
}

// Every wrapped function's error type represents a call the healer refused (kept last, so the
// lines above and their expected errors stay put).
impl From<self_healing::Rejected> for AppError {
    fn from(_: self_healing::Rejected) -> Self {
        AppError
    }
}

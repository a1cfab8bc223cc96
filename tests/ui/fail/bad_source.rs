use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct AppError;

#[self_healing(source = "action1")]
fn create_contact() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(source = "Handler_2", category = "api")]
fn send_invoice() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(source = "")]
fn empty() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(source = "create contact")]
fn spaced() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(
    source = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)]
fn long() -> Result<(), AppError> {
    Ok(())
}

#[self_healing(source = create_contact)]
fn unquoted() -> Result<(), AppError> {
    Ok(())
}

fn main() {
    let _ = (
        create_contact(),
        send_invoice(),
        empty(),
        spaced(),
        long(),
        unquoted(),
    );
}

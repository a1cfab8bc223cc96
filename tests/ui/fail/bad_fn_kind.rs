use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct AppError;

#[self_healing]
const fn constant() -> Result<u8, AppError> {
    Ok(1)
}

#[self_healing]
extern "C" fn exported() -> Result<u8, AppError> {
    Ok(1)
}

trait Repo {
    #[self_healing]
    fn load(&self) -> Result<u8, AppError>;
}

#[self_healing]
struct NotAFunction;

fn main() {
    let _ = (constant(), exported(), NotAFunction);
}

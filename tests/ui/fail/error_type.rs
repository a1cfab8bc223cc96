use self_healing::self_healing;

// An error type that is not `std::error::Error`.
#[self_healing]
fn parse(text: &str) -> Result<u32, String> {
    text.parse().map_err(|_| format!("bad number: {text}"))
}

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct PlainError;

// Every error type must represent a call the healer refused: one error, at the error type.
#[self_healing(category = "database")]
fn load(id: u64) -> Result<u64, PlainError> {
    Ok(id)
}

// `timeout` and `catch_panic` need it too; still one error.
#[self_healing(timeout = "2s", catch_panic = true)]
async fn fetch(id: u64) -> Result<u64, PlainError> {
    Ok(id)
}

// Behind an alias, the error points at the return type.
type PlainResult<T> = Result<T, PlainError>;

#[self_healing]
fn aliased(id: u64) -> PlainResult<u64> {
    Ok(id)
}

// Another crate's type cannot get the impl: the error says what to do instead.
#[self_healing]
fn parse_port(text: &str) -> Result<u16, std::num::ParseIntError> {
    text.parse()
}

// A generic error type needs the bound.
#[self_healing]
fn generic<E: std::error::Error + Default + 'static>() -> Result<(), E> {
    Err(E::default())
}

fn main() {
    let _ = parse("1");
    let _ = load(1);
    let _ = fetch(1);
    let _ = aliased(1);
    let _ = parse_port("80");
    let _ = generic::<std::fmt::Error>();
}

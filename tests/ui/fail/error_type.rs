use self_healing::self_healing;

// An error type that is not `std::error::Error`.
#[self_healing]
fn parse(text: &str) -> Result<u32, String> {
    text.parse().map_err(|_| format!("bad number: {text}"))
}

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct PlainError;

// `timeout` and `catch_panic` need `From<self_healing::Rejected>`.
#[self_healing(timeout = "2s", catch_panic = true)]
async fn fetch(id: u64) -> Result<u64, PlainError> {
    Ok(id)
}

fn main() {
    let _ = parse("1");
    let _ = fetch(1);
}

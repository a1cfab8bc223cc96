use std::num::ParseIntError;

use self_healing::{self_healing, site};

// Without `From<Rejected>`, nothing can stand for a cancelled or panicked attempt.
#[self_healing(fail_fast = false, timeout = "2s")]
async fn fetch(id: u64) -> Result<u64, ParseIntError> {
    Ok(id)
}

#[self_healing(catch_panic = true, fail_fast = false)]
fn parse(text: &str) -> Result<u32, ParseIntError> {
    text.parse()
}

#[self_healing(fail_fast = false, timeout = "1s", catch_panic = true)]
fn both() -> Result<(), ParseIntError> {
    Ok(())
}

#[self_healing(fail_fast = "false")]
fn quoted() -> Result<(), ParseIntError> {
    Ok(())
}

fn main() {
    let _ = fetch(1);
    let _ = parse("1");
    let _ = both();
    let _ = quoted();
    let _ = site!(source = "parseLimit", fail_fast = false, timeout = "1s");
}

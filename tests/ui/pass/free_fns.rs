#![deny(warnings)]
//! Sync and async free functions, `?`, early `return`, the defaulted source and category.

use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
#[error("lookup failed: {0}")]
struct LookupError(String);

impl From<Rejected> for LookupError {
    fn from(rejected: Rejected) -> Self {
        LookupError(rejected.to_string())
    }
}

// `ParseIntError` is another crate's type, without `From<Rejected>`.
#[self_healing(fail_fast = false)]
fn parse_port(text: &str) -> Result<u16, std::num::ParseIntError> {
    let port: u16 = text.trim().parse()?;
    Ok(port)
}

#[self_healing(source = "lookupUser", category = "database")]
async fn lookup_user(id: u64, name: String) -> Result<String, LookupError> {
    if id == 0 {
        return Err(LookupError(name));
    }
    Ok(format!("{id}:{name}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(parse_port(" 8080 ").unwrap(), 8080);
    assert!(parse_port("x").is_err());
    assert_eq!(lookup_user(7, "ada".into()).await.unwrap(), "7:ada");
    assert!(lookup_user(0, "nobody".into()).await.is_err());
    let site = self_healing::sites()
        .find(|s| s.source() == "lookupUser")
        .expect("registered");
    assert_eq!(site.category(), self_healing::Category::Database);
    assert_eq!(site.info().function, "lookup_user");
    assert_eq!(site.info().line, 24, "line!() is taken at the fn name");
    assert!(site.options().is_async());
    assert!(self_healing::sites().any(|s| s.source() == "parse_port"
        && s.category() == self_healing::Category::Runtime
        && !s.options().is_async()
        && !s.options().fail_fast()));
    assert!(site.options().fail_fast(), "the default");
}

#![deny(warnings)]
//! `crate = ".."`: the facade under another name.

extern crate self_healing as sh;

use sh::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
#[error("renamed failed")]
struct RenamedError;

impl From<Rejected> for RenamedError {
    fn from(_: Rejected) -> Self {
        RenamedError
    }
}

#[self_healing(crate = "sh", category = "runtime")]
fn renamed(n: u8) -> Result<u8, RenamedError> {
    Ok(n)
}

#[self_healing(crate = "sh", source = "renamedAsync")]
async fn renamed_async(n: u8) -> Result<u8, RenamedError> {
    Ok(n + 1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(renamed(1).unwrap(), 1);
    assert_eq!(renamed_async(1).await.unwrap(), 2);
    let site = sh::site!(crate = "sh", source = "renamedSite");
    assert_eq!(site.info().function, "closure");
    assert!(sh::sites().any(|s| s.source() == "renamedAsync"));
}

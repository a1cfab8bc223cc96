#![deny(warnings)]
//! `impl Trait` in the `Ok` position of the return type.

use std::fmt::Display;

use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
#[error("render failed")]
struct RenderError;

impl From<Rejected> for RenderError {
    fn from(_: Rejected) -> Self {
        RenderError
    }
}

#[self_healing]
fn render(n: u32) -> Result<impl Display, RenderError> {
    if n == 0 {
        return Err(RenderError);
    }
    Ok(format!("#{n}"))
}

#[self_healing]
async fn render_async(n: u32) -> Result<impl Display + Send, RenderError> {
    Ok(n * 2)
}

#[self_healing]
fn evens(limit: u32) -> Result<impl Iterator<Item = u32>, RenderError> {
    Ok((0..limit).filter(|n| n % 2 == 0))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(render(3).unwrap().to_string(), "#3");
    assert!(render(0).is_err());
    assert_eq!(render_async(4).await.unwrap().to_string(), "8");
    assert_eq!(evens(5).unwrap().count(), 3);
}

#![deny(warnings)]
//! Error types (a thiserror enum, `anyhow::Error`, `Box<dyn Error + Send + Sync>`) and `Result`
//! aliases (`io::Result`, `anyhow::Result`, the crate's own).

use std::io;

use self_healing::self_healing;

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("not found: {0}")]
    NotFound(u64),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Rejected(#[from] self_healing::Rejected),
}

type AppResult<T> = Result<T, AppError>;

#[self_healing(category = "database")]
fn find(id: u64) -> Result<u64, AppError> {
    if id == 0 {
        return Err(AppError::NotFound(id));
    }
    Ok(id)
}

#[self_healing]
fn own_alias(id: u64) -> AppResult<u64> {
    let found = find(id)?;
    Ok(found * 2)
}

#[self_healing(category = "api")]
fn with_io(path: &str) -> io::Result<usize> {
    if path.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "empty path"));
    }
    Ok(path.len())
}

#[self_healing]
async fn with_anyhow(n: u32) -> anyhow::Result<u32> {
    anyhow::ensure!(n < 10, "too big: {n}");
    Ok(n + 1)
}

#[self_healing]
fn with_anyhow_error(n: u32) -> Result<u32, anyhow::Error> {
    let parsed: u32 = "41".parse()?;
    Ok(parsed + n)
}

#[self_healing]
async fn with_boxed(text: String) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    Ok(text.parse::<u32>()?)
}

#[self_healing]
fn with_std_result(n: u8) -> std::result::Result<u8, AppError> {
    Ok(with_io("abc")? as u8 + n)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(find(3).unwrap(), 3);
    assert!(matches!(find(0), Err(AppError::NotFound(0))));
    assert_eq!(own_alias(2).unwrap(), 4);
    assert_eq!(with_io("ab").unwrap(), 2);
    assert_eq!(with_io("").unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(with_anyhow(1).await.unwrap(), 2);
    assert!(with_anyhow(11).await.is_err());
    assert_eq!(with_anyhow_error(1).unwrap(), 42);
    assert_eq!(with_boxed("5".into()).await.unwrap(), 5);
    assert!(with_boxed("x".into()).await.is_err());
    assert_eq!(with_std_result(1).unwrap(), 4);
}

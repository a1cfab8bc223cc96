#![deny(warnings)]
//! Generics with lifetimes and where-clauses, `impl Trait` arguments, pattern arguments, `mut`
//! arguments.

use std::fmt::Debug;

use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
#[error("bad input: {0}")]
struct BadInput(String);

impl From<Rejected> for BadInput {
    fn from(rejected: Rejected) -> Self {
        BadInput(rejected.to_string())
    }
}

#[self_healing]
fn longest<'a, T>(items: &'a [T], min: usize) -> Result<&'a T, BadInput>
where
    T: AsRef<str> + Debug,
{
    items
        .iter()
        .filter(|i| i.as_ref().len() >= min)
        .max_by_key(|i| i.as_ref().len())
        .ok_or_else(|| BadInput(format!("{items:?}")))
}

#[self_healing]
async fn describe<K, V>(key: K, value: V) -> Result<String, BadInput>
where
    K: Debug + Clone + Send,
    V: Debug + Clone + Send,
{
    Ok(format!("{key:?}={value:?}"))
}

#[self_healing]
fn shout(text: impl AsRef<str> + Clone) -> Result<String, BadInput> {
    Ok(text.as_ref().to_uppercase())
}

#[derive(Clone, Copy)]
struct Point {
    x: i32,
    y: i32,
}

#[self_healing]
fn manhattan((dx, dy): (i32, i32), Point { x, y }: Point, _: String) -> Result<i32, BadInput> {
    Ok((x + dx).abs() + (y + dy).abs())
}

#[self_healing]
async fn count_down(mut n: u32, mut seen: Vec<u32>) -> Result<Vec<u32>, BadInput> {
    while n > 0 {
        seen.push(n);
        n -= 1;
    }
    Ok(seen)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let words = ["a", "abc", "ab"];
    assert_eq!(*longest(&words, 2).unwrap(), "abc");
    assert!(longest(&words, 9).is_err());
    assert_eq!(describe("k", 1).await.unwrap(), "\"k\"=1");
    assert_eq!(shout("hi").unwrap(), "HI");
    assert_eq!(
        manhattan((1, 1), Point { x: 2, y: -5 }, String::new()).unwrap(),
        7
    );
    assert_eq!(count_down(3, Vec::new()).await.unwrap(), [3, 2, 1]);
}

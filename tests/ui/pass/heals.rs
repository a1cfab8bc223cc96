#![deny(warnings)]
//! Behaviour of the generated loop with a healer installed: a transient failure is re-run, and
//! every attempt gets fresh copies of the owned arguments (`mut` ones included), a fresh
//! destructuring of pattern arguments and a reborrow of `&mut` ones and of `&mut self`.

use std::io;
use std::time::Duration;

use self_healing::{Healer, InMemoryStore, WithHealerExt, self_healing, with_healer};

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer")
}

#[derive(Default)]
struct Outbox {
    attempts: u32,
    sent: Vec<String>,
}

impl Outbox {
    #[self_healing(category = "api")]
    async fn send(&mut self, mut body: String, log: &mut Vec<String>) -> io::Result<usize> {
        self.attempts += 1;
        body.push('!');
        log.push(body.clone());
        if self.attempts == 1 {
            return Err(reset());
        }
        self.sent.push(body);
        Ok(self.sent.len())
    }
}

#[self_healing(category = "database")]
fn sum((a, b): (Vec<u32>, Vec<u32>), calls: &mut u32) -> io::Result<u32> {
    *calls += 1;
    let total = a.iter().chain(&b).sum();
    if *calls < 3 {
        return Err(reset());
    }
    Ok(total)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // In memory: the default store would write `self-healing.db` into the working directory.
    let healer = Healer::builder()
        .store(InMemoryStore::new())
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
        .build()
        .expect("valid healer");

    let mut outbox = Outbox::default();
    let mut log = Vec::new();
    let sent = outbox
        .send("hi".to_owned(), &mut log)
        .with_healer(healer.clone())
        .await
        .expect("healed by a re-run");
    assert_eq!(sent, 1);
    assert_eq!(outbox.attempts, 2);
    // The second attempt started from the caller's "hi", not from the first attempt's "hi!".
    assert_eq!(log, ["hi!", "hi!"]);
    assert_eq!(outbox.sent, ["hi!"]);

    let mut calls = 0;
    let total = with_healer(&healer, || sum((vec![1, 2], vec![3]), &mut calls));
    assert_eq!(total.expect("healed by re-runs"), 6);
    assert_eq!(calls, 3);
}

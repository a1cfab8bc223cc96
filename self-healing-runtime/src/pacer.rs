//! Pacing a site the dependency asked to slow down (a 429: a quota; a 503 with Retry-After only
//! holds back the call it answered).
//!
//! The call that was told to wait waits: its own Retry-After is a floor under any re-run of it.
//! The site's other callers are neither each held for a whole Retry-After (which leaves the
//! dependency's quota idle, then sends everyone at once into a full window) nor let through
//! unchecked (each would meet a 429 of its own). Quotas are counts per window ("40 requests per
//! second"), so the site keeps a window of its own, mirroring the dependency's: a call takes its
//! turn when fewer than the learned limit were sent in the window before that turn, and queues
//! for it otherwise. The limit starts at what the dependency accepted in a window before it
//! pushed back, grows by one call every [`PROBE_EVERY`] without push-back (so a raised quota is
//! found), and is set again, to what it accepted, when it pushes back. A call whose turn is more
//! than [`MAX_TURN_WAIT`] away (or the dependency's Retry-After, if longer) is refused at once:
//! a failure now serves a caller better than an answer seconds late.
//!
//! Pure: driven by the caller's clock and the site's success counter.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::after as after_;

/// The window assumed for a quota: per second, or per Retry-After when that is longer.
pub(crate) const WINDOW: Duration = Duration::from_secs(1);

/// Pacing lasts at least this long after the last push-back: a dependency that pushed back once
/// will likely again, and pacing at its quota costs nothing while traffic stays below it.
pub(crate) const PACE_FOR: Duration = Duration::from_secs(10);

/// The learned limit grows by one call per this much time without push-back.
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(5);

/// A call waits for its turn at most this long (or the dependency's Retry-After, if longer).
pub(crate) const MAX_TURN_WAIT: Duration = Duration::from_secs(1);

/// Turns remembered at most (a window's worth is needed).
const MAX_TURNS: usize = 4096;

/// What pacing says about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Not paced, or it is this call's turn: go.
    Go,
    /// Wait this long for the call's turn.
    Wait(Duration),
    /// The call's turn is further away than the horizon: refuse it.
    Refuse(Duration),
}

/// The pacing state of one site.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// Pacing lasts until this instant.
    until: Instant,
    /// The longest a call may wait for its turn.
    horizon: Duration,
    /// The window the quota is counted over.
    window: Duration,
    /// Calls per window when the limit was last set, and when that was.
    limit: f64,
    set_at: Instant,
    /// The turns handed out, oldest first (past and queued).
    turns: VecDeque<Instant>,
    /// The success counter and the instant of the previous push-back while unpaced.
    ok_mark: u64,
    mark_at: Instant,
}

impl Pacer {
    /// A pacer for a site born at `born` (its success counter started there).
    pub(crate) fn new(born: Instant) -> Self {
        Pacer {
            until: born,
            horizon: MAX_TURN_WAIT,
            window: WINDOW,
            limit: 0.0,
            set_at: born,
            turns: VecDeque::new(),
            ok_mark: 0,
            mark_at: born,
        }
    }

    /// Turns within the window that ends at `at`.
    fn sent_in_window(&self, at: Instant) -> usize {
        self.turns
            .iter()
            .rev()
            .take_while(|t| **t > at.checked_sub(self.window).unwrap_or(**t - self.window))
            .filter(|t| **t <= at)
            .count()
    }

    /// The dependency asked to wait `after` at `now`; `ok_total` is the site's success counter.
    pub(crate) fn push_back(&mut self, now: Instant, after: Duration, ok_total: u64) {
        let paced = self.active(now) && self.limit > 0.0;
        self.window = WINDOW.max(after);
        self.horizon = MAX_TURN_WAIT.max(after);
        self.until = self.until.max(after_(now, after.max(PACE_FOR)));
        let accepted = if paced {
            if now < after_(self.set_at, self.window) {
                // 429s of calls sent before the limit was last set say nothing about it.
                return;
            }
            // Of the calls sent in the window before this one, this one was refused.
            self.sent_in_window(now).saturating_sub(1) as f64
        } else {
            // Unpaced until now: what the dependency accepted, per window, on average.
            let span = now
                .saturating_duration_since(self.mark_at)
                .as_secs_f64()
                .max(1e-3);
            ok_total.saturating_sub(self.ok_mark) as f64 / span * self.window.as_secs_f64()
        };
        self.ok_mark = ok_total;
        self.mark_at = now;
        self.limit = accepted.max(1.0);
        self.set_at = now;
    }

    /// The learned limit at `now`: one more call per [`PROBE_EVERY`] without push-back.
    fn limit_at(&self, now: Instant) -> usize {
        let probed =
            now.saturating_duration_since(self.set_at).as_secs_f64() / PROBE_EVERY.as_secs_f64();
        (self.limit + probed.floor()) as usize
    }

    /// Whether pacing is on at `now`.
    pub(crate) fn active(&self, now: Instant) -> bool {
        now < self.until || self.turns.back().is_some_and(|t| *t > now)
    }

    /// The turn of a call arriving at `now`.
    pub(crate) fn turn(&mut self, now: Instant) -> Turn {
        if !self.active(now) {
            self.turns.clear();
            return Turn::Go;
        }
        // Turns before the window of any turn still to come are no longer needed.
        while self
            .turns
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            self.turns.pop_front();
        }
        let limit = self.limit_at(now).max(1);
        // Queue order: never before the last turn handed out; and not before the limit-th
        // latest turn has left the window.
        let mut turn = now.max(self.turns.back().copied().unwrap_or(now));
        if self.turns.len() >= limit {
            let bound = after_(self.turns[self.turns.len() - limit], self.window);
            turn = turn.max(bound);
        }
        let wait = turn - now;
        if wait > self.horizon {
            return Turn::Refuse(wait);
        }
        if self.turns.len() >= MAX_TURNS {
            self.turns.pop_front();
        }
        self.turns.push_back(turn);
        if wait.is_zero() {
            Turn::Go
        } else {
            Turn::Wait(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn at_most_the_learned_limit_goes_per_window_and_the_rest_queue() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0);
        // 3 calls a second accepted on average, then a 429.
        let now = t0 + ms(10_000);
        p.push_back(now, ms(1000), 30);
        let turns: Vec<Turn> = (0..7).map(|_| p.turn(now)).collect();
        assert_eq!(
            turns,
            [
                Turn::Go,
                Turn::Go,
                Turn::Go,
                // The next three go when the first three have left the window...
                Turn::Wait(ms(1000)),
                Turn::Wait(ms(1000)),
                Turn::Wait(ms(1000)),
                // ...and a seventh would wait past the horizon.
                Turn::Refuse(ms(2000)),
            ]
        );
    }

    #[test]
    fn the_queue_is_bounded_by_the_horizon() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0);
        let now = t0 + ms(10_000);
        p.push_back(now, ms(1000), 10);
        // One call a second: the second waits a second, the third two and is refused.
        assert_eq!(p.turn(now), Turn::Go);
        assert_eq!(p.turn(now), Turn::Wait(ms(1000)));
        assert_eq!(p.turn(now), Turn::Refuse(ms(2000)));
    }

    #[test]
    fn the_limit_is_probed_upward_and_set_again_on_a_push_back() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0);
        let now = t0 + ms(10_000);
        p.push_back(now, ms(1000), 400);
        assert_eq!(p.limit_at(now), 40);
        assert_eq!(p.limit_at(now + PROBE_EVERY), 41);
        // Paced at 41 a second, then pushed back: it accepted the 40 before the refused one.
        let later = now + PROBE_EVERY;
        for i in 0..41 {
            assert!(matches!(p.turn(later + ms(i * 20)), Turn::Go));
        }
        p.push_back(later + ms(900), ms(1000), 0);
        assert_eq!(p.limit_at(later + ms(900)), 40);
    }

    #[test]
    fn pacing_ends_a_while_after_the_last_push_back() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0);
        let now = t0 + ms(1000);
        p.push_back(now, ms(1000), 40);
        assert!(p.active(now + PACE_FOR - ms(1)));
        assert!(!p.active(now + PACE_FOR + ms(1)));
        assert_eq!(p.turn(now + PACE_FOR + ms(1)), Turn::Go);
    }
}

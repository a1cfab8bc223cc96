//! The login sessions of one dashboard process.
//!
//! A login cookie is `SID.EXPIRY.TAG`: a random session id, its expiry (Unix seconds) and an
//! HMAC-SHA256, keyed by the admin token, over both and over a random id of this process. A
//! cookie is valid while it has not expired, its tag verifies, and its session is still in this
//! process's table of live sessions, so:
//!
//! - logging out removes the session from the table: the old cookie is refused at once, not
//!   when it expires;
//! - a cookie issued by another process (another port, another replica, or this one before a
//!   restart) is refused even though the token is the same: nothing it opened is shared;
//! - the table is bounded: past [`MAX_SESSIONS`], the oldest logins end (the safe direction:
//!   a forgotten session can only be logged out, never revived).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a session id (128 random bits: not guessable).
const SID_LEN: usize = 16;
/// Live sessions kept at most per process; a login past it ends the oldest one. Only a holder
/// of the admin token can create sessions, so this is about memory, not about attackers.
pub(crate) const MAX_SESSIONS: usize = 1024;

/// The live sessions of this process, and how their cookies are signed.
pub(crate) struct Sessions {
    mac: HmacSha256,
    /// Random per process: what binds a cookie to the instance that issued it.
    instance: [u8; 32],
    /// Session id → expiry (Unix seconds).
    live: Mutex<HashMap<[u8; SID_LEN], u64>>,
}

impl Sessions {
    /// Sessions whose cookies are signed with the admin `token`.
    pub(crate) fn new(token: &[u8]) -> Self {
        let mut instance = [0u8; 32];
        crate::random::fill(&mut instance);
        Sessions {
            // HMAC takes keys of any length.
            mac: HmacSha256::new_from_slice(token).unwrap_or_else(|_| unreachable!()),
            instance,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session valid until `now + ttl` and returns its cookie value.
    pub(crate) fn issue(&self, now: SystemTime, ttl: Duration) -> String {
        let mut sid = [0u8; SID_LEN];
        crate::random::fill(&mut sid);
        let expiry = unix(now).saturating_add(ttl.as_secs());
        {
            let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
            if live.len() >= MAX_SESSIONS {
                let now = unix(now);
                live.retain(|_, &mut e| e > now);
            }
            if live.len() >= MAX_SESSIONS
                && let Some(oldest) = live.iter().min_by_key(|(_, e)| **e).map(|(s, _)| *s)
            {
                live.remove(&oldest);
            }
            live.insert(sid, expiry);
        }
        let tag = self.tag(&sid, expiry).finalize().into_bytes();
        format!("{}.{expiry}.{}", hex(&sid), hex(&tag))
    }

    /// Whether `value` is the cookie of a live session of this process that has not expired.
    pub(crate) fn valid(&self, value: &str, now: SystemTime) -> bool {
        let Some((sid, expiry)) = self.verify(value) else {
            return false;
        };
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        expiry > unix(now) && live.get(&sid) == Some(&expiry)
    }

    /// Ends the session of the cookie `value` (logging out); a cookie this process did not
    /// sign changes nothing.
    pub(crate) fn revoke(&self, value: &str) {
        if let Some((sid, _)) = self.verify(value) {
            let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
            live.remove(&sid);
        }
    }

    /// The session id and expiry of a cookie signed by this process (the tag is checked in
    /// constant time before the table is looked at, so the lookup reveals nothing).
    fn verify(&self, value: &str) -> Option<([u8; SID_LEN], u64)> {
        let mut parts = value.split('.');
        let (sid, expiry, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let sid: [u8; SID_LEN] = hex_decode(sid)?.try_into().ok()?;
        let expiry = expiry.parse::<u64>().ok()?;
        let tag = hex_decode(tag)?;
        self.tag(&sid, expiry).verify_slice(&tag).ok()?;
        Some((sid, expiry))
    }

    fn tag(&self, sid: &[u8], expiry: u64) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(b"self-healing dashboard session v2|");
        mac.update(&self.instance);
        mac.update(b"|");
        mac.update(sid);
        mac.update(b"|");
        mac.update(expiry.to_string().as_bytes());
        mac
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower- or upper-case hex, at most 64 bytes' worth.
pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"0123456789abcdef-token";

    #[test]
    fn sessions_expire_and_are_bound_to_the_token_and_the_process() {
        let sessions = Sessions::new(TOKEN);
        let now = SystemTime::now();
        let cookie = sessions.issue(now, Duration::from_secs(60));
        assert!(sessions.valid(&cookie, now));
        assert!(!sessions.valid(&cookie, now + Duration::from_secs(61)));
        assert!(
            !Sessions::new(b"another-token-0123456789").valid(&cookie, now),
            "another token"
        );
        assert!(
            !Sessions::new(TOKEN).valid(&cookie, now),
            "another process with the same token"
        );
        let [sid, expiry, tag] = cookie.split('.').collect::<Vec<_>>()[..] else {
            panic!("{cookie}")
        };
        let later = format!("{sid}.{}.{tag}", expiry.parse::<u64>().unwrap() + 3600);
        assert!(!sessions.valid(&later, now), "the expiry is signed");
        for garbage in ["garbage", "1.zz", "00.1.00", &format!("{cookie}.00"), ""] {
            assert!(!sessions.valid(garbage, now), "{garbage}");
        }
    }

    #[test]
    fn a_revoked_session_stays_revoked() {
        let sessions = Sessions::new(TOKEN);
        let now = SystemTime::now();
        let a = sessions.issue(now, Duration::from_secs(60));
        let b = sessions.issue(now, Duration::from_secs(60));
        sessions.revoke(&a);
        assert!(!sessions.valid(&a, now));
        assert!(sessions.valid(&b, now), "other sessions go on");
        sessions.revoke("not-a-cookie");
        assert!(sessions.valid(&b, now));
    }

    #[test]
    fn the_table_is_bounded_and_ends_the_oldest_logins() {
        let sessions = Sessions::new(TOKEN);
        let now = SystemTime::now();
        let day = Duration::from_secs(24 * 3600);
        let first = sessions.issue(now, day);
        let cookies: Vec<String> = (1..=MAX_SESSIONS as u64)
            .map(|i| sessions.issue(now + Duration::from_secs(i), day))
            .collect();
        assert_eq!(sessions.live.lock().unwrap().len(), MAX_SESSIONS);
        assert!(!sessions.valid(&first, now), "the oldest login ended");
        assert!(sessions.valid(&cookies[0], now));
        assert!(sessions.valid(cookies.last().unwrap(), now));
        // Expired sessions go first.
        let much_later = now + 2 * day;
        let fresh = sessions.issue(much_later, day);
        assert_eq!(sessions.live.lock().unwrap().len(), 1);
        assert!(sessions.valid(&fresh, much_later));
    }
}

//! Random bytes for the keys and identifiers of one process (session ids, the instance id, the
//! form-token key without an admin token).

use std::time::{SystemTime, UNIX_EPOCH};

/// Fills `buf` from the OS's randomness. Without it (a sandbox that forbids `getrandom`), a
/// keyed SipHash of the process's own random state: weaker, but never a fixed value.
pub(crate) fn fill(buf: &mut [u8]) {
    if getrandom::fill(buf).is_ok() {
        return;
    }
    use std::hash::{BuildHasher, Hasher};
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for chunk in buf.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(now);
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
}

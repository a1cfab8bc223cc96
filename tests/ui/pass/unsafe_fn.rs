#![deny(warnings)]
//! `unsafe fn` (not in `ui_pass_lints.rs`: the workspace forbids `unsafe_code`).

use self_healing::{Rejected, self_healing};

#[derive(Debug, thiserror::Error)]
#[error("null pointer")]
struct NullPointer;

impl From<Rejected> for NullPointer {
    fn from(_: Rejected) -> Self {
        NullPointer
    }
}

/// # Safety
/// `ptr` must be null or valid for reads.
#[self_healing]
unsafe fn read(ptr: *const u8) -> Result<u8, NullPointer> {
    if ptr.is_null() {
        return Err(NullPointer);
    }
    // SAFETY: the caller promises a non-null `ptr` is valid.
    Ok(unsafe { *ptr })
}

fn main() {
    let byte = 7u8;
    // SAFETY: `&byte` is valid.
    assert_eq!(unsafe { read(&byte) }.unwrap(), 7);
    // SAFETY: null is allowed.
    assert!(unsafe { read(std::ptr::null()) }.is_err());
}

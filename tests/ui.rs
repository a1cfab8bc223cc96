//! Compile-time behaviour of `#[self_healing]` and `site!`: every supported shape compiles (and
//! runs) warning-free, and every misuse is an error that points at the offending tokens.
//!
//! After changing a message, regenerate the expected output with
//! `TRYBUILD=overwrite cargo test --test ui` and read every changed `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}

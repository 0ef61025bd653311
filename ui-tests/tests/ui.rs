//! Compile-time behaviour of `#[require_auth]`: handlers that must compile, and every misuse
//! with its exact message in a checked-in `.stderr` file.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p ui-tests`, then read the
//! diff: they are the documentation of every message the attribute gives.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}

//! `#[require_auth(crate = "auth0")]` in a crate that depends on `auth0-runtime` as `auth0`, where
//! `::auth0_runtime` does not exist.

#[test]
fn ui_renamed_crate() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/*.rs");
}

//! Every handler that compiles under `#[require_auth]` in edition 2024 (`ui-tests`) compiles in
//! edition 2021 too: the same files, built by a crate of that edition.

#[test]
fn ui_edition_2021() {
    let t = trybuild::TestCases::new();
    t.pass("../tests/ui/pass/*.rs");
}

//! `#[require_auth(crate = "...")]` with a renamed dependency: see `tests/ui.rs`.

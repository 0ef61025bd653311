//! Compile-time tests of `#[require_auth]`: see `tests/ui.rs`.

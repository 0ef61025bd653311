//! The pass cases of `ui-tests`, compiled again as edition 2021 code: see `tests/ui.rs`.

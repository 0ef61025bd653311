// Every mistake is reported in the same build, each on its own token.
use auth0_runtime::{Claims, require_auth};

#[require_auth(scope = "read", permissions = [], any_scopes = ["a", "a"])]
fn handler(_a: Claims, _b: Claims) -> &'static str {
    ""
}

fn main() {
    let _ = handler;
}

use auth0_runtime::{Claims, require_auth};

#[require_auth]
fn handler(_claims: Claims) -> &'static str {
    "not async"
}

fn main() {
    let _ = handler;
}

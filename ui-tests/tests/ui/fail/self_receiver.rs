use auth0_runtime::{Claims, require_auth};

struct Api;

impl Api {
    #[require_auth]
    async fn handler(&self, _claims: Claims) -> &'static str {
        "method"
    }
}

fn main() {
    let _ = Api::handler;
}

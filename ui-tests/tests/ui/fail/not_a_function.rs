use auth0_runtime::require_auth;

#[require_auth(scopes = "read:messages")]
struct Handler;

fn main() {
    let _ = Handler;
}

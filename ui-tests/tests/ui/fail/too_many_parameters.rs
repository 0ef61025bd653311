use actix_web::{App, HttpRequest, Responder, web};
use auth0_runtime::require_auth;

type R = HttpRequest;

#[require_auth]
async fn handler(
    a: R, b: R, c: R, d: R, e: R, f: R, g: R, h: R, i: R, j: R, k: R, l: R, m: R, n: R, o: R, p: R,
    q: R,
) -> impl Responder {
    let _ = (a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q);
    ""
}

fn main() {
    let _ = || App::new().route("/", web::get().to(handler));
}

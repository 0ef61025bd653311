// Extractors under the guard: a body (read only after authorisation), other extractors, and
// `Claims<T>` with a user struct for custom claims.
use actix_web::{App, HttpRequest, Responder, get, post, web};
use auth0_runtime::{Claims, require_auth};

#[derive(serde::Deserialize)]
struct NewMessage {
    text: String,
}

#[post("/messages")]
#[require_auth(scopes = "write:messages")]
async fn create(
    _claims: Claims,
    req: HttpRequest,
    mut body: web::Json<NewMessage>,
    state: web::Data<u32>,
) -> impl Responder {
    body.text.push('!');
    format!("{} {} {}", req.path(), body.text, state.get_ref())
}

#[post("/raw")]
#[require_auth(scopes = "write:messages")]
async fn raw(body: web::Bytes, form: web::Query<Vec<(String, String)>>) -> impl Responder {
    format!("{} {}", body.len(), form.len())
}

#[derive(serde::Deserialize)]
struct Roles {
    #[serde(rename = "https://myapp.example.com/roles", default)]
    roles: Vec<String>,
}

#[get("/roles")]
#[require_auth(scopes = ["read:roles"])]
async fn roles(claims: Claims<Roles>) -> impl Responder {
    format!("{} {}", claims.sub, claims.custom().roles.join(","))
}

#[get("/roles-by-path")]
#[require_auth]
async fn by_path(claims: auth0_runtime::Claims<Roles>) -> impl Responder {
    claims.into_custom().roles.join(",")
}

fn main() {
    let _ = || {
        App::new()
            .app_data(web::Data::new(1u32))
            .service(create)
            .service(raw)
            .service(roles)
            .service(by_path)
    };
}

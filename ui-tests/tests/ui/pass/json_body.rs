// A body extractor: wrapped in the guard, so it is read only after authorisation.
use actix_web::{App, HttpRequest, Responder, post, web};
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

fn main() {
    let _ = || App::new().app_data(web::Data::new(1u32)).service(create).service(raw);
}

// Generics, a where-clause, `impl Trait` and the return type are kept as written.
use actix_web::{App, HttpResponse, Responder, get, web};
use auth0_runtime::{Claims, require_auth};
use serde::de::DeserializeOwned;

trait Describe {
    fn describe(&self) -> String;
}

#[derive(serde::Deserialize)]
struct Item {
    name: String,
}

impl Describe for Item {
    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[require_auth(scopes = "read:items")]
async fn describe<T: DeserializeOwned + 'static, const N: usize>(
    _claims: Claims,
    body: web::Json<T>,
) -> Result<HttpResponse, actix_web::Error>
where
    T: Describe,
{
    let mut text = body.describe();
    text.truncate(N);
    Ok(HttpResponse::Ok().body(text))
}

#[get("/impl-trait")]
#[require_auth]
async fn impl_trait(query: web::Query<std::collections::HashMap<String, String>>) -> impl Responder {
    query.len().to_string()
}

fn main() {
    let _ = || {
        App::new()
            .route("/describe", web::post().to(describe::<Item, 8>))
            .service(impl_trait)
    };
}

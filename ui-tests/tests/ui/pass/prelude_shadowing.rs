// The expansion names only absolute paths: shadowing prelude items breaks nothing.
#![allow(dead_code, non_camel_case_types)]

use actix_web::{App, Responder, get};
use auth0_runtime::{Claims, require_auth};

struct Option;
struct Result;
struct Box;
struct String;
struct Vec;
struct Some;
struct None;
struct Ok;
struct Err;
struct Default;
struct Sized;
struct Send;
struct Sync;
struct Copy;
struct Clone;
struct Into;
struct From;
struct Iterator;
struct Fn;
struct Drop;
struct str;
struct usize;
struct bool;
struct Requires;
struct Requirement;
struct ExtractedByActix;
struct Authenticated;
struct require_auth_innermost;
mod core {}
mod std {}
mod __private {}

#[get("/")]
#[require_auth(scopes = "read:messages", permissions = ["read:all"])]
async fn handler(_claims: Claims) -> impl Responder {
    ""
}

#[require_auth(any_scopes = ["a"])]
#[get("/above")]
async fn above(_claims: Claims) -> impl Responder {
    ""
}

#[require_auth(scopes = "read:messages")]
#[tracing::instrument(skip_all)]
#[get("/instrumented")]
async fn instrumented(_claims: Claims) -> impl Responder {
    ""
}

fn main() {
    let _ = || App::new().service(handler).service(above).service(instrumented);
}

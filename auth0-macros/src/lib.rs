//! The `#[require_auth]` attribute of [`auth0-runtime`](https://docs.rs/auth0-runtime).
//!
//! Do not depend on this crate directly: use `auth0_runtime::require_auth`, which is this
//! attribute re-exported by the crate whose `__private` items the expansion names. This crate
//! is pinned to the exact version of `auth0-runtime` it is released with.
//!
//! The macro runs in three named stages: `args` parses the arguments, `validate` checks them and
//! the handler and collects every error, and `expand` edits the parsed handler in place.

mod args;
mod expand;
mod validate;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::Item;
use validate::Errors;

/// Protects an Actix-web handler with an Auth0 access token, and optionally with scopes or
/// permissions.
///
/// The request is authenticated (Bearer or DPoP), and the token's scopes and permissions are
/// checked, **before** any of the handler's own extractors is even created: an unauthenticated
/// request never reaches body parsing. A `Claims` (or `Claims<T>`, or `Option<Claims>`)
/// parameter receives the claims of that same verification. A failure is answered with 401,
/// 403, 400 or 503 as described in the `auth0-runtime` documentation, and the handler does not
/// run.
///
/// # Syntax
///
/// ```text
/// #[require_auth]
/// #[require_auth(scopes = "read:messages write:messages")]
/// #[require_auth(scopes = ["read:data", "write:data"])]
/// #[require_auth(any_scopes = ["admin", "read:data"])]
/// #[require_auth(permissions = ["read:messages"])]
/// #[require_auth(scopes = "read:data", permissions = ["delete:data"])]
/// ```
///
/// The attribute goes on an `async fn` handler, above or below `#[get]`, `#[post]`,
/// `#[route]` and the other routing attributes of Actix-web. The handler keeps its generics,
/// where-clause, other attributes, doc comments and return type.
///
/// # Attributes
///
/// Every argument is optional; without any, a valid access token is all that is required.
///
/// - `scopes`: scopes the token must **all** carry in its `scope` claim. Either one string of
///   space-delimited scopes (`"read:data write:data"`) or a list of strings, one scope each.
/// - `any_scopes`: scopes of which the token must carry **at least one**; same forms. It cannot
///   be combined with `scopes`.
/// - `permissions`: entries the token's `permissions` claim (Auth0 RBAC) must **all** contain;
///   same forms. It can be combined with `scopes` or `any_scopes`; then both must pass.
///
/// Scopes and permissions are compared exactly and case-sensitively. They are checked at
/// compile time: each must be a non-empty RFC 6749 `scope-token` (printable ASCII other than
/// space, `"` and `\`), listed once, and a list must not be empty. Unknown or repeated
/// arguments, values that are not string literals, a second `#[require_auth]`, a handler that is
/// not `async`, a method (`self`) and two `Claims` parameters are compile errors too.
///
/// # Examples
///
/// ```no_run
/// use actix_web::{App, Responder, get, post, web};
/// use auth0_runtime::{Claims, require_auth};
///
/// /// Any valid access token.
/// #[get("/api/private")]
/// #[require_auth]
/// async fn private(claims: Claims) -> impl Responder {
///     format!("hello {}", claims.sub)
/// }
///
/// /// The body is read only once the token and its scope have been checked.
/// #[post("/api/messages")]
/// #[require_auth(scopes = "write:messages")]
/// async fn create(body: String) -> impl Responder {
///     format!("stored {} bytes", body.len())
/// }
///
/// /// Either scope will do; the `permissions` claim must hold `read:reports`.
/// #[require_auth(any_scopes = ["admin", "read:data"], permissions = ["read:reports"])]
/// #[get("/api/reports/{id}")]
/// async fn report(id: web::Path<u32>) -> impl Responder {
///     format!("report {id}")
/// }
///
/// fn main() {
///     let _app = App::new().service(private).service(create).service(report);
/// }
/// ```
///
/// Custom claims are read into a struct of your own, deriving `serde::Deserialize`, with a
/// `Claims<T>` parameter; `Option<Claims>` is accepted too. A handler takes at most one of them.
///
/// # Expansion
///
/// The attribute edits the handler in place. For
///
/// ```no_run
/// # use actix_web::{Responder, post, web};
/// # use auth0_runtime::{Claims, require_auth};
/// #[post("/api/messages/{id}")]
/// #[require_auth(scopes = "write:messages")]
/// pub async fn update(claims: Claims, id: web::Path<u32>, mut body: String) -> impl Responder {
///     body.push('!');
///     format!("{} wrote {body} to {id}", claims.sub)
/// }
/// # fn main() {}
/// ```
///
/// it writes the following (the `__private` items are not a stable API: never name them
/// yourself). The handler's own parameters become the second type argument of a single
/// `Guarded` parameter, which authenticates and authorises the request and only then extracts
/// them; they are unpacked under their own patterns before the body runs.
///
/// ```no_run
/// # use actix_web::{Responder, post, web};
/// # use auth0_runtime::Claims;
/// #[doc(hidden)]
/// #[allow(non_camel_case_types)]
/// pub struct __auth0_requirement_update;
///
/// impl ::auth0_runtime::__private::Requires for __auth0_requirement_update {
///     const REQUIREMENT: ::auth0_runtime::__private::Requirement =
///         ::auth0_runtime::__private::Requirement {
///             all_scopes: &["write:messages"],
///             any_scopes: &[],
///             permissions: &[],
///         };
/// }
///
/// #[post("/api/messages/{id}")]
/// pub async fn update(
///     __auth0_guard: ::auth0_runtime::__private::Guarded<
///         __auth0_requirement_update,
///         (Claims, web::Path<u32>, String),
///     >,
/// ) -> impl Responder {
///     let (claims, id, mut body) = ::auth0_runtime::__private::Guarded::into_inner(__auth0_guard);
///     body.push('!');
///     format!("{} wrote {body} to {id}", claims.sub)
/// }
/// # fn main() {}
/// ```
///
/// The requirement type has the handler's visibility and a `__auth0_`-prefixed name; the
/// `__auth0_guard` parameter is hygienic, so a parameter of yours with that name still works.
/// As every extractor of the handler is wrapped, a handler takes at most 16 parameters, as
/// usual in Actix-web. The attribute cannot be used on an associated function inside an `impl`
/// block, as the requirement type is an item next to the handler.
#[proc_macro_attribute]
pub fn require_auth(args: proc_macro::TokenStream, item: proc_macro::TokenStream) -> proc_macro::TokenStream {
    require_auth_impl(args.into(), item.into()).into()
}

/// The attribute on `proc_macro2` tokens: parse, validate, expand.
///
/// On any error, the item is emitted as written (without the attribute) next to the
/// `compile_error!`s, so the rest of the crate still type-checks and one mistake gives one error.
fn require_auth_impl(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(error) => return with_errors(item, error),
    };

    let mut errors = Errors::default();
    let raw = match args::parse(args) {
        Ok(raw) => Some(raw),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    let requirement = raw.map(|raw| validate::requirement(raw, &mut errors));

    let mut function = match item {
        Item::Fn(function) => function,
        other => {
            validate::not_a_function(&other, &mut errors);
            return emit_with_errors(other, errors);
        }
    };
    validate::handler(&function, &mut errors);

    match (errors.into_result(), requirement) {
        (Ok(()), Some(requirement)) => match expand::expand(function.clone(), &requirement) {
            Ok(expanded) => expanded,
            Err(error) => with_errors(function.into_token_stream(), error),
        },
        (result, _) => {
            // A repeated `#[require_auth]` was reported above: do not expand it again.
            function.attrs.retain(|attr| !validate::is_require_auth(attr));
            match result {
                Err(error) => with_errors(function.into_token_stream(), error),
                Ok(()) => function.into_token_stream(),
            }
        }
    }
}

fn emit_with_errors(item: Item, errors: Errors) -> TokenStream {
    match errors.into_result() {
        Ok(()) => item.into_token_stream(),
        Err(error) => with_errors(item.into_token_stream(), error),
    }
}

/// actix-web-codegen's `input_and_compile_error`: the item, then the errors.
fn with_errors(mut tokens: TokenStream, error: syn::Error) -> TokenStream {
    tokens.extend(error.into_compile_error());
    tokens
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use quote::quote;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        require_auth_impl(args, item).to_string()
    }

    fn tokens(text: &str) -> String {
        text.parse::<TokenStream>().unwrap().to_string()
    }

    #[test]
    fn full_expansion() {
        let out = expand(
            quote!(scopes = "read:messages"),
            quote! {
                /// Docs.
                #[get("/x")]
                pub async fn private<T: Trait>(claims: Claims, mut body: web::Json<T>)
                    -> impl Responder where T: Clone { body.0.clone(); claims }
            },
        );
        let expected = tokens(
            r#"
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            pub struct __auth0_requirement_private;
            impl ::auth0_runtime::__private::Requires for __auth0_requirement_private {
                const REQUIREMENT: ::auth0_runtime::__private::Requirement =
                    ::auth0_runtime::__private::Requirement {
                        all_scopes: &["read:messages"],
                        any_scopes: &[],
                        permissions: &[],
                    };
            }
            #[doc = r" Docs."]
            #[get("/x")]
            pub async fn private<T: Trait>(
                __auth0_guard: ::auth0_runtime::__private::Guarded<
                    __auth0_requirement_private,
                    (Claims, web::Json<T>,)
                >
            ) -> impl Responder where T: Clone {
                let (claims, mut body,) =
                    ::auth0_runtime::__private::Guarded::into_inner(__auth0_guard);
                body.0.clone();
                claims
            }
            "#,
        );
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(squash(&out), squash(&expected));
    }

    #[test]
    fn zero_parameters() {
        let out = expand(
            quote!(),
            quote!(
                async fn h() -> &'static str {
                    "x"
                }
            ),
        );
        assert!(out.contains("Guarded < __auth0_requirement_h , () >"), "{out}");
        assert!(out.contains("let () ="), "{out}");
    }

    #[test]
    fn raw_identifier_name() {
        let out = expand(
            quote!(),
            quote!(
                async fn r#type() {}
            ),
        );
        assert!(out.contains("struct __auth0_requirement_type"), "{out}");
    }

    #[test]
    fn parameter_lint_attributes_move_to_the_let() {
        let out = expand(
            quote!(),
            quote!(
                async fn h(#[allow(unused)] c: Claims) {}
            ),
        );
        assert!(out.contains("# [allow (unused)] let (c ,) ="), "{out}");
    }

    #[test]
    fn errors_keep_the_function_and_drop_repeated_attributes() {
        let out = expand(
            quote!(scope = "a"),
            quote!(
                #[require_auth]
                async fn h(c: Claims) {}
            ),
        );
        assert!(out.starts_with("async fn h (c : Claims) { }"), "{out}");
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        assert!(!out.contains("# [require_auth]"), "{out}");
    }

    #[test]
    fn not_a_function() {
        let out = expand(
            quote!(),
            quote!(
                struct S;
            ),
        );
        assert!(out.starts_with("struct S ;"), "{out}");
        assert!(out.contains("found a struct"), "{out}");
    }

    #[test]
    fn unparsable_item() {
        let out = expand(quote!(), quote!(async fn));
        assert!(out.starts_with("async fn"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
    }
}

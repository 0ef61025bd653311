//! The `#[require_auth]` attribute of [`auth0-runtime`](https://docs.rs/auth0-runtime).
//!
//! Do not depend on this crate directly: use `auth0_runtime::require_auth`, which is this
//! attribute re-exported by the crate whose `__private` items the expansion names. This crate
//! is pinned to the exact version of `auth0-runtime` it is released with.
//!
//! The macro runs in three named stages: `args` parses the arguments, `validate` checks them and
//! the handler and collects every error, and `expand` edits the parsed handler in place (or, when
//! an attribute macro that may read the parameters follows, writes the attribute again below it,
//! as `require_auth_innermost`, so that it runs last).

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
/// request never reaches body parsing. A `Claims` (or `Claims<T>`) parameter receives the claims
/// of that same verification. A failure is answered with 401, 403, 400 or 503 as described in the
/// `auth0-runtime` documentation, and the handler does not run.
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
/// #[require_auth(acr_values = "http://schemas.openid.net/pape/policies/2007/06/multi-factor")]
/// #[require_auth(max_age = 300)]
/// #[require_auth(crate = "auth0", scopes = "read:data")]
/// ```
///
/// The attribute goes on an `async fn` handler (or a `fn` returning `impl Future`), above or
/// below `#[get]`, `#[post]`, `#[route]` and the other routing attributes of Actix-web, and above
/// or below any other attribute. The handler keeps its generics, where-clause, other attributes,
/// doc comments and return type.
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
/// - `acr_values`: step-up authentication (RFC 9470): the token's `acr` claim must be **one of**
///   these authentication context classes; same forms.
/// - `max_age`: step-up authentication (RFC 9470): the token's `auth_time` claim must be at most
///   this many seconds ago (an integer literal). Either step-up failure is answered 401
///   `insufficient_user_authentication` with `acr_values="…"` / `max_age="…"` in the challenge, so
///   the client can send its user back to the tenant for a fresh login. Step-up is checked before
///   scopes and permissions.
/// - `crate`: the path of the `auth0-runtime` crate, as a string, when your `Cargo.toml` renames
///   it (`auth0 = { package = "auth0-runtime", version = "..." }` needs `crate = "auth0"`), as with
///   tokio's and serde's `crate` attribute. The expansion then names `auth0::__private::...`
///   instead of `::auth0_runtime::__private::...`.
///
/// Scopes and permissions are compared exactly and case-sensitively. They are checked at
/// compile time: each must be a non-empty RFC 6749 `scope-token` (printable ASCII other than
/// space, `"` and `\`), listed once, and a list must not be empty. The string form is split on
/// spaces only, so a comma in it (`scopes = "a, b"`) is refused as a list written the wrong way;
/// inside a list, a scope may contain a comma (`scopes = ["a,b"]`), as RFC 6749 allows.
///
/// Values must be literals, written in the attribute: a macro sees its arguments before
/// constants are evaluated, so `scopes = SCOPES` cannot be read. To share a requirement between
/// handlers, write the attribute from a `macro_rules!` that takes the literals, or use
/// `RequireAuth::new().scopes(...)` on the routes.
///
/// Unknown or repeated arguments, a second `#[require_auth]`, a handler that is neither `async`
/// nor returns a future, a `self` receiver, more than 16 parameters (Actix-web's limit) and an
/// `Option<Claims>` parameter are compile errors too. `Option<Claims>` would never be `None`
/// under the attribute (a request without a valid token is refused before the handler runs), and
/// a token whose custom claims do not fit `Claims<T>` would read as anonymous: for optional
/// authentication, leave the attribute out and wrap the routes in `RequireAuth::optional()`. The
/// check is by name: a type alias of `Option<Claims>` is not seen.
///
/// ## Other attributes on the handler
///
/// Attribute macros that read the parameters, such as `#[tracing::instrument]` (with
/// `skip(claims)` or `fields(sub = %claims.sub)`) or `#[utoipa::path]`, see the handler as you
/// wrote it, whatever their place. Written above `#[require_auth]`, they run first. Written below
/// it, `#[require_auth]` moves itself below them (as a hidden `require_auth_innermost`
/// attribute) so that it runs last. Lint attributes, `#[doc]`, `#[cfg]`, tool attributes
/// (`#[clippy::...]`) and the routing attributes do not read the parameters and are left where
/// they are. A lint attribute on a parameter applies to that parameter only.
///
/// ## Methods
///
/// The bare `#[require_auth]` also works on an associated function in an `impl` block (without
/// `self`: Actix-web calls a handler with extractors only), registered with
/// `web::get().to(Api::handler)`. An argument that sets a requirement needs a type next to the
/// handler, which an `impl` block cannot hold: there, rustc refuses the generated struct ("struct
/// is not supported in `trait`s or `impl`s"). Use a free function, or the bare form with
/// `RequireAuth::new().scopes(...)` on the route.
///
/// ## Calling a protected handler
///
/// The handler now takes one parameter that Actix-web extracts from a request, so calling it by
/// hand does not compile ("expected `ExtractedByActix<..>`, found `Claims`"). Register it in an
/// `App` and send it a request (`actix_web::test`, with a token from
/// `auth0_runtime::testing`).
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
/// /// Other attribute macros see `claims`, in either order.
/// #[get("/api/traced")]
/// #[require_auth]
/// #[tracing::instrument(skip(claims), fields(sub = %claims.sub))]
/// async fn traced(claims: Claims) -> impl Responder {
///     "traced"
/// }
///
/// fn main() {
///     let _app = App::new()
///         .service(private)
///         .service(create)
///         .service(report)
///         .service(traced);
/// }
/// ```
///
/// Custom claims are read into a struct of your own, deriving `serde::Deserialize`, with a
/// `Claims<T>` parameter.
///
/// With `auth0-runtime` renamed in `Cargo.toml`:
///
/// ```no_run
/// # extern crate auth0_runtime as auth0;
/// // Cargo.toml: auth0 = { package = "auth0-runtime", version = "0.1" }
/// use actix_web::{Responder, get};
/// use auth0::{Claims, require_auth};
///
/// #[get("/api/private")]
/// #[require_auth(crate = "auth0", scopes = "read:messages")]
/// async fn private(claims: Claims) -> impl Responder {
///     format!("hello {}", claims.sub)
/// }
/// # fn main() {}
/// ```
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
/// `ExtractedByActix` parameter, which authenticates and authorises the request and only then
/// extracts them. The body binds that tuple once, then each parameter by its own `let`, under its
/// own pattern and attributes: every binding lives as long as the parameter would, and a `_`
/// parameter (say, a semaphore permit) is not moved out, so it is dropped when the body ends.
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
///             acr_values: &[],
///             max_age: ::core::option::Option::None,
///         };
/// }
///
/// #[post("/api/messages/{id}")]
/// pub async fn update(
///     __auth0_guard: ::auth0_runtime::__private::ExtractedByActix<
///         __auth0_requirement_update,
///         (Claims, web::Path<u32>, String),
///     >,
/// ) -> impl Responder {
///     let __auth0_args = ::auth0_runtime::__private::ExtractedByActix::into_inner(__auth0_guard);
///     let claims = __auth0_args.0;
///     let id = __auth0_args.1;
///     let mut body = __auth0_args.2;
///     body.push('!');
///     format!("{} wrote {body} to {id}", claims.sub)
/// }
/// # fn main() {}
/// ```
///
/// The requirement type has the handler's visibility and a `__auth0_`-prefixed name. The bare
/// `#[require_auth]` generates no item at all: its requirement type is the fixed
/// `__private::Authenticated`. The `__auth0_guard` and `__auth0_args` names are hygienic, so
/// parameters and locals of yours with those names still work.
#[proc_macro_attribute]
pub fn require_auth(args: proc_macro::TokenStream, item: proc_macro::TokenStream) -> proc_macro::TokenStream {
    require_auth_impl(args.into(), item.into(), Stage::AsWritten).into()
}

/// `#[require_auth]` written again by itself below the handler's other attributes, so that it
/// runs after them; it never defers again. Not a public API.
#[doc(hidden)]
#[proc_macro_attribute]
pub fn require_auth_innermost(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    require_auth_impl(args.into(), item.into(), Stage::Innermost).into()
}

/// Where the attribute runs: as the user wrote it, or moved below every other attribute.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    AsWritten,
    Innermost,
}

/// The attribute on `proc_macro2` tokens: parse, validate, expand.
///
/// On any error, the item is emitted as written (without the attribute) next to the
/// `compile_error!`s, so the rest of the crate still type-checks and one mistake gives one error.
fn require_auth_impl(args: TokenStream, item: TokenStream, stage: Stage) -> TokenStream {
    let item = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(error) => return with_errors(item, error),
    };

    let mut errors = Errors::default();
    let checked = match args::parse(args.clone()) {
        Ok(raw) => Some(validate::arguments(raw, &mut errors)),
        Err(error) => {
            errors.push(error);
            None
        }
    };

    let mut function = match item {
        Item::Fn(function) => function,
        other => {
            validate::not_a_function(&other, &mut errors);
            return emit_with_errors(other, errors);
        }
    };
    validate::handler(&function, &mut errors);
    // A mistake after which the expansion still type-checks: reported next to the expansion.
    let mut soft = Errors::default();
    validate::parameter_count(&function, &mut soft);

    match (errors.into_result(), checked) {
        (Ok(()), Some(checked)) => {
            let krate = checked.krate.as_ref();
            if stage == Stage::AsWritten && expand::defers_to_later_attributes(&function.attrs) {
                // Checked again, and reported, when it runs below the other attributes.
                return expand::defer(function, args, krate);
            }
            let expanded = match expand::expand(function.clone(), &checked.requirement, krate) {
                Ok(expanded) => expanded,
                Err(error) => return with_errors(function.into_token_stream(), error),
            };
            match soft.into_result() {
                Ok(()) => expanded,
                Err(error) => with_errors(expanded, error),
            }
        }
        (result, _) => {
            // A repeated `#[require_auth]` was reported above: do not expand it again.
            function.attrs.retain(|attr| !validate::is_require_auth(attr));
            let mut errors = Errors::default();
            if let Err(error) = result {
                errors.push(error);
            }
            if let Err(error) = soft.into_result() {
                errors.push(error);
            }
            emit_with_errors(Item::Fn(function), errors)
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
        require_auth_impl(args, item, Stage::AsWritten).to_string()
    }

    fn squash(text: &str) -> String {
        text.split_whitespace().collect()
    }

    #[test]
    fn full_expansion() {
        let out = expand(
            quote!(scopes = "read:messages"),
            quote! {
                /// Docs.
                #[get("/x")]
                pub async fn private<T: Trait>(claims: Claims, #[allow(unused_mut)] mut body: web::Json<T>, _: Permit)
                    -> impl Responder where T: Clone { body.0.clone(); claims }
            },
        );
        let expected = r#"
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            pub struct __auth0_requirement_private;
            impl ::auth0_runtime::__private::Requires for __auth0_requirement_private {
                const REQUIREMENT: ::auth0_runtime::__private::Requirement =
                    ::auth0_runtime::__private::Requirement {
                        all_scopes: &["read:messages"],
                        any_scopes: &[],
                        permissions: &[],
                        acr_values: &[],
                        max_age: ::core::option::Option::None,
                    };
            }
            #[doc = r" Docs."]
            #[get("/x")]
            pub async fn private<T: Trait>(
                __auth0_guard: ::auth0_runtime::__private::ExtractedByActix<
                    __auth0_requirement_private,
                    (Claims, web::Json<T>, Permit,)
                >
            ) -> impl Responder where T: Clone {
                let __auth0_args = ::auth0_runtime::__private::ExtractedByActix::into_inner(__auth0_guard);
                let claims = __auth0_args.0;
                #[allow(unused_mut)] let mut body = __auth0_args.1;
                let _ = __auth0_args.2;
                body.0.clone();
                claims
            }
            "#;
        let expected: TokenStream = expected.parse().unwrap();
        assert_eq!(squash(&out), squash(&expected.to_string()));
    }

    #[test]
    fn bare_form_needs_no_item() {
        let out = expand(
            quote!(),
            quote!(
                async fn h() -> &'static str {
                    "x"
                }
            ),
        );
        let expected = quote! {
            async fn h(
                __auth0_guard: ::auth0_runtime::__private::ExtractedByActix<
                    ::auth0_runtime::__private::Authenticated,
                    ()
                >
            ) -> &'static str {
                "x"
            }
        };
        assert_eq!(squash(&out), squash(&expected.to_string()));
    }

    #[test]
    fn renamed_crate() {
        let out = expand(
            quote!(crate = "auth0", permissions = ["p"]),
            quote!(
                async fn h(c: Claims) {}
            ),
        );
        assert!(!out.contains("auth0_runtime"), "{out}");
        assert!(
            out.contains("impl auth0 :: __private :: Requires for __auth0_requirement_h"),
            "{out}"
        );
        assert!(
            out.contains("__auth0_guard : auth0 :: __private :: ExtractedByActix <"),
            "{out}"
        );
    }

    #[test]
    fn past_sixteen_parameters_are_nested() {
        let names: Vec<_> = (0..18).map(|i| quote::format_ident!("p{i}")).collect();
        let out = expand(quote!(), quote!(async fn h(#(#names: u8),*) {}));
        assert!(out.contains("(u8 , u8 , u8 , u8 , u8 , u8 , u8 , u8 , u8 , u8 , u8 , u8 , u8 , u8 , u8 , (u8 , u8 , u8 ,) ,)"), "{out}");
        assert!(out.contains("let p14 = __auth0_args . 14 ;"), "{out}");
        assert!(out.contains("let p15 = __auth0_args . 15 . 0 ;"), "{out}");
        assert!(out.contains("let p17 = __auth0_args . 15 . 2 ;"), "{out}");
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
    }

    #[test]
    fn raw_identifier_name() {
        let out = expand(
            quote!(scopes = "a"),
            quote!(
                async fn r#type() {}
            ),
        );
        assert!(out.contains("struct __auth0_requirement_type"), "{out}");
    }

    #[test]
    fn later_attribute_macros_run_first() {
        // Below `#[require_auth]`: an attribute macro that may read the signature.
        let out = expand(
            quote!(crate = "auth0", scopes = "a"),
            quote!(
                #[get("/")]
                #[tracing::instrument(skip(c))]
                #[allow(unused)]
                async fn h(c: Claims) {}
            ),
        );
        let expected = quote!(
            #[get("/")]
            #[tracing::instrument(skip(c))]
            #[allow(unused)]
            #[auth0::__private::require_auth_innermost(crate = "auth0", scopes = "a")]
            async fn h(c: Claims) {}
        );
        assert_eq!(out, expected.to_string());
        // Moved below them, it expands whatever follows.
        let inner = require_auth_impl(
            quote!(),
            quote!(
                #[utoipa::path(get)]
                async fn h(c: Claims) {}
            ),
            Stage::Innermost,
        )
        .to_string();
        assert!(inner.contains("ExtractedByActix"), "{inner}");
        // `cfg_attr` may stand for an attribute macro.
        let out = expand(
            quote!(),
            quote!(
                #[cfg_attr(feature = "trace", tracing::instrument)]
                async fn h(c: Claims) {}
            ),
        );
        assert!(out.contains("require_auth_innermost"), "{out}");
        // Only routing, lint, doc and tool attributes: expanded at once.
        let out = expand(
            quote!(),
            quote!(
                /// Docs.
                #[actix_web::post("/")]
                #[must_use]
                #[clippy::cognitive_complexity = "100"]
                #[deny(unused)]
                async fn h(c: Claims) {}
            ),
        );
        assert!(out.contains("ExtractedByActix"), "{out}");
    }

    #[test]
    fn errors_keep_the_function_and_drop_repeated_attributes() {
        let out = expand(
            quote!(scope = "a"),
            quote!(
                #[require_auth]
                #[tracing::instrument]
                async fn h(c: Claims) {}
            ),
        );
        assert!(
            out.starts_with("# [tracing :: instrument] async fn h (c : Claims) { }"),
            "{out}"
        );
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

//! Stage 3: edit the parsed handler in place.
//!
//! The handler's own parameters become the second type argument of one `ExtractedByActix` parameter. At
//! the top of the body that tuple is bound once, then each parameter is bound from it by its own
//! `let`, under its own pattern and attributes. The signature is otherwise untouched: generics,
//! where-clause, return type and attributes stay as written.
//!
//! When an attribute macro that may read the signature (`#[tracing::instrument]`,
//! `#[utoipa::path]`) is written below `#[require_auth]`, the handler is not edited yet: the
//! attribute is moved below every other attribute, so that it runs last, on the handler those
//! macros produce from the signature as written.

use crate::validate::Requirement;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Attribute, FnArg, Ident, Index, ItemFn, LitStr, Path, Stmt, Type};

/// The path of the runtime crate: `::auth0_runtime`, or the `crate = "..."` argument.
pub(crate) fn runtime_path(krate: Option<&Path>) -> TokenStream {
    match krate {
        Some(path) => quote!(#path),
        None => quote!(::auth0_runtime),
    }
}

/// Actix-web's routing attributes: they do not read the parameters, so they may run before the
/// signature is rewritten.
const ROUTING: &[&str] = &[
    "get", "post", "put", "delete", "head", "connect", "options", "trace", "patch", "route", "routes",
];

/// Built-in attributes that are not macros (and lints and tools'): nothing runs after them.
/// `cfg_attr` is not one of them: it may stand for an attribute macro.
const INERT: &[&str] = &[
    "allow",
    "warn",
    "deny",
    "forbid",
    "expect",
    "doc",
    "deprecated",
    "must_use",
    "inline",
    "cold",
    "track_caller",
    "cfg",
    "no_mangle",
    "export_name",
    "link_section",
    "target_feature",
    "instruction_set",
    "optimize",
    "coverage",
];
const TOOLS: &[&str] = &["rustfmt", "clippy", "diagnostic", "rust_analyzer", "rustdoc"];

/// Whether `attrs` (the attributes below `#[require_auth]`, and inert ones above it) hold an
/// attribute that may be a macro reading the handler's signature.
pub(crate) fn defers_to_later_attributes(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        let (Some(first), Some(last)) = (path.segments.first(), path.segments.last()) else {
            return false;
        };
        let inert = path.segments.len() == 1 && INERT.iter().any(|name| first.ident == name);
        let tool = path.segments.len() > 1 && TOOLS.iter().any(|name| first.ident == name);
        let routing = ROUTING.iter().any(|name| last.ident == name);
        !(inert || tool || routing)
    })
}

/// The handler unchanged, with `#[require_auth]` written again below its other attributes, as
/// the hidden `require_auth_innermost`, which never defers again.
pub(crate) fn defer(mut item: ItemFn, args: TokenStream, krate: Option<&Path>) -> TokenStream {
    let runtime = runtime_path(krate);
    item.attrs
        .push(syn::parse_quote!(#[#runtime::__private::require_auth_innermost(#args)]));
    quote!(#item)
}

/// The requirement type (unless the bare form needs none), then the rewritten handler.
pub(crate) fn expand(
    mut item: ItemFn,
    requirement: &Requirement,
    krate: Option<&Path>,
) -> syn::Result<TokenStream> {
    let runtime = runtime_path(krate);
    let private = quote!(#runtime::__private);
    let guard = Ident::new("__auth0_guard", Span::mixed_site());
    let args = Ident::new("__auth0_args", Span::mixed_site());

    let mut types = Vec::new();
    let mut parameters = Vec::new();
    for input in std::mem::take(&mut item.sig.inputs) {
        // A receiver has already been reported by the validator; nothing to move for it.
        if let FnArg::Typed(typed) = input {
            types.push(*typed.ty);
            parameters.push((typed.attrs, typed.pat));
        }
    }
    let count = parameters.len();
    let mut unpack: Vec<Stmt> = Vec::new();
    for (index, (attrs, pat)) in parameters.into_iter().enumerate() {
        let field = field(index, count);
        // Parameter attributes can only be lint levels here (`#[cfg]` is refused by the
        // validator); on the `let` they apply to that parameter's bindings only.
        unpack.push(syn::parse2(quote! {
            #(#attrs)*
            let #pat = #args #field;
        })?);
    }
    let tuple = tuple(&types);

    let (requirement_type, items) = if requirement.is_empty() {
        (quote!(#private::Authenticated), TokenStream::new())
    } else {
        let name = format_ident!("__auth0_requirement_{}", item.sig.ident, span = Span::call_site());
        let vis = &item.vis;
        let all_scopes = literals(&requirement.all_scopes);
        let any_scopes = literals(&requirement.any_scopes);
        let permissions = literals(&requirement.permissions);
        let acr_values = literals(&requirement.acr_values);
        let max_age = match requirement.max_age {
            Some(seconds) => quote!(::core::option::Option::Some(#seconds)),
            None => quote!(::core::option::Option::None),
        };
        let items = quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #vis struct #name;

            impl #private::Requires for #name {
                const REQUIREMENT: #private::Requirement = #private::Requirement {
                    all_scopes: &[#(#all_scopes),*],
                    any_scopes: &[#(#any_scopes),*],
                    permissions: &[#(#permissions),*],
                    acr_values: &[#(#acr_values),*],
                    max_age: #max_age,
                };
            }
        };
        (quote!(#name), items)
    };

    let guarded: FnArg = syn::parse2(quote! {
        #guard: #private::ExtractedByActix<#requirement_type, #tuple>
    })?;
    item.sig.inputs.push(guarded);

    if !unpack.is_empty() {
        // The tuple lives until the end of the body, like the parameters it replaces: a `_`
        // parameter is not moved out of it, so an RAII extractor is dropped when the body ends.
        unpack.insert(
            0,
            syn::parse2(quote!(let #args = #private::ExtractedByActix::into_inner(#guard);))?,
        );
        item.block.stmts.splice(0..0, unpack);
    }

    Ok(quote! {
        #items
        #item
    })
}

/// Actix-web implements `FromRequest` for tuples of at most this many extractors.
const MAX_TUPLE: usize = 16;

/// The parameters' types as one tuple. Past 16 (already reported as a mistake), the tail is
/// nested, `(T0, .., T14, (T15, ..))`, so that the expansion still type-checks and the one
/// error is the validator's.
fn tuple(types: &[Type]) -> TokenStream {
    if types.len() <= MAX_TUPLE {
        return quote!((#(#types,)*));
    }
    let (head, tail) = types.split_at(MAX_TUPLE - 1);
    let tail = tuple(tail);
    quote!((#(#head,)* #tail,))
}

/// The field of [`tuple`] holding parameter `index` of `count`: `.3`, or `.15.2` when nested.
fn field(index: usize, count: usize) -> TokenStream {
    if count <= MAX_TUPLE || index < MAX_TUPLE - 1 {
        let index = Index::from(index);
        return quote!(.#index);
    }
    let nested = Index::from(MAX_TUPLE - 1);
    let rest = field(index - (MAX_TUPLE - 1), count - (MAX_TUPLE - 1));
    quote!(.#nested #rest)
}

fn literals(values: &[String]) -> Vec<LitStr> {
    values
        .iter()
        .map(|value| LitStr::new(value, Span::call_site()))
        .collect()
}

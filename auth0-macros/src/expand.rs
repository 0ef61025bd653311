//! Stage 3: edit the parsed handler in place.
//!
//! The handler's own parameters become the second type argument of one `Guarded` parameter, and
//! are destructured back, under their own patterns, at the top of the body. The signature is
//! otherwise untouched: generics, where-clause, return type and attributes stay as written.

use crate::validate::Requirement;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{FnArg, Ident, ItemFn, LitStr, Stmt};

/// The requirement type and its `Requires` impl, then the rewritten handler.
pub(crate) fn expand(mut item: ItemFn, requirement: &Requirement) -> syn::Result<TokenStream> {
    let requirement_type = format_ident!("__auth0_requirement_{}", item.sig.ident);
    let guard = Ident::new("__auth0_guard", Span::mixed_site());

    let mut patterns = Vec::new();
    let mut types = Vec::new();
    let mut attrs = Vec::new();
    for input in std::mem::take(&mut item.sig.inputs) {
        // A receiver has already been reported by the validator; nothing to move for it.
        if let FnArg::Typed(typed) = input {
            attrs.extend(typed.attrs);
            patterns.push(typed.pat);
            types.push(typed.ty);
        }
    }

    let guarded: FnArg = syn::parse2(quote! {
        #guard: ::auth0_runtime::__private::Guarded<#requirement_type, (#(#types,)*)>
    })?;
    item.sig.inputs.push(guarded);

    // Parameter attributes can only be lint levels here (`#[cfg]` is refused by the validator);
    // on the `let` they still apply to the bindings they were written for.
    let unpack: Stmt = syn::parse2(quote! {
        #(#attrs)*
        let (#(#patterns,)*) = ::auth0_runtime::__private::Guarded::into_inner(#guard);
    })?;
    item.block.stmts.insert(0, unpack);

    let vis = &item.vis;
    let all_scopes = literals(&requirement.all_scopes);
    let any_scopes = literals(&requirement.any_scopes);
    let permissions = literals(&requirement.permissions);
    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #requirement_type;

        impl ::auth0_runtime::__private::Requires for #requirement_type {
            const REQUIREMENT: ::auth0_runtime::__private::Requirement =
                ::auth0_runtime::__private::Requirement {
                    all_scopes: &[#(#all_scopes),*],
                    any_scopes: &[#(#any_scopes),*],
                    permissions: &[#(#permissions),*],
                };
        }

        #item
    })
}

fn literals(values: &[String]) -> Vec<LitStr> {
    values
        .iter()
        .map(|value| LitStr::new(value, Span::call_site()))
        .collect()
}

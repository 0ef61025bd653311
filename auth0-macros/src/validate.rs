//! Stage 2: every check, on the arguments and on the annotated item.
//!
//! Problems are collected in [`Errors`] and reported together, each spanned on the token at
//! fault, so that one mistake gives one error and several mistakes are all shown in one build.

use crate::args::{RawArg, RawArgs, RawValue};
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use std::collections::BTreeSet;
use syn::{Attribute, Expr, FnArg, GenericArgument, Item, ItemFn, Lit, LitStr, PathArguments, Type};

/// The checked requirement of one handler, ready to be expanded.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Requirement {
    /// Every one of these scopes is required (`scopes = ...`).
    pub(crate) all_scopes: Vec<String>,
    /// At least one of these scopes is required (`any_scopes = ...`).
    pub(crate) any_scopes: Vec<String>,
    /// Every one of these entries of the `permissions` claim is required.
    pub(crate) permissions: Vec<String>,
}

/// Accumulates errors with [`syn::Error::combine`].
#[derive(Debug, Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn error(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn into_result(self) -> syn::Result<()> {
        match self.0 {
            Some(errors) => Err(errors),
            None => Ok(()),
        }
    }
}

/// The argument names, in the order they are listed in messages.
const KEYS: &str = "`scopes`, `any_scopes`, `permissions`";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Scopes,
    AnyScopes,
    Permissions,
}

impl Key {
    fn from_ident(ident: &syn::Ident) -> Option<Self> {
        if ident == "scopes" {
            Some(Key::Scopes)
        } else if ident == "any_scopes" {
            Some(Key::AnyScopes)
        } else if ident == "permissions" {
            Some(Key::Permissions)
        } else {
            None
        }
    }

    /// What one entry of this argument is called in messages.
    fn noun(self) -> &'static str {
        match self {
            Key::Scopes | Key::AnyScopes => "scope",
            Key::Permissions => "permission",
        }
    }
}

/// Checks the arguments and turns them into a [`Requirement`].
pub(crate) fn requirement(raw: RawArgs, errors: &mut Errors) -> Requirement {
    let mut requirement = Requirement::default();
    let mut seen: Vec<(Key, &syn::Ident)> = Vec::new();

    for RawArg { key, value } in &raw.args {
        let Some(which) = Key::from_ident(key) else {
            errors.spanned(key, format!("unknown argument `{key}`, expected one of: {KEYS}"));
            continue;
        };
        if seen.iter().any(|(k, _)| *k == which) {
            errors.spanned(
                key,
                format!("duplicate argument `{key}`, expected each argument at most once"),
            );
            continue;
        }
        let conflict = match which {
            Key::Scopes => Some(Key::AnyScopes),
            Key::AnyScopes => Some(Key::Scopes),
            Key::Permissions => None,
        };
        if let Some((_, first)) = seen.iter().find(|(k, _)| Some(*k) == conflict) {
            errors.spanned(
                key,
                format!(
                    "`{key}` cannot be used together with `{first}`, expected one of them \
                     (`scopes` requires all of its scopes, `any_scopes` at least one)"
                ),
            );
        }
        seen.push((which, key));

        let entries = entries(which, key, value, errors);
        match which {
            Key::Scopes => requirement.all_scopes = entries,
            Key::AnyScopes => requirement.any_scopes = entries,
            Key::Permissions => requirement.permissions = entries,
        }
    }
    requirement
}

/// Checks one argument's value and returns its entries.
fn entries(key: Key, name: &syn::Ident, value: &RawValue, errors: &mut Errors) -> Vec<String> {
    let noun = key.noun();
    let mut entries: Vec<String> = Vec::new();
    let mut unique = BTreeSet::new();
    let mut add = |entry: String, span: Span, errors: &mut Errors| {
        if unique.insert(entry.clone()) {
            entries.push(entry);
        } else {
            errors.error(
                span,
                format!("duplicate {noun} `{entry}`, expected each {noun} once"),
            );
        }
    };

    match value {
        RawValue::Str(lit) => {
            let text = lit.value();
            let mut any = false;
            for entry in text.split(' ').filter(|entry| !entry.is_empty()) {
                any = true;
                if check_token(noun, entry, lit.span(), errors) {
                    add(entry.to_owned(), lit.span(), errors);
                }
            }
            if !any {
                errors.spanned(
                    lit,
                    format!(
                        "empty {noun} string, expected at least one {noun} like \
                         `{name} = \"read:messages\"`"
                    ),
                );
            }
        }
        RawValue::List { bracket, elems } => {
            if elems.is_empty() {
                errors.error(
                    bracket.span.join(),
                    format!(
                        "empty {noun} list, expected at least one {noun} like \
                         `{name} = [\"read:messages\"]`"
                    ),
                );
            }
            for elem in elems {
                let Some(lit) = string_literal(elem) else {
                    errors.spanned(
                        elem,
                        format!("expected a string literal, found `{}`", elem.to_token_stream()),
                    );
                    continue;
                };
                let entry = lit.value();
                if entry.is_empty() {
                    errors.spanned(
                        lit,
                        format!("empty {noun}, expected a {noun} like `\"read:messages\"`"),
                    );
                } else if entry.contains(' ') {
                    let split: Vec<String> = entry
                        .split(' ')
                        .filter(|part| !part.is_empty())
                        .map(|part| format!("{:?}", part))
                        .collect();
                    errors.spanned(
                        lit,
                        format!(
                            "{noun} `{entry}` contains a space, expected one {noun} per \
                             string like `[{}]`",
                            split.join(", ")
                        ),
                    );
                } else if check_token(noun, &entry, lit.span(), errors) {
                    add(entry, lit.span(), errors);
                }
            }
        }
        RawValue::Other(expr) => errors.spanned(
            expr,
            format!(
                "expected a string literal or a list of string literals, like \
                 `{name} = \"read:messages\"` or `{name} = [\"read:data\", \"write:data\"]`"
            ),
        ),
    }
    entries
}

/// The string literal behind `elem`, looking through invisible groups (`$x` of `macro_rules!`).
fn string_literal(mut elem: &Expr) -> Option<&LitStr> {
    loop {
        match elem {
            Expr::Group(group) => elem = &group.expr,
            Expr::Lit(lit) => match &lit.lit {
                Lit::Str(lit) => return Some(lit),
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

/// Reports the first character of `entry` outside `scope-token`; returns whether it is valid.
fn check_token(noun: &str, entry: &str, span: Span, errors: &mut Errors) -> bool {
    match entry.chars().find(|c| !is_scope_char(*c)) {
        None => true,
        Some(c) => {
            errors.error(
                span,
                format!(
                    "invalid character `{}` in {noun} `{}`, expected printable ASCII \
                     other than space, `\"` and `\\` (RFC 6749 scope-token)",
                    visible(&c.to_string()),
                    visible(entry)
                ),
            );
            false
        }
    }
}

/// `text` with invisible characters escaped (`\t`, `\u{a0}`, `\u{200b}`), for a message.
fn visible(text: &str) -> String {
    text.chars()
        .map(|c| {
            let invisible = matches!(
                c,
                '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
            );
            if c.is_ascii_control() {
                c.escape_debug().to_string()
            } else if c.is_control() || c.is_whitespace() || invisible {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Whether `attr` is (another) `#[require_auth]`, under any path.
pub(crate) fn is_require_auth(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "require_auth")
}

/// Checks the annotated item when it is not a function at all.
pub(crate) fn not_a_function(item: &Item, errors: &mut Errors) {
    let (found, tokens) = match item {
        Item::Struct(i) => ("a struct", pair(&i.struct_token, &i.ident)),
        Item::Enum(i) => ("an enum", pair(&i.enum_token, &i.ident)),
        Item::Union(i) => ("a union", pair(&i.union_token, &i.ident)),
        Item::Trait(i) => ("a trait", pair(&i.trait_token, &i.ident)),
        Item::Impl(i) => ("an impl block", pair(&i.impl_token, &i.self_ty)),
        Item::Mod(i) => ("a module", pair(&i.mod_token, &i.ident)),
        Item::Const(i) => ("a constant", pair(&i.const_token, &i.ident)),
        Item::Static(i) => ("a static", pair(&i.static_token, &i.ident)),
        Item::Type(i) => ("a type alias", pair(&i.type_token, &i.ident)),
        _ => ("an item that is not a function", item.to_token_stream()),
    };
    errors.spanned(
        tokens,
        format!("`#[require_auth]` can only be applied to an `async fn` handler, found {found}"),
    );
}

/// The tokens from `first` to `last`, for a span covering an item's keyword and name.
fn pair(first: &impl ToTokens, last: &impl ToTokens) -> TokenStream {
    let mut tokens = first.to_token_stream();
    last.to_tokens(&mut tokens);
    tokens
}

/// Checks the annotated function: `async`, no receiver, no repeated attribute, at most one
/// `Claims` parameter, no `#[cfg]` on a parameter.
pub(crate) fn handler(item: &ItemFn, errors: &mut Errors) {
    for attr in item.attrs.iter().filter(|attr| is_require_auth(attr)) {
        errors.spanned(
            attr,
            "duplicate `#[require_auth]` attribute, expected one attribute holding every \
             requirement",
        );
    }

    if item.sig.asyncness.is_none() {
        errors.spanned(
            item.sig.fn_token,
            "the `async` keyword is missing from the function declaration, \
             `#[require_auth]` expects an `async fn` handler",
        );
    }

    let mut claims = 0;
    for input in &item.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.spanned(
                receiver,
                "`#[require_auth]` cannot be used on a method, expected an `async fn` \
                 without a `self` parameter",
            ),
            FnArg::Typed(typed) => {
                for attr in &typed.attrs {
                    let path = attr.path();
                    if path.is_ident("cfg") || path.is_ident("cfg_attr") {
                        errors.spanned(
                            attr,
                            format!(
                                "`#[{}]` on a parameter is not supported by `#[require_auth]`, \
                                 expected a parameter present in every configuration",
                                path.to_token_stream()
                            ),
                        );
                    }
                }
                if is_claims(&typed.ty) {
                    claims += 1;
                    if claims > 1 {
                        errors.spanned(
                            &typed.ty,
                            "more than one `Claims` parameter, expected at most one \
                             (each would hold the same verified claims)",
                        );
                    }
                }
            }
        }
    }
}

/// `Claims`, `Claims<T>`, `path::Claims`, and those inside `Option<..>` or `Result<..>`.
fn is_claims(ty: &Type) -> bool {
    let ty = peel(ty);
    let Type::Path(path) = ty else {
        return false;
    };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    if last.ident == "Claims" {
        return true;
    }
    if (last.ident == "Option" || last.ident == "Result")
        && let PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(GenericArgument::Type(inner)) = args.args.first()
    {
        return is_claims(inner);
    }
    false
}

fn peel(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(group) => ty = &group.elem,
            Type::Paren(paren) => ty = &paren.elem,
            _ => return ty,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use quote::quote;

    fn check_args(args: TokenStream) -> Result<Requirement, Vec<String>> {
        let raw = crate::args::parse(args).unwrap();
        let mut errors = Errors::default();
        let requirement = requirement(raw, &mut errors);
        match errors.into_result() {
            Ok(()) => Ok(requirement),
            Err(e) => Err(e.into_iter().map(|e| e.to_string()).collect()),
        }
    }

    fn check_fn(item: TokenStream) -> Vec<String> {
        let item: ItemFn = syn::parse2(item).unwrap();
        let mut errors = Errors::default();
        handler(&item, &mut errors);
        match errors.into_result() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn no_arguments_require_nothing() {
        assert_eq!(check_args(quote!()), Ok(Requirement::default()));
    }

    #[test]
    fn string_form_is_split_on_spaces() {
        let r = check_args(quote!(scopes = "  read:a  write:b ")).unwrap();
        assert_eq!(r.all_scopes, strings(&["read:a", "write:b"]));
    }

    #[test]
    fn every_argument() {
        let r = check_args(quote!(any_scopes = ["admin", "read:data"], permissions = ["p"])).unwrap();
        assert_eq!(r.any_scopes, strings(&["admin", "read:data"]));
        assert_eq!(r.permissions, strings(&["p"]));
        assert!(r.all_scopes.is_empty());
        let r = check_args(quote!(scopes = ["a", "b"], permissions = "x y")).unwrap();
        assert_eq!(r.all_scopes, strings(&["a", "b"]));
        assert_eq!(r.permissions, strings(&["x", "y"]));
    }

    #[test]
    fn rfc_6749_characters() {
        let all: String = (0x21u8..=0x7e)
            .map(char::from)
            .filter(|c| *c != '"' && *c != '\\')
            .collect();
        let r = check_args(quote!(scopes = [#all])).unwrap();
        assert_eq!(r.all_scopes, vec![all]);
        for bad in ["a\"b", "a\\b", "a\tb", "caf\u{e9}", "a\u{7f}"] {
            let errors = check_args(quote!(scopes = [#bad])).unwrap_err();
            assert_eq!(errors.len(), 1, "{bad:?}");
            assert!(errors[0].starts_with("invalid character"), "{errors:?}");
        }
        assert_eq!(
            check_args(quote!(scopes = "ok a\tb")).unwrap_err(),
            [
                "invalid character `\\t` in scope `a\\tb`, expected printable ASCII other than \
              space, `\"` and `\\` (RFC 6749 scope-token)"
            ]
        );
    }

    #[test]
    fn invisible_characters_are_escaped() {
        assert_eq!(
            visible("a\tb\u{a0}c\u{200b}d\u{7f}\"\\é"),
            "a\\tb\\u{a0}c\\u{200b}d\\u{7f}\"\\é"
        );
    }

    #[test]
    fn messages() {
        let cases: &[(TokenStream, &str)] = &[
            (
                quote!(scope = "a"),
                "unknown argument `scope`, expected one of: `scopes`, `any_scopes`, `permissions`",
            ),
            (
                quote!(scopes = "a", scopes = "b"),
                "duplicate argument `scopes`, expected each argument at most once",
            ),
            (
                quote!(scopes = []),
                "empty scope list, expected at least one scope like `scopes = [\"read:messages\"]`",
            ),
            (
                quote!(permissions = []),
                "empty permission list, expected at least one permission like \
                 `permissions = [\"read:messages\"]`",
            ),
            (
                quote!(scopes = ""),
                "empty scope string, expected at least one scope like `scopes = \"read:messages\"`",
            ),
            (
                quote!(any_scopes = ["a", ""]),
                "empty scope, expected a scope like `\"read:messages\"`",
            ),
            (
                quote!(scopes = ["read write"]),
                "scope `read write` contains a space, expected one scope per string like \
                 `[\"read\", \"write\"]`",
            ),
            (
                quote!(scopes = "a b a"),
                "duplicate scope `a`, expected each scope once",
            ),
            (
                quote!(permissions = ["a", "a"]),
                "duplicate permission `a`, expected each permission once",
            ),
            (
                quote!(scopes = 42),
                "expected a string literal or a list of string literals, like \
                 `scopes = \"read:messages\"` or `scopes = [\"read:data\", \"write:data\"]`",
            ),
            (quote!(scopes = [1]), "expected a string literal, found `1`"),
            (
                quote!(scopes = "a", any_scopes = "b"),
                "`any_scopes` cannot be used together with `scopes`, expected one of them \
                 (`scopes` requires all of its scopes, `any_scopes` at least one)",
            ),
        ];
        for (args, message) in cases {
            assert_eq!(check_args(args.clone()), Err(vec![(*message).to_owned()]));
        }
    }

    #[test]
    fn errors_accumulate() {
        let errors = check_args(quote!(scope = "a", scopes = [], any_scopes = 1)).unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:#?}");
    }

    #[test]
    fn handler_checks() {
        assert!(
            check_fn(quote!(
                async fn h(c: Claims, o: Option<Claims<X>>) {}
            ))
            .len()
                == 1
        );
        assert_eq!(
            check_fn(quote!(
                async fn h(c: Claims, d: auth0_runtime::Claims<X>) {}
            )),
            [
                "more than one `Claims` parameter, expected at most one (each would hold the \
              same verified claims)"
            ]
        );
        assert!(
            check_fn(quote!(
                async fn h(c: Claims, j: Json<Claims>) {}
            ))
            .is_empty()
        );
        assert!(
            check_fn(quote!(
                fn h() {}
            ))[0]
                .starts_with("the `async` keyword is missing")
        );
        assert!(
            check_fn(quote!(
                async fn h(&self) {}
            ))[0]
                .contains("cannot be used on a method")
        );
        assert!(
            check_fn(quote!(
                #[get("/")]
                #[auth0_runtime::require_auth]
                async fn h() {}
            ))[0]
                .starts_with("duplicate `#[require_auth]` attribute")
        );
        assert!(
            check_fn(quote!(
                async fn h(#[cfg(x)] a: A) {}
            ))[0]
                .starts_with("`#[cfg]`")
        );
        assert!(
            check_fn(quote!(
                async fn h(#[allow(unused)] a: A) {}
            ))
            .is_empty()
        );
    }
}

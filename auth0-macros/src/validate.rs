//! Stage 2: every check, on the arguments and on the annotated item.
//!
//! Problems are collected in [`Errors`] and reported together, each spanned on the token at
//! fault, so that one mistake gives one error and several mistakes are all shown in one build.

use crate::args::{RawArg, RawArgs, RawValue};
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use std::collections::BTreeSet;
use syn::{
    Attribute, Expr, FnArg, GenericArgument, Item, ItemFn, Lit, LitStr, Path, PathArguments, ReturnType,
    Type, TypeParamBound,
};

/// The checked requirement of one handler, ready to be expanded.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Requirement {
    /// Every one of these scopes is required (`scopes = ...`).
    pub(crate) all_scopes: Vec<String>,
    /// At least one of these scopes is required (`any_scopes = ...`).
    pub(crate) any_scopes: Vec<String>,
    /// Every one of these entries of the `permissions` claim is required.
    pub(crate) permissions: Vec<String>,
    /// The token's `acr` must be one of these (`acr_values = ...`, RFC 9470).
    pub(crate) acr_values: Vec<String>,
    /// The token's `auth_time` must be at most this many seconds ago (`max_age = ...`, RFC 9470).
    pub(crate) max_age: Option<u64>,
}

impl Requirement {
    /// A bare `#[require_auth]`: a valid token, nothing more.
    pub(crate) fn is_empty(&self) -> bool {
        self.all_scopes.is_empty()
            && self.any_scopes.is_empty()
            && self.permissions.is_empty()
            && self.acr_values.is_empty()
            && self.max_age.is_none()
    }
}

/// The checked arguments of one `#[require_auth(...)]`.
pub(crate) struct Checked {
    pub(crate) requirement: Requirement,
    /// `crate = "auth0"`: the path of a renamed `auth0-runtime` dependency.
    pub(crate) krate: Option<Path>,
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
const KEYS: &str = "`scopes`, `any_scopes`, `permissions`, `acr_values`, `max_age`, `crate`";

/// Actix-web implements `FromRequest` for tuples of at most this many extractors.
const MAX_EXTRACTORS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Scopes,
    AnyScopes,
    Permissions,
    AcrValues,
    MaxAge,
    Crate,
}

impl Key {
    fn from_ident(ident: &syn::Ident) -> Option<Self> {
        if ident == "scopes" {
            Some(Key::Scopes)
        } else if ident == "any_scopes" {
            Some(Key::AnyScopes)
        } else if ident == "permissions" {
            Some(Key::Permissions)
        } else if ident == "acr_values" {
            Some(Key::AcrValues)
        } else if ident == "max_age" {
            Some(Key::MaxAge)
        } else if ident == "crate" {
            Some(Key::Crate)
        } else {
            None
        }
    }

    /// An entry of this argument, for messages.
    fn example(self) -> &'static str {
        match self {
            Key::AcrValues => "urn:example:mfa",
            _ => "read:messages",
        }
    }

    /// What one entry of this argument is called in messages.
    fn noun(self) -> &'static str {
        match self {
            Key::Scopes | Key::AnyScopes | Key::Crate | Key::MaxAge => "scope",
            Key::Permissions => "permission",
            Key::AcrValues => "acr value",
        }
    }
}

/// Checks the arguments and turns them into a [`Requirement`] and the runtime's path.
pub(crate) fn arguments(raw: RawArgs, errors: &mut Errors) -> Checked {
    let mut requirement = Requirement::default();
    let mut krate = None;
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
            Key::Permissions | Key::AcrValues | Key::MaxAge | Key::Crate => None,
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

        if which == Key::Crate {
            krate = crate_path(value, errors);
            continue;
        }
        if which == Key::MaxAge {
            requirement.max_age = seconds(key, value, errors);
            continue;
        }
        let entries = entries(which, key, value, errors);
        match which {
            Key::Scopes => requirement.all_scopes = entries,
            Key::AnyScopes => requirement.any_scopes = entries,
            Key::Permissions => requirement.permissions = entries,
            Key::AcrValues => requirement.acr_values = entries,
            Key::Crate | Key::MaxAge => {}
        }
    }
    Checked { requirement, krate }
}

/// `crate = "auth0"`, as tokio and serde spell it: a path, given as a string.
fn crate_path(value: &RawValue, errors: &mut Errors) -> Option<Path> {
    let expected =
        "expected the path of the `auth0-runtime` dependency as a string, like `crate = \"auth0\"`";
    match value {
        RawValue::Str(lit) => match lit.parse_with(Path::parse_mod_style) {
            Ok(path) => Some(path),
            Err(_) => {
                errors.spanned(lit, format!("`{}` is not a path, {expected}", lit.value()));
                None
            }
        },
        RawValue::List { bracket, .. } => {
            errors.error(bracket.span.join(), expected);
            None
        }
        RawValue::Other(expr) => {
            errors.spanned(expr, expected);
            None
        }
    }
}

/// `max_age = 300`: whole seconds, as an integer literal.
fn seconds(name: &syn::Ident, value: &RawValue, errors: &mut Errors) -> Option<u64> {
    let expected = format!("expected a whole number of seconds, like `{name} = 300`");
    let mut expr = match value {
        RawValue::Other(expr) => expr,
        RawValue::Str(lit) => {
            errors.spanned(lit, format!("found a string, {expected}"));
            return None;
        }
        RawValue::List { bracket, .. } => {
            errors.error(bracket.span.join(), format!("found a list, {expected}"));
            return None;
        }
    };
    while let Expr::Group(group) = expr {
        expr = &group.expr;
    }
    match expr {
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr: inner,
            ..
        }) if is_literal(inner) => {
            errors.spanned(expr, format!("found a negative number, {expected}"));
            None
        }
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<u64>() {
            Ok(seconds) if int.suffix().is_empty() || int.suffix() == "u64" => Some(seconds),
            _ => {
                errors.spanned(int, expected);
                None
            }
        },
        _ if is_literal(expr) => {
            errors.spanned(expr, format!("found `{}`, {expected}", expr.to_token_stream()));
            None
        }
        _ => {
            errors.spanned(
                expr,
                not_readable(expr, &format!("an integer literal like `{name} = 300`")),
            );
            None
        }
    }
}

/// Checks one argument's value and returns its entries.
fn entries(key: Key, name: &syn::Ident, value: &RawValue, errors: &mut Errors) -> Vec<String> {
    let noun = key.noun();
    let example = key.example();
    let readable = format!("a string literal like `{name} = \"{example}\"`");
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
            if text.contains(',') {
                let parts = comma_separated(&text);
                let quoted: Vec<String> = parts.iter().map(|part| format!("{part:?}")).collect();
                errors.spanned(
                    lit,
                    format!(
                        "comma in `{name} = {}`: {noun}s are space-delimited, or give a list, expected \
                         `{name} = \"{}\"` or `{name} = [{}]`",
                        lit.token(),
                        parts.join(" "),
                        quoted.join(", ")
                    ),
                );
                return entries;
            }
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
                         `{name} = \"{example}\"`"
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
                         `{name} = [\"{example}\"]`"
                    ),
                );
            }
            for elem in elems {
                let Some(lit) = string_literal(elem) else {
                    if is_literal(elem) {
                        errors.spanned(
                            elem,
                            format!("expected a string literal, found `{}`", elem.to_token_stream()),
                        );
                    } else {
                        errors.spanned(elem, not_readable(elem, &readable));
                    }
                    continue;
                };
                let entry = lit.value();
                if entry.is_empty() {
                    errors.spanned(
                        lit,
                        format!("empty {noun}, expected a {noun} like `\"{example}\"`"),
                    );
                } else if entry.contains(' ') {
                    let split: Vec<String> = comma_separated(&entry)
                        .iter()
                        .map(|part| format!("{part:?}"))
                        .collect();
                    let what = if entry.contains(',') {
                        "looks like a comma-separated list"
                    } else {
                        "contains a space"
                    };
                    errors.spanned(
                        lit,
                        format!(
                            "{noun} `{entry}` {what}, expected one {noun} per string like `[{}]`",
                            split.join(", ")
                        ),
                    );
                } else if check_token(noun, &entry, lit.span(), errors) {
                    add(entry, lit.span(), errors);
                }
            }
        }
        RawValue::Other(expr) if is_literal(expr) => errors.spanned(
            expr,
            format!(
                "expected a string literal or a list of string literals, like \
                 `{name} = \"{example}\"` or `{name} = [\"read:data\", \"write:data\"]`"
            ),
        ),
        RawValue::Other(expr) => errors.spanned(expr, not_readable(expr, &readable)),
    }
    entries
}

/// The parts of `text` split on commas and spaces: `"a, b"` is `["a", "b"]`.
fn comma_separated(text: &str) -> Vec<&str> {
    text.split([',', ' ']).filter(|part| !part.is_empty()).collect()
}

/// Whether `expr` is a literal (`42`, `true`), as opposed to a name or a macro call.
fn is_literal(mut expr: &Expr) -> bool {
    loop {
        match expr {
            Expr::Group(group) => expr = &group.expr,
            Expr::Lit(_) => return true,
            _ => return false,
        }
    }
}

/// The message for a constant, a macro call or any other expression in place of a literal.
fn not_readable(expr: &Expr, expected: &str) -> String {
    let written = match expr {
        Expr::Macro(call) => format!("{}!(...)", written_path(&call.mac.path)),
        Expr::Path(path) => written_path(&path.path),
        other => other.to_token_stream().to_string(),
    };
    format!(
        "`#[require_auth]` cannot read the value of `{written}`: a macro sees its arguments as written, \
         before constants are evaluated or macros expanded, expected {expected}; to share a requirement, pass its literals to a `macro_rules!` \
         that writes the attribute, or use `RequireAuth` on the route"
    )
}

/// `a::b::C` as written, without the spaces of a token stream.
fn written_path(path: &Path) -> String {
    let segments: Vec<String> = path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    let leading = if path.leading_colon.is_some() { "::" } else { "" };
    format!("{leading}{}", segments.join("::"))
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

/// Checks the annotated function: `async` (or returning a future), no receiver, no repeated
/// attribute, no `Option<Claims>`, no `#[cfg]` on a parameter.
///
/// Two `Claims` parameters are allowed: both are fed from the one verification of the request,
/// and a check by name could not see through a type alias anyway.
pub(crate) fn handler(item: &ItemFn, errors: &mut Errors) {
    for attr in item.attrs.iter().filter(|attr| is_require_auth(attr)) {
        errors.spanned(
            attr,
            "duplicate `#[require_auth]` attribute, expected one attribute holding every \
             requirement",
        );
    }

    if item.sig.asyncness.is_none() && !returns_future(&item.sig.output) {
        errors.spanned(
            item.sig.fn_token,
            "the `async` keyword is missing from the function declaration, \
             `#[require_auth]` expects an `async fn` handler, or a `fn` returning `impl Future`",
        );
    }

    for input in &item.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.spanned(
                receiver,
                "`#[require_auth]` cannot be used on a method with a `self` parameter, expected an \
                 associated function without `self`, as Actix-web calls a handler with extractors only",
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
                if is_optional_claims(&typed.ty) {
                    errors.spanned(
                        &typed.ty,
                        "`Option<Claims>` is never `None` under `#[require_auth]` (a request without a \
                         valid token is refused before the handler runs), expected `Claims`; for optional \
                         authentication, remove `#[require_auth]` and wrap the route in \
                         `RequireAuth::optional()`",
                    );
                }
            }
        }
    }
}

/// More than 16 parameters: reported on the 17th. The expansion still works (it nests the
/// extra parameters), so this mistake does not keep the handler from being expanded.
pub(crate) fn parameter_count(item: &ItemFn, errors: &mut Errors) {
    let typed = item
        .sig
        .inputs
        .iter()
        .filter(|input| matches!(input, FnArg::Typed(_)));
    if let Some(extra) = typed.clone().nth(MAX_EXTRACTORS) {
        errors.spanned(
            extra,
            format!(
                "too many parameters, expected at most {MAX_EXTRACTORS} extractors in an Actix-web \
                 handler, found {}; group some into one tuple parameter, like `(a, b): (A, B)`",
                typed.count()
            ),
        );
    }
}

/// Whether a function that is not `async` returns a future: `impl Future<..>`, or a type whose
/// name says so (`BoxFuture`, `LocalBoxFuture`, `Pin<Box<dyn Future<..>>>`, `Ready<..>`).
fn returns_future(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    names_future(ty)
}

fn names_future(ty: &Type) -> bool {
    let future = |path: &Path| {
        path.segments.last().is_some_and(|segment| {
            let name = segment.ident.to_string();
            name.ends_with("Future") || name == "Ready"
        })
    };
    let bounds = |bounds: &syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>| {
        bounds
            .iter()
            .any(|bound| matches!(bound, TypeParamBound::Trait(t) if future(&t.path)))
    };
    match peel(ty) {
        Type::ImplTrait(t) => bounds(&t.bounds),
        Type::TraitObject(t) => bounds(&t.bounds),
        Type::Path(t) => {
            future(&t.path)
                || t.path.segments.last().is_some_and(|segment| {
                    (segment.ident == "Pin" || segment.ident == "Box")
                        && first_type_argument(&segment.arguments).is_some_and(names_future)
                })
        }
        _ => false,
    }
}

/// `Option<Claims>`, `Option<Claims<T>>`, `Option<path::Claims>` and `std::option::Option<..>`,
/// by name: a type alias of either is not seen.
fn is_optional_claims(ty: &Type) -> bool {
    let Type::Path(path) = peel(ty) else {
        return false;
    };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    last.ident == "Option"
        && first_type_argument(&last.arguments).is_some_and(|inner| {
            matches!(peel(inner), Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Claims"))
        })
}

fn first_type_argument(arguments: &PathArguments) -> Option<&Type> {
    match arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        }),
        _ => None,
    }
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
        let checked = arguments(raw, &mut errors);
        match errors.into_result() {
            Ok(()) => Ok(checked.requirement),
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
                "unknown argument `scope`, expected one of: `scopes`, `any_scopes`, `permissions`, `acr_values`, `max_age`, `crate`",
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
                quote!(scopes = "read:a, write:b"),
                "comma in `scopes = \"read:a, write:b\"`: scopes are space-delimited, or give a list, \
                 expected `scopes = \"read:a write:b\"` or `scopes = [\"read:a\", \"write:b\"]`",
            ),
            (
                quote!(permissions = "a,b"),
                "comma in `permissions = \"a,b\"`: permissions are space-delimited, or give a list, \
                 expected `permissions = \"a b\"` or `permissions = [\"a\", \"b\"]`",
            ),
            (
                quote!(scopes = ["a, b"]),
                "scope `a, b` looks like a comma-separated list, expected one scope per string like \
                 `[\"a\", \"b\"]`",
            ),
            (
                quote!(scopes = SCOPES),
                "`#[require_auth]` cannot read the value of `SCOPES`: a macro sees its arguments as \
                 written, before constants are evaluated or macros expanded, expected a string literal \
                 like `scopes = \"read:messages\"`; to share a requirement, pass its literals to a \
                 `macro_rules!` that writes the attribute, or use `RequireAuth` on the route",
            ),
            (
                quote!(permissions = [::app::consts::READ]),
                "`#[require_auth]` cannot read the value of `::app::consts::READ`: a macro sees its \
                 arguments as written, before constants are evaluated or macros expanded, expected a \
                 string literal like `permissions = \"read:messages\"`; to share a requirement, pass \
                 its literals to a `macro_rules!` that writes the attribute, or use `RequireAuth` on the \
                 route",
            ),
            (
                quote!(crate = 1),
                "expected the path of the `auth0-runtime` dependency as a string, like `crate = \"auth0\"`",
            ),
            (
                quote!(crate = "auth0-runtime"),
                "`auth0-runtime` is not a path, expected the path of the `auth0-runtime` dependency as a \
                 string, like `crate = \"auth0\"`",
            ),
            (
                quote!(crate = "a", crate = "b"),
                "duplicate argument `crate`, expected each argument at most once",
            ),
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
    fn crate_path() {
        let raw = crate::args::parse(quote!(crate = "::renamed::inner", scopes = "a")).unwrap();
        let mut errors = Errors::default();
        let checked = arguments(raw, &mut errors);
        assert!(errors.into_result().is_ok());
        let path = checked.krate.unwrap();
        assert_eq!(path.to_token_stream().to_string(), ":: renamed :: inner");
        assert_eq!(checked.requirement.all_scopes, strings(&["a"]));
    }

    #[test]
    fn a_list_item_may_hold_a_comma() {
        let r = check_args(quote!(scopes = ["a,b", "c"])).unwrap();
        assert_eq!(r.all_scopes, strings(&["a,b", "c"]));
    }

    #[test]
    fn errors_accumulate() {
        let errors = check_args(quote!(scope = "a", scopes = [], any_scopes = 1)).unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:#?}");
    }

    #[test]
    fn handler_checks() {
        let option = "`Option<Claims>` is never `None` under `#[require_auth]`";
        for ty in [
            quote!(Option<Claims>),
            quote!(Option<Claims<X>>),
            quote!(std::option::Option<auth0_runtime::Claims>),
        ] {
            let errors = check_fn(quote!(
                async fn h(c: #ty) {}
            ));
            assert!(errors.len() == 1 && errors[0].starts_with(option), "{errors:?}");
        }
        // Two `Claims` are one verification; `Result<Claims, _>` and other wrappers are allowed.
        for ok in [
            quote!(
                async fn h(c: Claims, d: auth0_runtime::Claims<X>) {}
            ),
            quote!(
                async fn h(c: Result<Claims, Error>, j: Json<Option<Claims>>) {}
            ),
            quote!(
                fn h(c: Claims) -> impl Future<Output = String> {}
            ),
            quote!(
                fn h() -> impl std::future::Future<Output = String> + 'static {}
            ),
            quote!(
                fn h() -> Pin<Box<dyn Future<Output = String>>> {}
            ),
            quote!(
                fn h() -> LocalBoxFuture<'static, String> {}
            ),
            quote!(
                fn h() -> Ready<String> {}
            ),
            quote!(
                async fn h(#[allow(unused)] a: A) {}
            ),
        ] {
            assert_eq!(check_fn(ok.clone()), Vec::<String>::new(), "{ok}");
        }
        for not_async in [
            quote!(
                fn h() {}
            ),
            quote!(
                fn h() -> String {}
            ),
            quote!(
                fn h() -> impl Responder {}
            ),
        ] {
            assert!(check_fn(not_async)[0].starts_with("the `async` keyword is missing"));
        }
        assert!(
            check_fn(quote!(
                async fn h(&self) {}
            ))[0]
                .contains("cannot be used on a method with a `self` parameter")
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
    }

    #[test]
    fn at_most_sixteen_parameters() {
        let count = |n: usize| {
            let names = (0..n).map(|i| quote::format_ident!("p{i}"));
            let item: ItemFn = syn::parse2(quote!(async fn h(#(#names: u8),*) {})).unwrap();
            let mut errors = Errors::default();
            parameter_count(&item, &mut errors);
            errors.into_result().map_err(|e| e.to_string())
        };
        assert!(count(16).is_ok());
        assert_eq!(
            count(18),
            Err(
                "too many parameters, expected at most 16 extractors in an Actix-web handler, found 18; \
                 group some into one tuple parameter, like `(a, b): (A, B)`"
                    .to_owned()
            )
        );
    }
}

//! Stage 1: parse the attribute's arguments into a syntax-level list.
//!
//! This stage only knows the grammar `key = value, ...`; which keys exist, which values are
//! acceptable and how keys combine is decided in `validate.rs`, so that every such problem is
//! reported together instead of stopping at the first one.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Token, token};

/// The arguments as written: `#[require_auth(key = value, ...)]`.
pub(crate) struct RawArgs {
    pub(crate) args: Vec<RawArg>,
}

/// One `key = value` pair. The key may be a keyword (`crate = "auth0"`).
pub(crate) struct RawArg {
    pub(crate) key: Ident,
    pub(crate) value: RawValue,
}

/// The value of one argument, before it is checked.
pub(crate) enum RawValue {
    /// `"read:messages write:messages"`: a space-delimited list.
    Str(LitStr),
    /// `["read:data", "write:data"]`; elements are any expressions so that a wrong one can be
    /// pointed at precisely.
    List {
        bracket: token::Bracket,
        elems: Vec<Expr>,
    },
    /// Anything else (`42`, `SCOPES`, `concat!(...)`), refused by the validator.
    Other(Expr),
}

/// Parses the tokens between the attribute's parentheses.
pub(crate) fn parse(args: TokenStream) -> syn::Result<RawArgs> {
    parse_args.parse2(args)
}

fn parse_args(input: ParseStream<'_>) -> syn::Result<RawArgs> {
    let mut args = Vec::new();
    while !input.is_empty() {
        if input.peek(LitStr) || input.peek(token::Bracket) {
            return Err(unnamed_value(input));
        }
        let key = input.call(Ident::parse_any)?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `=` after `{key}`, like `{key} = \"read:messages\"`"),
            ));
        }
        let eq: Token![=] = input.parse()?;
        let value = parse_value(input, eq)?;
        args.push(RawArg { key, value });
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(RawArgs { args })
}

/// `#[require_auth("read:messages")]`: a value without its argument name.
fn unnamed_value(input: ParseStream<'_>) -> syn::Error {
    let (span, suggestion) = if input.peek(LitStr) {
        match input.parse::<LitStr>() {
            Ok(lit) => (lit.span(), format!("scopes = {}", lit.token())),
            Err(error) => return error,
        }
    } else {
        match input.parse::<proc_macro2::Group>() {
            Ok(group) => (group.span(), "scopes = [...]".to_owned()),
            Err(error) => return error,
        }
    };
    syn::Error::new(
        span,
        format!(
            "missing argument name, expected `{suggestion}` (or `any_scopes = ...`, `permissions = ...`)"
        ),
    )
}

fn parse_value(input: ParseStream<'_>, eq: Token![=]) -> syn::Result<RawValue> {
    if input.peek(LitStr) {
        return Ok(RawValue::Str(input.parse()?));
    }
    if input.peek(token::Bracket) {
        let content;
        let bracket = syn::bracketed!(content in input);
        let elems = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?;
        return Ok(RawValue::List {
            bracket,
            elems: elems.into_iter().collect(),
        });
    }
    if input.is_empty() || input.peek(Token![,]) {
        return Err(syn::Error::new(
            eq.span,
            "expected a value after `=`, like `\"read:messages\"` or `[\"read:data\", \"write:data\"]`",
        ));
    }
    Ok(RawValue::Other(input.parse()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use quote::quote;

    fn err(tokens: TokenStream) -> String {
        match parse(tokens) {
            Ok(args) => panic!("expected an error, parsed {} arguments", args.args.len()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_arguments() {
        let args = parse(TokenStream::new()).unwrap();
        assert!(args.args.is_empty());
    }

    #[test]
    fn every_value_form() {
        let args = parse(quote!(scopes = "a b", any_scopes = ["c", "d",], permissions = 42,)).unwrap();
        assert_eq!(args.args.len(), 3);
        assert_eq!(args.args[0].key, "scopes");
        assert!(matches!(&args.args[0].value, RawValue::Str(s) if s.value() == "a b"));
        assert!(matches!(&args.args[1].value, RawValue::List { elems, .. } if elems.len() == 2));
        assert!(matches!(&args.args[2].value, RawValue::Other(_)));
    }

    #[test]
    fn unknown_keys_still_parse() {
        let args = parse(quote!(scope = "a")).unwrap();
        assert_eq!(args.args[0].key, "scope");
    }

    #[test]
    fn keyword_keys_parse() {
        let args = parse(quote!(crate = "auth0", type = "x")).unwrap();
        assert_eq!(args.args[0].key, "crate");
        assert_eq!(args.args[1].key, "type");
    }

    #[test]
    fn value_without_a_name() {
        assert_eq!(
            err(quote!("read:messages")),
            "missing argument name, expected `scopes = \"read:messages\"` (or `any_scopes = ...`, \
             `permissions = ...`)"
        );
        assert_eq!(
            err(quote!(permissions = ["a"], ["b"])),
            "missing argument name, expected `scopes = [...]` (or `any_scopes = ...`, `permissions = ...`)"
        );
    }

    #[test]
    fn missing_equals() {
        assert_eq!(
            err(quote!(scopes("a"))),
            "expected `=` after `scopes`, like `scopes = \"read:messages\"`"
        );
        assert_eq!(
            err(quote!(scopes)),
            "expected `=` after `scopes`, like `scopes = \"read:messages\"`"
        );
    }

    #[test]
    fn missing_value() {
        assert!(err(quote!(scopes =)).starts_with("expected a value"));
        assert!(err(quote!(scopes = , any_scopes = "a")).starts_with("expected a value"));
    }

    #[test]
    fn missing_comma() {
        assert_eq!(err(quote!(scopes = "a" permissions = ["b"])), "expected `,`");
    }
}

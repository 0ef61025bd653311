// The crate's page is its README (the user guide; the repository's README is another file): the
// configuration and answers tables, and every example, which rustdoc compiles (and runs, where it
// can) as doctests, so the guide cannot drift from the API.
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

// The validator and its Actix adapter live in `auth0-core` (the adapter behind its `actix`
// feature: Actix's traits on the core's own types, such as `FromRequest for Claims`, can only be
// implemented there); this crate is the name Actix users depend on, with the attribute.
#[doc(inline)]
pub use auth0_core::*;
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
#[doc(inline)]
pub use auth0_macros::require_auth;

/// Support for the code `#[require_auth]` generates. Not a public API: it may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use auth0_core::__private::*;
    /// `#[require_auth]` moved below the handler's other attributes, so that it runs after them.
    #[cfg(feature = "macros")]
    pub use auth0_macros::require_auth_innermost;
}

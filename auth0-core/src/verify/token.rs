//! The access token itself, in RFC 8725 order: structure, header, issuer (before any I/O), key,
//! signature, claims.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;

use super::TokenFailure;
use crate::Algorithm;
use crate::auth0::Auth0;
use crate::cache;
use crate::claims::TokenClaims;
use crate::jws::{self, JwsError};
use crate::keys::VerifyingKey;
use crate::observe;

impl Auth0 {
    /// RFC 8725 order: structure, header, issuer (before any I/O), key, signature, claims.
    pub(super) fn verify_token(
        &self,
        token: &str,
        fetched: Option<Arc<VerifyingKey>>,
        now: i64,
        granted: Option<&str>,
    ) -> Result<Arc<TokenClaims>, TokenFailure> {
        // The first pass records the token's issuer and key id on the span. A second one (after
        // the key fetch or the resolver's answer) verifies the same token, and recording them
        // again would print them twice: the fmt subscriber shows every record of a field.
        let identify = fetched.is_none() && granted.is_none();
        let cache = &self.0.token_cache;
        let generation = self.0.keys.generation();
        let cache_key = cache.enabled().then(|| cache::Key::of(token));
        // Same bytes, same keys: only time, and whether the key set is still usable (not past
        // its stale limit), can have changed the verdict.
        if let Some(hit) = cache_key.as_ref().and_then(|k| cache.get(k, generation))
            && self.0.keys.cached(&hit.claims.iss, &hit.kid).is_some()
        {
            // An issuer from the resolver is judged again on every request.
            if identify {
                observe::token_identified(&hit.claims.iss, &hit.kid);
            }
            crate::observe::metrics::token_cache(true);
            self.trusted_issuer(&hit.claims.iss, granted)?;
            self.check_claims(&hit.claims, now)?;
            return Ok(Arc::clone(&hit.claims));
        }
        // One lookup per verification: the retry after a key fetch is not another miss.
        if cache_key.is_some() && fetched.is_none() {
            crate::observe::metrics::token_cache(false);
        }
        let jws = jws::parse(token).map_err(|e| {
            let description = match e {
                JwsError::TooLarge => "the access token is too large",
                JwsError::Malformed | JwsError::NotJson => "the access token is malformed",
            };
            TokenFailure::explained(description, || match (e, token.split('.').count()) {
                (JwsError::TooLarge, _) => format!("{} bytes, over the 16 KiB cap", token.len()),
                (_, 5) => "five segments: an encrypted token (JWE). Auth0 issues those when the client \
                           asks for a token without `audience`; request one with the API's identifier as audience"
                    .to_owned(),
                (_, 3) => "a segment is not strict base64url of a JSON object without duplicate members".to_owned(),
                (_, n) => format!("{n} segments instead of 3: not a JWT"),
            })
        })?;
        let header: JoseHeader<'_> = serde_json::from_slice(&jws.header)
            .map_err(|_| TokenFailure::invalid("the access token's header is malformed"))?;
        let alg = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|a| self.0.algorithms.contains(a))
            .ok_or_else(|| {
                TokenFailure::explained(
                    "the access token is signed with an algorithm this API does not accept",
                    || format!("alg {:?}, accepted: {:?}", header.alg, self.0.algorithms),
                )
            })?;
        if header.crit {
            return Err(TokenFailure::invalid(
                "the access token has critical header parameters this API does not support",
            ));
        }
        if !self.typ_accepted(header.typ.as_deref()) {
            return Err(TokenFailure::explained(
                "the access token has an unexpected type",
                || format!("typ {:?}", header.typ),
            ));
        }
        let kid = header
            .kid
            .ok_or(TokenFailure::invalid("the access token has no key id"))?;
        let claims = TokenClaims::from_payload(&jws.payload).map_err(TokenFailure::invalid)?;
        if identify {
            observe::token_identified(&claims.iss, &kid);
        }
        let issuer = self.trusted_issuer(&claims.iss, granted)?;
        let key = match fetched.or_else(|| self.0.keys.cached(issuer, &kid)) {
            Some(key) => key,
            None => {
                return Err(TokenFailure::NeedsKey {
                    issuer: issuer.to_owned(),
                    kid: kid.into_owned(),
                });
            }
        };
        let verifier = key.for_alg(alg).ok_or_else(|| {
            TokenFailure::explained(
                "the access token's signing key cannot be used with its algorithm",
                || format!("key {kid:?} of {issuer} cannot verify {alg:?}"),
            )
        })?;
        verifier
            .verify_sig(jws.signing_input.as_bytes(), &jws.signature)
            .map_err(|_| {
                TokenFailure::explained("the access token's signature is invalid", || {
                    format!("the signature does not verify with key {kid:?} of {issuer}")
                })
            })?;
        self.check_claims(&claims, now)?;
        let claims = Arc::new(claims);
        if let Some(key) = cache_key {
            cache.insert(key, generation, &kid, Arc::clone(&claims));
        }
        Ok(claims)
    }

    /// The issuer, if trusted: in the static list, or allowed by the resolver for this request.
    /// Decided before any I/O; an issuer the resolver has not judged yet sends it there.
    pub(super) fn trusted_issuer<'s>(
        &'s self,
        iss: &'s str,
        granted: Option<&'s str>,
    ) -> Result<&'s str, TokenFailure> {
        if let Some(issuer) = self.0.issuers.iter().find(|i| **i == iss) {
            return Ok(issuer);
        }
        match granted {
            Some(granted) if granted == iss => Ok(granted),
            None if self.0.resolver.is_some() => Err(TokenFailure::NeedsIssuer(iss.to_owned())),
            _ => Err(TokenFailure::explained(
                "the access token was issued by an issuer this API does not trust",
                || format!("iss {iss:?}, trusted: {:?}", self.0.issuers),
            )),
        }
    }

    pub(super) fn check_claims(&self, claims: &TokenClaims, now: i64) -> Result<(), TokenFailure> {
        let leeway = self.0.leeway;
        if now >= claims.exp.saturating_add(leeway) {
            return Err(TokenFailure::explained("the access token has expired", || {
                format!(
                    "exp is {} s in the past (leeway {leeway} s); if tokens expire at once, check the clocks",
                    now.saturating_sub(claims.exp)
                )
            }));
        }
        if let Some(nbf) = claims.nbf.filter(|nbf| now.saturating_add(leeway) < *nbf) {
            return Err(TokenFailure::explained(
                "the access token is not valid yet",
                || {
                    format!(
                        "nbf is {} s in the future (leeway {leeway} s): this server's clock is behind the issuer's",
                        nbf.saturating_sub(now)
                    )
                },
            ));
        }
        if !self.0.audiences.iter().any(|a| claims.aud.contains(a)) {
            let id_token = claims.extra.contains_key("nonce")
                || claims.extra.contains_key("at_hash")
                || claims.azp.as_ref().is_some_and(|azp| claims.aud.contains(azp));
            let hint = if id_token {
                "; looks like an ID token: send the access token"
            } else {
                ""
            };
            return Err(TokenFailure::explained(
                "the access token is not intended for this API",
                || {
                    format!(
                        "aud {:?}, this API accepts {:?}{hint}",
                        claims.aud.iter().collect::<Vec<_>>(),
                        self.0.audiences
                    )
                },
            ));
        }
        let organizations = &self.0.organizations;
        if self.0.organization_required || !organizations.is_empty() {
            // An empty `org_id` names no organization: the same as none.
            match claims.org_id.as_deref().filter(|org| !org.is_empty()) {
                None => {
                    return Err(TokenFailure::invalid(
                        "the access token is not issued for an organization",
                    ));
                }
                Some(org) if !organizations.is_empty() && !organizations.iter().any(|o| o == org) => {
                    return Err(TokenFailure::explained(
                        "the access token is issued for an organization this API does not accept",
                        || format!("org_id {org:?}, accepted: {organizations:?}"),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    pub(super) fn typ_accepted(&self, typ: Option<&str>) -> bool {
        let Some(typ) = typ else {
            return !self.0.require_at_jwt;
        };
        let typ = strip_prefix_ignore_case(typ, "application/").unwrap_or(typ);
        typ.eq_ignore_ascii_case("at+jwt") || (!self.0.require_at_jwt && typ.eq_ignore_ascii_case("jwt"))
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

#[derive(Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    /// Present at all, even `null`: RFC 7515 §4.1.11 extensions this API does not understand.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

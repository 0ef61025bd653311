//! RFC 9728 Protected Resource Metadata: how an OAuth client (an MCP client, say) that was refused
//! learns which authorization server issues tokens for this API, and how to present them.

use serde::Serialize;

use crate::answer::{ConfigError, shown};

/// The well-known path segment of RFC 9728 §3.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata document (RFC 9728 §2), as [`Auth0::resource_metadata`](crate::Auth0::resource_metadata)
/// serves it. Built once at startup from the configuration; members without a value are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ResourceMetadata {
    /// The resource identifier: [`Auth0Config::resource`](crate::Auth0Config::resource), or the
    /// API's (first) audience.
    pub resource: String,
    /// The issuer identifiers of the configured tenants (`https://tenant.us.auth0.com/`).
    pub authorization_servers: Vec<String>,
    /// [`Auth0Config::scopes_supported`](crate::Auth0Config::scopes_supported), when set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// `["header"]`: access tokens are read from the `Authorization` header only.
    pub bearer_methods_supported: Vec<String>,
    /// The DPoP proof algorithms accepted, when DPoP is enabled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// `true` when DPoP is required; left out otherwise (RFC 9728: absent means `false`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens_required: bool,
    /// [`Auth0Config::resource_documentation`](crate::Auth0Config::resource_documentation), when
    /// set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
}

/// What the configuration says about metadata.
#[derive(Debug, Clone, Default)]
pub(crate) struct MetadataSettings {
    pub(crate) enabled: bool,
    pub(crate) url: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) documentation: Option<String>,
}

impl MetadataSettings {
    /// On or off; the last word wins.
    pub(crate) fn publish(mut self, publish: bool) -> Self {
        self.enabled = publish;
        self
    }

    /// Served at `url`, which turns metadata on.
    pub(crate) fn served_at(mut self, url: String) -> Self {
        self.url = Some(url);
        self.enabled = true;
        self
    }
}

/// The metadata of one validator: the document, rendered once, and where it is served.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) document: ResourceMetadata,
    pub(crate) json: String,
    /// The metadata URL, as the `resource_metadata` challenge parameter names it.
    pub(crate) url: String,
    /// Its path, where the handler is mounted.
    pub(crate) path: String,
}

/// The validator's settings the document reflects.
pub(crate) struct Context<'a> {
    pub(crate) issuers: &'a [String],
    pub(crate) audiences: &'a [String],
    pub(crate) dpop_algorithms: Vec<String>,
    pub(crate) dpop_required: bool,
}

impl Published {
    /// `None` when metadata is off; an error for an identifier or URL that cannot be served.
    pub(crate) fn new(
        settings: &MetadataSettings,
        context: Context<'_>,
    ) -> Result<Option<Self>, ConfigError> {
        if !settings.enabled {
            return Ok(None);
        }
        let (resource, var) = match &settings.resource {
            Some(resource) => (resource.trim(), "AUTH0_RESOURCE"),
            None => (
                context.audiences.first().map_or("", |a| a.trim()),
                "AUTH0_AUDIENCE",
            ),
        };
        let parsed = resource_url(resource).ok_or_else(|| ConfigError::Invalid {
            var,
            problem: format!(
                "must be an https URL without query, fragment or characters that need percent-encoding, \
                 written as clients compare it (lower-case host), like https://api.example.com/mcp, to \
                 serve protected resource metadata (RFC 9728), not {}; set AUTH0_RESOURCE to the API's \
                 URL when its audience is not one",
                shown(resource)
            ),
        })?;
        let derived = derive_url(&parsed);
        let url = match &settings.url {
            Some(url) => {
                resource_url(url.trim())
                    .map(|u| u.to_string())
                    .ok_or_else(|| ConfigError::Invalid {
                        var: "AUTH0_RESOURCE_METADATA_URL",
                        problem: format!(
                            "must be an https URL without query, fragment or characters that need \
                             percent-encoding, like {derived}, not {}",
                            shown(url)
                        ),
                    })?
            }
            None => derived,
        };
        let path = reqwest::Url::parse(&url)
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| WELL_KNOWN.to_owned());
        for scope in &settings.scopes {
            if scope.is_empty()
                || !scope
                    .bytes()
                    .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
            {
                return Err(ConfigError::Invalid {
                    var: "AUTH0_SCOPES_SUPPORTED",
                    problem: format!(
                        "must list scope tokens separated by spaces or commas, like read:messages \
                         write:messages, not {}",
                        shown(scope)
                    ),
                });
            }
        }
        let documentation = match &settings.documentation {
            Some(doc) => Some(
                reqwest::Url::parse(doc.trim())
                    .ok()
                    .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
                    .map(|_| doc.trim().to_owned())
                    .ok_or_else(|| ConfigError::Invalid {
                        var: "AUTH0_RESOURCE_DOCUMENTATION",
                        problem: format!(
                            "must be a web page URL, like https://docs.example.com/api, not {}",
                            shown(doc)
                        ),
                    })?,
            ),
            None => None,
        };
        let document = ResourceMetadata {
            // As written: RFC 9728 §3.3 has clients compare it with the identifier they used.
            resource: resource.to_owned(),
            authorization_servers: context.issuers.to_vec(),
            scopes_supported: settings.scopes.clone(),
            bearer_methods_supported: vec!["header".to_owned()],
            dpop_signing_alg_values_supported: context.dpop_algorithms,
            dpop_bound_access_tokens_required: context.dpop_required,
            resource_documentation: documentation,
        };
        let json = serde_json::to_string(&document).map_err(|_| ConfigError::Invalid {
            var: "AUTH0_RESOURCE",
            problem: "could not be written as JSON".to_owned(),
        })?;
        Ok(Some(Self {
            document,
            json,
            url,
            path,
        }))
    }
}

/// An https URL without query or fragment (RFC 9728 §1.2); `http` only for a loopback host, for
/// local development. It must be written as the parser writes it, without percent-encoding: the
/// document names it as written (RFC 9728 §3.3), the metadata path is derived from the parsed
/// form, and a router matches the decoded path, so any rewriting would publish a URL that answers
/// 404 or a `resource` clients cannot match.
fn resource_url(text: &str) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(text).ok()?;
    let as_parsed = url.as_str() == text || (url.path() == "/" && url.as_str() == format!("{text}/"));
    if !as_parsed || url.path().contains('%') {
        return None;
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    let clean = url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && !text.contains(['?', '#']);
    (scheme_ok && url.host().is_some() && clean).then_some(url)
}

/// RFC 9728 §3.1: the well-known segment goes between the host and the resource's path, and a
/// terminating `/` of the path is dropped.
fn derive_url(resource: &reqwest::Url) -> String {
    let origin = resource.origin().ascii_serialization();
    let path = resource.path().trim_end_matches('/');
    format!("{origin}{WELL_KNOWN}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(resource: &str) -> MetadataSettings {
        MetadataSettings {
            enabled: true,
            resource: Some(resource.to_owned()),
            ..MetadataSettings::default()
        }
    }

    fn context() -> Context<'static> {
        Context {
            issuers: &[],
            audiences: &[],
            dpop_algorithms: vec!["ES256".to_owned()],
            dpop_required: false,
        }
    }

    fn published(settings: &MetadataSettings) -> Published {
        match Published::new(settings, context()) {
            Ok(Some(published)) => published,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_metadata_url_is_derived_as_rfc_9728_section_3_1_says() {
        // RFC 9728 §3.1's example, and the resource at the root, with and without its slash.
        for (resource, url, path) in [
            (
                "https://resource.example.com/resource1",
                "https://resource.example.com/.well-known/oauth-protected-resource/resource1",
                "/.well-known/oauth-protected-resource/resource1",
            ),
            (
                "https://resource.example.com",
                "https://resource.example.com/.well-known/oauth-protected-resource",
                "/.well-known/oauth-protected-resource",
            ),
            (
                "https://resource.example.com/",
                "https://resource.example.com/.well-known/oauth-protected-resource",
                "/.well-known/oauth-protected-resource",
            ),
            (
                "https://mcp.example.com:8443/v1/mcp/",
                "https://mcp.example.com:8443/.well-known/oauth-protected-resource/v1/mcp",
                "/.well-known/oauth-protected-resource/v1/mcp",
            ),
            (
                "http://localhost:3000",
                "http://localhost:3000/.well-known/oauth-protected-resource",
                "/.well-known/oauth-protected-resource",
            ),
        ] {
            let published = published(&settings(resource));
            assert_eq!((published.url.as_str(), published.path.as_str()), (url, path));
            assert_eq!(published.document.resource, resource);
        }
    }

    #[test]
    fn the_document_has_rfc_9728_section_3_2s_shape() {
        let settings = MetadataSettings {
            enabled: true,
            resource: Some("https://resource.example.com".to_owned()),
            scopes: vec!["profile".to_owned(), "email".to_owned(), "phone".to_owned()],
            documentation: Some("https://resource.example.com/resource_documentation.html".to_owned()),
            ..MetadataSettings::default()
        };
        let issuers = [
            "https://as1.example.com/".to_owned(),
            "https://as2.example.net/".to_owned(),
        ];
        let context = Context {
            issuers: &issuers,
            audiences: &[],
            dpop_algorithms: Vec::new(),
            dpop_required: false,
        };
        let Ok(Some(published)) = Published::new(&settings, context) else {
            panic!("valid settings");
        };
        let json: serde_json::Value = serde_json::from_str(&published.json).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "resource": "https://resource.example.com",
                "authorization_servers": ["https://as1.example.com/", "https://as2.example.net/"],
                "bearer_methods_supported": ["header"],
                "scopes_supported": ["profile", "email", "phone"],
                "resource_documentation": "https://resource.example.com/resource_documentation.html"
            })
        );
    }

    #[test]
    fn identifiers_that_cannot_be_served_are_configuration_errors() {
        for bad in [
            "api.example.com",
            "http://api.example.com",
            "https://api.example.com/mcp?tenant=1",
            "https://api.example.com/#top",
            "https://user:pw@api.example.com",
            "urn:example:api",
        ] {
            let error = Published::new(&settings(bad), context()).map(|_| ()).err();
            assert!(
                error
                    .as_ref()
                    .is_some_and(|e| e.to_string().starts_with("AUTH0_RESOURCE ")),
                "{bad}: {error:?}"
            );
        }
        let off = MetadataSettings::default();
        assert!(matches!(Published::new(&off, context()), Ok(None)));
    }
}

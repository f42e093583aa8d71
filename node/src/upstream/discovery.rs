//! OpenID discovery per issuer, with its JWKS, cached for a few minutes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_actors::DomainResult;
use openidconnect::core::{CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::http::{Method, StatusCode, header};

use super::errors::{discovery_error, http_error, rejected};
use super::http::ProviderHttp;

/// How long a discovery document and its JWKS are used before they are fetched again.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// A key the cached JWKS lacks makes the node fetch again, at most this often per issuer.
pub const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// Multi-tenant metadata (Microsoft's `common`, `organizations`, `consumers`) names its
/// issuer with this placeholder for the tenant of each ID token.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

#[derive(Debug)]
struct Entry {
    metadata: Arc<CoreProviderMetadata>,
    fetched_at: Instant,
}

/// The cache of discovery documents (with their JWKS), keyed by issuer and by whether a
/// multi-tenant template was accepted for it.
#[derive(Debug, Default)]
pub struct Discovery {
    entries: Mutex<HashMap<(String, bool), Entry>>,
}

impl Discovery {
    /// The issuer's metadata and JWKS: from the cache while younger than [`DISCOVERY_TTL`],
    /// else fetched. `refresh` fetches again unless the entry is younger than
    /// [`FORCED_REFRESH_INTERVAL`] (for an ID token signed with a key the cached JWKS lacks).
    pub async fn metadata(
        &self,
        http: &ProviderHttp,
        issuer: &str,
        allow_tenant_template: bool,
        refresh: bool,
    ) -> DomainResult<Arc<CoreProviderMetadata>> {
        let issuer = issuer.trim_end_matches('/');
        let max_age = if refresh {
            FORCED_REFRESH_INTERVAL
        } else {
            DISCOVERY_TTL
        };
        let key = (issuer.to_owned(), allow_tenant_template);
        if let Some(metadata) = self.cached(&key, max_age) {
            return Ok(metadata);
        }
        let metadata = Arc::new(fetch(http, issuer, allow_tenant_template).await?);
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.retain(|_, entry| entry.fetched_at.elapsed() < DISCOVERY_TTL);
        entries.insert(
            key,
            Entry {
                metadata: metadata.clone(),
                fetched_at: Instant::now(),
            },
        );
        Ok(metadata)
    }

    fn cached(&self, key: &(String, bool), max_age: Duration) -> Option<Arc<CoreProviderMetadata>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(key)
            .filter(|entry| entry.fetched_at.elapsed() < max_age)
            .map(|entry| entry.metadata.clone())
    }
}

/// Fetches `{issuer}/.well-known/openid-configuration` and the JWKS it names. The metadata's
/// issuer must be `issuer`, or (when `allow_tenant_template`) its multi-tenant template.
async fn fetch(
    http: &ProviderHttp,
    issuer: &str,
    allow_tenant_template: bool,
) -> DomainResult<CoreProviderMetadata> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let request = openidconnect::http::Request::builder()
        .method(Method::GET)
        .uri(url)
        .header(header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| rejected("discovery: the issuer is not a valid URL"))?;
    let response = http
        .send(request)
        .await
        .map_err(|error| http_error("discovery", &error))?;
    if response.status() != StatusCode::OK {
        return Err(rejected(format!(
            "discovery: the provider answered HTTP {}",
            response.status()
        )));
    }
    let mut metadata: CoreProviderMetadata = serde_json::from_slice(response.body())
        .map_err(|_| rejected("discovery: the provider's metadata is malformed"))?;
    if !issuer_matches(issuer, metadata.issuer().as_str(), allow_tenant_template) {
        return Err(rejected(
            "discovery: the provider's metadata names another issuer",
        ));
    }
    let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), http)
        .await
        .map_err(|error| discovery_error(&error))?;
    metadata = metadata.set_jwks(jwks);
    Ok(metadata)
}

/// Whether discovered metadata belongs to the configured issuer: the same URL (ignoring a
/// trailing slash), or, for multi-tenant metadata, its template with the configured tenant
/// segment in the placeholder's place.
pub fn issuer_matches(configured: &str, discovered: &str, allow_tenant_template: bool) -> bool {
    let configured = configured.trim_end_matches('/');
    let discovered = discovered.trim_end_matches('/');
    if configured == discovered {
        return true;
    }
    allow_tenant_template && fills_template(discovered, configured)
}

/// Whether `issuer` is `template` with one path segment in place of [`TENANT_PLACEHOLDER`]
/// (`https://login.microsoftonline.com/{tenantid}/v2.0` and
/// `https://login.microsoftonline.com/9188040d-…/v2.0`).
pub fn fills_template(template: &str, issuer: &str) -> bool {
    let Some((prefix, suffix)) = template.split_once(TENANT_PLACEHOLDER) else {
        return false;
    };
    let Some(middle) = issuer
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
    else {
        return false;
    };
    !middle.is_empty()
        && middle
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

    #[test]
    fn the_same_issuer_matches_with_or_without_a_trailing_slash() {
        assert!(issuer_matches(
            "https://accounts.google.com",
            "https://accounts.google.com/",
            false
        ));
        assert!(!issuer_matches(
            "https://accounts.google.com",
            "https://evil.example",
            true
        ));
    }

    #[test]
    fn multi_tenant_metadata_matches_only_when_allowed() {
        let common = "https://login.microsoftonline.com/common/v2.0";
        assert!(issuer_matches(common, TEMPLATE, true));
        assert!(!issuer_matches(common, TEMPLATE, false));
    }

    #[test]
    fn a_tenant_issuer_fills_the_template() {
        assert!(fills_template(
            TEMPLATE,
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
        ));
        for issuer in [
            "https://login.microsoftonline.com//v2.0",
            "https://login.microsoftonline.com/a/b/v2.0",
            "https://login.evil.example/abc/v2.0",
            "https://login.microsoftonline.com/abc/v1.0",
        ] {
            assert!(!fills_template(TEMPLATE, issuer), "{issuer}");
        }
        assert!(!fills_template("https://accounts.google.com", "https://x"));
    }
}

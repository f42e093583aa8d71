//! Redirect safety: a URL that Gatehouse puts in an email link (or sends a browser to) must be
//! on one of the tenant's trusted domains, so no flow can be turned into an open redirect.
//!
//! A pattern is a host (`app.example.com`), a host and port (`localhost:3000`) or a wildcard
//! over subdomains (`*.example.com`, which matches `a.example.com` and `a.b.example.com` but
//! not `example.com`). A pattern without a port matches any port. URLs must be `https`, except
//! `http` to a loopback host (`localhost`, `127.0.0.1`, `[::1]`) for development.

use url::{Host, Url};

use crate::domain::tenants::TenantSettings;
use crate::error::{DomainError, DomainResult};

/// Most trusted-domain patterns per tenant.
pub const MAX_TRUSTED_DOMAINS: usize = 50;
/// Longest accepted redirect URL.
pub const MAX_REDIRECT_URL_BYTES: usize = 2048;

const FIELD: &str = "trusted_domains";

/// Validates and normalises (lower-cases, de-duplicates) a list of patterns.
pub fn parse_trusted_domains(patterns: &[String]) -> DomainResult<Vec<String>> {
    if patterns.len() > MAX_TRUSTED_DOMAINS {
        return Err(DomainError::invalid(
            FIELD,
            format!("must have at most {MAX_TRUSTED_DOMAINS} entries"),
        ));
    }
    let mut parsed: Vec<String> = Vec::new();
    for pattern in patterns {
        let normalized = parse_pattern(pattern)?;
        if !parsed.contains(&normalized) {
            parsed.push(normalized);
        }
    }
    Ok(parsed)
}

fn parse_pattern(raw: &str) -> DomainResult<String> {
    let pattern = raw.trim().to_ascii_lowercase();
    let bad = |reason: &str| DomainError::invalid(FIELD, format!("{raw:?} {reason}"));
    if pattern.contains("://") || pattern.contains('/') || pattern.contains('@') {
        return Err(bad("must be a host or host:port, without scheme or path"));
    }
    let host_part = pattern.strip_prefix("*.").unwrap_or(&pattern);
    if host_part.contains('*') {
        return Err(bad(
            "may only use * as the whole first label (*.example.com)",
        ));
    }
    // Let the URL parser judge the host and port, as it will judge redirect URLs.
    let url = Url::parse(&format!("https://{host_part}/"))
        .map_err(|error| bad(&format!("is not a valid host: {error}")))?;
    match url.host() {
        Some(Host::Domain(domain)) if !domain.is_empty() => {}
        Some(Host::Ipv4(_) | Host::Ipv6(_)) if !pattern.starts_with("*.") => {}
        _ => return Err(bad("is not a valid host")),
    }
    Ok(pattern)
}

/// Whether `url`'s host (and port) matches `pattern`.
fn matches(pattern: &str, url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let (pattern_host, pattern_port) = split_port(pattern);
    if let Some(port) = pattern_port
        && url.port_or_known_default() != Some(port)
    {
        return false;
    }
    match pattern_host.strip_prefix("*.") {
        Some(parent) => host
            .strip_suffix(parent)
            .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        None => host == pattern_host,
    }
}

fn split_port(pattern: &str) -> (&str, Option<u16>) {
    if pattern.ends_with(']') {
        return (pattern, None);
    }
    match pattern.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
            (host, port.parse().ok())
        }
        _ => (pattern, None),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain == "localhost",
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

/// Checks a redirect URL named `field` against the tenant's trusted domains. Anything that is
/// not an `https` (or loopback `http`) URL on a trusted domain is `INVALID_ARGUMENT`.
pub fn check_redirect(
    settings: &TenantSettings,
    field: &'static str,
    raw: &str,
) -> DomainResult<Url> {
    if raw.len() > MAX_REDIRECT_URL_BYTES {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_REDIRECT_URL_BYTES} bytes"),
        ));
    }
    let url = Url::parse(raw.trim())
        .map_err(|error| DomainError::invalid(field, format!("is not a valid URL: {error}")))?;
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url));
    if !scheme_ok {
        return Err(DomainError::invalid(
            field,
            "must be an https URL (http only to localhost)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::invalid(field, "must not carry credentials"));
    }
    if !settings
        .trusted_domains
        .iter()
        .any(|pattern| matches(pattern, &url))
    {
        return Err(DomainError::invalid(
            field,
            "is not on one of the tenant's trusted domains",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings(patterns: &[&str]) -> TenantSettings {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        TenantSettings {
            trusted_domains: parse_trusted_domains(&patterns).unwrap(),
            ..TenantSettings::default()
        }
    }

    #[test]
    fn exact_and_wildcard_patterns_match_only_their_hosts() {
        let settings = settings(&["app.example.com", "*.example.org", "localhost:3000"]);
        for good in [
            "https://app.example.com/cb",
            "https://APP.example.com:8443/cb?x=1",
            "https://a.example.org/",
            "https://a.b.example.org/x",
            "http://localhost:3000/done",
        ] {
            assert!(
                check_redirect(&settings, "redirect_url", good).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "https://example.org/",
            "https://evilexample.org/",
            "https://app.example.com.evil.net/",
            "https://evil.net/?https://app.example.com",
            "http://app.example.com/",
            "http://localhost:4000/",
            "https://user:pw@app.example.com/",
            "javascript:alert(1)",
            "//app.example.com/",
            "https://app.example.com@evil.net/",
        ] {
            let error = check_redirect(&settings, "redirect_url", bad).unwrap_err();
            assert!(
                matches!(
                    error,
                    DomainError::InvalidArgument {
                        field: "redirect_url",
                        ..
                    }
                ),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn no_trusted_domains_trusts_nothing() {
        let settings = TenantSettings::default();
        assert!(check_redirect(&settings, "redirect_url", "https://example.com/").is_err());
    }

    #[test]
    fn bad_patterns_are_refused_by_name() {
        for bad in [
            "https://example.com",
            "example.com/path",
            "a.*.example.com",
            "*",
            "*.",
            "u@x.com",
        ] {
            let error = parse_trusted_domains(&[bad.to_owned()]).unwrap_err();
            assert!(
                matches!(error, DomainError::InvalidArgument { field: FIELD, .. }),
                "{bad}"
            );
        }
        assert_eq!(
            parse_trusted_domains(&["App.Example.com".to_owned(), "app.example.com".to_owned()])
                .unwrap(),
            vec!["app.example.com".to_owned()]
        );
    }
}

//! A tenant's strong-authentication settings: its MFA policy, the step-up window, and the
//! passkey relying party (RP ID and allowed origins), with their validated changes.

use serde::{Deserialize, Serialize};
use url::Url;

use super::settings::bounded;
use crate::error::{DomainError, DomainResult};

/// Who must use a second factor, and how fresh a sign-in sensitive operations need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantMfaSettings {
    /// Whether every user of the tenant must use a second factor (users with one always do).
    pub required: bool,
    /// How long after `required` is turned on (or after sign-up) a user without a second
    /// factor may still sign in with one factor, to enrol.
    pub grace_period_seconds: u32,
    /// Sensitive operations (password or email change, factor changes, account deletion)
    /// need a sign-in at most this old.
    pub step_up_window_seconds: u32,
    /// When `required` was last turned on (unix seconds); the grace period counts from here.
    pub required_since: Option<i64>,
}

impl Default for TenantMfaSettings {
    fn default() -> Self {
        TenantMfaSettings {
            required: false,
            grace_period_seconds: 7 * 24 * 3600,
            step_up_window_seconds: 600,
            required_since: None,
        }
    }
}

/// Requested changes to the MFA policy; `None` leaves a setting alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MfaSettingsChanges {
    /// Require a second factor of every user.
    pub required: Option<bool>,
    /// Grace period to enrol (0..=90 days).
    pub grace_period_seconds: Option<u32>,
    /// Step-up window (60..=86400 s).
    pub step_up_window_seconds: Option<u32>,
}

impl MfaSettingsChanges {
    /// Validates the changes and applies them; `now` stamps the start of a new requirement.
    pub fn apply(&self, settings: &mut TenantMfaSettings, now: i64) -> DomainResult<()> {
        bounded(
            "mfa.grace_period_seconds",
            self.grace_period_seconds,
            0..=90 * 24 * 3600,
        )?;
        bounded(
            "mfa.step_up_window_seconds",
            self.step_up_window_seconds,
            60..=86_400,
        )?;
        if let Some(required) = self.required {
            if required && !settings.required {
                settings.required_since = Some(now);
            }
            settings.required = required;
        }
        if let Some(value) = self.grace_period_seconds {
            settings.grace_period_seconds = value;
        }
        if let Some(value) = self.step_up_window_seconds {
            settings.step_up_window_seconds = value;
        }
        Ok(())
    }
}

/// The tenant's passkey relying party. Empty fields default from the trusted domains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantPasskeySettings {
    /// Whether users may register and sign in with passkeys.
    pub enabled: bool,
    /// The RP ID (a registrable domain); empty: the first trusted domain, else `localhost`.
    pub rp_id: String,
    /// Name shown by authenticators; empty: the tenant's display name.
    pub rp_name: String,
    /// Origins allowed to run ceremonies (`https://app.example.com`, `http://localhost:3000`);
    /// empty: `https://` plus each trusted domain (and `http://localhost` on any port when
    /// the RP ID is `localhost`).
    pub origins: Vec<String>,
}

impl Default for TenantPasskeySettings {
    fn default() -> Self {
        TenantPasskeySettings {
            enabled: true,
            rp_id: String::new(),
            rp_name: String::new(),
            origins: Vec::new(),
        }
    }
}

/// Requested changes to the passkey relying party; `None` leaves a setting alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PasskeySettingsChanges {
    /// Passkeys on or off.
    pub enabled: Option<bool>,
    /// RP ID (empty: derived).
    pub rp_id: Option<String>,
    /// RP name.
    pub rp_name: Option<String>,
    /// Allowed origins (replaces the list; empty: derived).
    pub origins: Option<Vec<String>>,
}

impl PasskeySettingsChanges {
    /// Validates the changes and applies them.
    pub fn apply(&self, settings: &mut TenantPasskeySettings) -> DomainResult<()> {
        if let Some(rp_id) = &self.rp_id {
            let rp_id = rp_id.trim().to_ascii_lowercase();
            if !rp_id.is_empty() && !is_domain(&rp_id) {
                return Err(DomainError::invalid(
                    "passkeys.rp_id",
                    "must be a domain name such as example.com",
                ));
            }
            settings.rp_id = rp_id;
        }
        if let Some(name) = &self.rp_name {
            super::validate_display_name("passkeys.rp_name", name, false)?;
            settings.rp_name = name.trim().to_owned();
        }
        if let Some(origins) = &self.origins {
            if origins.len() > 20 {
                return Err(DomainError::invalid(
                    "passkeys.origins",
                    "must list at most 20 origins",
                ));
            }
            settings.origins = origins
                .iter()
                .map(|origin| parse_origin(origin))
                .collect::<DomainResult<_>>()?;
        }
        if let Some(enabled) = self.enabled {
            settings.enabled = enabled;
        }
        Ok(())
    }
}

fn is_domain(text: &str) -> bool {
    text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn parse_origin(text: &str) -> DomainResult<String> {
    let invalid = || {
        DomainError::invalid(
            "passkeys.origins",
            format!("{text} is not an origin such as https://app.example.com"),
        )
    };
    let url = Url::parse(text.trim()).map_err(|_| invalid())?;
    let host = url.host_str().ok_or_else(invalid)?;
    let secure = url.scheme() == "https" || (url.scheme() == "http" && host == "localhost");
    if !secure || url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        return Err(invalid());
    }
    Ok(url.origin().ascii_serialization())
}

/// A relying party resolved from the settings and the trusted domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// RP ID.
    pub rp_id: String,
    /// Name authenticators show.
    pub rp_name: String,
    /// Allowed origins.
    pub origins: Vec<Url>,
    /// Whether subdomains of the origins are allowed (a `*.domain` trusted domain).
    pub allow_subdomains: bool,
    /// Whether any port is allowed (development on `localhost`).
    pub allow_any_port: bool,
}

impl TenantPasskeySettings {
    /// The relying party to run ceremonies for.
    pub fn relying_party(&self, trusted_domains: &[String], tenant_name: &str) -> RelyingParty {
        let host_of = |domain: &str| -> (String, bool) {
            let wildcard = domain.starts_with("*.");
            let host = domain.trim_start_matches("*.");
            let host = host.split(':').next().unwrap_or(host).to_owned();
            (host, wildcard)
        };
        let rp_id = if self.rp_id.is_empty() {
            trusted_domains
                .first()
                .map(|domain| host_of(domain).0)
                .unwrap_or_else(|| "localhost".to_owned())
        } else {
            self.rp_id.clone()
        };
        let mut allow_subdomains = false;
        let mut origins: Vec<Url> = if self.origins.is_empty() {
            trusted_domains
                .iter()
                .filter_map(|domain| {
                    let (host, wildcard) = host_of(domain);
                    allow_subdomains |= wildcard;
                    let scheme = if host == "localhost" { "http" } else { "https" };
                    Url::parse(&format!("{scheme}://{}", domain.trim_start_matches("*."))).ok()
                })
                .collect()
        } else {
            self.origins
                .iter()
                .filter_map(|origin| Url::parse(origin).ok())
                .collect()
        };
        let allow_any_port = rp_id == "localhost";
        if allow_any_port && origins.is_empty() {
            origins.extend(Url::parse("http://localhost").ok());
        }
        RelyingParty {
            rp_id,
            rp_name: if self.rp_name.is_empty() {
                tenant_name.to_owned()
            } else {
                self.rp_name.clone()
            },
            origins,
            allow_subdomains,
            allow_any_port,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_defaults_from_trusted_domains() {
        let settings = TenantPasskeySettings::default();
        let rp = settings.relying_party(&["app.example.com".to_owned()], "Acme");
        assert_eq!(rp.rp_id, "app.example.com");
        assert_eq!(rp.origins[0].as_str(), "https://app.example.com/");
        assert_eq!(rp.rp_name, "Acme");
        assert!(!rp.allow_any_port);
        let rp = settings.relying_party(&[], "Acme");
        assert_eq!(rp.rp_id, "localhost");
        assert!(rp.allow_any_port);
        assert_eq!(rp.origins[0].as_str(), "http://localhost/");
        let rp = settings.relying_party(&["*.example.com".to_owned()], "Acme");
        assert_eq!(rp.rp_id, "example.com");
        assert!(rp.allow_subdomains);
    }

    #[test]
    fn origins_must_be_secure_origins() {
        let mut settings = TenantPasskeySettings::default();
        for bad in [
            "http://app.example.com",
            "https://app.example.com/path",
            "ftp://x",
            "nonsense",
        ] {
            let changes = PasskeySettingsChanges {
                origins: Some(vec![bad.to_owned()]),
                ..Default::default()
            };
            assert!(changes.apply(&mut settings).is_err(), "{bad}");
        }
        let changes = PasskeySettingsChanges {
            origins: Some(vec![
                "https://app.example.com".to_owned(),
                "http://localhost:3000".to_owned(),
            ]),
            rp_id: Some("Example.com".to_owned()),
            ..Default::default()
        };
        changes.apply(&mut settings).ok();
        assert_eq!(settings.rp_id, "example.com");
        assert_eq!(
            settings.origins,
            vec!["https://app.example.com", "http://localhost:3000"]
        );
    }

    #[test]
    fn requiring_mfa_starts_the_grace_period() {
        let mut settings = TenantMfaSettings::default();
        let changes = MfaSettingsChanges {
            required: Some(true),
            ..Default::default()
        };
        changes.apply(&mut settings, 1_000).ok();
        assert_eq!(settings.required_since, Some(1_000));
        changes.apply(&mut settings, 2_000).ok();
        assert_eq!(settings.required_since, Some(1_000), "already required");
        let bad = MfaSettingsChanges {
            step_up_window_seconds: Some(10),
            ..Default::default()
        };
        assert!(bad.apply(&mut settings, 0).is_err());
    }
}

//! The operations of [`crate::Gatehouse`], a file per noun.

mod anonymous;
pub mod api_keys;
#[cfg(test)]
mod attempts_tests;
pub mod audit;
mod auth;
#[cfg(test)]
mod browser_caller_tests;
pub mod email;
mod email_templates;
pub mod factors;
#[cfg(test)]
mod grace_tests;
mod impersonation;
pub mod oauth;
pub mod oidc;
pub mod oidc_authorize;
pub mod oidc_clients;
pub mod passkeys;
pub mod permissions;
mod policy;
#[cfg(test)]
mod revocation_tests;
mod sessions;
pub mod shares;
pub mod teams;
mod tenants;
pub mod user_emails;
pub mod users;
pub mod webhooks;

pub use auth::{SignedIn, SignedUp};
pub use sessions::BrowserCaller;
pub use tenants::TenantPage;
pub use users::UserPage;

use crate::domain::crypto::{base64url, from_base64url};
use crate::error::{DomainError, DomainResult};

/// Default and largest page sizes of list calls.
pub(crate) fn page_size(requested: u32) -> usize {
    match requested {
        0 => 50,
        size => size.min(200) as usize,
    }
}

/// Wraps a cursor into an opaque page token.
pub(crate) fn encode_page_token(kind: char, value: &str) -> String {
    base64url(format!("{kind}:{value}").as_bytes())
}

/// Unwraps a page token of `kind`.
pub(crate) fn decode_page_token(kind: char, token: &str) -> DomainResult<Option<String>> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || DomainError::invalid("page_token", "is not a token from a previous page");
    let bytes = from_base64url(token).ok_or_else(invalid)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let value = text
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .ok_or_else(invalid)?;
    Ok(Some(value.to_owned()))
}

/// Parses a UUID request field.
pub(crate) fn parse_id(field: &'static str, text: &str) -> DomainResult<uuid::Uuid> {
    if text.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    uuid::Uuid::try_parse(text).map_err(|_| DomainError::invalid(field, "is not a valid id"))
}

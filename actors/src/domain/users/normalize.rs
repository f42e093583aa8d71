//! How an email address is written once, so that addresses that look the same are one
//! address: the unique email index is keyed by [`Email::normalized`].
//!
//! The rule, in order:
//! 1. trimmed; refused when empty, longer than [`MAX_EMAIL_BYTES`], or holding a control,
//!    invisible or bidi formatting character ([`text::is_hidden`]);
//! 2. NFC (canonical composition): `e` + U+0301 and `é` are one address, and U+212A KELVIN
//!    SIGN becomes ASCII `K` (a canonical equivalence, so the address is the ASCII one);
//! 3. the domain in its IDNA (UTS 46) ASCII form: `bücher.example` is `xn--bcher-kva.example`
//!    (an ASCII domain is only lower-cased, as before);
//! 4. the local part is lower-cased; a non-ASCII character whose lower case or compatibility
//!    (NFKC) form holds an ASCII character (`ａ`, `ﬁ`, `İ`, `ª`…) is refused, so no
//!    non-ASCII character can stand in for an ASCII one.
//!
//! An ASCII address is normalised exactly as before (lower-cased). Addresses with non-ASCII
//! characters were keyed by their plain lower case (neither NFC nor IDNA); such a key is
//! moved to the new form the first time the address is looked up ([`adopt_legacy_key`]).

use gatehouse_storage::Transaction;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use super::{UserRecord, find_user, write_user};
use crate::domain::keyspace;
use crate::domain::text;
use crate::error::{DomainError, DomainResult};

/// Longest accepted email address (RFC 5321 path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

/// A validated email: as it is written to and normalised for uniqueness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// Trimmed and in NFC, the domain in its ASCII form when it was not ASCII.
    pub display: String,
    /// The unique key: NFC, lower case, IDNA ASCII domain.
    pub normalized: String,
}

fn invalid(reason: &'static str) -> DomainError {
    DomainError::invalid("email", reason)
}

/// Parses, validates and normalises an email address.
pub fn parse_email(raw: &str) -> DomainResult<Email> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if trimmed.len() > MAX_EMAIL_BYTES {
        return Err(DomainError::invalid(
            "email",
            format!("must be at most {MAX_EMAIL_BYTES} bytes"),
        ));
    }
    text::refuse_hidden("email", trimmed)?;
    let composed: String = trimmed.nfc().collect();
    let options = email_address::Options::default().without_display_text();
    let (Ok(_), Some((local, domain))) = (
        email_address::EmailAddress::parse_with_options(&composed, options),
        composed.rsplit_once('@'),
    ) else {
        return Err(invalid("is not a valid email address"));
    };
    if let Some(lookalike) = local.chars().find(|c| stands_for_ascii(*c)) {
        return Err(DomainError::invalid(
            "email",
            format!(
                "must not contain U+{:04X}: it stands for an ASCII character",
                u32::from(lookalike)
            ),
        ));
    }
    let (display_domain, domain) = if domain.is_ascii() {
        (domain.to_owned(), domain.to_ascii_lowercase())
    } else {
        let ascii = idna::domain_to_ascii(domain)
            .map_err(|_| invalid("has a domain that is not a valid internationalised name"))?;
        (ascii.clone(), ascii)
    };
    let normalized = format!("{}@{domain}", local.to_lowercase());
    if normalized.len() > MAX_EMAIL_BYTES {
        return Err(DomainError::invalid(
            "email",
            format!("must be at most {MAX_EMAIL_BYTES} bytes"),
        ));
    }
    Ok(Email {
        display: format!("{local}@{display_domain}"),
        normalized,
    })
}

/// Whether a non-ASCII `c` has an ASCII character in its lower case or compatibility form.
fn stands_for_ascii(c: char) -> bool {
    !c.is_ascii()
        && (c.to_lowercase().any(|lower| lower.is_ascii())
            || std::iter::once(c).nfkc().any(|compat| compat.is_ascii()))
}

/// The keys an address whose key is `normalized` may have been stored under before NFC and
/// IDNA were applied: its local part as is and decomposed (NFD), with the domain as the ASCII
/// form, the Unicode form, and the decomposed Unicode form. Empty for an ASCII address, whose
/// key never changed.
pub fn legacy_keys(normalized: &str) -> Vec<String> {
    if normalized.is_ascii() {
        return Vec::new();
    }
    let Some((local, domain)) = normalized.rsplit_once('@') else {
        return Vec::new();
    };
    let (unicode_domain, decoded) = idna::domain_to_unicode(domain);
    let mut domains = vec![domain.to_owned()];
    if decoded.is_ok() {
        domains.push(unicode_domain.nfd().collect());
        domains.push(unicode_domain);
    }
    let locals = [local.to_owned(), local.nfd().collect::<String>()];
    let mut keys = Vec::new();
    for local in &locals {
        for domain in &domains {
            let key = format!("{local}@{domain}");
            if key != normalized && !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// Moves an address stored under a legacy key (see [`legacy_keys`]) to `normalized`, in the
/// caller's transaction: the index entry and the user's record of the address. Nothing
/// happens (`false`) when `normalized` is already in the index or no legacy key is. Every lookup and
/// uniqueness check by address calls it first, so an address stored before is found and
/// stays unique.
pub async fn adopt_legacy_key(
    tx: &Transaction,
    tenant: &str,
    normalized: &str,
) -> DomainResult<bool> {
    let candidates = legacy_keys(normalized);
    if candidates.is_empty()
        || tx
            .get(&keyspace::email_index(tenant, normalized))
            .await?
            .is_some()
    {
        return Ok(false);
    }
    for legacy in candidates {
        let legacy_index = keyspace::email_index(tenant, &legacy);
        let Some(id_bytes) = tx.get(&legacy_index).await? else {
            continue;
        };
        let user_id = Uuid::from_slice(&id_bytes)
            .map_err(|_| DomainError::Internal("corrupt email index entry".to_owned()))?;
        let Some(mut user) = find_user(tx, tenant, user_id).await? else {
            continue;
        };
        if !rename_address(&mut user, &legacy, normalized) {
            continue;
        }
        write_user(tx, tenant, &user)?;
        tx.clear(&legacy_index)?;
        tx.set(
            &keyspace::email_index(tenant, normalized),
            user_id.as_bytes(),
        )?;
        return Ok(true);
    }
    Ok(false)
}

/// Gives the user's address keyed `legacy` the key `normalized`; whether it had one.
fn rename_address(user: &mut UserRecord, legacy: &str, normalized: &str) -> bool {
    if user.email_normalized == legacy {
        user.email_normalized = normalized.to_owned();
        return true;
    }
    match user
        .secondary_emails
        .iter_mut()
        .find(|secondary| secondary.normalized == legacy)
    {
        Some(secondary) => {
            secondary.normalized = normalized.to_owned();
            true
        }
        None => false,
    }
}

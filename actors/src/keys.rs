//! The keyspace layout of the domain: every key the actors read or write, tuple-encoded.
//!
//! ```text
//! ("sys", "operator_key")                    SHA-256 of the operator key
//! ("sys", "tenant", tenant)                  tenants index (value: empty)
//! ("sys", "tenant_epoch")                    bumped on every tenant change (i64 LE)
//! ("t", tenant, "cfg")                       tenant record with config and keys
//! ("t", tenant, "user", user_id)             user record
//! ("t", tenant, "idx", "email", email)       unique email index → user_id
//! ("t", tenant, "session", session_id)       session record
//! ("t", tenant, "user_session", user_id, session_id)  a user's sessions (value: empty)
//! ("t", tenant, "outbox", at_millis, event_id) webhook events, written with their change
//! ("t", tenant, "audit_head") / ("t", tenant, "audit", seq)  hash-chained audit ledger
//! ```

use gatehouse_storage::tuple::pack;
use gatehouse_storage::{Subspace, prefix_range};
use uuid::Uuid;

/// SHA-256 of the operator key.
pub fn operator_key() -> Vec<u8> {
    pack(&("sys", "operator_key"))
}

/// Counter bumped by every tenant change; nodes poll it to drop stale tenant caches.
pub fn tenant_epoch() -> Vec<u8> {
    pack(&("sys", "tenant_epoch"))
}

/// Entry of the tenants index.
pub fn tenant_index(tenant: &str) -> Vec<u8> {
    pack(&("sys", "tenant", tenant))
}

/// The whole tenants index.
pub fn tenant_index_subspace() -> Subspace {
    Subspace::from(&("sys", "tenant"))
}

/// The tenant record.
pub fn tenant_config(tenant: &str) -> Vec<u8> {
    pack(&("t", tenant, "cfg"))
}

/// A user record.
pub fn user(tenant: &str, user_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "user", user_id))
}

/// All user records of a tenant, ordered by id (creation order for UUIDv7).
pub fn users_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "user"))
}

/// The email index entry for a normalised email.
pub fn email_index(tenant: &str, email: &str) -> Vec<u8> {
    pack(&("t", tenant, "idx", "email", email))
}

/// The email index subspace of a tenant.
pub fn email_index_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "idx", "email"))
}

/// Range of email index entries whose email starts with `prefix`.
pub fn email_prefix_range(tenant: &str, prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let mut key = email_index(tenant, prefix);
    // A packed string ends with a 0x00 terminator; without it the key is a prefix of every
    // longer string that starts with `prefix`.
    key.pop();
    prefix_range(&key)
}

/// A session record.
pub fn session(tenant: &str, session_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "session", session_id))
}

/// An entry of a user's session index.
pub fn user_session(tenant: &str, user_id: Uuid, session_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "user_session", user_id, session_id))
}

/// All session index entries of a user.
pub fn user_sessions_subspace(tenant: &str, user_id: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "user_session", user_id))
}

/// An outbox event, ordered by time then id.
pub fn outbox(tenant: &str, at: crate::context::Timestamp, event_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "outbox", at.0, event_id))
}

/// The outbox of a tenant.
pub fn outbox_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "outbox"))
}

/// Head (last sequence and hash) of a tenant's audit ledger.
pub fn audit_head(tenant: &str) -> Vec<u8> {
    pack(&("t", tenant, "audit_head"))
}

/// One audit entry.
pub fn audit_entry(tenant: &str, seq: u64) -> Vec<u8> {
    pack(&("t", tenant, "audit", seq))
}

/// The audit ledger of a tenant.
pub fn audit_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "audit"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn email_prefix_range_covers_matching_emails_only() {
        let (begin, end) = email_prefix_range("acme", "al");
        let inside = email_index("acme", "alice@example.com");
        let exact = email_index("acme", "al");
        let outside = email_index("acme", "bob@example.com");
        let other_tenant = email_index("acme2", "alice@example.com");
        assert!(begin <= inside && inside < end);
        assert!(begin <= exact && exact < end);
        assert!(!(begin <= outside && outside < end));
        assert!(!(begin <= other_tenant && other_tenant < end));
    }

    #[test]
    fn tenants_do_not_share_key_prefixes() {
        let user_id = Uuid::nil();
        let (begin, end) = users_subspace("a").range();
        let other = user("ab", user_id);
        assert!(!(begin <= other && other < end));
    }
}

//! The keyspace layout of the domain: every key the actors read or write, tuple-encoded.
//!
//! ```text
//! ("sys", "operator_key")                    SHA-256 of the operator key
//! ("sys", "tenant", tenant)                  tenants index (value: empty)
//! ("sys", "tenant_epoch")                    bumped on every tenant change (i64 LE)
//! ("sys", "revocation_feed", shard)          bumped when a session of a user in the shard
//!                                            ends or the user is blocked (i64 LE)
//! ("t", tenant, "cfg")                       tenant record with config and keys
//! ("t", tenant, "user", user_id)             user record
//! ("t", tenant, "idx", "email", email)       unique email index → user_id
//! ("t", tenant, "session", session_id)       session record
//! ("t", tenant, "user_session", user_id, session_id)  a user's sessions (value: empty)
//! ("t", tenant, "outbox", at_millis, event_id) webhook events, written with their change
//! ("t", tenant, "audit_head") / ("t", tenant, "audit", seq)  hash-chained audit ledger
//! ("t", tenant, "wh_endpoint", endpoint_id)  webhook endpoint (secret sealed)
//! ("t", tenant, "wh_event", event_id)        an event kept for its deliveries and replay
//! ("t", tenant, "wh_delivery", delivery_id)  one event to one endpoint, with its attempts
//! ("t", tenant, "wh_due", at_millis, delivery_id)  deliveries by next attempt (value: empty)
//! ("t", tenant, "wh_log", endpoint_id, delivery_id)  an endpoint's deliveries (value: empty)
//! ("sys", "webhook_work", tenant)            tenants with outbox events or pending deliveries
//! ("t", tenant, "email_tpl", kind)           a tenant's own template of one message kind
//! ("t", tenant, "email_delivery", message_id)  one message's delivery record and attempts
//! ("t", tenant, "email_body", message_id)    the rendered message, sealed
//! ("t", tenant, "email_due", at_millis, message_id)  messages by next attempt (value: empty)
//! ("sys", "email_work", tenant)              tenants with messages waiting to be sent
//! ("t", tenant, "email_code", purpose, address)  the live single-use code of a flow
//! ("t", tenant, "email_link", token_hash)    a flow's link token → its code record
//! ("t", tenant, "email_limit", scope, value) send window per address or source
//! ("t", tenant, "factors", user_id)         a user's TOTP (seed sealed), recovery codes, failures
//! ("t", tenant, "passkey", user_id, passkey_id)  a user's passkey (webauthn-rs credential)
//! ("t", tenant, "idx", "passkey", cred_id)  credential id → (user_id, passkey_id), unique
//! ("t", tenant, "passkey_ceremony", id)    a begun registration or sign-in, single use
//! ("t", tenant, "mfa_ticket", token_hash)  a first factor that still needs a second
//! ("t", tenant, "api_key", key_id)          an API key (secret as SHA-256 only)
//! ("t", tenant, "api_key_by", kind, owner_id, key_id)  keys of one owner (value: empty)
//! ("t", tenant, "api_key_used", key_id)    when the key was last exchanged (at most 1/min)
//! ("t", tenant, "oauth_provider", provider_id)  an upstream provider (client secret sealed)
//! ("t", tenant, "oauth_flow", state_hash)  a begun upstream sign-in (nonce, verifier sealed)
//! ("t", tenant, "oauth_flow_due", at_millis, state_hash)  flows by expiry, for the sweep
//! ("t", tenant, "oauth_ticket", ticket_hash)  a link ticket from BeginLink, single use
//! ("t", tenant, "oauth_code", code_hash)   a finished sign-in's single-use code
//! ("t", tenant, "oidc_code", code_hash)    an authorization code of the OpenID provider
//! ("t", tenant, "oidc_code_due", at_millis, code_hash)  codes by when they are forgotten
//! ("t", tenant, "oidc_consent", user_id, client_id)  the scopes a user let a client have
//! ("t", tenant, "oauth_link", user_id, provider_id)  a user's link with a provider
//! ("t", tenant, "idx", "oauth", provider_id, subject)  upstream account → user_id, unique
//! ("t", tenant, "oauth_tokens", user_id, provider_id)  connected account tokens (sealed)
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

/// Counter of one shard of the revocation feed; nodes poll the shards to drop stale
/// entries of their live-session caches.
pub fn revocation_feed(shard: u16) -> Vec<u8> {
    pack(&("sys", "revocation_feed", shard))
}

/// Every shard of the revocation feed.
pub fn revocation_feed_subspace() -> Subspace {
    Subspace::from(&("sys", "revocation_feed"))
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

/// A password-attempt bucket of an account (a normalised email): `scope` is `unknown`
/// (every unknown source), `src:<address>` or `dev:<device id>`.
pub fn sign_in_attempts(tenant: &str, account: &str, scope: &str) -> Vec<u8> {
    pack(&("t", tenant, "attempt", account, scope))
}

/// Every password-attempt bucket of an account.
pub fn sign_in_attempts_subspace(tenant: &str, account: &str) -> Subspace {
    Subspace::from(&("t", tenant, "attempt", account))
}

/// The attempt bucket of a source address over all accounts (`kind`: `password`, `code`).
pub fn source_attempts(tenant: &str, kind: &str, source: &str) -> Vec<u8> {
    pack(&("t", tenant, "attempt_src", kind, source))
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

/// Marks a tenant whose outbox or delivery queue may hold work for its dispatcher.
pub fn webhook_work(tenant: &str) -> Vec<u8> {
    pack(&("sys", "webhook_work", tenant))
}

/// Every tenant marked for its webhook dispatcher.
pub fn webhook_work_subspace() -> Subspace {
    Subspace::from(&("sys", "webhook_work"))
}

/// A webhook endpoint.
pub fn webhook_endpoint(tenant: &str, endpoint_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "wh_endpoint", endpoint_id))
}

/// Every webhook endpoint of a tenant.
pub fn webhook_endpoints_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "wh_endpoint"))
}

/// An event kept for its deliveries and for replay.
pub fn webhook_event(tenant: &str, event_id: &str) -> Vec<u8> {
    pack(&("t", tenant, "wh_event", event_id))
}

/// A delivery of one event to one endpoint.
pub fn webhook_delivery(tenant: &str, delivery_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "wh_delivery", delivery_id))
}

/// Due-queue entry: the delivery's next attempt is at `at`.
pub fn webhook_due(tenant: &str, at: crate::context::Timestamp, delivery_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "wh_due", at.0, delivery_id))
}

/// The due queue of a tenant, ordered by time.
pub fn webhook_due_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "wh_due"))
}

/// Entry of an endpoint's delivery log.
pub fn webhook_log(tenant: &str, endpoint_id: Uuid, delivery_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "wh_log", endpoint_id, delivery_id))
}

/// An endpoint's delivery log, oldest first.
pub fn webhook_log_subspace(tenant: &str, endpoint_id: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "wh_log", endpoint_id))
}

/// A tenant's own template of one message kind.
pub fn email_template(tenant: &str, kind: &str) -> Vec<u8> {
    pack(&("t", tenant, "email_tpl", kind))
}

/// A message's delivery record.
pub fn email_delivery(tenant: &str, message_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "email_delivery", message_id))
}

/// A tenant's delivery records, oldest first (message ids are time-ordered).
pub fn email_deliveries_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "email_delivery"))
}

/// A message's sealed rendering.
pub fn email_body(tenant: &str, message_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "email_body", message_id))
}

/// Due-queue entry: the message's next attempt is at `at`.
pub fn email_due(tenant: &str, at: crate::context::Timestamp, message_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "email_due", at.0, message_id))
}

/// The email due queue of a tenant, ordered by time.
pub fn email_due_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "email_due"))
}

/// Marks a tenant with messages waiting for its email dispatcher.
pub fn email_work(tenant: &str) -> Vec<u8> {
    pack(&("sys", "email_work", tenant))
}

/// Every tenant marked for its email dispatcher.
pub fn email_work_subspace() -> Subspace {
    Subspace::from(&("sys", "email_work"))
}

/// The live code of one flow (`purpose`) for one normalised address.
pub fn email_code(tenant: &str, purpose: &str, address: &str) -> Vec<u8> {
    pack(&("t", tenant, "email_code", purpose, address))
}

/// A link token's pointer to its code record.
pub fn email_link(tenant: &str, token_hash: &[u8]) -> Vec<u8> {
    pack(&("t", tenant, "email_link", token_hash))
}

/// A send-limit window (`scope` is `address` or `source`).
pub fn email_limit(tenant: &str, scope: &str, value: &str) -> Vec<u8> {
    pack(&("t", tenant, "email_limit", scope, value))
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

/// A team record.
pub fn team(tenant: &str, team_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "team", team_id))
}

/// All teams of a tenant.
pub fn teams_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "team"))
}

/// A membership record.
pub fn member(tenant: &str, team_id: Uuid, user_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "member", team_id, user_id))
}

/// Members of a team.
pub fn members_subspace(tenant: &str, team_id: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "member", team_id))
}

/// Index entry: a user's membership in a team (value: empty).
pub fn user_team(tenant: &str, user_id: Uuid, team_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "user_team", user_id, team_id))
}

/// Teams of a user.
pub fn user_teams_subspace(tenant: &str, user_id: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "user_team", user_id))
}

/// A team invitation.
pub fn invitation(tenant: &str, invitation_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "invite", invitation_id))
}

/// Invitation lookup by SHA-256 of its token.
pub fn invitation_by_token(tenant: &str, token_hash: &[u8]) -> Vec<u8> {
    pack(&("t", tenant, "invite_token", token_hash))
}

/// Index entry: an invitation of a team (value: empty).
pub fn team_invitation(tenant: &str, team_id: Uuid, invitation_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "team_invite", team_id, invitation_id))
}

/// Invitations of a team.
pub fn team_invitations_subspace(tenant: &str, team_id: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "team_invite", team_id))
}

/// A permission definition.
pub fn permission(tenant: &str, permission_id: &str) -> Vec<u8> {
    pack(&("t", tenant, "perm", permission_id))
}

/// All permission definitions of a tenant.
pub fn permissions_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "perm"))
}

/// A grant of `permission_id` to a user in a scope (`""` tenant-wide, else a team id).
pub fn grant(tenant: &str, scope: &str, user_id: Uuid, permission_id: &str) -> Vec<u8> {
    pack(&("t", tenant, "grant", scope, user_id, permission_id))
}

/// A user's direct grants in one scope.
pub fn user_grants_subspace(tenant: &str, scope: &str, user_id: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "grant", scope, user_id))
}

/// Every grant in one scope (a team's, or the tenant-wide ones).
pub fn scope_grants_subspace(tenant: &str, scope: &str) -> Subspace {
    Subspace::from(&("t", tenant, "grant", scope))
}

/// Index of grants by permission, for deleting a definition (value: empty).
pub fn grant_by_permission(
    tenant: &str,
    permission_id: &str,
    scope: &str,
    user_id: Uuid,
) -> Vec<u8> {
    pack(&("t", tenant, "grant_by_perm", permission_id, scope, user_id))
}

/// Grants of one permission.
pub fn grants_by_permission_subspace(tenant: &str, permission_id: &str) -> Subspace {
    Subspace::from(&("t", tenant, "grant_by_perm", permission_id))
}

/// A share record.
pub fn share(tenant: &str, share_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "share", share_id))
}

/// Share lookup by SHA-256 of its token.
pub fn share_by_token(tenant: &str, token_hash: &[u8]) -> Vec<u8> {
    pack(&("t", tenant, "share_token", token_hash))
}

/// Index entry: a share given by `owner` (value: empty).
pub fn owner_share(tenant: &str, owner: Uuid, share_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "owner_share", owner, share_id))
}

/// Shares given by a user.
pub fn owner_shares_subspace(tenant: &str, owner: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "owner_share", owner))
}

/// Index entry: a share received by a user (value: empty).
pub fn recipient_share(tenant: &str, recipient: Uuid, share_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "recipient_share", recipient, share_id))
}

/// Shares received by a user.
pub fn recipient_shares_subspace(tenant: &str, recipient: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "recipient_share", recipient))
}

/// A proposal made through a share.
pub fn proposal(tenant: &str, share_id: Uuid, proposal_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "proposal", share_id, proposal_id))
}

/// Proposals of a share.
pub fn proposals_subspace(tenant: &str, share_id: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "proposal", share_id))
}

/// A user's second factors other than passkeys: TOTP, recovery codes, failed tries.
pub fn user_factors(tenant: &str, user_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "factors", user_id))
}

/// One passkey of a user.
pub fn passkey(tenant: &str, user_id: Uuid, passkey_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "passkey", user_id, passkey_id))
}

/// Every passkey of a user.
pub fn passkeys_subspace(tenant: &str, user_id: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "passkey", user_id))
}

/// The unique index of passkey credential ids (raw bytes) → `(user_id, passkey_id)`.
pub fn passkey_credential(tenant: &str, credential_id: &[u8]) -> Vec<u8> {
    pack(&("t", tenant, "idx", "passkey", credential_id))
}

/// A begun passkey ceremony (registration or sign-in), by its id.
pub fn passkey_ceremony(tenant: &str, ceremony_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "passkey_ceremony", ceremony_id))
}

/// An MFA ticket, by the SHA-256 of its text.
pub fn mfa_ticket(tenant: &str, token_hash: &[u8]) -> Vec<u8> {
    pack(&("t", tenant, "mfa_ticket", token_hash))
}

/// An API key record.
pub fn api_key(tenant: &str, key_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "api_key", key_id))
}

/// Every API key record of a tenant.
pub fn api_keys_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "api_key"))
}

/// Index entry: a key of one owner (`kind` is `tenant`, `user` or `team`; `owner_id` is
/// empty for the tenant).
pub fn owner_api_key(tenant: &str, kind: &str, owner_id: &str, key_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "api_key_by", kind, owner_id, key_id))
}

/// Every key of one owner.
pub fn owner_api_keys_subspace(tenant: &str, kind: &str, owner_id: &str) -> Subspace {
    Subspace::from(&("t", tenant, "api_key_by", kind, owner_id))
}

/// When an API key was last exchanged, written apart from the key so exchanges and
/// revocations do not conflict on one record.
pub fn api_key_used(tenant: &str, key_id: Uuid) -> Vec<u8> {
    pack(&("t", tenant, "api_key_used", key_id))
}

/// An OpenID Connect client of the tenant, by its `gci_` id.
pub fn oidc_client(tenant: &str, client_id: &str) -> Vec<u8> {
    pack(&("t", tenant, "oidc_client", client_id))
}

/// An authorization code of the tenant's OpenID provider, by the SHA-256 of the code.
pub fn oidc_code(tenant: &str, code_hash: &[u8]) -> Vec<u8> {
    pack(&("t", tenant, "oidc_code", code_hash))
}

/// An authorization code's record by when it may be forgotten, for the sweep.
pub fn oidc_code_due(tenant: &str, at: crate::context::Timestamp, code_hash: &[u8]) -> Vec<u8> {
    pack(&("t", tenant, "oidc_code_due", at.0, code_hash))
}

/// Every authorization code by when it may be forgotten.
pub fn oidc_code_due_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "oidc_code_due"))
}

/// A user's consent to an OpenID client.
pub fn oidc_consent(tenant: &str, user_id: Uuid, client_id: &str) -> Vec<u8> {
    pack(&("t", tenant, "oidc_consent", user_id, client_id))
}

/// Every consent of a user.
pub fn oidc_consents_of(tenant: &str, user_id: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "oidc_consent", user_id))
}

/// Every OpenID Connect client of a tenant.
pub fn oidc_clients_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "oidc_client"))
}

/// An upstream provider of a tenant.
pub fn oauth_provider(tenant: &str, provider_id: &str) -> Vec<u8> {
    pack(&("t", tenant, "oauth_provider", provider_id))
}

/// Every upstream provider of a tenant.
pub fn oauth_providers_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "oauth_provider"))
}

/// A begun upstream flow, by the SHA-256 of its `state`.
pub fn oauth_flow(tenant: &str, state_hash: &[u8]) -> Vec<u8> {
    pack(&("t", tenant, "oauth_flow", state_hash))
}

/// A flow's entry in the expiry queue (value: the SHA-256 of its state).
pub fn oauth_flow_due(tenant: &str, at: crate::context::Timestamp, state_hash: &[u8]) -> Vec<u8> {
    pack(&("t", tenant, "oauth_flow_due", at.0, state_hash))
}

/// The flows of a tenant by expiry.
pub fn oauth_flow_due_subspace(tenant: &str) -> Subspace {
    Subspace::from(&("t", tenant, "oauth_flow_due"))
}

/// A link ticket, by the SHA-256 of its text.
pub fn oauth_ticket(tenant: &str, ticket_hash: &[u8]) -> Vec<u8> {
    pack(&("t", tenant, "oauth_ticket", ticket_hash))
}

/// A finished upstream sign-in's single-use code, by its SHA-256.
pub fn oauth_code(tenant: &str, code_hash: &[u8]) -> Vec<u8> {
    pack(&("t", tenant, "oauth_code", code_hash))
}

/// A user's link with one provider.
pub fn oauth_link(tenant: &str, user_id: Uuid, provider_id: &str) -> Vec<u8> {
    pack(&("t", tenant, "oauth_link", user_id, provider_id))
}

/// Every link of a user.
pub fn oauth_links_subspace(tenant: &str, user_id: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "oauth_link", user_id))
}

/// The unique index of upstream accounts → the user linked to them.
pub fn oauth_link_index(tenant: &str, provider_id: &str, issuer: &str, subject: &str) -> Vec<u8> {
    pack(&("t", tenant, "idx", "oauth", provider_id, issuer, subject))
}

/// A connected account's tokens.
pub fn oauth_tokens(tenant: &str, user_id: Uuid, provider_id: &str) -> Vec<u8> {
    pack(&("t", tenant, "oauth_tokens", user_id, provider_id))
}

/// Every connected account of a user.
pub fn oauth_tokens_subspace(tenant: &str, user_id: Uuid) -> Subspace {
    Subspace::from(&("t", tenant, "oauth_tokens", user_id))
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

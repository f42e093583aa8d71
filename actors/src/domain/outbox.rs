//! The transactional outbox: webhook events are written in the same storage transaction as
//! the change they describe, so an event exists if and only if its change committed.
//!
//! Dispatching the outbox to endpoints is the tenant's webhook dispatcher's job.

use gatehouse_storage::{Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::{Context, Timestamp};
use crate::domain::keyspace;
use crate::error::DomainResult;

/// A kind of webhook event; `as_str` is its stable name on the wire and in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `user.created`.
    UserCreated,
    /// `user.updated`.
    UserUpdated,
    /// `user.deleted`.
    UserDeleted,
    /// `session.created`.
    SessionCreated,
    /// `session.revoked`.
    SessionRevoked,
    /// `team.created`.
    TeamCreated,
    /// `team.updated`.
    TeamUpdated,
    /// `team.deleted`.
    TeamDeleted,
    /// `team_membership.created`.
    TeamMembershipCreated,
    /// `team_membership.deleted`.
    TeamMembershipDeleted,
    /// `team_invitation.created`.
    TeamInvitationCreated,
    /// `team_invitation.accepted`.
    TeamInvitationAccepted,
    /// `permission.granted`.
    PermissionGranted,
    /// `permission.revoked`.
    PermissionRevoked,
    /// `permission_definition.changed`.
    PermissionDefinitionChanged,
    /// `share.created`.
    ShareCreated,
    /// `share.used`.
    ShareUsed,
    /// `share.revoked`.
    ShareRevoked,
    /// `share.proposal.created`.
    ShareProposalCreated,
    /// `share.proposal.decided`.
    ShareProposalDecided,
    /// `user.factor_added`: a TOTP app, recovery codes or a passkey.
    UserFactorAdded,
    /// `user.factor_removed`.
    UserFactorRemoved,
    /// `session.impersonation_started`.
    SessionImpersonationStarted,
    /// `session.impersonation_ended`.
    SessionImpersonationEnded,
    /// `api_key.created`.
    ApiKeyCreated,
    /// `api_key.revoked`.
    ApiKeyRevoked,
    /// `oauth_provider.changed`: an upstream provider was created, updated or deleted.
    OAuthProviderChanged,
    /// `user.oauth_linked`.
    UserOAuthLinked,
    /// `user.oauth_unlinked`.
    UserOAuthUnlinked,
}

impl EventType {
    /// Every event type, in the order endpoints list them.
    pub const ALL: [EventType; 29] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeleted,
        EventType::SessionCreated,
        EventType::SessionRevoked,
        EventType::TeamCreated,
        EventType::TeamUpdated,
        EventType::TeamDeleted,
        EventType::TeamMembershipCreated,
        EventType::TeamMembershipDeleted,
        EventType::TeamInvitationCreated,
        EventType::TeamInvitationAccepted,
        EventType::PermissionGranted,
        EventType::PermissionRevoked,
        EventType::PermissionDefinitionChanged,
        EventType::ShareCreated,
        EventType::ShareUsed,
        EventType::ShareRevoked,
        EventType::ShareProposalCreated,
        EventType::ShareProposalDecided,
        EventType::UserFactorAdded,
        EventType::UserFactorRemoved,
        EventType::SessionImpersonationStarted,
        EventType::SessionImpersonationEnded,
        EventType::ApiKeyCreated,
        EventType::ApiKeyRevoked,
        EventType::OAuthProviderChanged,
        EventType::UserOAuthLinked,
        EventType::UserOAuthUnlinked,
    ];

    /// Stable name, e.g. `user.created`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeleted => "user.deleted",
            EventType::SessionCreated => "session.created",
            EventType::SessionRevoked => "session.revoked",
            EventType::TeamCreated => "team.created",
            EventType::TeamUpdated => "team.updated",
            EventType::TeamDeleted => "team.deleted",
            EventType::TeamMembershipCreated => "team_membership.created",
            EventType::TeamMembershipDeleted => "team_membership.deleted",
            EventType::TeamInvitationCreated => "team_invitation.created",
            EventType::TeamInvitationAccepted => "team_invitation.accepted",
            EventType::PermissionGranted => "permission.granted",
            EventType::PermissionRevoked => "permission.revoked",
            EventType::PermissionDefinitionChanged => "permission_definition.changed",
            EventType::ShareCreated => "share.created",
            EventType::ShareUsed => "share.used",
            EventType::ShareRevoked => "share.revoked",
            EventType::ShareProposalCreated => "share.proposal.created",
            EventType::ShareProposalDecided => "share.proposal.decided",
            EventType::UserFactorAdded => "user.factor_added",
            EventType::UserFactorRemoved => "user.factor_removed",
            EventType::SessionImpersonationStarted => "session.impersonation_started",
            EventType::SessionImpersonationEnded => "session.impersonation_ended",
            EventType::ApiKeyCreated => "api_key.created",
            EventType::ApiKeyRevoked => "api_key.revoked",
            EventType::OAuthProviderChanged => "oauth_provider.changed",
            EventType::UserOAuthLinked => "user.oauth_linked",
            EventType::UserOAuthUnlinked => "user.oauth_unlinked",
        }
    }
}

/// Every event type Gatehouse emits, by name, for endpoint filters.
pub const EVENT_TYPES: [&str; EventType::ALL.len()] = {
    let mut names = [""; EventType::ALL.len()];
    let mut index = 0;
    while index < names.len() {
        names[index] = EventType::ALL[index].as_str();
        index += 1;
    }
    names
};

/// One event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Unique id, sent as `webhook-id` (`msg_…`); receivers deduplicate on it.
    pub event_id: String,
    /// E.g. `user.created`.
    pub event_type: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// When the change committed (approximately: the transaction's clock).
    pub occurred_at: Timestamp,
    /// The event payload (`data` of the webhook body).
    pub data: serde_json::Value,
}

/// Writes an event into the outbox as part of `tx`.
pub fn emit(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    event_type: EventType,
    data: serde_json::Value,
) -> DomainResult<OutboxEvent> {
    let event_id = Uuid::from_bytes(context.random::<16>());
    let event = OutboxEvent {
        event_id: format!("msg_{}", event_id.simple()),
        event_type: event_type.as_str().to_owned(),
        tenant: tenant.to_owned(),
        occurred_at: context.now(),
        data,
    };
    tx.set(
        &keyspace::outbox(tenant, event.occurred_at, event_id),
        &codec::encode(&event)?,
    )?;
    // A blind write (no read, so no conflict between concurrent emitters) that tells every
    // node's dispatcher this tenant has work.
    tx.set(&keyspace::webhook_work(tenant), b"")?;
    Ok(event)
}

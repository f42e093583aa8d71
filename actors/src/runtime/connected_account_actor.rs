//! The connected-account actor: the serialisation point of one user's tokens with one
//! provider, so only one refresh per account runs at a time cluster-wide (a provider that
//! rotates refresh tokens would otherwise see the old one spent twice). The refresh re-reads
//! the tokens first: a refresh that another call already finished is not repeated.

use std::sync::Arc;

use ractor::ActorProcessingErr;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::upstream::RefreshFailure;
use crate::domain::upstream::providers;
use crate::domain::upstream::tokens::{AccessGrant, Account, TokenRecord};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::cluster::ActorKind;
use crate::runtime::entity::EntityKind;
use crate::runtime::owner_call::OwnerOperation;
use crate::runtime::registry::Registry;
use crate::runtime::services::NodeServices;

/// The connected-account actor kind.
#[derive(Debug)]
pub struct ConnectedAccountActor;

/// What a live connected-account actor keeps.
#[derive(Debug)]
pub struct ConnectedAccountState {
    services: Arc<NodeServices>,
}

/// The registry key of a connected account (tenant and provider ids contain no `/`).
pub fn connected_account_key(tenant: &str, user_id: Uuid, provider_id: &str) -> String {
    format!("{tenant}/{user_id}/{provider_id}")
}

impl EntityKind for ConnectedAccountActor {
    const KIND: ActorKind = ActorKind::ConnectedAccount;
    type State = ConnectedAccountState;

    fn activate(
        key: &str,
        services: Arc<NodeServices>,
    ) -> Result<ConnectedAccountState, ActorProcessingErr> {
        let mut parts = key.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(_), Some(user_id), Some(_), None) => {
                Uuid::try_parse(user_id)?;
                Ok(ConnectedAccountState { services })
            }
            _ => Err(format!("bad connected account key {key}").into()),
        }
    }

    fn registry(gatehouse: &Gatehouse) -> &Registry<ConnectedAccountActor> {
        &gatehouse.connected_account_actors
    }
}

/// Refresh a connected account's access token (unless a fresh one is already stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshConnectedAccount {
    /// Tenant id.
    pub tenant: String,
    /// The user.
    pub user_id: Uuid,
    /// The provider.
    pub provider_id: String,
    /// Refresh even if the stored token is still fresh, unless the tokens changed since
    /// the caller read version `seen_version`.
    pub force_refresh: bool,
    /// The tokens' version the caller saw.
    pub seen_version: u64,
}

impl OwnerOperation for RefreshConnectedAccount {
    type Kind = ConnectedAccountActor;
    type Reply = AccessGrant;
    const NAME: &'static str = "refresh_connected_account";
    // Running it again after a lost answer finds the tokens changed and hands them out.
    const IDEMPOTENT: bool = true;

    fn key(&self) -> String {
        connected_account_key(&self.tenant, self.user_id, &self.provider_id)
    }

    async fn execute(self, actor: &mut ConnectedAccountState) -> DomainResult<AccessGrant> {
        refresh(&actor.services, &self).await
    }
}

async fn refresh(
    services: &NodeServices,
    op: &RefreshConnectedAccount,
) -> DomainResult<AccessGrant> {
    let account = Account {
        tenant: &op.tenant,
        user_id: op.user_id,
        provider_id: &op.provider_id,
    };
    let (context, master_key) = (&services.context, &services.master_key);
    let (record, provider) = services
        .db
        .run(|tx| async move {
            let record = account
                .read(&tx)
                .await?
                .ok_or(DomainError::OAuthAccountNotLinked)?;
            let provider = providers::read(&tx, account.tenant, account.provider_id).await?;
            Ok::<_, DomainError>((record, provider))
        })
        .await?;
    if record.revoked {
        return Err(DomainError::OAuthRefreshRevoked);
    }
    let fresh = record.is_fresh(context.now());
    // Renewed by another call since this one looked: hand that out rather than refresh
    // again, even when the provider's tokens live less than the minute asked for.
    let renewed_meanwhile = record.version != op.seen_version && record.is_unexpired(context.now());
    if renewed_meanwhile || (fresh && !op.force_refresh) {
        return account.grant(master_key, &record);
    }
    let Some(refresh_token) = account.refresh_token(master_key, &record)? else {
        // Nothing to refresh with (GitHub's tokens, say, never expire and never refresh).
        return if fresh {
            account.grant(master_key, &record)
        } else {
            Err(DomainError::OAuthRefreshRevoked)
        };
    };
    let upstream = services.upstream.as_ref().ok_or_else(|| {
        DomainError::OAuthUpstreamUnavailable("no upstream client on this node".to_owned())
    })?;
    let endpoint = provider.endpoint(master_key, &op.tenant)?;
    let answer = upstream
        .refresh(&endpoint, &refresh_token, &record.scopes)
        .await;
    let (record, answer) = (&record, &answer);
    // The outer result is the transaction's; the inner one is the answer, committed first
    // (a refused refresh token is dropped even though the call reports an error).
    let outcome = services
        .db
        .run(|tx| async move {
            let current = account
                .read(&tx)
                .await?
                .ok_or(DomainError::OAuthAccountNotLinked)?;
            if current.version != record.version {
                // Linked again while the provider answered: the newer tokens win.
                return Ok(changed_meanwhile(
                    &account,
                    master_key,
                    &current,
                    context.now(),
                ));
            }
            Ok::<_, DomainError>(match answer {
                Ok(tokens) => {
                    let stored = account.store(&tx, context, master_key, Some(&current), tokens)?;
                    account.grant(master_key, &stored)
                }
                Err(RefreshFailure::Revoked) => {
                    account.revoke(&tx, context, &current)?;
                    Err(DomainError::OAuthRefreshRevoked)
                }
                Err(RefreshFailure::Unavailable(reason)) => {
                    Err(DomainError::OAuthUpstreamUnavailable(reason.clone()))
                }
                Err(RefreshFailure::Rejected(reason)) => {
                    Err(DomainError::OAuthUpstreamRejected(reason.clone()))
                }
            })
        })
        .await
        .and_then(|answer| answer);
    let label = match &outcome {
        Ok(_) => "refreshed",
        Err(error) => error.code().as_str(),
    };
    metrics::counter!("gatehouse_connected_account_refreshes_total", "outcome" => label)
        .increment(1);
    outcome
}

fn changed_meanwhile(
    account: &Account<'_>,
    master_key: &crate::domain::crypto::MasterKey,
    current: &TokenRecord,
    now: crate::context::Timestamp,
) -> DomainResult<AccessGrant> {
    if current.is_fresh(now) {
        account.grant(master_key, current)
    } else if current.revoked {
        Err(DomainError::OAuthRefreshRevoked)
    } else {
        Err(DomainError::OAuthUpstreamUnavailable(
            "the tokens changed during the refresh; try again".to_owned(),
        ))
    }
}

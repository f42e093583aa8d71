//! Owner-only work: calls that must run on the node owning an actor, executed locally when
//! this node owns it and forwarded to the owner otherwise.
//!
//! When the owner cannot be reached the call is retried after membership updates instead of
//! failing at once. A call that reached the owner but lost its answer is retried only if it is
//! idempotent: retrying a refresh would look like token reuse and revoke the session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_protocol::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::cluster::{Member, MembershipView};
use crate::runtime::entity::{EntityKind, EntityMsg};
pub use crate::runtime::owner_call::{EncodedReply, OwnerCall, OwnerOperation};

/// How long a call keeps looking for a reachable owner.
const ROUTING_DEADLINE: Duration = Duration::from_secs(15);

/// An error as it crosses between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    /// Stable code.
    pub code: String,
    /// Public message.
    pub message: String,
    /// Offending field.
    pub field: Option<String>,
}

impl From<&DomainError> for WireError {
    fn from(error: &DomainError) -> WireError {
        WireError {
            code: error.code().as_str().to_owned(),
            message: error.public_message(),
            field: error.field().map(str::to_owned),
        }
    }
}

impl From<WireError> for DomainError {
    fn from(wire: WireError) -> DomainError {
        DomainError::Remote {
            code: wire.code.parse().unwrap_or(ErrorCode::Internal),
            message: wire.message,
            field: wire.field,
        }
    }
}

/// Why a forwarded call has no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForwardError {
    /// The owner could not be reached; the call was never sent.
    #[error("owner unreachable: {0}")]
    Unreachable(String),
    /// The call may have reached the owner, but no answer came back.
    #[error("owner did not answer: {0}")]
    NoAnswer(String),
}

/// Sends owner calls to other nodes (the node implements it over internal gRPC).
#[async_trait::async_trait]
pub trait Forwarder: Send + Sync + std::fmt::Debug {
    /// Runs `call` on `owner`; the inner result is the owner's own answer.
    async fn forward(
        &self,
        owner: &Member,
        call: &OwnerCall,
    ) -> Result<Result<EncodedReply, WireError>, ForwardError>;
}

/// What a node needs to take part in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterWiring {
    /// Live membership from gossip.
    pub membership: MembershipView,
    /// Transport to other nodes.
    pub forwarder: Arc<dyn Forwarder>,
}

impl Gatehouse {
    /// Runs `operation` where its actor lives.
    // The routing deadline and the forwarding metric run on the monotonic clock.
    #[allow(clippy::disallowed_methods)]
    pub(crate) async fn route<O: OwnerOperation>(&self, operation: O) -> DomainResult<O::Reply> {
        let Some(cluster) = &self.cluster else {
            return self.execute_local(operation).await;
        };
        let kind = <O::Kind as EntityKind>::KIND;
        let key = operation.key();
        let mut call: Option<OwnerCall> = None;
        let started = Instant::now();
        loop {
            let membership = cluster.membership.current();
            let owner = match membership.owner(kind, &key) {
                Some(owner) if owner.node_id != membership.self_id => owner.clone(),
                _ => return self.execute_local(operation).await,
            };
            let call = call.get_or_insert_with(|| operation.clone().into());
            let forwarded_at = Instant::now();
            // An owner that stops answering (paused, partitioned) is dropped from the
            // membership within seconds: stop waiting then instead of for the full deadline.
            let outcome = tokio::select! {
                outcome = cluster.forwarder.forward(&owner, call) => outcome,
                () = owner_leaves(&cluster.membership, &owner.node_id) => Err(ForwardError::NoAnswer(
                    format!("{} left the serving members while the call was in flight", owner.node_id),
                )),
            };
            metrics::histogram!("gatehouse_forwarded_call_seconds", "call" => O::NAME)
                .record(forwarded_at.elapsed().as_secs_f64());
            match outcome {
                Ok(answer) => {
                    metrics::counter!("gatehouse_forwarded_calls_total", "call" => O::NAME, "outcome" => "answered").increment(1);
                    return answer.map_err(DomainError::from)?.decode();
                }
                Err(ForwardError::Unreachable(reason)) => {
                    metrics::counter!("gatehouse_forwarded_calls_total", "call" => O::NAME, "outcome" => "unreachable").increment(1);
                    tracing::debug!(owner = owner.node_id, %reason, "owner unreachable; waiting for membership");
                }
                Err(ForwardError::NoAnswer(reason)) => {
                    metrics::counter!("gatehouse_forwarded_calls_total", "call" => O::NAME, "outcome" => "no_answer").increment(1);
                    if !O::IDEMPOTENT {
                        return Err(DomainError::Unavailable(format!(
                            "the owner of this {} did not answer; the outcome is unknown",
                            kind.as_str()
                        )));
                    }
                    tracing::debug!(owner = owner.node_id, %reason, "no answer; retrying idempotent call");
                }
            }
            if started.elapsed() >= ROUTING_DEADLINE {
                return Err(DomainError::Unavailable(format!(
                    "no reachable owner for this {}",
                    kind.as_str()
                )));
            }
            cluster
                .membership
                .changed_within(Duration::from_millis(250))
                .await;
        }
    }

    /// Runs `operation` on this node's actor, whether or not this node is the owner
    /// (storage transactions keep a mistaken owner from doing harm).
    pub async fn execute_local<O: OwnerOperation>(&self, operation: O) -> DomainResult<O::Reply> {
        O::Kind::registry(self)
            .call(&operation.key(), |reply| {
                EntityMsg::call(operation.clone(), reply)
            })
            .await
    }

    /// Runs a call forwarded by another node and encodes its answer for the way back.
    pub async fn execute_forwarded(&self, call: OwnerCall) -> Result<EncodedReply, WireError> {
        call.execute_local(self).await
    }
}

/// Resolves once `node_id` is no longer a serving member.
async fn owner_leaves(membership: &MembershipView, node_id: &str) {
    let mut changes = membership.subscribe();
    loop {
        let still_serving = changes
            .borrow_and_update()
            .serving()
            .any(|member| member.node_id == node_id);
        if !still_serving || changes.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)]
    use uuid::Uuid;

    use super::*;
    use crate::access::Credentials;
    use crate::context::Context;
    use crate::domain::sessions::RefreshToken;
    use crate::runtime::session_actor::RefreshSession;

    #[test]
    fn debug_output_never_contains_secrets() {
        let (token, _) = RefreshToken::mint(&Context::system(), Uuid::new_v4());
        let secret = token.split('.').nth(1).unwrap().to_owned();
        let call = OwnerCall::from(RefreshSession {
            tenant: "acme".to_owned(),
            token: RefreshToken::parse(&token).unwrap(),
        });
        assert!(!format!("{call:?}").contains(&secret));
        let credentials = Credentials {
            tenant: Some("acme".to_owned()),
            server_key: Some("ssk_very_secret".to_owned()),
            access_token: Some("eyJhbGciOi.secret.sig".to_owned()),
            ..Credentials::default()
        };
        let shown = format!("{credentials:?}");
        assert!(
            !shown.contains("very_secret") && !shown.contains("eyJ"),
            "{shown}"
        );
    }

    #[test]
    fn errors_cross_nodes_with_their_code_and_field() {
        let original = DomainError::invalid("refresh_token", "must not be empty");
        let back = DomainError::from(WireError::from(&original));
        assert_eq!(back.code(), ErrorCode::InvalidArgument);
        assert_eq!(back.field(), Some("refresh_token"));
        let internal = DomainError::Internal("disk on fire at /var/x".to_owned());
        let wire = WireError::from(&internal);
        assert!(
            !wire.message.contains("disk"),
            "internal details stay on the node"
        );
    }
}

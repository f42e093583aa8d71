//! Owner-only operations: work that must run on the node owning an actor.
//!
//! An operation is a type implementing [`OwnerOperation`]: it names its actor (kind and key),
//! its typed reply, and runs its domain function on the actor's state. [`OwnerCall`] is the
//! serialisable wrapper that carries any operation to another node; the list in
//! [`owner_calls!`] is the one place an operation is registered.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::cluster::ActorKind;
use crate::runtime::entity::EntityKind;
use crate::runtime::routing::WireError;
use crate::runtime::{connected_account_actor, session_actor, share_actor, tenant_actor};

/// One owner-only operation: its target actor, its reply, and what it runs there.
pub trait OwnerOperation: Clone + Send + Sync + Into<OwnerCall> + 'static {
    /// The kind of actor that runs it.
    type Kind: EntityKind;
    /// What the caller gets back (it crosses nodes, so it is serialisable).
    type Reply: Serialize + DeserializeOwned + Send + 'static;
    /// Name in metrics and logs.
    const NAME: &'static str;
    /// Whether running it twice is harmless. Only such calls are retried after an answer
    /// was lost: retrying a refresh would look like token reuse and revoke the session.
    const IDEMPOTENT: bool = false;

    /// Registry key of the target actor (inputs are already parsed, so this cannot fail).
    fn key(&self) -> String;

    /// Runs the operation on the actor's state.
    fn execute(
        self,
        actor: &mut <Self::Kind as EntityKind>::State,
    ) -> impl Future<Output = DomainResult<Self::Reply>> + Send;
}

/// A reply encoded for the trip back to the calling node.
#[derive(Clone, Serialize, Deserialize)]
pub struct EncodedReply(#[serde(with = "serde_bytes")] Vec<u8>);

impl std::fmt::Debug for EncodedReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bytes may hold secrets (a new tenant's server key): show only their size.
        write!(f, "EncodedReply({} bytes)", self.0.len())
    }
}

impl EncodedReply {
    /// Encodes a reply.
    pub fn encode<R: Serialize>(reply: &R) -> Result<EncodedReply, WireError> {
        let mut bytes = Vec::new();
        ciborium::into_writer(reply, &mut bytes).map_err(|error| {
            WireError::from(&DomainError::Internal(format!("encode reply: {error}")))
        })?;
        Ok(EncodedReply(bytes))
    }

    /// Decodes the reply of an operation.
    pub fn decode<R: DeserializeOwned>(&self) -> DomainResult<R> {
        ciborium::from_reader(self.0.as_slice())
            .map_err(|error| DomainError::Internal(format!("undecodable owner reply: {error}")))
    }
}

/// Declares [`OwnerCall`] with one variant per operation, and its dispatch.
macro_rules! owner_calls {
    ($($variant:ident($operation:ty),)*) => {
        /// Any owner operation, as it travels to its owner. Its `Debug` output never shows
        /// tokens.
        #[derive(Clone, Serialize, Deserialize)]
        pub enum OwnerCall {
            $(
                #[doc = concat!("[`", stringify!($operation), "`].")]
                $variant($operation),
            )*
        }

        $(
            impl From<$operation> for OwnerCall {
                fn from(operation: $operation) -> OwnerCall {
                    OwnerCall::$variant(operation)
                }
            }
        )*

        impl OwnerCall {
            /// The actor the call belongs to.
            pub fn target(&self) -> (ActorKind, String) {
                match self {
                    $(OwnerCall::$variant(operation) => (
                        <<$operation as OwnerOperation>::Kind as EntityKind>::KIND,
                        operation.key(),
                    ),)*
                }
            }

            /// Name in metrics and logs.
            pub fn name(&self) -> &'static str {
                match self {
                    $(OwnerCall::$variant(_) => <$operation as OwnerOperation>::NAME,)*
                }
            }

            /// Runs the call on this node's actor and encodes the answer.
            pub(crate) async fn execute_local(
                self,
                gatehouse: &Gatehouse,
            ) -> Result<EncodedReply, WireError> {
                match self {
                    $(OwnerCall::$variant(operation) => {
                        let reply = gatehouse.execute_local(operation).await;
                        EncodedReply::encode(&reply.map_err(|error| WireError::from(&error))?)
                    })*
                }
            }
        }
    };
}

owner_calls! {
    RefreshSession(session_actor::RefreshSession),
    RevokeSession(session_actor::RevokeSession),
    CreateTenant(tenant_actor::CreateTenant),
    RotateSigningKey(tenant_actor::RotateSigningKey),
    UpdateTenantSettings(tenant_actor::UpdateTenantSettings),
    DefinePermission(tenant_actor::DefinePermission),
    DeletePermission(tenant_actor::DeletePermission),
    UseShare(share_actor::UseShare),
    RevokeShare(share_actor::RevokeShare),
    DecideProposal(share_actor::DecideProposal),
    RefreshConnectedAccount(connected_account_actor::RefreshConnectedAccount),
}

impl std::fmt::Debug for OwnerCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, key) = self.target();
        write!(f, "{}({} {key})", self.name(), kind.as_str())
    }
}

//! `gatehouse.v1.Shares`.

use gatehouse_actors::api::shares::{RecipientSpec, ShareRef, ShareSpec};
use gatehouse_actors::context::Timestamp;
use gatehouse_actors::shares::{
    ProposalRecord, ProposalState, ShareMode, ShareRecipient, ShareRecord, ShareResource,
};
use gatehouse_protocol::v1::shares_server::Shares;
use gatehouse_protocol::{ErrorCode, v1};
use tonic::{Request, Response, Status};

use super::{Api, RpcError, convert};

fn share(record: &ShareRecord) -> v1::Share {
    let (resource_type, resource_id) = match &record.resource {
        ShareResource::Team(id) => ("team".to_owned(), id.to_string()),
        ShareResource::User(id) => ("user".to_owned(), id.to_string()),
        ShareResource::App { kind, id } => (kind.clone(), id.clone()),
    };
    v1::Share {
        share_id: record.share_id.to_string(),
        owner_user_id: record.owner.to_string(),
        recipient: Some(match &record.recipient {
            ShareRecipient::User(id) => v1::share::Recipient::RecipientUserId(id.to_string()),
            ShareRecipient::Invitee(email) => v1::share::Recipient::RecipientEmail(email.clone()),
            ShareRecipient::Service(name) => v1::share::Recipient::RecipientService(name.clone()),
        }),
        resource_type,
        resource_id,
        permissions: record.permissions.clone(),
        field_mask: record.field_mask.clone(),
        mode: match record.mode {
            ShareMode::ReadOnly => v1::ShareMode::ReadOnly,
            ShareMode::Proposal => v1::ShareMode::Proposal,
        } as i32,
        expires_at: record.expires_at.map(convert::timestamp),
        max_uses: record.max_uses.unwrap_or(0),
        uses: record.uses,
        rate_limit_per_minute: record.rate_limit_per_minute.unwrap_or(0),
        created_at: Some(convert::timestamp(record.created_at)),
        revoked: record.revoked.is_some(),
    }
}

fn proposal(record: &ProposalRecord) -> v1::ShareProposal {
    v1::ShareProposal {
        proposal_id: record.proposal_id.to_string(),
        share_id: record.share_id.to_string(),
        changes: record.changes.clone().into_iter().collect(),
        state: match record.state {
            ProposalState::Pending => "pending",
            ProposalState::Accepted => "accepted",
            ProposalState::Rejected => "rejected",
        }
        .to_owned(),
        created_at: Some(convert::timestamp(record.created_at)),
        decided_at: record.decided_at.map(convert::timestamp),
    }
}

fn missing_share() -> RpcError {
    RpcError::invalid("share", "share_token or share_id is required")
}

fn use_ref(reference: &Option<v1::use_share_request::Share>) -> Result<ShareRef<'_>, RpcError> {
    match reference {
        Some(v1::use_share_request::Share::ShareToken(token)) => Ok(ShareRef::Token(token)),
        Some(v1::use_share_request::Share::ShareId(id)) => Ok(ShareRef::Id(id)),
        None => Err(missing_share()),
    }
}

fn timestamp(at: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    at.map(|at| Timestamp(at.seconds.saturating_mul(1000) + i64::from(at.nanos / 1_000_000)))
}

#[tonic::async_trait]
impl Shares for Api {
    async fn create_share(
        &self,
        request: Request<v1::CreateShareRequest>,
    ) -> Result<Response<v1::CreateShareReply>, Status> {
        self.rpc("Shares/CreateShare", request, |call| async move {
            let client = call.client_info();
            let (caller, body) = call.into_parts();
            let recipient = body.recipient.map(|recipient| match recipient {
                v1::create_share_request::Recipient::RecipientUserId(id) => RecipientSpec::User(id),
                v1::create_share_request::Recipient::RecipientEmail(email) => {
                    RecipientSpec::Email(email)
                }
                v1::create_share_request::Recipient::RecipientService(name) => {
                    RecipientSpec::Service(name)
                }
            });
            let spec = ShareSpec {
                owner_user_id: body.owner_user_id,
                recipient,
                resource_type: body.resource_type,
                resource_id: body.resource_id,
                permissions: body.permissions,
                field_mask: body.field_mask,
                proposal_mode: body.mode == v1::ShareMode::Proposal as i32,
                expires_at: timestamp(body.expires_at.as_ref()),
                max_uses: body.max_uses,
                rate_limit_per_minute: body.rate_limit_per_minute,
                redirect_url: body.redirect_url,
                return_token: body.return_token,
            };
            let (record, token) = self.gatehouse.create_share(&caller, spec, &client).await?;
            Ok(v1::CreateShareReply {
                share: Some(share(&record)),
                share_token: token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn read_through_share(
        &self,
        request: Request<v1::UseShareRequest>,
    ) -> Result<Response<v1::ReadThroughShareReply>, Status> {
        self.rpc("Shares/ReadThroughShare", request, |call| async move {
            let reference = use_ref(&call.body().share)?;
            let used = self
                .gatehouse
                .read_through_share(&call.caller, reference)
                .await?;
            Ok(v1::ReadThroughShareReply {
                share: Some(share(&used.share)),
                resource_json: used
                    .resource
                    .map(|value| value.to_string())
                    .unwrap_or_default(),
            })
        })
        .await
    }

    async fn propose_through_share(
        &self,
        request: Request<v1::ProposeThroughShareRequest>,
    ) -> Result<Response<v1::ShareProposal>, Status> {
        self.rpc("Shares/ProposeThroughShare", request, |call| async move {
            let body = call.body();
            let reference = match &body.share {
                Some(v1::propose_through_share_request::Share::ShareToken(token)) => {
                    ShareRef::Token(token)
                }
                Some(v1::propose_through_share_request::Share::ShareId(id)) => ShareRef::Id(id),
                None => return Err(missing_share()),
            };
            let changes = body.changes.clone().into_iter().collect();
            let used = self
                .gatehouse
                .propose_through_share(&call.caller, reference, changes)
                .await?;
            let stored = used
                .proposal
                .ok_or_else(|| RpcError::wire(ErrorCode::Internal, "no proposal stored", None))?;
            Ok(proposal(&stored))
        })
        .await
    }

    async fn decide_proposal(
        &self,
        request: Request<v1::DecideProposalRequest>,
    ) -> Result<Response<v1::ShareProposal>, Status> {
        self.rpc("Shares/DecideProposal", request, |call| async move {
            let body = call.body();
            let decided = self
                .gatehouse
                .decide_proposal(&call.caller, &body.share_id, &body.proposal_id, body.accept)
                .await?;
            Ok(proposal(&decided))
        })
        .await
    }

    async fn revoke_share(
        &self,
        request: Request<v1::RevokeShareRequest>,
    ) -> Result<Response<v1::RevokeShareReply>, Status> {
        self.rpc("Shares/RevokeShare", request, |call| async move {
            let revoked = self
                .gatehouse
                .revoke_share(&call.caller, &call.body().share_id)
                .await?;
            Ok(v1::RevokeShareReply { revoked })
        })
        .await
    }

    async fn list_shares(
        &self,
        request: Request<v1::ListSharesRequest>,
    ) -> Result<Response<v1::ListSharesReply>, Status> {
        self.rpc("Shares/ListShares", request, |call| async move {
            let body = call.body();
            let records = self
                .gatehouse
                .list_shares(&call.caller, &body.user_id, body.outgoing)
                .await?;
            Ok(v1::ListSharesReply {
                shares: records.iter().map(share).collect(),
            })
        })
        .await
    }

    async fn list_proposals(
        &self,
        request: Request<v1::ListProposalsRequest>,
    ) -> Result<Response<v1::ListProposalsReply>, Status> {
        self.rpc("Shares/ListProposals", request, |call| async move {
            let records = self
                .gatehouse
                .list_proposals(&call.caller, &call.body().share_id)
                .await?;
            Ok(v1::ListProposalsReply {
                proposals: records.iter().map(proposal).collect(),
            })
        })
        .await
    }
}

//! `gatehouse admin share …`.

use clap::{Args, Subcommand};
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1::create_share_request::Recipient;
use gatehouse_protocol::{ApiError, v1};
use serde_json::json;

use super::TenantFlag;
use super::output::Output;

/// Share administration.
#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Create a share owned by a user (the owner must hold what it shares).
    Create(Box<CreateShareArgs>),
    /// Shares given (--outgoing) or received by a user.
    List {
        #[command(flatten)]
        tenant: TenantFlag,
        #[arg(long)]
        user: String,
        #[arg(long)]
        outgoing: bool,
    },
    /// Revoke a share on every node.
    Revoke {
        #[command(flatten)]
        tenant: TenantFlag,
        share_id: String,
    },
    /// Proposals of a share.
    Proposals {
        #[command(flatten)]
        tenant: TenantFlag,
        share_id: String,
    },
}

/// What `share create` makes: owner, recipient, resource, grants and limits.
#[derive(Debug, Args)]
pub struct CreateShareArgs {
    #[command(flatten)]
    tenant: TenantFlag,
    /// Owning user id.
    #[arg(long)]
    owner: String,
    /// Recipient user id.
    #[arg(long, conflicts_with_all = ["to_email", "to_service"])]
    to_user: Option<String>,
    /// Recipient email (the invitee receives the token).
    #[arg(long, conflicts_with = "to_service")]
    to_email: Option<String>,
    /// Recipient service name (the service receives the token).
    #[arg(long)]
    to_service: Option<String>,
    /// With --to-email: email the share with a link to this URL (trusted domains only);
    /// without it the token is printed for you to deliver.
    #[arg(long)]
    redirect_url: Option<String>,
    /// `team`, `user`, or an application resource type.
    #[arg(long)]
    resource_type: String,
    #[arg(long)]
    resource_id: String,
    /// Granted permissions (repeatable).
    #[arg(long = "permission", required = true)]
    permissions: Vec<String>,
    /// Visible fields (repeatable); none means all shareable fields.
    #[arg(long = "field")]
    fields: Vec<String>,
    /// Proposal mode (changes wait for the owner).
    #[arg(long)]
    proposal: bool,
    #[arg(long, default_value_t = 0)]
    max_uses: u64,
    #[arg(long, default_value_t = 0)]
    rate_limit_per_minute: u32,
}

fn share_json(share: &v1::Share) -> serde_json::Value {
    json!({
        "share_id": share.share_id,
        "owner_user_id": share.owner_user_id,
        "resource_type": share.resource_type,
        "resource_id": share.resource_id,
        "permissions": share.permissions,
        "uses": share.uses,
        "revoked": share.revoked,
    })
}

/// Runs a share command.
pub async fn run_share(
    client: &Client,
    out: &Output,
    command: ShareCommand,
) -> Result<(), ApiError> {
    match command {
        ShareCommand::Create(args) => {
            let CreateShareArgs {
                tenant,
                owner,
                to_user,
                to_email,
                to_service,
                redirect_url,
                resource_type,
                resource_id,
                permissions,
                fields,
                proposal,
                max_uses,
                rate_limit_per_minute,
            } = *args;
            let return_token = redirect_url.is_none();
            let recipient = to_user
                .map(Recipient::RecipientUserId)
                .or(to_email.map(Recipient::RecipientEmail))
                .or(to_service.map(Recipient::RecipientService));
            let mode = if proposal {
                v1::ShareMode::Proposal
            } else {
                v1::ShareMode::ReadOnly
            };
            let reply = client
                .with_tenant(&tenant.tenant)
                .create_share(v1::CreateShareRequest {
                    owner_user_id: owner,
                    recipient,
                    resource_type,
                    resource_id,
                    permissions,
                    field_mask: fields,
                    mode: mode as i32,
                    expires_at: None,
                    max_uses,
                    rate_limit_per_minute,
                    redirect_url: redirect_url.unwrap_or_default(),
                    return_token,
                })
                .await?;
            let share_id = reply.share.map(|share| share.share_id).unwrap_or_default();
            let text = if reply.share_token.is_empty() {
                format!("share {share_id}; emailed to the recipient")
            } else {
                format!(
                    "share {share_id}; token (shown once): {}",
                    reply.share_token
                )
            };
            out.value(
                &json!({ "share_id": share_id, "share_token": reply.share_token }),
                &text,
            );
        }
        ShareCommand::List {
            tenant,
            user,
            outgoing,
        } => {
            let reply = client
                .with_tenant(&tenant.tenant)
                .list_shares(v1::ListSharesRequest {
                    user_id: user,
                    outgoing,
                })
                .await?;
            let text = reply
                .shares
                .iter()
                .map(|share| {
                    format!(
                        "{} {}/{} [{}] uses={}{}",
                        share.share_id,
                        share.resource_type,
                        share.resource_id,
                        share.permissions.join(","),
                        share.uses,
                        if share.revoked { " revoked" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            out.value(
                &json!({ "shares": reply.shares.iter().map(share_json).collect::<Vec<_>>() }),
                &text,
            );
        }
        ShareCommand::Revoke { tenant, share_id } => {
            client
                .with_tenant(&tenant.tenant)
                .revoke_share(v1::RevokeShareRequest {
                    share_id: share_id.clone(),
                })
                .await?;
            out.done("revoked", &share_id);
        }
        ShareCommand::Proposals { tenant, share_id } => {
            let reply = client
                .with_tenant(&tenant.tenant)
                .list_proposals(v1::ListProposalsRequest { share_id })
                .await?;
            let rows: Vec<_> = reply
                .proposals
                .iter()
                .map(|proposal| json!({ "proposal_id": proposal.proposal_id, "state": proposal.state, "changes": proposal.changes }))
                .collect();
            let text = reply
                .proposals
                .iter()
                .map(|proposal| {
                    format!(
                        "{} {} {:?}",
                        proposal.proposal_id, proposal.state, proposal.changes
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            out.value(&json!({ "proposals": rows }), &text);
        }
    }
    Ok(())
}

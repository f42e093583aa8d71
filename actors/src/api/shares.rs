//! Shares through the domain facade: creation where the request lands, every use,
//! revocation and proposal decision on the share's owner node through its `ShareActor`.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::access::Caller;
use crate::api::policy::Policy;
use crate::context::Timestamp;
use crate::domain::audit::AuditOrigin;
use crate::domain::email::flows::Keys;
use crate::domain::sessions::ClientInfo;
use crate::domain::shares::invitation::{self, InviteeEmail};
use crate::domain::shares::{
    self, NewShare, ProposalRecord, ShareMode, ShareRecipient, ShareRecord, ShareResource,
};
use crate::domain::shares::{ShareCaller, ShareOperation, ShareUse, usage};
use crate::domain::tenants::redirects::check_redirect;
use crate::domain::users::{Email, parse_email};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::share_actor::{DecideProposal, RevokeShare, UseShare};

/// Who a new share is for, as requested.
#[derive(Debug, Clone)]
pub enum RecipientSpec {
    /// A user id.
    User(String),
    /// An email address (the invitee holds the token, which is emailed to it).
    Email(String),
    /// A service name (the service holds the token).
    Service(String),
}

/// A requested share, validated by [`Gatehouse::create_share`].
#[derive(Debug, Clone)]
pub struct ShareSpec {
    /// Server callers: the owning user. Clients: empty (the caller owns it).
    pub owner_user_id: String,
    /// Recipient.
    pub recipient: Option<RecipientSpec>,
    /// `team`, `user`, or an application type.
    pub resource_type: String,
    /// The resource id.
    pub resource_id: String,
    /// Permission set.
    pub permissions: Vec<String>,
    /// Field mask.
    pub field_mask: Vec<String>,
    /// Proposal mode instead of read-only.
    pub proposal_mode: bool,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Maximum uses (0 = unlimited).
    pub max_uses: u64,
    /// Uses per minute (0 = unlimited).
    pub rate_limit_per_minute: u32,
    /// Email recipients: where the emailed link leads (trusted domains only), with `token=`
    /// added. Refused for other recipients.
    pub redirect_url: String,
    /// Email recipients, servers and operators: also return the token.
    pub return_token: bool,
}

/// How a share is named in a request.
#[derive(Debug, Clone)]
pub enum ShareRef<'a> {
    /// By token (invitees, services, anyone holding it).
    Token(&'a str),
    /// By id (the recipient user, the owner, or a server).
    Id(&'a str),
}

impl Gatehouse {
    fn share_caller(&self, caller: &Caller, token: Option<&str>) -> DomainResult<ShareCaller> {
        let user = match caller {
            Caller::Client { user: None, .. } if token.is_some() => None,
            _ => caller.acting_user()?,
        };
        Ok(ShareCaller {
            user,
            token: token.map(str::to_owned),
            trusted: caller.is_trusted(),
            actor: caller.audit_actor(),
        })
    }

    async fn resolve_share(
        &self,
        caller: &Caller,
        share: &ShareRef<'_>,
    ) -> DomainResult<(Uuid, ShareCaller)> {
        let tenant = caller.tenant()?;
        match share {
            ShareRef::Id(id) => Ok((
                super::parse_id("share_id", id)?,
                self.share_caller(caller, None)?,
            )),
            ShareRef::Token(token) => {
                if token.is_empty() {
                    return Err(DomainError::invalid("share_token", "must not be empty"));
                }
                let tenant_id = tenant.tenant_id();
                let share_id = self
                    .services
                    .db
                    .run(
                        |tx| async move { shares::share_id_for_token(&tx, tenant_id, token).await },
                    )
                    .await?;
                Ok((share_id, self.share_caller(caller, Some(token))?))
            }
        }
    }

    /// Creates a share; the owner must hold everything it gives. Returns the token once for a
    /// user or service recipient. A share to an email address is emailed, in the same
    /// transaction, with a link to `redirect_url` carrying the token; the token itself is
    /// returned only to a server or operator that asks for it (`return_token`), never to a
    /// client. Without a link the token must be returned.
    pub async fn create_share(
        &self,
        caller: &Caller,
        spec: ShareSpec,
        client: &ClientInfo,
    ) -> DomainResult<(ShareRecord, Option<String>)> {
        let tenant = caller.tenant()?.clone();
        caller.refuse_anonymous()?;
        let owner = match caller.acting_user()? {
            Some(me) => {
                if !spec.owner_user_id.is_empty() && spec.owner_user_id != me.to_string() {
                    return Err(DomainError::PermissionDenied(
                        "clients share only what they own",
                    ));
                }
                me
            }
            None => super::parse_id("owner_user_id", &spec.owner_user_id)?,
        };
        let mut invitee = None;
        let recipient = match spec.recipient {
            Some(RecipientSpec::User(id)) => {
                ShareRecipient::User(super::parse_id("recipient_user_id", &id)?)
            }
            Some(RecipientSpec::Email(email)) => {
                let email = shares_email(&email)?;
                let recipient = ShareRecipient::Invitee(email.normalized.clone());
                invitee = Some(email);
                recipient
            }
            Some(RecipientSpec::Service(name)) => {
                if name.is_empty()
                    || name.len() > 100
                    || name.chars().any(crate::domain::text::is_hidden)
                {
                    return Err(DomainError::invalid(
                        "recipient_service",
                        "must be 1 to 100 printable characters",
                    ));
                }
                ShareRecipient::Service(name)
            }
            None => return Err(DomainError::invalid("recipient", "is required")),
        };
        let return_token = spec.return_token && caller.is_trusted();
        let redirect = match (&invitee, spec.redirect_url.trim()) {
            (None, "") => None,
            (None, _) => {
                return Err(DomainError::invalid(
                    "redirect_url",
                    "only a share to an email address is emailed",
                ));
            }
            (Some(_), "") if return_token => None,
            (Some(_), "") => {
                return Err(DomainError::invalid(
                    "redirect_url",
                    "is required: the emailed share links to it",
                ));
            }
            (Some(_), url) => Some(check_redirect(
                &tenant.record.settings,
                "redirect_url",
                url,
            )?),
        };
        // Users and services get their token here; an invitee gets it by email.
        let shows_token = invitee.is_none() || return_token;
        let resource = match spec.resource_type.as_str() {
            "team" => ShareResource::Team(super::parse_id("resource_id", &spec.resource_id)?),
            "user" => ShareResource::User(super::parse_id("resource_id", &spec.resource_id)?),
            kind => ShareResource::App {
                kind: kind.to_owned(),
                id: spec.resource_id.clone(),
            },
        };
        let new_share = NewShare {
            owner,
            recipient,
            resource,
            permissions: spec.permissions,
            field_mask: spec.field_mask,
            mode: if spec.proposal_mode {
                ShareMode::Proposal
            } else {
                ShareMode::ReadOnly
            },
            expires_at: spec.expires_at,
            max_uses: (spec.max_uses > 0).then_some(spec.max_uses),
            rate_limit_per_minute: (spec.rate_limit_per_minute > 0)
                .then_some(spec.rate_limit_per_minute),
        };
        let services = &self.services;
        let keys = Keys {
            context: &services.context,
            master_key: &services.master_key,
        };
        let emailed = match (&invitee, &redirect) {
            (Some(email), Some(redirect)) => Some(InviteeEmail {
                to: &email.display,
                redirect,
                client,
            }),
            _ => None,
        };
        let (tenant, new_share, emailed) = (&tenant, &new_share, &emailed);
        let (share, token) = services
            .db
            .run(|tx| async move {
                let tenant_id = tenant.tenant_id();
                let origin = AuditOrigin::of(caller);
                let graph = &tenant.permissions;
                let new_share = new_share.clone();
                let (share, token) =
                    usage::create_audited(&tx, keys.context, graph, tenant_id, new_share, &origin)
                        .await?;
                if let Some(emailed) = emailed {
                    invitation::email_invitee(&tx, keys, tenant, &share, &token, emailed).await?;
                }
                DomainResult::Ok((share, token))
            })
            .await?;
        Ok((share, shows_token.then_some(token)))
    }

    /// Reads the shared resource through the share's masks (one use).
    pub async fn read_through_share(
        &self,
        caller: &Caller,
        share: ShareRef<'_>,
    ) -> DomainResult<ShareUse> {
        self.use_share(caller, share, ShareOperation::Read).await
    }

    /// Proposes changes through a proposal-mode share (one use).
    pub async fn propose_through_share(
        &self,
        caller: &Caller,
        share: ShareRef<'_>,
        changes: BTreeMap<String, String>,
    ) -> DomainResult<ShareUse> {
        self.use_share(caller, share, ShareOperation::Propose(changes))
            .await
    }

    async fn use_share(
        &self,
        caller: &Caller,
        share: ShareRef<'_>,
        operation: ShareOperation,
    ) -> DomainResult<ShareUse> {
        let tenant = caller.tenant()?.tenant_id().to_owned();
        let (share_id, share_caller) = self.resolve_share(caller, &share).await?;
        self.route(UseShare {
            tenant,
            share_id,
            caller: share_caller,
            operation,
        })
        .await
    }

    /// Revokes a share (its owner or a server); effective on every node when this returns.
    pub async fn revoke_share(&self, caller: &Caller, share_id: &str) -> DomainResult<bool> {
        let tenant = caller.tenant()?.tenant_id().to_owned();
        let share_id = super::parse_id("share_id", share_id)?;
        self.route(RevokeShare {
            tenant,
            share_id,
            caller: self.share_caller(caller, None)?,
        })
        .await
    }

    /// Accepts (applying it in one transaction) or rejects a proposal.
    pub async fn decide_proposal(
        &self,
        caller: &Caller,
        share_id: &str,
        proposal_id: &str,
        accept: bool,
    ) -> DomainResult<ProposalRecord> {
        let tenant = caller.tenant()?.tenant_id().to_owned();
        let share_id = super::parse_id("share_id", share_id)?;
        let proposal_id = super::parse_id("proposal_id", proposal_id)?;
        self.route(DecideProposal {
            tenant,
            share_id,
            proposal_id,
            accept,
            caller: self.share_caller(caller, None)?,
        })
        .await
    }

    /// Shares given by (`outgoing`) or to a user; clients list only their own.
    pub async fn list_shares(
        &self,
        caller: &Caller,
        user_id: &str,
        outgoing: bool,
    ) -> DomainResult<Vec<ShareRecord>> {
        let tenant = caller.tenant()?.clone();
        let user_id = match caller.acting_user()? {
            Some(me) if user_id.is_empty() || user_id == me.to_string() => me,
            Some(_) => {
                return Err(DomainError::PermissionDenied(
                    "clients list only their own shares",
                ));
            }
            None => super::parse_id("user_id", user_id)?,
        };
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move { shares::list_user_shares(&tx, tenant_id, user_id, outgoing).await })
            .await
    }

    /// Proposals of a share (its owner or a server).
    pub async fn list_proposals(
        &self,
        caller: &Caller,
        share_id: &str,
    ) -> DomainResult<Vec<ProposalRecord>> {
        let tenant = caller.tenant()?.clone();
        let share_id = super::parse_id("share_id", share_id)?;
        let tenant_id = tenant.tenant_id();
        self.transact(
            &tenant,
            caller,
            Policy::ShareOwner { share_id },
            |tx| async move { shares::list_proposals(&tx, tenant_id, share_id).await },
        )
        .await
    }
}

fn shares_email(email: &str) -> DomainResult<Email> {
    parse_email(email)
        .map_err(|_| DomainError::invalid("recipient_email", "is not a valid email address"))
}

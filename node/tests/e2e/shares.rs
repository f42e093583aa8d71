//! Shares end to end: masks, owner-held grants, limits, proposals, revocation, isolation.

use std::time::{Duration, SystemTime};

use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1::{self, create_share_request::Recipient, use_share_request};
use gatehouse_protocol::{ApiError, ErrorCode};
use serde_json::Value;

use crate::testkit::{PASSWORD, TestNode, TestTenant, unique_email};

struct Person {
    user_id: String,
    client: Client,
}

async fn person(node: &TestNode, tenant: &TestTenant, label: &str) -> Person {
    let client = node.client(tenant).await;
    let signed_up = client
        .sign_up_with_password(&unique_email(label), PASSWORD)
        .await
        .unwrap();
    Person {
        user_id: signed_up.user_id,
        client: client.with_access_token(&signed_up.access_token),
    }
}

fn by_id(share_id: &str) -> v1::UseShareRequest {
    v1::UseShareRequest {
        share: Some(use_share_request::Share::ShareId(share_id.to_owned())),
    }
}

fn by_token(token: &str) -> v1::UseShareRequest {
    v1::UseShareRequest {
        share: Some(use_share_request::Share::ShareToken(token.to_owned())),
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ErrorCode {
    result.expect_err("must be refused").code
}

fn user_share(owner: &Person, recipient: Recipient, mask: &[&str]) -> v1::CreateShareRequest {
    v1::CreateShareRequest {
        recipient: Some(recipient),
        resource_type: "user".to_owned(),
        resource_id: owner.user_id.clone(),
        permissions: vec!["read".to_owned()],
        field_mask: mask.iter().map(|f| (*f).to_owned()).collect(),
        mode: v1::ShareMode::ReadOnly as i32,
        ..v1::CreateShareRequest::default()
    }
}

#[tokio::test]
async fn reads_through_a_share_apply_its_mask_and_limits() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let owner = person(&node, &tenant, "owner").await;
    let friend = person(&node, &tenant, "friend").await;
    let stranger = person(&node, &tenant, "stranger").await;

    let mut request = user_share(
        &owner,
        Recipient::RecipientUserId(friend.user_id.clone()),
        &["display_name"],
    );
    request.max_uses = 2;
    let created = owner.client.create_share(request).await.unwrap();
    let share_id = created.share.unwrap().share_id;
    assert!(created.share_token.starts_with("gsh_"));

    let read = friend
        .client
        .read_through_share(by_id(&share_id))
        .await
        .unwrap();
    let resource: Value = serde_json::from_str(&read.resource_json).unwrap();
    assert_eq!(
        resource.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["display_name"],
        "masked: {resource}"
    );
    assert_eq!(read.share.unwrap().uses, 1);
    // Someone else cannot use it by id, and learns nothing about it.
    assert_eq!(
        code(stranger.client.read_through_share(by_id(&share_id)).await),
        ErrorCode::ShareNotFound
    );
    // The token works for whoever holds it, even without a signed-in user.
    let anonymous = node.client(&tenant).await;
    anonymous
        .read_through_share(by_token(&created.share_token))
        .await
        .unwrap();
    assert_eq!(
        code(
            anonymous
                .read_through_share(by_token(&created.share_token))
                .await
        ),
        ErrorCode::ShareUseLimitReached
    );
    assert_eq!(
        code(
            anonymous
                .read_through_share(by_token("gsh_not-a-real-token"))
                .await
        ),
        ErrorCode::ShareNotFound
    );

    // Rate limits per minute.
    let mut limited = user_share(
        &owner,
        Recipient::RecipientService("reports".to_owned()),
        &[],
    );
    limited.rate_limit_per_minute = 2;
    let limited = owner.client.create_share(limited).await.unwrap();
    let service = node.server(&tenant).await;
    service
        .read_through_share(by_token(&limited.share_token))
        .await
        .unwrap();
    service
        .read_through_share(by_token(&limited.share_token))
        .await
        .unwrap();
    assert_eq!(
        code(
            service
                .read_through_share(by_token(&limited.share_token))
                .await
        ),
        ErrorCode::RateLimited
    );

    // Expiry. (A client's share to an email address is only emailed; the server asks for the
    // token to hand it over itself.)
    let mut expiring = user_share(
        &owner,
        Recipient::RecipientEmail("guest@example.com".to_owned()),
        &[],
    );
    let soon = SystemTime::now() + Duration::from_millis(1500);
    expiring.expires_at = Some(prost_types_timestamp(soon));
    expiring.owner_user_id = owner.user_id.clone();
    expiring.return_token = true;
    let expiring = service.create_share(expiring).await.unwrap();
    assert!(expiring.share_token.starts_with("gsh_"));
    anonymous
        .read_through_share(by_token(&expiring.share_token))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match anonymous
            .read_through_share(by_token(&expiring.share_token))
            .await
        {
            Err(error) if error.code == ErrorCode::ShareExpired => break,
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => panic!("expected SHARE_EXPIRED, got {other:?}"),
        }
    }
    let mut past = user_share(&owner, Recipient::RecipientService("x".to_owned()), &[]);
    past.expires_at = Some(prost_types_timestamp(
        SystemTime::now() - Duration::from_secs(60),
    ));
    assert_eq!(
        code(owner.client.create_share(past).await),
        ErrorCode::InvalidArgument
    );
}

fn prost_types_timestamp(at: SystemTime) -> prost_types::Timestamp {
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    prost_types::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

#[tokio::test]
async fn owners_share_only_what_they_hold_and_revocation_is_immediate() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let owner = person(&node, &tenant, "owner").await;
    let friend = person(&node, &tenant, "friend").await;
    let server = node.server(&tenant).await;

    // Another user's record is not the owner's to share.
    let theirs = user_share(
        &friend,
        Recipient::RecipientUserId(owner.user_id.clone()),
        &[],
    );
    assert_eq!(
        code(owner.client.create_share(theirs).await),
        ErrorCode::PermissionDenied
    );
    // An application permission the owner does not hold.
    server
        .define_permission(v1::DefinePermissionRequest {
            definition: Some(v1::PermissionDefinition {
                permission_id: "doc:read".to_owned(),
                description: String::new(),
                contains: Vec::new(),
                scope: v1::PermissionScope::Tenant as i32,
            }),
            create_only: true,
        })
        .await
        .unwrap();
    let app_share = v1::CreateShareRequest {
        recipient: Some(Recipient::RecipientUserId(friend.user_id.clone())),
        resource_type: "document".to_owned(),
        resource_id: "doc-42".to_owned(),
        permissions: vec!["doc:read".to_owned()],
        mode: v1::ShareMode::ReadOnly as i32,
        ..v1::CreateShareRequest::default()
    };
    assert_eq!(
        code(owner.client.create_share(app_share.clone()).await),
        ErrorCode::PermissionDenied
    );
    server
        .grant_permission(v1::GrantPermissionRequest {
            user_id: owner.user_id.clone(),
            permission_id: "doc:read".to_owned(),
            team_id: String::new(),
        })
        .await
        .unwrap();
    let created = owner.client.create_share(app_share).await.unwrap();
    let share_id = created.share.unwrap().share_id;
    let read = friend
        .client
        .read_through_share(by_id(&share_id))
        .await
        .unwrap();
    let resource: Value = serde_json::from_str(&read.resource_json).unwrap();
    assert_eq!(resource["resource_id"], "doc-42");

    // If the owner loses the permission, the share stops working.
    server
        .revoke_permission(v1::RevokePermissionRequest {
            user_id: owner.user_id.clone(),
            permission_id: "doc:read".to_owned(),
            team_id: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        code(friend.client.read_through_share(by_id(&share_id)).await),
        ErrorCode::PermissionDenied
    );

    // Only the owner (or a server) revokes; the next use after revoke returns is refused.
    let user_read = owner
        .client
        .create_share(user_share(
            &owner,
            Recipient::RecipientUserId(friend.user_id.clone()),
            &[],
        ))
        .await
        .unwrap();
    let user_share_id = user_read.share.unwrap().share_id;
    assert_eq!(
        code(
            friend
                .client
                .revoke_share(v1::RevokeShareRequest {
                    share_id: user_share_id.clone()
                })
                .await
        ),
        ErrorCode::ShareNotFound
    );
    friend
        .client
        .read_through_share(by_id(&user_share_id))
        .await
        .unwrap();
    let revoked = owner
        .client
        .revoke_share(v1::RevokeShareRequest {
            share_id: user_share_id.clone(),
        })
        .await
        .unwrap();
    assert!(revoked.revoked);
    assert_eq!(
        code(
            friend
                .client
                .read_through_share(by_id(&user_share_id))
                .await
        ),
        ErrorCode::ShareRevoked
    );
    assert_eq!(
        code(
            node.client(&tenant)
                .await
                .read_through_share(by_token(&user_read.share_token))
                .await
        ),
        ErrorCode::ShareRevoked
    );
    // Every use is in the ledger, and so is the use the revocation refused.
    let ledger = server.list_audit_entries(200, "").await.unwrap();
    let actions: Vec<_> = ledger
        .entries
        .iter()
        .filter(|entry| entry.target == format!("share:{user_share_id}"))
        .map(|entry| entry.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "share.create",
            "share.use",
            "share.revoke",
            "share.use_refused",
            "share.use_refused"
        ],
        "{actions:?}"
    );
    assert!(server.verify_audit_ledger().await.unwrap().ok);
    let listed = owner
        .client
        .list_shares(v1::ListSharesRequest {
            user_id: String::new(),
            outgoing: true,
        })
        .await
        .unwrap();
    assert_eq!(listed.shares.len(), 2);
    let received = friend
        .client
        .list_shares(v1::ListSharesRequest {
            user_id: String::new(),
            outgoing: false,
        })
        .await
        .unwrap();
    assert_eq!(received.shares.len(), 2);
    assert_eq!(
        code(
            friend
                .client
                .list_shares(v1::ListSharesRequest {
                    user_id: owner.user_id.clone(),
                    outgoing: true
                })
                .await
        ),
        ErrorCode::PermissionDenied
    );
}

#[tokio::test]
async fn proposals_wait_for_the_owner_and_are_applied_in_one_step() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let owner = person(&node, &tenant, "owner").await;
    let editor = person(&node, &tenant, "editor").await;
    let team = owner
        .client
        .create_team(v1::CreateTeamRequest {
            display_name: "Before".to_owned(),
            ..v1::CreateTeamRequest::default()
        })
        .await
        .unwrap();
    let created = owner
        .client
        .create_share(v1::CreateShareRequest {
            recipient: Some(Recipient::RecipientUserId(editor.user_id.clone())),
            resource_type: "team".to_owned(),
            resource_id: team.team_id.clone(),
            permissions: vec!["read".to_owned(), "update".to_owned()],
            field_mask: vec!["display_name".to_owned()],
            mode: v1::ShareMode::Proposal as i32,
            ..v1::CreateShareRequest::default()
        })
        .await
        .unwrap();
    let share_id = created.share.unwrap().share_id;
    let propose = |field: &str, value: &str| v1::ProposeThroughShareRequest {
        share: Some(v1::propose_through_share_request::Share::ShareId(
            share_id.clone(),
        )),
        changes: [(field.to_owned(), value.to_owned())].into_iter().collect(),
    };
    let accepted = editor
        .client
        .propose_through_share(propose("display_name", "After"))
        .await
        .unwrap();
    assert_eq!(accepted.state, "pending");
    let rejected = editor
        .client
        .propose_through_share(propose("display_name", "Never"))
        .await
        .unwrap();
    assert_eq!(
        code(
            editor
                .client
                .propose_through_share(propose("client_metadata", "{}"))
                .await
        ),
        ErrorCode::ShareScopeExceeded,
        "outside the field mask"
    );
    // Nothing changed yet.
    let before = owner
        .client
        .get_team(v1::GetTeamRequest {
            team_id: team.team_id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(before.display_name, "Before");
    // Only the owner decides.
    assert_eq!(
        code(
            editor
                .client
                .decide_proposal(v1::DecideProposalRequest {
                    share_id: share_id.clone(),
                    proposal_id: accepted.proposal_id.clone(),
                    accept: true,
                })
                .await
        ),
        ErrorCode::ShareNotFound
    );
    let pending = owner
        .client
        .list_proposals(v1::ListProposalsRequest {
            share_id: share_id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(pending.proposals.len(), 2);
    let done = owner
        .client
        .decide_proposal(v1::DecideProposalRequest {
            share_id: share_id.clone(),
            proposal_id: accepted.proposal_id.clone(),
            accept: true,
        })
        .await
        .unwrap();
    assert_eq!(done.state, "accepted");
    owner
        .client
        .decide_proposal(v1::DecideProposalRequest {
            share_id: share_id.clone(),
            proposal_id: rejected.proposal_id.clone(),
            accept: false,
        })
        .await
        .unwrap();
    let after = owner
        .client
        .get_team(v1::GetTeamRequest {
            team_id: team.team_id,
        })
        .await
        .unwrap();
    assert_eq!(after.display_name, "After");
    // A decided proposal cannot be decided again.
    assert_eq!(
        code(
            owner
                .client
                .decide_proposal(v1::DecideProposalRequest {
                    share_id,
                    proposal_id: accepted.proposal_id,
                    accept: true,
                })
                .await
        ),
        ErrorCode::ProposalNotFound
    );
}

#[tokio::test]
async fn a_share_token_of_one_tenant_means_nothing_in_another() {
    let node = TestNode::start().await;
    let a = node.tenant("A").await;
    let b = node.tenant("B").await;
    let b_owner = person(&node, &b, "b").await;
    let created = b_owner
        .client
        .create_share(user_share(
            &b_owner,
            Recipient::RecipientService("svc".to_owned()),
            &[],
        ))
        .await
        .unwrap();
    let share_id = created.share.unwrap().share_id;
    let a_client = node.client(&a).await;
    assert_eq!(
        code(
            a_client
                .read_through_share(by_token(&created.share_token))
                .await
        ),
        ErrorCode::ShareNotFound
    );
    let a_server = node.server(&a).await;
    assert_eq!(
        code(a_server.read_through_share(by_id(&share_id)).await),
        ErrorCode::ShareNotFound
    );
    assert_eq!(
        code(
            a_server
                .revoke_share(v1::RevokeShareRequest {
                    share_id: share_id.clone()
                })
                .await
        ),
        ErrorCode::ShareNotFound
    );
    // Still usable in B.
    node.client(&b)
        .await
        .read_through_share(by_token(&created.share_token))
        .await
        .unwrap();
}

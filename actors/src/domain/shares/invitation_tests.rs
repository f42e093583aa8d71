//! A share's invitation over the in-memory store with a manual clock: what the message says
//! and that its link's token opens the share.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use gatehouse_storage::Database;
use url::Url;

use super::{InviteeEmail, email_invitee, minutes_left};
use crate::context::{Context, ManualClock, OsEntropy, Timestamp};
use crate::domain::audit::AuditOrigin;
use crate::domain::crypto::MasterKey;
use crate::domain::email::flows::Keys;
use crate::domain::email::{EmailKind, outbox};
use crate::domain::permissions::PermissionGraph;
use crate::domain::sessions::ClientInfo;
use crate::domain::shares::{self, NewShare, ShareMode, ShareRecipient, ShareResource, usage};
use crate::domain::tenants::{self, TenantState};
use crate::domain::users::{self, NewUser, parse_email};

const MINUTE: i64 = 60_000;

#[test]
fn the_time_left_is_rounded_up_to_whole_minutes_and_never_reads_as_no_expiry() {
    let now = Timestamp(1_700_000_000_000);
    assert_eq!(minutes_left(None, now), 0, "no expiry");
    assert_eq!(minutes_left(Some(Timestamp(now.0 + 3 * MINUTE)), now), 3);
    assert_eq!(minutes_left(Some(Timestamp(now.0 + 90 * 1000)), now), 2);
    assert_eq!(minutes_left(Some(Timestamp(now.0 + 1)), now), 1);
    assert_eq!(
        minutes_left(Some(Timestamp(now.0 - MINUTE)), now),
        1,
        "an expiry just passed still reads as one"
    );
    assert_eq!(minutes_left(Some(Timestamp(i64::MAX)), now), u32::MAX);
}

#[tokio::test]
async fn the_invitation_names_the_owner_and_the_expiry_and_its_token_opens_the_share() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000_000)));
    let context = Context {
        clock: clock.clone(),
        entropy: Arc::new(OsEntropy),
        live_sessions: Default::default(),
    };
    let master = MasterKey::from_bytes(&[7; 32]);
    let db = Database::memory();
    let (context, master) = (&context, &master);
    let created = db
        .run(|tx| async move { tenants::create_tenant(&tx, context, master, "acme", "Acme").await })
        .await
        .unwrap();
    let graph = PermissionGraph::default();
    let tenant = TenantState::new(created.record, graph.clone(), master, "http://x").unwrap();
    let owner = db
        .run(|tx| async move {
            let new_user = NewUser {
                email: parse_email("grace@example.com").unwrap(),
                display_name: String::new(),
                password_hash: None,
                email_verified: true,
            };
            users::create_user(&tx, context, "acme", new_user).await
        })
        .await
        .unwrap();
    let redirect = Url::parse("https://app.example.com/shared?from=mail").unwrap();
    let client = ClientInfo::default();
    let invitee = InviteeEmail {
        to: "Ada@Example.com",
        redirect: &redirect,
        client: &client,
    };
    let new_share = NewShare {
        owner: owner.user_id,
        recipient: ShareRecipient::Invitee("ada@example.com".to_owned()),
        resource: ShareResource::User(owner.user_id),
        permissions: vec![shares::READ.to_owned()],
        field_mask: vec!["display_name".to_owned()],
        mode: ShareMode::ReadOnly,
        expires_at: Some(context.now().plus(Duration::from_secs(3 * 24 * 3600))),
        max_uses: None,
        rate_limit_per_minute: None,
    };
    let keys = Keys {
        context,
        master_key: master,
    };
    let (tenant, graph, new_share, invitee) = (&tenant, &graph, &new_share, &invitee);
    let (share, _) = db
        .run(|tx| async move {
            let origin = AuditOrigin {
                actor: "server".to_owned(),
                source_ip: String::new(),
            };
            let (share, token) =
                usage::create_audited(&tx, context, graph, "acme", new_share.clone(), &origin)
                    .await?;
            email_invitee(&tx, keys, tenant, &share, &token, invitee).await?;
            crate::error::DomainResult::Ok((share, token))
        })
        .await
        .unwrap();

    let (deliveries, _) = db
        .run(|tx| async move { outbox::list_deliveries(&tx, "acme", None, 10).await })
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery.kind, EmailKind::ShareInvitation);
    assert_eq!(
        delivery.to, "Ada@Example.com",
        "sent to the address as entered"
    );
    let now = context.now();
    let due = db
        .run(|tx| async move { outbox::due_messages(&tx, "acme", now, 10).await })
        .await
        .unwrap();
    let (due_at, message_id) = due[0];
    let claim = db
        .run(|tx| async move {
            let lease = Duration::from_secs(30);
            outbox::claim(&tx, context, master, "acme", due_at, message_id, lease).await
        })
        .await
        .unwrap()
        .expect("claimed");
    let text = &claim.email.text;
    assert!(
        claim
            .email
            .subject
            .contains("grace@example.com shared something with you"),
        "an owner without a display name is named by address: {}",
        claim.email.subject
    );
    assert!(text.contains("expires in 3 days"), "{text}");
    let start = text
        .find("https://app.example.com/shared?from=mail&token=")
        .expect("the link keeps the redirect's query and adds the token");
    let link = Url::parse(text[start..].split_whitespace().next().unwrap()).unwrap();
    let token = link
        .query_pairs()
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
        .unwrap();
    let token = token.as_str();
    let found = db
        .run(|tx| async move { shares::share_id_for_token(&tx, "acme", token).await })
        .await
        .unwrap();
    assert_eq!(found, share.share_id);
}

//! Two nodes' dispatchers over one store: only the tenant's owner sends, and when the owner
//! dies mid-delivery (its attempt never finishes) the new owner sends the event once the
//! claim's lease has run out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_storage::Database;

use super::*;
use crate::access::Caller;
use crate::cluster::{ActorKind, Member, MemberStatus, Membership, MembershipView, place};
use crate::context::{Clock, Context, ManualClock, OsEntropy, SystemClock};
use crate::domain::crypto::MasterKey;
use crate::domain::sessions::ClientInfo;
use crate::gatehouse::{Gatehouse, GatehouseOptions};
use crate::routing::{ClusterWiring, EncodedReply, ForwardError, Forwarder, OwnerCall, WireError};

/// Records requests; answers 200, or never answers when `stall` is set.
#[derive(Debug, Default)]
struct Receiver {
    stall: bool,
    seen: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl WebhookSender for Receiver {
    async fn send(&self, request: WebhookRequest) -> SendOutcome {
        let id = request
            .headers
            .iter()
            .find(|(name, _)| name == "webhook-id")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        self.seen.lock().unwrap().push(id);
        if self.stall {
            std::future::pending::<()>().await;
        }
        SendOutcome::Answered(200)
    }
}

/// The nodes never forward anything in this test.
#[derive(Debug)]
struct NoForwarding;

#[async_trait::async_trait]
impl Forwarder for NoForwarding {
    async fn forward(
        &self,
        _owner: &Member,
        _call: &OwnerCall,
    ) -> Result<Result<EncodedReply, WireError>, ForwardError> {
        Err(ForwardError::Unreachable("not in this test".to_owned()))
    }
}

fn member(node_id: &str) -> Member {
    Member {
        node_id: node_id.to_owned(),
        generation: 1,
        grpc_addr: String::new(),
        http_addr: String::new(),
        status: MemberStatus::Serving,
        actors: Vec::new(),
    }
}

fn membership(self_id: &str, members: &[&str]) -> Membership {
    Membership {
        self_id: self_id.to_owned(),
        members: members.iter().map(|id| member(id)).collect(),
    }
}

async fn node(
    db: &Database,
    context: &Context,
    view: MembershipView,
    sender: Arc<Receiver>,
) -> Arc<Gatehouse> {
    Gatehouse::start(
        db.clone(),
        context.clone(),
        MasterKey::from_bytes(&[8; 32]),
        GatehouseOptions {
            password_hash_threads: 1,
            cluster: Some(ClusterWiring {
                membership: view,
                forwarder: Arc::new(NoForwarding),
            }),
            webhooks: WebhookSettings {
                sender: Some(sender),
                allow_private_targets: true,
                poll_interval: Duration::from_millis(20),
                ..WebhookSettings::default()
            },
            ..GatehouseOptions::default()
        },
    )
    .await
    .unwrap()
}

async fn wait(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..250 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} did not happen within 5 s");
}

#[tokio::test]
async fn the_new_owner_sends_an_event_whose_owner_died_mid_delivery() {
    let db = Database::memory();
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let context = Context {
        clock: clock.clone(),
        entropy: Arc::new(OsEntropy),
        live_sessions: Default::default(),
    };
    let ids = ["a", "b"];
    let owner_id = place(ActorKind::Tenant, "acme", &ids.map(member))
        .unwrap()
        .node_id
        .clone();
    let heir_id = if owner_id == "a" { "b" } else { "a" };
    let (_owner_membership, owner_view) = MembershipView::new(membership(&owner_id, &ids));
    let (heir_membership, heir_view) = MembershipView::new(membership(heir_id, &ids));
    let stalled = Arc::new(Receiver {
        stall: true,
        ..Receiver::default()
    });
    let answering = Arc::new(Receiver::default());
    let owner = node(&db, &context, owner_view, stalled.clone()).await;
    let heir = node(&db, &context, heir_view, answering.clone()).await;

    let (master, ctx) = (&MasterKey::from_bytes(&[8; 32]), &context);
    db.run(|tx| async move {
        crate::domain::tenants::create_tenant(&tx, ctx, master, "acme", "Acme").await
    })
    .await
    .unwrap();
    let server = Caller::Server {
        tenant: heir.services().tenant("acme").await.unwrap(),
    };
    let endpoint = heir
        .create_webhook_endpoint(&server, "http://127.0.0.1:9/", "", &["user.created".into()])
        .await
        .unwrap();
    heir.sign_up_with_password(
        &server,
        "ann@example.com",
        "correct horse battery",
        "",
        &ClientInfo::default(),
    )
    .await
    .unwrap();

    wait("the owner's attempt", || {
        stalled.seen.lock().unwrap().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        answering.seen.lock().unwrap().is_empty(),
        "only the owner dispatches"
    );

    // The owner dies: the others see it leave and the heir now owns the tenant.
    heir_membership.publish(membership(heir_id, &[heir_id]));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        answering.seen.lock().unwrap().is_empty(),
        "the claim's lease still holds"
    );
    clock.advance(Duration::from_secs(31));
    wait("the heir's attempt", || {
        answering.seen.lock().unwrap().len() == 1
    })
    .await;
    assert_eq!(
        answering.seen.lock().unwrap()[0],
        stalled.seen.lock().unwrap()[0],
        "the same event, with the same webhook-id"
    );
    let id = endpoint.endpoint.endpoint_id.to_string();
    for _ in 0..250 {
        let page = heir
            .list_webhook_deliveries(&server, &id, 0, "")
            .await
            .unwrap();
        if page.deliveries[0].status == DeliveryStatus::Delivered {
            drop(owner);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the delivery was not recorded as delivered");
}

//! Email survives the loss of the node that sends it: messages committed through every node
//! wait in the tenant's outbox while the SMTP server is down, the tenant's owner is
//! SIGKILLed, and once the server is back the new owner sends each message, with the
//! Message-ID it was given when its change committed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gatehouse_cluster_tests::{ClusterSandbox, SandboxStorage, SmtpServer};
use gatehouse_protocol::v1;

use crate::support::{actor_owner, unique_email};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_queued_on_any_node_are_sent_once_the_owner_is_gone() {
    let mut smtp = SmtpServer::start();
    let port = smtp.port().to_string();
    smtp.stop();
    let mut sandbox = ClusterSandbox::builder()
        .nodes(3)
        .storage(SandboxStorage::Postgres)
        .node_env("GATEHOUSE_EMAIL_HOST", "127.0.0.1")
        .node_env("GATEHOUSE_EMAIL_PORT", port.as_str())
        .node_env("GATEHOUSE_EMAIL_TLS", "none")
        .node_env("GATEHOUSE_EMAIL_TIMEOUT_SECONDS", "3")
        .node_env("GATEHOUSE_EMAIL_POLL_INTERVAL_MS", "50")
        .build()
        .await
        .unwrap();
    let tenant = sandbox.create_tenant("Mail").await.unwrap();
    let owner_id = actor_owner(
        &sandbox,
        &["a", "b", "c"],
        v1::ActorKind::Tenant,
        &tenant.id,
        "",
    )
    .await;
    let owner = sandbox.index_of(&owner_id).unwrap();
    let survivor = (owner + 1) % 3;

    // Sign-in codes for unknown addresses: each request commits one message.
    let mut addresses = Vec::new();
    for index in 0..9 {
        let address = unique_email(&format!("queued{index}"));
        sandbox
            .node(index % 3)
            .client(&tenant)
            .unwrap()
            .send_sign_in_code(&address, "")
            .await
            .unwrap();
        addresses.push(address);
    }
    let server = sandbox.node(survivor).server(&tenant).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = server
            .list_email_deliveries(50, "")
            .await
            .unwrap()
            .deliveries;
        if log.len() == addresses.len() && log.iter().all(|delivery| !delivery.attempts.is_empty())
        {
            assert!(
                log.iter().all(|delivery| delivery.status == "pending"),
                "{log:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the owner never tried: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids: BTreeMap<String, String> = server
        .list_email_deliveries(50, "")
        .await
        .unwrap()
        .deliveries
        .into_iter()
        .map(|delivery| (delivery.to, delivery.message_id))
        .collect();

    sandbox.node_mut(owner).kill().await.unwrap();
    smtp.restart().unwrap();
    let received = smtp
        .wait_for_messages(addresses.len(), Duration::from_secs(90))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = smtp
        .messages()
        .into_iter()
        .chain(received)
        .collect::<Vec<_>>();
    for address in &addresses {
        let mine: BTreeSet<&str> = received
            .iter()
            .filter(|message| message.envelope_recipients.iter().any(|to| to == address))
            .map(|message| message.message_id.as_str())
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "{address}: one Message-ID, however often sent: {mine:?}"
        );
        let expected = &ids[address];
        assert!(
            mine.iter().all(|id| id.contains(expected.as_str())),
            "{mine:?} vs {expected}"
        );
    }
    let log = server
        .list_email_deliveries(50, "")
        .await
        .unwrap()
        .deliveries;
    assert!(
        log.iter().all(|delivery| delivery.status == "sent"),
        "{log:?}"
    );
}

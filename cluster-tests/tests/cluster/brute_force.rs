//! Password limits across a 3-node cluster on PostgreSQL: wrong guesses spread over all
//! three nodes at once share one limit, because every attempt reserves its slot in the
//! account's buckets in storage before its password is checked; the owner's known device
//! still signs in on any node, and an unlock on one node clears the limits for all.

use gatehouse_protocol::{ApiError, ErrorCode, v1};
use tokio::task::JoinSet;

use crate::support::{PASSWORD, three_nodes, unique_email};

/// Wrong passwords one account may have checked from one unknown source.
const PER_SOURCE: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_spread_over_three_nodes_share_one_limit() {
    let sandbox = three_nodes().await;
    let tenant = sandbox.create_tenant("Guarded").await.unwrap();
    let clients: Vec<_> = (0..3)
        .map(|index| sandbox.node(index).client(&tenant).unwrap())
        .collect();
    let email = unique_email("ada");
    clients[0]
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let device = clients[0]
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();

    let mut guesses = JoinSet::new();
    for index in 0..60 {
        let (client, email) = (clients[index % 3].clone(), email.clone());
        guesses.spawn(async move {
            client
                .sign_in_with_password(&email, &format!("guess number {index}"))
                .await
        });
    }
    let (mut checked, mut limited) = (0, 0);
    while let Some(result) = guesses.join_next().await {
        let result: Result<v1::SignInReply, ApiError> = result.unwrap();
        match result.expect_err("a wrong password never signs in").code {
            ErrorCode::InvalidCredentials => checked += 1,
            ErrorCode::RateLimited => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(checked + limited, 60);
    assert!(
        checked <= PER_SOURCE,
        "{checked} of 60 guesses over three nodes were checked"
    );
    // The right password from this (unknown) source waits on every node.
    for client in &clients {
        let error = client
            .sign_in_with_password(&email, PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::RateLimited);
    }
    // The owner's device gets in on every node.
    for client in &clients {
        let owner = client
            .sign_in_with_password_on_device(&email, PASSWORD, &device.device_token)
            .await
            .unwrap();
        assert_eq!(owner.user_id, device.user_id);
    }
    // An unlock on one node clears the limits for all.
    let server = sandbox.node(1).server(&tenant).unwrap();
    server.unlock_user(&device.user_id).await.unwrap();
    clients[2]
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
}

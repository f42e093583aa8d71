//! Supervision, passivation and ownership races of entity actors.

mod single_node {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use gatehouse_storage::Database;

    use crate::context::Context;
    use crate::domain::crypto::MasterKey;
    use crate::domain::sessions::ClientInfo;
    use crate::runtime::entity::EntityMsg;
    use crate::runtime::session_actor::session_key;
    use crate::{Caller, DomainError, Gatehouse, GatehouseOptions};

    async fn gatehouse(idle: Duration) -> std::sync::Arc<Gatehouse> {
        Gatehouse::start(
            Database::memory(),
            Context::system(),
            MasterKey::from_bytes(&[9; 32]),
            GatehouseOptions {
                actor_idle_timeout: idle,
                password_hash_threads: 1,
                ..GatehouseOptions::default()
            },
        )
        .await
        .unwrap()
    }

    async fn signed_up(gatehouse: &Gatehouse) -> (Caller, crate::api::SignedIn) {
        let operator = Caller::Operator { tenant: None };
        gatehouse
            .create_tenant(&operator, "Acme", "acme")
            .await
            .unwrap();
        let caller = Caller::Server {
            tenant: gatehouse.services().tenant("acme").await.unwrap(),
        };
        let signed_in = gatehouse
            .sign_up_with_password(
                &caller,
                "ada@example.com",
                "correct horse battery",
                "",
                &ClientInfo::default(),
            )
            .await
            .unwrap()
            .into_signed_in()
            .unwrap();
        (caller, signed_in)
    }

    /// Polls `check` until it holds, for at most `limit`.
    async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if check() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        check()
    }

    #[tokio::test]
    async fn a_panicking_session_actor_is_replaced_with_its_state_intact() {
        let gatehouse = gatehouse(Duration::from_secs(60)).await;
        let (caller, signed_in) = signed_up(&gatehouse).await;
        let first = gatehouse
            .refresh_session(&caller, &signed_in.refresh_token)
            .await
            .unwrap();
        assert_eq!(gatehouse.active_actors().1, 1);

        let key = session_key("acme", signed_in.session.session_id);
        let crashed: Result<(), DomainError> = gatehouse
            .session_actors
            .call(&key, |_reply| EntityMsg::Crash)
            .await;
        assert!(
            matches!(crashed, Err(DomainError::Unavailable(_))),
            "{crashed:?}"
        );
        assert!(
            eventually(Duration::from_secs(5), || gatehouse.active_actors().1 == 0).await,
            "the supervisor forgot the failed actor"
        );

        // The next call re-activates the actor from storage: the rotation chain continues
        // and the token spent before the crash is still known as spent.
        let second = gatehouse
            .refresh_session(&caller, &first.refresh_token)
            .await
            .unwrap();
        assert_eq!(second.session.generation, 2);
        let reused = gatehouse
            .refresh_session(&caller, &signed_in.refresh_token)
            .await
            .unwrap_err();
        assert!(matches!(reused, DomainError::RefreshTokenReused));
    }

    #[tokio::test]
    async fn idle_actors_passivate_and_come_back_on_demand() {
        let gatehouse = gatehouse(Duration::from_millis(100)).await;
        let (caller, signed_in) = signed_up(&gatehouse).await;
        let refreshed = gatehouse
            .refresh_session(&caller, &signed_in.refresh_token)
            .await
            .unwrap();
        assert!(
            eventually(Duration::from_secs(5), || gatehouse.active_actors()
                == (0, 0))
            .await,
            "idle actors passivated: {:?}",
            gatehouse.active_actors()
        );
        gatehouse
            .refresh_session(&caller, &refreshed.refresh_token)
            .await
            .unwrap();
        assert_eq!(gatehouse.active_actors().1, 1);
    }

    #[tokio::test]
    async fn concurrent_refreshes_of_one_token_rotate_exactly_once() {
        let gatehouse = gatehouse(Duration::from_secs(60)).await;
        let (caller, signed_in) = signed_up(&gatehouse).await;
        let attempts = (0..8).map(|_| {
            let gatehouse = gatehouse.clone();
            let caller = caller.clone();
            let token = signed_in.refresh_token.clone();
            tokio::spawn(async move { gatehouse.refresh_session(&caller, &token).await })
        });
        let mut rotated = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(_) => rotated += 1,
                Err(DomainError::RefreshTokenReused | DomainError::SessionRevoked) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(rotated, 1, "one presentation wins; the rest are reuse");
    }
}

mod two_owners {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use gatehouse_storage::Database;

    use crate::context::Context;
    use crate::domain::crypto::MasterKey;
    use crate::domain::sessions::ClientInfo;
    use crate::domain::sessions::RefreshToken;
    use crate::runtime::session_actor::RefreshSession;
    use crate::{Caller, DomainError, Gatehouse, GatehouseOptions};

    /// Two nodes over one shared store, as in a cluster.
    async fn two_nodes() -> (std::sync::Arc<Gatehouse>, std::sync::Arc<Gatehouse>) {
        let db = Database::memory();
        let start = |db: Database| async move {
            Gatehouse::start(
                db,
                Context::system(),
                MasterKey::from_bytes(&[4; 32]),
                GatehouseOptions {
                    password_hash_threads: 1,
                    tenant_epoch_poll: Duration::from_millis(100),
                    ..GatehouseOptions::default()
                },
            )
            .await
            .unwrap()
        };
        (start(db.clone()).await, start(db).await)
    }

    #[tokio::test]
    async fn two_owners_of_one_session_rotate_it_exactly_once() {
        let (first, second) = two_nodes().await;
        let operator = Caller::Operator { tenant: None };
        first
            .create_tenant(&operator, "Acme", "acme")
            .await
            .unwrap();
        let caller = Caller::Server {
            tenant: first.services().tenant("acme").await.unwrap(),
        };
        for round in 0..10 {
            let signed_in = first
                .sign_up_with_password(
                    &caller,
                    &format!("user{round}@example.com"),
                    "correct horse battery",
                    "",
                    &ClientInfo::default(),
                )
                .await
                .unwrap()
                .into_signed_in()
                .unwrap();
            // Both nodes run the refresh on their own SessionActor for the same session,
            // as happens while membership settles.
            let call = || RefreshSession {
                tenant: "acme".to_owned(),
                token: RefreshToken::parse(&signed_in.refresh_token).unwrap(),
            };
            let (a, b) = tokio::join!(first.execute_local(call()), second.execute_local(call()));
            let wins = [&a, &b].iter().filter(|result| result.is_ok()).count();
            assert_eq!(wins, 1, "round {round}: {a:?} / {b:?}");
            let loser = if a.is_ok() { b } else { a };
            assert!(
                matches!(loser, Err(DomainError::RefreshTokenReused)),
                "the loser sees the token as spent: {loser:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_key_rotation_on_one_node_reaches_the_other_within_two_seconds() {
        let (first, second) = two_nodes().await;
        let operator = Caller::Operator { tenant: None };
        first
            .create_tenant(&operator, "Acme", "acme")
            .await
            .unwrap();
        assert_eq!(
            second
                .services()
                .tenant("acme")
                .await
                .unwrap()
                .keys
                .jwks()
                .keys
                .len(),
            1
        );
        first.rotate_signing_key(&operator, "acme").await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let keys = second
                .services()
                .tenant("acme")
                .await
                .unwrap()
                .keys
                .jwks()
                .keys
                .len();
            if keys == 2 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "second node still sees {keys} key"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

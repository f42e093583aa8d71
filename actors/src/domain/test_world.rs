//! The world the domain's unit tests run in: the in-memory store, a manual clock, a master
//! key and one tenant, `acme`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use gatehouse_storage::Database;

use crate::context::{Context, ManualClock, OsEntropy, Timestamp};
use crate::domain::crypto::MasterKey;
use crate::domain::email::flows::Keys;
use crate::domain::permissions::PermissionGraph;
use crate::domain::tenants::{self, TenantState};
use crate::domain::users::{self, NewUser, parse_email};

/// One tenant over the in-memory store.
pub(crate) struct TestWorld {
    pub(crate) db: Database,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) context: Context,
    pub(crate) master: MasterKey,
    pub(crate) tenant: TenantState,
}

impl TestWorld {
    /// A world whose clock starts at 2023-11-14T22:13:20Z.
    pub(crate) async fn new() -> TestWorld {
        TestWorld::starting_at(Timestamp(1_700_000_000_000)).await
    }

    /// A world whose clock starts at `start`.
    pub(crate) async fn starting_at(start: Timestamp) -> TestWorld {
        let clock = Arc::new(ManualClock::new(start));
        let context = Context {
            clock: clock.clone(),
            entropy: Arc::new(OsEntropy),
            live_sessions: Default::default(),
        };
        let master = MasterKey::from_bytes(&[7; 32]);
        let db = Database::memory();
        let (context_ref, master_ref) = (&context, &master);
        let created = db
            .run(|tx| async move {
                tenants::create_tenant(&tx, context_ref, master_ref, "acme", "Acme").await
            })
            .await
            .unwrap();
        let tenant = TenantState::new(
            created.record,
            PermissionGraph::default(),
            &master,
            "http://x",
        )
        .unwrap();
        TestWorld {
            db,
            clock,
            context,
            master,
            tenant,
        }
    }

    /// The email flows' keys.
    pub(crate) fn keys(&self) -> Keys<'_> {
        Keys {
            context: &self.context,
            master_key: &self.master,
        }
    }

    /// A user of `acme` with `email`, without a password.
    pub(crate) async fn add_user(&self, email: &str, verified: bool) -> users::UserRecord {
        let context = &self.context;
        let email = parse_email(email).unwrap();
        self.db
            .run(|tx| {
                let new_user = NewUser {
                    email: email.clone(),
                    display_name: "Ada <b>".to_owned(),
                    password_hash: None,
                    email_verified: verified,
                };
                async move { users::create_user(&tx, context, "acme", new_user).await }
            })
            .await
            .unwrap()
    }
}

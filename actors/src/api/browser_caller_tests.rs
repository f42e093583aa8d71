//! The hosted pages' browser sessions acting as their user: `browser_caller` gives the
//! claims the session's own token would carry, so the user's operations and their policy
//! apply; a user's own sessions are listed and signed out only by that user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use gatehouse_storage::Database;

use crate::access::Caller;
use crate::api::SignedIn;
use crate::api::users::UserUpdate;
use crate::context::Context;
use crate::domain::crypto::MasterKey;
use crate::domain::passwords::Argon2Params;
use crate::domain::sessions::ClientInfo;
use crate::error::DomainError;
use crate::gatehouse::{Gatehouse, GatehouseOptions};

const PASSWORD: &str = "correct horse battery";

async fn gatehouse() -> Arc<Gatehouse> {
    let options = GatehouseOptions {
        password_hash_threads: 1,
        revocation_poll: Duration::from_millis(50),
        argon2: Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..GatehouseOptions::default()
    };
    let key = MasterKey::from_bytes(&[5; 32]);
    Gatehouse::start(Database::memory(), Context::system(), key, options)
        .await
        .unwrap()
}

async fn server(gatehouse: &Gatehouse, name: &str, id: &str) -> Caller {
    let operator = Caller::Operator { tenant: None };
    gatehouse.create_tenant(&operator, name, id).await.unwrap();
    Caller::Server {
        tenant: gatehouse.services().tenant(id).await.unwrap(),
    }
}

async fn sign_in(gatehouse: &Gatehouse, server: &Caller, email: &str, password: &str) -> SignedIn {
    gatehouse
        .sign_in_with_password(server, email, password, "", &ClientInfo::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_browser_session_acts_as_its_user_under_the_users_policy() {
    let gatehouse = gatehouse().await;
    let acme = server(&gatehouse, "Acme", "acme").await;
    let globex = server(&gatehouse, "Globex", "globex").await;
    let ada = gatehouse
        .sign_up_with_password(
            &acme,
            "ada@example.com",
            PASSWORD,
            "",
            &ClientInfo::default(),
        )
        .await
        .unwrap()
        .into_signed_in()
        .unwrap();
    let tenant = gatehouse.services().tenant("acme").await.unwrap();
    let (session_id, user_id) = (ada.session.session_id, ada.user.user_id);

    let browser = gatehouse
        .browser_caller(&tenant, session_id, user_id)
        .await
        .unwrap();
    assert_eq!(browser.user.user_id, user_id);
    let me = gatehouse.get_current_user(&browser.caller).await.unwrap();
    assert_eq!(me.email, "ada@example.com");
    let rename = UserUpdate {
        display_name: Some("Ada L".to_owned()),
        ..UserUpdate::default()
    };
    let renamed = gatehouse
        .update_user(&browser.caller, "", rename)
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "Ada L");
    // A client's limits hold for the browser too: no server-owned field.
    let email = UserUpdate {
        email: Some("mallory@example.com".to_owned()),
        ..UserUpdate::default()
    };
    let refused = gatehouse.update_user(&browser.caller, "", email).await;
    assert!(matches!(refused, Err(DomainError::PermissionDenied(_))));
    // The sign-in just happened: step-up operations pass.
    gatehouse
        .change_password(
            &browser.caller,
            PASSWORD,
            "another horse battery",
            &ClientInfo::default(),
        )
        .await
        .unwrap();

    // Another user's session, or this session under another tenant, is no caller.
    let grace = gatehouse
        .sign_up_with_password(
            &acme,
            "grace@example.com",
            PASSWORD,
            "",
            &ClientInfo::default(),
        )
        .await
        .unwrap()
        .into_signed_in()
        .unwrap();
    let mixed = gatehouse
        .browser_caller(&tenant, grace.session.session_id, user_id)
        .await;
    assert!(mixed.is_err(), "a session of another user");
    let globex_tenant = gatehouse.services().tenant("globex").await.unwrap();
    let foreign = gatehouse
        .browser_caller(&globex_tenant, session_id, user_id)
        .await;
    assert!(foreign.is_err(), "another tenant's session");
    drop(globex);

    // Sign out other devices keeps this one; another user's session cannot be signed out.
    let other = sign_in(
        &gatehouse,
        &acme,
        "ada@example.com",
        "another horse battery",
    )
    .await;
    assert_ne!(other.session.session_id, session_id);
    let (listed, current) = gatehouse.list_my_sessions(&browser.caller).await.unwrap();
    assert_eq!(current, session_id);
    assert!(
        listed
            .iter()
            .any(|s| s.session_id == other.session.session_id)
    );
    assert!(listed.iter().all(|s| s.user_id == user_id));
    let stranger = gatehouse
        .revoke_my_session(&browser.caller, &grace.session.session_id.to_string())
        .await;
    assert!(matches!(stranger, Err(DomainError::SessionNotFound)));
    let revoked = gatehouse
        .revoke_my_other_sessions(&browser.caller)
        .await
        .unwrap();
    assert_eq!(revoked, 1);
    let ended = gatehouse
        .browser_caller(&tenant, other.session.session_id, user_id)
        .await;
    assert!(
        matches!(ended, Err(DomainError::SessionRevoked)),
        "{ended:?}"
    );
    let (listed, _) = gatehouse.list_my_sessions(&browser.caller).await.unwrap();
    assert_eq!(listed.len(), 1);
    // Grace's session lives on; then this browser signs itself out by id.
    assert!(
        gatehouse
            .browser_caller(&tenant, grace.session.session_id, grace.user.user_id)
            .await
            .is_ok()
    );
    gatehouse
        .revoke_my_session(&browser.caller, &session_id.to_string())
        .await
        .unwrap();
    let signed_out = gatehouse.browser_caller(&tenant, session_id, user_id).await;
    assert!(matches!(signed_out, Err(DomainError::SessionRevoked)));
}

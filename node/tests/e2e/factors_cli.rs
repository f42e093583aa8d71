//! The operator CLI for strong authentication: the tenant's MFA and passkey settings, a
//! user's factors, unlocking and banning.

use gatehouse_protocol::ErrorCode;
use serde_json::Value;

use crate::testkit::{PASSWORD, TestNode, unique_email};

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

#[tokio::test]
async fn the_operator_cli_configures_mfa_lists_factors_bans_and_unlocks() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Factors").await;
    let client = node.client(&tenant).await;
    let email = unique_email("factors");
    let user_id = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap()
        .user_id;

    // The MFA and passkey settings are set and shown.
    let (ok, stdout, stderr) = node.admin(&[
        "tenant",
        "config",
        &tenant.id,
        "--mfa-required",
        "true",
        "--mfa-grace-period",
        "0",
        "--step-up-window",
        "120",
        "--passkey-rp-id",
        "localhost",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let config = &json(&stdout)["config"];
    assert_eq!(config["mfa"]["required"], true, "{stdout}");
    assert_eq!(config["mfa"]["grace_period_seconds"], 0, "{stdout}");
    assert_eq!(config["mfa"]["step_up_window_seconds"], 120, "{stdout}");
    assert_eq!(config["passkeys"]["rp_id"], "localhost", "{stdout}");
    assert_eq!(
        config["passkeys"]["effective_rp_id"], "localhost",
        "{stdout}"
    );
    let (ok, stdout, stderr) = node.admin(&["tenant", "get", &tenant.id]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("step-up window") && stdout.contains("120 s"),
        "{stdout}"
    );

    // A step-up window under a minute is refused, naming the field.
    let (ok, _, stderr) = node.admin(&["tenant", "config", &tenant.id, "--step-up-window", "5"]);
    assert!(!ok);
    assert!(stderr.contains("mfa.step_up_window_seconds"), "{stderr}");
    let (ok, stdout, _) = node.admin(&["tenant", "get", &tenant.id, "--json"]);
    assert!(ok);
    assert_eq!(
        json(&stdout)["config"]["mfa"]["step_up_window_seconds"],
        120
    );

    // A user who never enrolled has no factor.
    let (ok, stdout, stderr) = node.admin(&[
        "user", "factors", "list", "--tenant", &tenant.id, &user_id, "--json",
    ]);
    assert!(ok, "{stderr}");
    let factors = json(&stdout);
    assert_eq!(factors["totp_confirmed"], false, "{stdout}");
    assert_eq!(factors["passkeys"], serde_json::json!([]), "{stdout}");
    let (ok, stdout, stderr) =
        node.admin(&["user", "factors", "list", "--tenant", &tenant.id, &user_id]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("passkeys: 0"), "{stdout}");

    // A banned user cannot sign in; reactivation lifts the ban.
    let (ok, stdout, stderr) = node.admin(&[
        "user", "ban", "--tenant", &tenant.id, &user_id, "--reason", "fraud", "--json",
    ]);
    assert!(ok, "{stderr}");
    let banned = json(&stdout);
    assert_eq!(banned["state"], "banned", "{stdout}");
    assert_eq!(banned["ban_reason"], "fraud", "{stdout}");
    let (ok, stdout, _) = node.admin(&["user", "get", "--tenant", &tenant.id, &user_id]);
    assert!(ok && stdout.contains("banned (fraud)"), "{stdout}");
    let refused = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::UserBanned);
    let (ok, stdout, stderr) = node.admin(&[
        "user",
        "reactivate",
        "--tenant",
        &tenant.id,
        &user_id,
        "--json",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(json(&stdout)["state"], "active", "{stdout}");
    client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();

    // Unlocking works on any user.
    let (ok, stdout, stderr) = node.admin(&["user", "unlock", "--tenant", &tenant.id, &user_id]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("unlocked"), "{stdout}");

    // Removing a factor the user does not have fails with its code.
    let (ok, _, stderr) = node.admin(&[
        "user", "factors", "remove", "--tenant", &tenant.id, &user_id, "totp",
    ]);
    assert!(!ok);
    assert!(
        stderr.to_ascii_uppercase().contains("FACTOR_NOT_FOUND"),
        "{stderr}"
    );
    // A passkey is named by its id.
    let (ok, _, stderr) = node.admin(&[
        "user", "factors", "remove", "--tenant", &tenant.id, &user_id, "passkey",
    ]);
    assert!(!ok);
    assert!(stderr.contains("PASSKEY_ID"), "{stderr}");
}

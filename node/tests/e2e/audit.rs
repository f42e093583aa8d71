//! The audit ledger on a real node: operator actions are recorded with who and from where,
//! `admin audit verify` passes on an untouched ledger and fails (non-zero exit) after one
//! stored entry is edited, and `admin audit export` writes NDJSON.

use gatehouse_protocol::v1::CreateUserRequest;
use gatehouse_storage::Database;
use serde_json::Value;

use crate::testkit::{TestNode, unique_email};

#[tokio::test]
async fn cli_verify_passes_export_writes_ndjson_and_an_edited_entry_fails_verification() {
    let node = TestNode::start_with_env(&[crate::webhooks::ALLOW_PRIVATE]).await;
    let (ok, stdout, stderr) = node.admin(&["tenant", "create", "Ledger", "--json"]);
    assert!(ok, "{stderr}");
    let tenant_id = serde_json::from_str::<Value>(&stdout).unwrap()["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let operator = node.operator().await.with_tenant(&tenant_id);
    let user = operator
        .create_user(CreateUserRequest {
            email: unique_email("audited"),
            ..CreateUserRequest::default()
        })
        .await
        .unwrap();
    let (ok, _, stderr) = node.admin(&["user", "suspend", "--tenant", &tenant_id, &user.user_id]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = node.admin(&["key", "rotate", "--tenant", &tenant_id]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = node.admin(&[
        "webhook",
        "create",
        "--tenant",
        &tenant_id,
        "--url",
        "http://127.0.0.1:9/hook",
    ]);
    assert!(ok, "{stderr}");

    let (ok, stdout, stderr) = node.admin(&["audit", "verify", "--tenant", &tenant_id]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("ok"), "{stdout}");

    let export = node.data_dir.join("audit.ndjson");
    let (ok, _, stderr) = node.admin(&[
        "audit",
        "export",
        "--tenant",
        &tenant_id,
        "--output",
        export.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let lines: Vec<Value> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect();
    let actions: Vec<&str> = lines
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "tenant.create",
            "user.create",
            "user.suspend",
            "key.rotate",
            "webhook_endpoint.create"
        ]
    );
    for (index, entry) in lines.iter().enumerate() {
        assert_eq!(entry["seq"], index as u64 + 1);
        assert_eq!(entry["actor"], "operator");
        assert_eq!(entry["source_ip"], "127.0.0.1", "{entry}");
        assert_eq!(entry["hash"].as_str().unwrap().len(), 64);
        if index > 0 {
            assert_eq!(entry["prev_hash"], lines[index - 1]["hash"]);
        }
    }
    assert_eq!(lines[2]["target"], format!("user:{}", user.user_id));

    // Edit one byte of a stored entry behind the node's back, then verify again.
    let mut node = node;
    assert!(node.stop().await.success());
    {
        let db = Database::open_embedded(&node.data_dir.join("store")).unwrap();
        let key = gatehouse_actors::keyspace::audit_entry(&tenant_id, 3);
        let tx = db.create_transaction().await.unwrap();
        let mut value = tx.get(&key).await.unwrap().expect("entry 3 is stored");
        let at = value
            .windows(b"user.suspend".len())
            .position(|window| window == b"user.suspend")
            .unwrap();
        value[at] = b'U';
        tx.set(&key, &value).unwrap();
        tx.commit().await.unwrap();
    }
    let node = node.start_again().await;
    let (ok, stdout, stderr) = node.admin(&["audit", "verify", "--tenant", &tenant_id, "--json"]);
    assert!(!ok, "verification of an edited ledger must fail: {stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["first_bad_seq"], 3, "{report}");
    assert_eq!(report["problem"], "tampered");
    assert!(stderr.contains("broken at seq 3"), "{stderr}");
}

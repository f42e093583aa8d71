//! Unit tests of the audit ledger: verification catches edited, missing and reordered
//! entries written straight into storage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gatehouse_storage::Database;

use super::*;

async fn ledger_of_five() -> Database {
    let db = Database::memory();
    let context = Context::system();
    for index in 1..=5 {
        let context = &context;
        db.run(|tx| async move {
            let event = AuditEvent {
                actor: "operator".to_owned(),
                action: format!("test.action{index}"),
                target: format!("user:{index}"),
                source_ip: "127.0.0.1".to_owned(),
                details: serde_json::json!({ "index": index }),
            };
            append(&tx, context, "acme", event).await
        })
        .await
        .unwrap();
    }
    db
}

async fn raw(db: &Database, seq: u64) -> Vec<u8> {
    db.run(|tx| async move { Ok::<_, DomainError>(tx.get(&keyspace::audit_entry("acme", seq)).await?) })
        .await
        .unwrap()
        .expect("stored entry")
}

async fn write_raw(db: &Database, seq: u64, value: Option<Vec<u8>>) {
    let value = &value;
    db.run(|tx| async move {
        let key = keyspace::audit_entry("acme", seq);
        match value {
            Some(bytes) => tx.set(&key, bytes)?,
            None => tx.clear(&key)?,
        }
        Ok::<_, DomainError>(())
    })
    .await
    .unwrap();
}

async fn problem(db: &Database) -> AuditProblem {
    let report = verify(db, "acme", 2).await.unwrap();
    assert!(!report.is_ok());
    report.problem.unwrap()
}

#[tokio::test]
async fn an_untouched_ledger_verifies_across_pages() {
    let db = ledger_of_five().await;
    let report = verify(&db, "acme", 2).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!((report.entries_checked, report.head_seq), (5, 5));
    let empty = verify(&Database::memory(), "acme", 2).await.unwrap();
    assert!(empty.is_ok());
    assert_eq!(empty.entries_checked, 0);
}

#[tokio::test]
async fn one_edited_byte_of_a_stored_entry_is_reported_as_tampered() {
    let db = ledger_of_five().await;
    let mut bytes = raw(&db, 3).await;
    let at = bytes
        .windows(b"action3".len())
        .position(|window| window == b"action3")
        .expect("action text in the stored value");
    bytes[at + b"action".len()] = b'9';
    write_raw(&db, 3, Some(bytes)).await;
    let found = problem(&db).await;
    assert_eq!(
        (found.seq, found.kind),
        (3, ChainBreak::Tampered),
        "{found:?}"
    );
}

#[tokio::test]
async fn a_missing_entry_is_reported_where_it_should_be() {
    let db = ledger_of_five().await;
    write_raw(&db, 2, None).await;
    let found = problem(&db).await;
    assert_eq!(
        (found.seq, found.kind),
        (2, ChainBreak::Missing),
        "{found:?}"
    );

    let db = ledger_of_five().await;
    write_raw(&db, 5, None).await;
    let found = problem(&db).await;
    assert_eq!(
        (found.seq, found.kind),
        (5, ChainBreak::Missing),
        "{found:?}"
    );
}

#[tokio::test]
async fn swapped_entries_are_reported_as_reordered() {
    let db = ledger_of_five().await;
    let (second, fourth) = (raw(&db, 2).await, raw(&db, 4).await);
    write_raw(&db, 2, Some(fourth)).await;
    write_raw(&db, 4, Some(second)).await;
    let found = problem(&db).await;
    assert_eq!(
        (found.seq, found.kind),
        (2, ChainBreak::Reordered),
        "{found:?}"
    );
}

#[tokio::test]
async fn an_entry_rewritten_with_a_fresh_hash_breaks_the_link_to_the_next() {
    let db = ledger_of_five().await;
    let mut entry: AuditEntry = codec::decode(&raw(&db, 2).await).unwrap();
    entry.event.actor = "someone-else".to_owned();
    entry.hash = entry_hash(entry.seq, entry.at, &entry.event, &entry.prev_hash).unwrap();
    write_raw(&db, 2, Some(codec::encode(&entry).unwrap())).await;
    let found = problem(&db).await;
    assert_eq!(found.seq, 3, "{found:?}");
}

#[test]
fn origins_name_the_caller_kind() {
    assert_eq!(AuditOrigin::system().actor, "system");
    let event = AuditOrigin::default().event(
        crate::domain::audit::AuditAction::UserCreate,
        "t",
        serde_json::Value::Null,
    );
    assert_eq!(event.actor, "system");
    assert_eq!(current_source_ip(), "");
}

#[tokio::test]
async fn the_source_address_is_visible_inside_its_scope_only() {
    let inside = with_source_ip("10.0.0.7".to_owned(), async { current_source_ip() }).await;
    assert_eq!(inside, "10.0.0.7");
    assert_eq!(current_source_ip(), "");
}

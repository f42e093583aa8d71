//! The conformance suite on a real PostgreSQL server started by the tests (one per test
//! binary, a fresh database per case), plus what only a shared store must do: several
//! handles, as on several nodes, see each other's commits and conflict with each other.

use gatehouse_storage::conformance::Capabilities;
use gatehouse_storage::postgres::harness::PostgresServer;
use gatehouse_storage::{Database, RangeOptions, StorageError, conformance_tests};

/// A URL of a fresh, empty database on the shared test server.
///
/// Fails the test when the server binaries are missing: CI installs them, so a missing
/// server is a broken setup, not a reason to skip.
pub async fn fresh_database_url() -> String {
    let server = tokio::task::spawn_blocking(PostgresServer::shared)
        .await
        .unwrap()
        .unwrap_or_else(|error| panic!("cannot start the test postgresql server: {error}"));
    server.create_database().await.unwrap()
}

/// A handle on a fresh, empty database.
pub async fn fresh_database() -> Database {
    Database::open_postgres(&fresh_database_url().await)
        .await
        .unwrap()
}

conformance_tests!(suite, fresh_database(), Capabilities::POSTGRES);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_on_one_database_see_each_others_commits() {
    let url = fresh_database_url().await;
    let node_a = Database::open_postgres(&url).await.unwrap();
    let node_b = Database::open_postgres(&url).await.unwrap();
    assert_eq!(node_a.backend_name(), "postgres");

    let tx = node_a.create_transaction().await.unwrap();
    tx.set(b"from-a", b"1").unwrap();
    tx.atomic_add(b"count", 1).unwrap();
    tx.commit().await.unwrap();
    let tx = node_b.create_transaction().await.unwrap();
    assert_eq!(tx.get(b"from-a").await.unwrap(), Some(b"1".to_vec()));
    tx.atomic_add(b"count", 1).unwrap();
    tx.commit().await.unwrap();
    let tx = node_a.create_transaction().await.unwrap();
    let count = tx.get(b"count").await.unwrap().unwrap();
    assert_eq!(i64::from_le_bytes(count.try_into().unwrap()), 2);

    // A stale owner on node a read the version before node b bumped it: a must retry.
    let stale = node_a.create_transaction().await.unwrap();
    stale.get(b"version").await.unwrap();
    stale.set(b"record", b"stale").unwrap();
    node_b
        .run(|tx| async move { tx.atomic_add(b"version", 1) })
        .await
        .unwrap();
    let error = stale.commit().await.unwrap_err();
    assert!(matches!(error, StorageError::Conflict), "{error:?}");

    // Both nodes incrementing the same counter through `run` lose nothing.
    let mut tasks = Vec::new();
    for db in [node_a.clone(), node_b.clone()] {
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                db.run(|tx| async move {
                    let current = tx.get(b"rmw").await?.map_or(0, |bytes| {
                        i64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]))
                    });
                    tx.set(b"rmw", &(current + 1).to_le_bytes())
                })
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let tx = node_b.create_transaction().await.unwrap();
    let rmw = tx.get(b"rmw").await.unwrap().unwrap();
    assert_eq!(i64::from_le_bytes(rmw.try_into().unwrap()), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_order_bytewise() {
    let db = fresh_database().await;
    // Shuffled on purpose; the expected order is byte order, shorter prefix first.
    let keys: [&[u8]; 9] = [
        b"\xff",
        b"\x00\x00",
        b"a",
        b"\x00",
        b"\xfe\xff",
        b"\x01",
        b"\xff\x00",
        b"",
        b"a\x00",
    ];
    let tx = db.create_transaction().await.unwrap();
    for key in keys {
        tx.set(key, b"v").unwrap();
    }
    tx.commit().await.unwrap();
    let mut expected: Vec<Vec<u8>> = keys.iter().map(|key| key.to_vec()).collect();
    expected.sort();
    let tx = db.create_transaction().await.unwrap();
    let all = tx
        .get_range(b"", b"\xff\xff", RangeOptions::default())
        .await
        .unwrap();
    let read: Vec<Vec<u8>> = all.into_iter().map(|(key, _)| key).collect();
    assert_eq!(read, expected);
    let reverse = RangeOptions {
        reverse: true,
        limit: Some(3),
        ..RangeOptions::default()
    };
    let last = tx.get_range(b"\x00", b"\xff\x00", reverse).await.unwrap();
    let read: Vec<&[u8]> = last.iter().map(|(key, _)| key.as_slice()).collect();
    assert_eq!(read, [b"\xff".as_slice(), b"\xfe\xff", b"a\x00"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_a_backend_error() {
    let error = Database::open_postgres("postgres://postgres@127.0.0.1:1/none")
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::Backend(_)), "{error:?}");
    assert!(error.to_string().contains("postgresql"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_cannot_write_skew() {
    let db = fresh_database().await;
    let mut both_committed = 0;
    let mut one_committed = 0;
    for round in 0..20_u8 {
        let (x, y) = ([b'x', round], [b'y', round]);
        let first = db.create_transaction().await.unwrap();
        let second = db.create_transaction().await.unwrap();
        // Each reads what the other writes: serializable allows at most one to commit.
        assert_eq!(first.get(&x).await.unwrap(), None);
        assert_eq!(second.get(&y).await.unwrap(), None);
        first.set(&y, b"1").unwrap();
        second.set(&x, b"1").unwrap();
        let (a, b) = tokio::join!(first.commit(), second.commit());
        for result in [&a, &b] {
            if let Err(error) = result {
                assert!(matches!(error, StorageError::Conflict), "{error:?}");
            }
        }
        match (a.is_ok(), b.is_ok()) {
            (true, true) => both_committed += 1,
            (true, false) | (false, true) => one_committed += 1,
            (false, false) => {}
        }
    }
    assert_eq!(both_committed, 0, "write skew committed");
    println!("write skew: {one_committed} of 20 rounds committed one side");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_transactions_leave_no_stale_snapshot_behind() {
    let url = fresh_database_url().await;
    let options = gatehouse_storage::PostgresOptions {
        max_connections: 1,
        ..Default::default()
    };
    let single = Database::open_postgres_with(&url, options).await.unwrap();
    let other = Database::open_postgres(&url).await.unwrap();
    for round in 0..3_i64 {
        let tx = single.create_transaction().await.unwrap();
        tx.get(b"k").await.unwrap();
        tx.set(b"ignored", b"1").unwrap();
        drop(tx);
        other
            .run(|tx| async move { tx.set(b"k", &round.to_le_bytes()) })
            .await
            .unwrap();
        // The one connection went back through a rollback: a new snapshot sees the write.
        let tx = single.create_transaction().await.unwrap();
        assert_eq!(
            tx.get(b"k").await.unwrap(),
            Some(round.to_le_bytes().to_vec())
        );
        assert_eq!(tx.get(b"ignored").await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompressible_key_beyond_btree_limit_is_a_clear_error() {
    let db = fresh_database().await;
    // 10 kB of pseudo-random bytes: accepted by the limits, too big for a btree entry.
    let key: Vec<u8> = (0..10_000).map(|_| rand::random::<u8>()).collect();
    let tx = db.create_transaction().await.unwrap();
    tx.set(&key, b"v").unwrap();
    let error = tx.commit().await.unwrap_err();
    assert!(matches!(error, StorageError::Backend(_)), "{error:?}");
    assert!(error.to_string().contains("btree index entry"), "{error}");
    let tx = db.create_transaction().await.unwrap();
    assert_eq!(tx.get(&key).await.unwrap(), None);
}

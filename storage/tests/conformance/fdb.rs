//! The conformance suite on FoundationDB (cargo feature `fdb`), run only where
//! `FDB_CLUSTER_FILE` names a cluster: the client library cannot be installed on the build
//! machines, so CI only type-checks this.
//!
//! The network thread is booted once for the process and must be stopped before it exits,
//! so the whole suite runs inside one test that owns the guard. The suite clears the whole
//! normal keyspace between cases, so it refuses to start on a non-empty database.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};

use gatehouse_storage::conformance::Capabilities;
use gatehouse_storage::{Database, RangeOptions, conformance_suite};

/// An empty database on the test cluster.
async fn emptied(cluster_file: &Path) -> Database {
    let db = Database::open_fdb(Some(cluster_file)).unwrap();
    db.run(|tx| async move { tx.clear_range(b"", b"\xff") })
        .await
        .unwrap();
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite() {
    let Some(cluster_file) = std::env::var_os("FDB_CLUSTER_FILE").map(PathBuf::from) else {
        eprintln!("skipped: FDB_CLUSTER_FILE is not set");
        return;
    };
    // SAFETY: the guard lives until the end of this test, the only place this process boots
    // the network; a failing case unwinds through here and still drops it.
    let network = unsafe { gatehouse_storage::fdb::boot() }.unwrap();
    {
        let db = Database::open_fdb(Some(&cluster_file)).unwrap();
        assert_eq!(db.backend_name(), "foundationdb");
        let tx = db.create_transaction().await.unwrap();
        let existing = tx
            .get_range(
                b"",
                b"\xff",
                RangeOptions {
                    limit: Some(1),
                    ..RangeOptions::default()
                },
            )
            .await
            .unwrap();
        assert!(
            existing.is_empty(),
            "refusing to run the conformance suite on a non-empty FoundationDB database"
        );
    }
    conformance_suite!(emptied(&cluster_file), Capabilities::FDB).await;
    drop(network);
}

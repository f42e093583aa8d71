//! Embedded-only: data survives reopening and SIGKILL, and concurrent commits share fsyncs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_storage::{Database, RangeOptions};

/// Set in the child process of the SIGKILL test: the directory its writer commits into.
const CRASH_DIR_ENV: &str = "GATEHOUSE_STORAGE_CRASH_WRITER_DIR";
/// Acknowledged commits the parent waits for before killing the writer.
const ACKS_BEFORE_KILL: usize = 300;

fn crash_key(index: u64) -> Vec<u8> {
    format!("crash-{index:010}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("data");
    {
        let db = Database::open_embedded(&path).unwrap();
        assert_eq!(db.backend_name(), "embedded");
        let tx = db.create_transaction().await.unwrap();
        for index in 0..100_u32 {
            tx.set(format!("key-{index:03}").as_bytes(), &index.to_le_bytes())
                .unwrap();
        }
        tx.atomic_add(b"counter", 41).unwrap();
        tx.commit().await.unwrap();
        let tx = db.create_transaction().await.unwrap();
        tx.atomic_add(b"counter", 1).unwrap();
        tx.clear(b"key-000").unwrap();
        tx.commit().await.unwrap();
    }
    assert!(path.join("gatehouse.redb").exists());

    let db = Database::open_embedded(&path).unwrap();
    let tx = db.create_transaction().await.unwrap();
    let pairs = tx
        .get_range(b"key-", b"key.", RangeOptions::default())
        .await
        .unwrap();
    assert_eq!(pairs.len(), 99);
    assert_eq!(pairs[0].0, b"key-001");
    let counter = tx.get(b"counter").await.unwrap().unwrap();
    assert_eq!(i64::from_le_bytes(counter.try_into().unwrap()), 42);

    // Versions continue after reopen, so conflicts are still detected.
    let reader = db.create_transaction().await.unwrap();
    reader.get(b"key-050").await.unwrap();
    reader.set(b"other", b"1").unwrap();
    let writer = db.create_transaction().await.unwrap();
    writer.set(b"key-050", b"changed").unwrap();
    writer.commit().await.unwrap();
    assert!(reader.commit().await.is_err());
}

/// The writer the SIGKILL test runs in a child process; does nothing in a normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let db = Database::open_embedded(std::path::Path::new(&dir)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut index = 0_u64;
    while Instant::now() < deadline {
        let tx = db.create_transaction().await.unwrap();
        tx.set(&crash_key(index), &index.to_le_bytes()).unwrap();
        tx.commit().await.unwrap();
        // Printed only once the commit is acknowledged: every printed key must survive.
        println!("acked {index}");
        index += 1;
    }
}

#[test]
fn sigkill_keeps_acknowledged_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "durability::crash_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    let parse = |acked: &mut Vec<u64>, line: String| {
        if let Some(index) = line.strip_prefix("acked ") {
            acked.push(index.trim().parse::<u64>().unwrap());
        }
    };
    for line in lines.by_ref() {
        parse(&mut acked, line.unwrap());
        if acked.len() >= ACKS_BEFORE_KILL {
            break;
        }
    }
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no clean close of redb.
    child.kill().unwrap();
    child.wait().unwrap();
    // Acknowledgements printed before the kill are still in the pipe.
    for line in lines {
        parse(&mut acked, line.unwrap());
    }
    assert!(
        acked.len() >= ACKS_BEFORE_KILL,
        "writer died after {} acknowledged commits",
        acked.len()
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = Database::open_embedded(dir.path()).unwrap();
        let tx = db.create_transaction().await.unwrap();
        for index in &acked {
            let value = tx.snapshot_get(&crash_key(*index)).await.unwrap();
            assert_eq!(
                value,
                Some(index.to_le_bytes().to_vec()),
                "key {index} lost"
            );
        }
        println!(
            "sigkill: {} acknowledged commits, all present after reopen",
            acked.len()
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_shares_durable_syncs() {
    const COMMITS: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_embedded(dir.path()).unwrap();
    let before = db.stats();
    let barrier = Arc::new(tokio::sync::Barrier::new(COMMITS));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..COMMITS {
        let db = db.clone();
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let tx = db.create_transaction().await.unwrap();
            tx.set(format!("group-{index:02}").as_bytes(), b"v")
                .unwrap();
            barrier.wait().await;
            tx.commit().await.unwrap();
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let after = db.stats();
    let commits = after.commits - before.commits;
    let syncs = after.durable_syncs - before.durable_syncs;
    println!("group commit: {commits} concurrent commits needed {syncs} durable syncs");
    assert_eq!(commits, COMMITS as u64);
    assert!(syncs < commits, "{syncs} syncs for {commits} commits");

    let tx = db.create_transaction().await.unwrap();
    let pairs = tx
        .get_range(b"group-", b"group.", RangeOptions::default())
        .await
        .unwrap();
    assert_eq!(pairs.len(), COMMITS);
}

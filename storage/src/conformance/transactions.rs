//! Cases on the happy path: read-your-writes, isolation, conflicts, ranges, atomic add.

use super::{Capabilities, all_pairs, committed_pairs, counter, keys, seed};
use crate::{Database, RangeOptions, StorageError, Subspace, Transaction, prefix_range};

/// Sets, clears, range clears and atomic adds are visible inside the transaction and
/// invisible outside it until it commits.
pub async fn read_your_writes(db: &Database) {
    seed(
        db,
        &[(b"a", b"1"), (b"b", b"2"), (b"c", b"3"), (b"d", b"4")],
    )
    .await;
    let tx = db.create_transaction().await.unwrap();
    tx.set(b"e", b"5").unwrap();
    tx.set(b"a", b"10").unwrap();
    tx.clear(b"b").unwrap();
    tx.clear_range(b"c", b"d").unwrap();
    tx.atomic_add(b"n", 2).unwrap();
    tx.atomic_add(b"n", 3).unwrap();
    assert_eq!(tx.get(b"e").await.unwrap(), Some(b"5".to_vec()));
    assert_eq!(tx.get(b"a").await.unwrap(), Some(b"10".to_vec()));
    assert_eq!(tx.get(b"b").await.unwrap(), None);
    assert_eq!(tx.get(b"c").await.unwrap(), None);
    assert_eq!(counter(tx.get(b"n").await.unwrap()), 5);
    assert_eq!(keys(&all_pairs(&tx).await), ["a", "d", "e", "n"]);

    let outside = db.create_transaction().await.unwrap();
    assert_eq!(outside.get(b"e").await.unwrap(), None);
    assert_eq!(outside.get(b"a").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(keys(&all_pairs(&outside).await), ["a", "b", "c", "d"]);

    tx.commit().await.unwrap();
    let after = committed_pairs(db).await;
    assert_eq!(keys(&after), ["a", "d", "e", "n"]);
    assert_eq!(after[0].1, b"10");
    assert_eq!(counter(Some(after[3].1.clone())), 5);
}

/// A transaction keeps reading the state as of its start, whatever commits meanwhile.
pub async fn snapshot_isolation(db: &Database) {
    seed(db, &[(b"k", b"old")]).await;
    let reader = db.create_transaction().await.unwrap();
    let writer = db.create_transaction().await.unwrap();
    writer.set(b"k", b"new").unwrap();
    writer.set(b"n", b"added").unwrap();
    writer.commit().await.unwrap();

    assert_eq!(reader.get(b"k").await.unwrap(), Some(b"old".to_vec()));
    assert_eq!(reader.snapshot_get(b"n").await.unwrap(), None);
    assert_eq!(keys(&all_pairs(&reader).await), ["k"]);
    let fresh = db.create_transaction().await.unwrap();
    assert_eq!(fresh.get(b"k").await.unwrap(), Some(b"new".to_vec()));
}

/// Of two transactions that read and write the same key, the first to commit wins and the
/// other gets `Conflict` without writing anything.
pub async fn conflicting_transactions_one_commits(db: &Database) {
    seed(db, &[(b"k", b"0")]).await;
    let first = db.create_transaction().await.unwrap();
    let second = db.create_transaction().await.unwrap();
    first.get(b"k").await.unwrap();
    second.get(b"k").await.unwrap();
    first.set(b"k", b"first").unwrap();
    second.set(b"k", b"second").unwrap();
    second.set(b"other", b"second").unwrap();
    let before = db.stats();
    first.commit().await.unwrap();
    let error = second.commit().await.unwrap_err();
    assert!(matches!(error, StorageError::Conflict), "{error:?}");
    assert!(error.is_retryable());
    let stats = db.stats();
    assert_eq!(stats.commits - before.commits, 1);
    assert_eq!(stats.conflicts - before.conflicts, 1);
    let check = db.create_transaction().await.unwrap();
    assert_eq!(check.get(b"k").await.unwrap(), Some(b"first".to_vec()));
    assert_eq!(check.get(b"other").await.unwrap(), None);
}

/// Two tasks doing 50 read-modify-write increments each through `run` lose none.
pub async fn run_retries_conflicting_increments(db: &Database) {
    const KEY: &[u8] = b"counter";
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                db.run(|tx| async move {
                    let current = counter(tx.get(KEY).await?);
                    tokio::task::yield_now().await;
                    tx.set(KEY, &(current + 1).to_le_bytes())?;
                    Ok::<_, StorageError>(())
                })
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let tx = db.create_transaction().await.unwrap();
    assert_eq!(counter(tx.get(KEY).await.unwrap()), 100);
    let stats = db.stats();
    assert_eq!(
        stats.retries, stats.conflicts,
        "every conflict was retried: {stats:?}"
    );
}

/// Transactions that only write never conflict, even on the same key, where the backend
/// promises it. Everywhere, a range clear committed later removes an earlier blind write,
/// and concurrent blind writers through `run` all land with each key ending at a last write.
pub async fn blind_writes_do_not_conflict(db: &Database, capabilities: Capabilities) {
    let first = db.create_transaction().await.unwrap();
    let second = db.create_transaction().await.unwrap();
    first.set(b"k", b"first").unwrap();
    second.set(b"k", b"second").unwrap();
    second.clear_range(b"a", b"z").unwrap();
    first.commit().await.unwrap();
    match second.commit().await {
        Ok(()) => {}
        Err(StorageError::Conflict) if !capabilities.blind_writes_never_conflict => {
            db.run(|tx| async move {
                tx.set(b"k", b"second")?;
                tx.clear_range(b"a", b"z")?;
                Ok::<_, StorageError>(())
            })
            .await
            .unwrap();
        }
        Err(error) => panic!("a blind writer failed: {error:?}"),
    }
    assert!(committed_pairs(db).await.is_empty());

    const WRITERS: u64 = 4;
    const WRITES: u64 = 25;
    let before = db.stats();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let own = format!("own-{writer}").into_bytes();
            for step in 0..WRITES {
                let value = [writer.to_le_bytes(), step.to_le_bytes()].concat();
                let write = |tx: Transaction| {
                    let (own, value) = (own.clone(), value.clone());
                    async move {
                        tx.set(b"shared", &value)?;
                        tx.set(&own, &step.to_le_bytes())?;
                        Ok::<_, StorageError>(())
                    }
                };
                if capabilities.blind_writes_never_conflict {
                    let tx = db.create_transaction().await.unwrap();
                    write(tx.clone()).await.unwrap();
                    tx.commit().await.unwrap();
                } else {
                    db.run(write).await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let tx = db.create_transaction().await.unwrap();
    let last = (WRITES - 1).to_le_bytes().to_vec();
    for writer in 0..WRITERS {
        let own = format!("own-{writer}").into_bytes();
        assert_eq!(tx.get(&own).await.unwrap(), Some(last.clone()));
    }
    let shared = tx.get(b"shared").await.unwrap().unwrap();
    assert_eq!(
        &shared[8..],
        last.as_slice(),
        "shared ends at a writer's last write"
    );
    let stats = db.stats();
    if capabilities.blind_writes_never_conflict {
        assert_eq!(stats.conflicts, before.conflicts, "{stats:?}");
    } else {
        let conflicts = stats.conflicts - before.conflicts;
        println!("blind writes: {conflicts} conflicts, all retried");
        assert_eq!(
            stats.retries - before.retries,
            stats.conflicts - before.conflicts,
            "every conflict was retried: {stats:?}"
        );
    }
}

/// Snapshot reads (point and range) add no read conflict.
pub async fn snapshot_reads_do_not_conflict(db: &Database) {
    seed(db, &[(b"k", b"0"), (b"r", b"0")]).await;
    let reader = db.create_transaction().await.unwrap();
    reader.snapshot_get(b"k").await.unwrap();
    let options = RangeOptions {
        snapshot: true,
        ..RangeOptions::default()
    };
    reader.get_range(b"a", b"z", options).await.unwrap();
    reader.set(b"out", b"1").unwrap();
    let writer = db.create_transaction().await.unwrap();
    writer.set(b"k", b"1").unwrap();
    writer.set(b"r", b"1").unwrap();
    writer.commit().await.unwrap();
    reader.commit().await.unwrap();
}

/// An explicit read conflict key makes a concurrent write of that key conflict.
pub async fn read_conflict_key_causes_conflict(db: &Database) {
    let guarded = db.create_transaction().await.unwrap();
    guarded.add_read_conflict_key(b"version").unwrap();
    guarded.set(b"data", b"1").unwrap();
    let writer = db.create_transaction().await.unwrap();
    writer.atomic_add(b"version", 1).unwrap();
    writer.commit().await.unwrap();
    let error = guarded.commit().await.unwrap_err();
    assert!(matches!(error, StorageError::Conflict), "{error:?}");
}

/// A transaction that only reads commits even if what it read changed since.
pub async fn read_only_commit_succeeds(db: &Database) {
    seed(db, &[(b"k", b"0")]).await;
    let reader = db.create_transaction().await.unwrap();
    reader.get(b"k").await.unwrap();
    seed(db, &[(b"k", b"1")]).await;
    reader.commit().await.unwrap();
}

/// Range reads in both directions, with limits, bounded by `[begin, end)`.
pub async fn range_reads_forward_reverse_and_limits(db: &Database) {
    let subspace = Subspace::all().subspace(&("items",));
    let tx = db.create_transaction().await.unwrap();
    for index in 0..10_i64 {
        tx.set(&subspace.pack(&(index,)), &index.to_le_bytes())
            .unwrap();
    }
    tx.set(b"zz-outside", b"x").unwrap();
    tx.commit().await.unwrap();

    let tx = db.create_transaction().await.unwrap();
    let (begin, end) = prefix_range(subspace.bytes());
    let decode = |pairs: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<i64> {
        pairs
            .iter()
            .map(|(key, _)| subspace.unpack::<(i64,)>(key).unwrap().0)
            .collect()
    };
    let all = tx.get_range(&begin, &end, RangeOptions::default()).await;
    assert_eq!(decode(all.unwrap()), (0..10).collect::<Vec<_>>());
    let options = RangeOptions {
        limit: Some(3),
        ..RangeOptions::default()
    };
    assert_eq!(
        decode(tx.get_range(&begin, &end, options).await.unwrap()),
        [0, 1, 2]
    );
    let options = RangeOptions {
        limit: Some(3),
        reverse: true,
        ..RangeOptions::default()
    };
    assert_eq!(
        decode(tx.get_range(&begin, &end, options).await.unwrap()),
        [9, 8, 7]
    );
    let reverse = RangeOptions {
        reverse: true,
        ..RangeOptions::default()
    };
    let middle = tx
        .get_range(
            &subspace.pack(&(3_i64,)),
            &subspace.pack(&(6_i64,)),
            reverse,
        )
        .await
        .unwrap();
    assert_eq!(decode(middle), [5, 4, 3]);
    let zero = RangeOptions {
        limit: Some(0),
        ..RangeOptions::default()
    };
    assert!(tx.get_range(&begin, &end, zero).await.unwrap().is_empty());
    assert!(
        tx.get_range(&begin, &begin, RangeOptions::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Range reads merge uncommitted sets, clears and adds with committed pairs, both ways.
pub async fn range_reads_merge_local_writes(db: &Database) {
    seed(
        db,
        &[(b"a", b"1"), (b"c", b"3"), (b"e", b"5"), (b"g", b"7")],
    )
    .await;
    let tx = db.create_transaction().await.unwrap();
    tx.set(b"b", b"2").unwrap();
    tx.set(b"c", b"33").unwrap();
    tx.clear(b"e").unwrap();
    tx.atomic_add(b"f", 6).unwrap();
    tx.clear_range(b"g", b"h").unwrap();
    tx.set(b"i", b"9").unwrap();
    let forward = tx
        .get_range(b"a", b"z", RangeOptions::default())
        .await
        .unwrap();
    assert_eq!(keys(&forward), ["a", "b", "c", "f", "i"]);
    assert_eq!(forward[2].1, b"33");
    assert_eq!(counter(Some(forward[3].1.clone())), 6);
    let options = RangeOptions {
        reverse: true,
        limit: Some(4),
        ..RangeOptions::default()
    };
    let reverse = tx.get_range(b"a", b"z", options).await.unwrap();
    assert_eq!(keys(&reverse), ["i", "f", "c", "b"]);
    let options = RangeOptions {
        limit: Some(2),
        ..RangeOptions::default()
    };
    let limited = tx.get_range(b"b", b"z", options).await.unwrap();
    assert_eq!(keys(&limited), ["b", "c"]);
}

/// A range read cut short by its limit conflicts only with writes in the part it returned.
pub async fn limited_range_read_conflicts_only_on_what_was_read(db: &Database) {
    seed(
        db,
        &[(b"a", b"1"), (b"b", b"2"), (b"c", b"3"), (b"d", b"4")],
    )
    .await;
    let limit_two = RangeOptions {
        limit: Some(2),
        ..RangeOptions::default()
    };
    let reverse_two = RangeOptions {
        reverse: true,
        ..limit_two
    };

    let forward = db.create_transaction().await.unwrap();
    assert_eq!(
        keys(&forward.get_range(b"a", b"z", limit_two).await.unwrap()),
        ["a", "b"]
    );
    forward.set(b"~x", b"1").unwrap();
    let reverse = db.create_transaction().await.unwrap();
    assert_eq!(
        keys(&reverse.get_range(b"a", b"z", reverse_two).await.unwrap()),
        ["d", "c"]
    );
    reverse.set(b"~y", b"1").unwrap();
    // After "b" for the forward read, before "c" for the reverse one: seen by neither.
    seed(db, &[(b"bb", b"new")]).await;
    forward.commit().await.unwrap();
    reverse.commit().await.unwrap();

    let forward = db.create_transaction().await.unwrap();
    forward.get_range(b"a", b"z", limit_two).await.unwrap();
    forward.set(b"~x", b"2").unwrap();
    let reverse = db.create_transaction().await.unwrap();
    reverse.get_range(b"a", b"z", reverse_two).await.unwrap();
    reverse.set(b"~y", b"2").unwrap();
    seed(db, &[(b"b", b"changed"), (b"e", b"new")]).await;
    let error = forward.commit().await.unwrap_err();
    assert!(matches!(error, StorageError::Conflict), "{error:?}");
    let error = reverse.commit().await.unwrap_err();
    assert!(matches!(error, StorageError::Conflict), "{error:?}");
}

/// `clear_range` removes `[begin, end)` and nothing else, and conflicts with readers in it.
pub async fn clear_range(db: &Database) {
    seed(
        db,
        &[(b"a", b"1"), (b"b", b"2"), (b"ba", b"3"), (b"c", b"4")],
    )
    .await;
    let reader = db.create_transaction().await.unwrap();
    reader.get(b"ba").await.unwrap();
    reader.set(b"r", b"1").unwrap();

    let tx = db.create_transaction().await.unwrap();
    tx.clear_range(b"b", b"c").unwrap();
    tx.clear_range(b"x", b"x").unwrap();
    tx.commit().await.unwrap();
    assert_eq!(keys(&committed_pairs(db).await), ["a", "c"]);
    let error = reader.commit().await.unwrap_err();
    assert!(matches!(error, StorageError::Conflict), "{error:?}");
}

/// Concurrent atomic adds never conflict where the backend promises it; everywhere their
/// sum through `run` is exact.
pub async fn atomic_add_concurrent_never_conflicts(db: &Database, capabilities: Capabilities) {
    const KEY: &[u8] = b"sum";
    let never_conflict = capabilities.atomic_adds_never_conflict;
    let mut tasks = Vec::new();
    for task in 0..4_i64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for step in 0..25_i64 {
                let delta = task * 100 + step;
                if never_conflict {
                    let tx = db.create_transaction().await.unwrap();
                    tx.atomic_add(KEY, delta).unwrap();
                    tx.commit().await.unwrap();
                } else {
                    db.run(|tx| async move { tx.atomic_add(KEY, delta) })
                        .await
                        .unwrap();
                }
            }
        }));
    }
    // Held open across all of them: a pure adder never conflicts, whatever commits meanwhile.
    let early = db.create_transaction().await.unwrap();
    early.atomic_add(KEY, -1).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    // A conflict here is counted but redone by a new `run`, not retried by the same one.
    let mut early_conflicts = 0;
    match early.commit().await {
        Ok(()) => {}
        Err(StorageError::Conflict) if !never_conflict => {
            early_conflicts = 1;
            db.run(|tx| async move { tx.atomic_add(KEY, -1) })
                .await
                .unwrap();
        }
        Err(error) => panic!("the early adder failed: {error:?}"),
    }
    let expected: i64 = (0..4_i64)
        .flat_map(|task| (0..25_i64).map(move |step| task * 100 + step))
        .sum::<i64>()
        - 1;
    let tx = db.create_transaction().await.unwrap();
    assert_eq!(counter(tx.get(KEY).await.unwrap()), expected);
    let stats = db.stats();
    if never_conflict {
        assert_eq!(stats.conflicts, 0, "{stats:?}");
    } else {
        println!("atomic adds: {} conflicts, all retried", stats.conflicts);
        assert_eq!(
            stats.retries + early_conflicts,
            stats.conflicts,
            "every conflict was retried: {stats:?}"
        );
    }
}

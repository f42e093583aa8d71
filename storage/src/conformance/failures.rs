//! Cases on the error paths: limits, invalid ranges, retry limit, lifetime, finished transactions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{committed_pairs, seed};
use crate::{
    Database, MAX_KEY_SIZE, MAX_TRANSACTION_SIZE, MAX_VALUE_SIZE, RangeOptions, RetryOptions,
    StorageError,
};

/// Oversized keys and values are rejected on every operation and write nothing; the
/// maximal sizes are accepted.
pub async fn key_and_value_limits_are_enforced(db: &Database) {
    let big_key = vec![b'k'; MAX_KEY_SIZE + 1];
    let max_key = vec![b'k'; MAX_KEY_SIZE];
    let tx = db.create_transaction().await.unwrap();
    let key_error = |result: Result<(), StorageError>| match result {
        Err(StorageError::KeyTooLarge { size }) => assert_eq!(size, 10_001),
        other => panic!("expected KeyTooLarge, got {other:?}"),
    };
    key_error(tx.set(&big_key, b"v"));
    key_error(tx.clear(&big_key));
    key_error(tx.atomic_add(&big_key, 1));
    key_error(tx.add_read_conflict_key(&big_key));
    key_error(tx.clear_range(&big_key, &[b'z'; 10_001]));
    key_error(tx.get(&big_key).await.map(drop));
    key_error(tx.snapshot_get(&big_key).await.map(drop));
    key_error(
        tx.get_range(&big_key, b"z", RangeOptions::default())
            .await
            .map(drop),
    );
    match tx.set(b"v", &vec![0; MAX_VALUE_SIZE + 1]) {
        Err(StorageError::ValueTooLarge { size }) => assert_eq!(size, 100_001),
        other => panic!("expected ValueTooLarge, got {other:?}"),
    }
    let message = StorageError::ValueTooLarge { size: 100_001 }.to_string();
    assert!(
        message.contains("100001") && message.contains("100000"),
        "{message}"
    );

    tx.set(&max_key, &vec![1; MAX_VALUE_SIZE]).unwrap();
    tx.commit().await.unwrap();
    let pairs = committed_pairs(db).await;
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].0, max_key);
    assert_eq!(pairs[0].1.len(), MAX_VALUE_SIZE);
}

/// Crossing 10 MB fails the operation and then the commit; nothing is written.
pub async fn transaction_too_large_writes_nothing(db: &Database) {
    let tx = db.create_transaction().await.unwrap();
    let value = vec![7; MAX_VALUE_SIZE];
    let mut failed_at = None;
    for index in 0..=(MAX_TRANSACTION_SIZE / MAX_VALUE_SIZE) {
        match tx.set(format!("key-{index:04}").as_bytes(), &value) {
            Ok(()) => {}
            Err(StorageError::TransactionTooLarge { size }) => {
                assert!(size > MAX_TRANSACTION_SIZE);
                failed_at = Some(index);
                break;
            }
            Err(other) => panic!("expected TransactionTooLarge, got {other:?}"),
        }
    }
    assert!(failed_at.is_some(), "10 MB of values did not hit the limit");
    assert!(matches!(
        tx.set(b"small", b"1"),
        Err(StorageError::TransactionTooLarge { .. })
    ));
    assert!(matches!(
        tx.commit().await,
        Err(StorageError::TransactionTooLarge { .. })
    ));
    assert!(committed_pairs(db).await.is_empty());
}

/// A range whose begin is after its end is rejected for reads and clears.
pub async fn invalid_range_is_rejected(db: &Database) {
    seed(db, &[(b"a", b"1")]).await;
    let tx = db.create_transaction().await.unwrap();
    let read = tx.get_range(b"b", b"a", RangeOptions::default()).await;
    assert!(matches!(read, Err(StorageError::InvalidRange)), "{read:?}");
    let clear = tx.clear_range(b"b", b"a");
    assert!(
        matches!(clear, Err(StorageError::InvalidRange)),
        "{clear:?}"
    );
    tx.commit().await.unwrap();
    assert_eq!(committed_pairs(db).await.len(), 1);
}

/// A transaction that conflicts every time gives `RetryLimitExceeded` after the limit.
pub async fn retry_limit_exceeded(db: &Database) {
    let options = RetryOptions {
        retry_limit: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    };
    let db = db.clone().with_retry_options(options);
    let attempts = Arc::new(AtomicU32::new(0));
    let before = db.stats();
    let result = db
        .run(|tx| {
            let db = db.clone();
            let attempts = attempts.clone();
            async move {
                attempts.fetch_add(1, Ordering::Relaxed);
                tx.get(b"hot").await?;
                // Someone else writes what this attempt read before it commits.
                let other = db.create_transaction().await?;
                other.atomic_add(b"hot", 1)?;
                other.commit().await?;
                tx.set(b"mine", b"1")?;
                Ok::<_, StorageError>(())
            }
        })
        .await;
    match result {
        Err(StorageError::RetryLimitExceeded { attempts: 4, last }) => {
            assert!(matches!(*last, StorageError::Conflict), "{last:?}");
        }
        other => panic!("expected RetryLimitExceeded after 4 attempts, got {other:?}"),
    }
    assert_eq!(attempts.load(Ordering::Relaxed), 4);
    let stats = db.stats();
    assert_eq!(stats.retries - before.retries, 3);
    assert_eq!(stats.conflicts - before.conflicts, 4);
    let tx = db.create_transaction().await.unwrap();
    assert_eq!(tx.get(b"mine").await.unwrap(), None);
}

/// Errors that are not retryable come straight back from `run`, after one attempt.
pub async fn non_retryable_errors_are_not_retried(db: &Database) {
    let attempts = AtomicU32::new(0);
    let result = db
        .run(|tx| {
            attempts.fetch_add(1, Ordering::Relaxed);
            async move {
                tx.set(b"k", b"v")?;
                Err::<(), _>(StorageError::Codec("bad record".to_owned()))
            }
        })
        .await;
    assert!(matches!(result, Err(StorageError::Codec(_))), "{result:?}");
    assert_eq!(attempts.load(Ordering::Relaxed), 1);
    assert!(committed_pairs(db).await.is_empty());
}

/// A transaction past its lifetime fails with the retryable `TransactionTooOld`, writes
/// nothing, and `run` retries it.
pub async fn transaction_too_old(db: &Database) {
    let lifetime = Duration::from_millis(100);
    let db = db.clone().with_transaction_lifetime(lifetime);
    let tx = db.create_transaction().await.unwrap();
    tx.set(b"k", b"v").unwrap();
    tokio::time::sleep(lifetime * 2).await;
    let read = tx.get(b"k").await;
    assert!(
        matches!(read, Err(StorageError::TransactionTooOld)),
        "{read:?}"
    );
    let commit = tx.commit().await;
    assert!(
        matches!(commit, Err(StorageError::TransactionTooOld)),
        "{commit:?}"
    );
    assert!(commit.unwrap_err().is_retryable());
    assert!(committed_pairs(&db).await.is_empty());

    let attempts = AtomicU32::new(0);
    db.run(|tx| {
        let first = attempts.fetch_add(1, Ordering::Relaxed) == 0;
        async move {
            if first {
                tokio::time::sleep(lifetime * 2).await;
            }
            tx.set(b"k", b"v")?;
            Ok::<_, StorageError>(())
        }
    })
    .await
    .unwrap();
    assert_eq!(attempts.load(Ordering::Relaxed), 2);
    assert_eq!(committed_pairs(&db).await.len(), 1);
}

/// After a commit, successful or not, every operation gives `TransactionFinished`.
pub async fn finished_transaction_rejects_operations(db: &Database) {
    let committed = db.create_transaction().await.unwrap();
    committed.set(b"k", b"v").unwrap();
    committed.commit().await.unwrap();

    let conflicted = db.create_transaction().await.unwrap();
    conflicted.get(b"c").await.unwrap();
    conflicted.set(b"c", b"1").unwrap();
    seed(db, &[(b"c", b"0")]).await;
    assert!(matches!(
        conflicted.commit().await,
        Err(StorageError::Conflict)
    ));

    for tx in [committed, conflicted] {
        let finished = |result: Result<(), StorageError>| {
            assert!(
                matches!(result, Err(StorageError::TransactionFinished)),
                "{result:?}"
            );
        };
        finished(tx.get(b"k").await.map(drop));
        finished(tx.snapshot_get(b"k").await.map(drop));
        finished(
            tx.get_range(b"a", b"z", RangeOptions::default())
                .await
                .map(drop),
        );
        finished(tx.set(b"k", b"w"));
        finished(tx.clear(b"k"));
        finished(tx.clear_range(b"a", b"z"));
        finished(tx.atomic_add(b"k", 1));
        finished(tx.add_read_conflict_key(b"k"));
        finished(tx.commit().await);
    }
}

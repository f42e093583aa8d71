#![allow(clippy::unwrap_used)]

use super::*;
use crate::domain::passwords::{ARGON2_ITERATIONS, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM};

const OWASP: Argon2Params = Argon2Params {
    memory_kib: ARGON2_MEMORY_KIB,
    iterations: ARGON2_ITERATIONS,
    parallelism: ARGON2_PARALLELISM,
};

/// The cheapest argon2id the crate accepts: the scheduling tests are about order.
const CHEAP: Argon2Params = Argon2Params {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};

fn size(threads: usize, queue: usize, per_source: usize) -> PoolSize {
    PoolSize {
        threads,
        queue,
        per_source,
        per_tenant: queue,
    }
}

fn paused(hasher: &PasswordHasher, paused: bool) {
    hasher.pool.lock().paused = paused;
    hasher.pool.work.notify_all();
}

fn taken(hasher: &PasswordHasher) -> Vec<(String, Class)> {
    hasher.pool.lock().taken.clone()
}

#[tokio::test]
async fn the_pool_hashes_with_its_configured_parameters() {
    let cost = Argon2Params {
        memory_kib: 256,
        iterations: 1,
        parallelism: 2,
    };
    let hasher = PasswordHasher::start(Context::system(), size(1, 4, 4), cost).unwrap();
    let source = HashSource::new("acme", "10.0.0.1");
    let phc = hasher.hash(source, "a long enough password").await.unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=2$"), "{phc}");
    let verification = hasher
        .verify(source, "a long enough password", Some(&phc))
        .await
        .unwrap();
    assert!(verification.matches && !verification.needs_rehash);
    let invalid = Argon2Params {
        memory_kib: 1,
        ..cost
    };
    assert!(PasswordHasher::start(Context::system(), size(1, 4, 4), invalid).is_err());
}

#[tokio::test]
async fn pool_verifies_and_never_matches_the_decoy() {
    let hasher = PasswordHasher::start(Context::system(), size(2, 16, 16), OWASP).unwrap();
    let source = HashSource::new("acme", "10.0.0.1");
    let phc = hasher.hash(source, "a long enough password").await.unwrap();
    assert!(
        hasher
            .verify(source, "a long enough password", Some(&phc))
            .await
            .unwrap()
            .matches
    );
    assert!(
        !hasher
            .verify(source, "a long enough password", None)
            .await
            .unwrap()
            .matches
    );
}

/// A source that filled its share with sign-ups is refused more, while another source's
/// sign-in is admitted and runs before the flood's queued hashes.
#[tokio::test]
async fn a_flooding_source_cannot_push_a_sign_in_behind_its_hashes() {
    let hasher = PasswordHasher::start(Context::system(), size(1, 64, 3), CHEAP).unwrap();
    let flood = HashSource::new("acme", "10.0.0.66");
    let user = HashSource::new("acme", "10.0.0.7");
    let phc = hasher.hash(user, "the user's password").await.unwrap();
    hasher.pool.lock().taken.clear();
    paused(&hasher, true);
    let flooded: Vec<_> = (0..3)
        .map(|index| hasher.hash(flood, &format!("flood password {index}")))
        .collect();
    let refused = hasher.hash(flood, "one too many").await;
    assert!(
        matches!(refused, Err(DomainError::RateLimited)),
        "{refused:?}"
    );
    // The flood's share is per source: its sign-in is refused too, the user's is not.
    let flood_sign_in = hasher.verify(flood, "guess", Some(&phc)).await;
    assert!(matches!(flood_sign_in, Err(DomainError::RateLimited)));
    let sign_in = hasher.verify(user, "the user's password", Some(&phc));
    paused(&hasher, false);
    assert!(sign_in.await.unwrap().matches);
    for hashed in flooded {
        hashed.await.unwrap();
    }
    let order = taken(&hasher);
    assert_eq!(
        order.first(),
        Some(&("10.0.0.7".to_owned(), Class::Verify)),
        "{order:?}"
    );
    assert_eq!(order.len(), 4, "{order:?}");
    // Once the flood's jobs ran, its share is free again.
    assert!(hasher.hash(flood, "later password").await.is_ok());
}

/// Within a class, sources take turns: a second source's hash runs right after the
/// flood's first, not after all of them; and hashes still run while sign-ins keep coming.
#[tokio::test]
async fn sources_take_turns_and_hashes_are_not_starved() {
    let hasher = PasswordHasher::start(Context::system(), size(1, 64, 16), CHEAP).unwrap();
    let flood = HashSource::new("acme", "flood");
    let other = HashSource::new("acme", "other");
    paused(&hasher, true);
    let mut pending: Vec<_> = (0..3)
        .map(|_| hasher.hash(flood, "flood password"))
        .collect();
    pending.push(hasher.hash(other, "other password"));
    let sign_ins: Vec<_> = (0..VERIFY_BURST + 1)
        .map(|_| hasher.verify(HashSource::new("acme", "signer"), "pw", None))
        .collect();
    paused(&hasher, false);
    for hashed in pending {
        hashed.await.unwrap();
    }
    for verified in sign_ins {
        verified.await.unwrap();
    }
    let taken = taken(&hasher);
    let order: Vec<(&str, Class)> = taken
        .iter()
        .map(|(source, class)| (source.as_str(), *class))
        .collect();
    let burst = VERIFY_BURST as usize;
    assert!(
        order[..burst]
            .iter()
            .all(|entry| *entry == ("signer", Class::Verify)),
        "{order:?}"
    );
    assert_eq!(order[burst], ("flood", Class::Hash), "{order:?}");
    assert_eq!(order[burst + 1], ("signer", Class::Verify), "{order:?}");
    assert_eq!(order[burst + 2], ("other", Class::Hash), "{order:?}");
    assert_eq!(order[burst + 3..], [("flood", Class::Hash); 2], "{order:?}");
}

#[tokio::test]
async fn a_tenant_is_capped_and_the_whole_queue_too() {
    let capped = PoolSize {
        threads: 1,
        queue: 3,
        per_source: 8,
        per_tenant: 2,
    };
    let hasher = PasswordHasher::start(Context::system(), capped, CHEAP).unwrap();
    paused(&hasher, true);
    let first = hasher.hash(HashSource::new("acme", "a"), "password one");
    let second = hasher.hash(HashSource::new("acme", "b"), "password two");
    let third = hasher
        .hash(HashSource::new("acme", "c"), "password three")
        .await;
    assert!(matches!(third, Err(DomainError::RateLimited)), "{third:?}");
    let other_tenant = hasher.hash(HashSource::new("globex", "a"), "password four");
    let full = hasher
        .hash(HashSource::new("initech", "a"), "password five")
        .await;
    assert!(matches!(full, Err(DomainError::Unavailable(_))), "{full:?}");
    paused(&hasher, false);
    for hashed in [first, second, other_tenant] {
        hashed.await.unwrap();
    }
}

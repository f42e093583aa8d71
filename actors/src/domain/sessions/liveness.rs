//! Whether an access token may still act: its session live (not revoked, not expired) and
//! its user active (not suspended, banned or deleted). `Gatehouse::authenticate` asks this
//! of every user call, through a per-node cache ([`LiveSessions`]) that the revocation feed
//! keeps true on every node.
//!
//! The feed is [`FEED_SHARDS`] counters in storage (`keyspace::revocation_feed`), sharded by
//! user so that concurrent revocations rarely write the same key. Every change that ends a
//! session or blocks a user calls [`note_revocation`] in its own transaction: it bumps the
//! user's shard and drops that shard of this node's cache at once. Every node polls the
//! counters (one snapshot range read, `GatehouseOptions::revocation_poll`) and drops the
//! shards that moved, so a change is in force on every node one poll after it commits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use gatehouse_storage::{Transaction, codec};
use uuid::Uuid;

use super::SessionRecord;
use crate::context::{Context, Timestamp};
use crate::domain::keyspace;
use crate::domain::users::UserRecord;
use crate::error::{DomainError, DomainResult};

/// Shards of the revocation feed and of the cache.
pub const FEED_SHARDS: u16 = 64;
/// Longest a cache entry is trusted without a look at storage, a backstop behind the feed.
pub const MAX_ENTRY_AGE: Duration = Duration::from_secs(60);
/// Entries one shard of the cache holds before it starts over.
const MAX_ENTRIES_PER_SHARD: usize = 4096;

/// The feed shard of a user (user ids end in random bits).
pub fn shard_of(user_id: Uuid) -> u16 {
    u16::from(user_id.as_bytes()[15]) % FEED_SHARDS
}

/// Records in `tx` that a session of `user_id` ended or the user was blocked: bumps the
/// user's feed shard (other nodes drop the shard when they next poll) and drops the shard
/// of this node's cache now.
pub fn note_revocation(tx: &Transaction, context: &Context, user_id: Uuid) -> DomainResult<()> {
    let shard = shard_of(user_id);
    tx.atomic_add(&keyspace::revocation_feed(shard), 1)?;
    // Dropped before the commit too: an entry filled between this and the commit is
    // dropped by the next poll.
    context.live_sessions.drop_shard(shard);
    Ok(())
}

/// Reads the session and the user from one snapshot: `Ok(until)` when the session is live
/// and the user active (the session's next expiry), else the refusal: `USER_SUSPENDED`,
/// `USER_BANNED`, `SESSION_REVOKED` (revoked, or gone with its user), `SESSION_EXPIRED`, or
/// `INVALID_ACCESS_TOKEN` when the session is another user's.
pub async fn check_live(
    tx: &Transaction,
    tenant: &str,
    session_id: Uuid,
    user_id: Uuid,
    now: Timestamp,
) -> DomainResult<Timestamp> {
    let session_key = keyspace::session(tenant, session_id);
    let user_key = keyspace::user(tenant, user_id);
    let (session, user) =
        tokio::try_join!(tx.snapshot_get(&session_key), tx.snapshot_get(&user_key))?;
    let session: SessionRecord = codec::decode(&session.ok_or(DomainError::SessionRevoked)?)?;
    if session.user_id != user_id {
        return Err(DomainError::InvalidAccessToken);
    }
    // A blocked user hears why, though blocking also revoked the session.
    let user: UserRecord = codec::decode(&user.ok_or(DomainError::SessionRevoked)?)?;
    user.ensure_may_sign_in()?;
    if session.revoked.is_some() {
        return Err(DomainError::SessionRevoked);
    }
    if session.expiry_reason(now).is_some() {
        return Err(DomainError::SessionExpired);
    }
    Ok(session.next_expiry())
}

impl SessionRecord {
    /// The first instant the session is expired (absolute or idle) if nothing refreshes it.
    pub fn next_expiry(&self) -> Timestamp {
        let idle = self
            .last_used_at
            .plus(Duration::from_secs(u64::from(self.idle_ttl_seconds)));
        idle.min(self.expires_at)
    }
}

/// This node's cache of sessions found live with an active user, by session id.
#[derive(Debug)]
pub struct LiveSessions {
    shards: Vec<Mutex<Shard>>,
}

#[derive(Debug, Default)]
struct Shard {
    /// Bumped whenever the shard is dropped: a fill that began before is not kept.
    generation: u64,
    entries: HashMap<Uuid, Entry>,
}

#[derive(Debug)]
struct Entry {
    tenant: String,
    user_id: Uuid,
    until: Timestamp,
}

impl Default for LiveSessions {
    fn default() -> Self {
        LiveSessions {
            shards: (0..FEED_SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl LiveSessions {
    fn shard(&self, user_id: Uuid) -> &Mutex<Shard> {
        &self.shards[usize::from(shard_of(user_id))]
    }

    /// Whether the session is known live with an active user at `now`.
    pub fn is_live(&self, tenant: &str, session_id: Uuid, user_id: Uuid, now: Timestamp) -> bool {
        let Ok(shard) = self.shard(user_id).lock() else {
            return false;
        };
        shard.entries.get(&session_id).is_some_and(|entry| {
            entry.tenant == tenant && entry.user_id == user_id && now < entry.until
        })
    }

    /// The generation of the user's shard, read before a fill starts.
    pub fn generation(&self, user_id: Uuid) -> u64 {
        self.shard(user_id)
            .lock()
            .map(|shard| shard.generation)
            .unwrap_or(u64::MAX)
    }

    /// Keeps a session found live at `now` until `until` (at most [`MAX_ENTRY_AGE`]), unless
    /// the shard was dropped since `generation` was read.
    pub fn insert(
        &self,
        tenant: &str,
        session_id: Uuid,
        user_id: Uuid,
        generation: u64,
        now: Timestamp,
        until: Timestamp,
    ) {
        let Ok(mut shard) = self.shard(user_id).lock() else {
            return;
        };
        if shard.generation != generation {
            return;
        }
        if shard.entries.len() >= MAX_ENTRIES_PER_SHARD {
            shard.entries.retain(|_, entry| now < entry.until);
            if shard.entries.len() >= MAX_ENTRIES_PER_SHARD {
                shard.entries.clear();
            }
        }
        let entry = Entry {
            tenant: tenant.to_owned(),
            user_id,
            until: until.min(now.plus(MAX_ENTRY_AGE)),
        };
        shard.entries.insert(session_id, entry);
    }

    /// Forgets every entry of one feed shard.
    pub fn drop_shard(&self, shard: u16) {
        if let Some(Ok(mut shard)) = self.shards.get(usize::from(shard)).map(Mutex::lock) {
            shard.generation = shard.generation.wrapping_add(1);
            shard.entries.clear();
        }
    }

    /// Forgets everything (the feed could not be read).
    pub fn drop_all(&self) {
        for shard in 0..FEED_SHARDS {
            self.drop_shard(shard);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn user_in_shard(shard: u8) -> Uuid {
        let mut bytes = [9u8; 16];
        bytes[15] = shard;
        Uuid::from_bytes(bytes)
    }

    #[test]
    fn entries_expire_and_dropped_shards_forget_them() {
        let cache = LiveSessions::default();
        let (session, user, other) = (Uuid::from_u128(1), user_in_shard(3), user_in_shard(4));
        let now = Timestamp(1_000);
        let generation = cache.generation(user);
        cache.insert("acme", session, user, generation, now, Timestamp(5_000));
        assert!(cache.is_live("acme", session, user, Timestamp(4_999)));
        assert!(!cache.is_live("acme", session, user, Timestamp(5_000)));
        assert!(!cache.is_live("other", session, user, now));
        assert!(!cache.is_live("acme", session, other, now));

        cache.drop_shard(shard_of(other));
        assert!(cache.is_live("acme", session, user, now));
        cache.drop_shard(shard_of(user));
        assert!(!cache.is_live("acme", session, user, now));
    }

    #[test]
    fn a_fill_begun_before_a_drop_is_not_kept() {
        let cache = LiveSessions::default();
        let (session, user) = (Uuid::from_u128(1), user_in_shard(7));
        let before = cache.generation(user);
        cache.drop_shard(shard_of(user));
        cache.insert("acme", session, user, before, Timestamp(0), Timestamp(10));
        assert!(!cache.is_live("acme", session, user, Timestamp(1)));
    }

    #[test]
    fn entries_are_trusted_at_most_max_entry_age() {
        let cache = LiveSessions::default();
        let (session, user) = (Uuid::from_u128(1), user_in_shard(1));
        let generation = cache.generation(user);
        cache.insert(
            "acme",
            session,
            user,
            generation,
            Timestamp(0),
            Timestamp(i64::MAX),
        );
        let age = i64::try_from(MAX_ENTRY_AGE.as_millis()).unwrap();
        assert!(cache.is_live("acme", session, user, Timestamp(age - 1)));
        assert!(!cache.is_live("acme", session, user, Timestamp(age)));
    }
}

//! Password attempts: limits in storage, reserved before a password is checked.
//!
//! Every password check first takes one slot of each of its limits in a transaction that
//! reads them with conflicts, so concurrent attempts on any node serialise on them and never
//! pass a limit by the number in flight. A right password gives its slots back in its
//! sign-in transaction (the owner's own use does not count); a wrong one leaves them spent.
//!
//! An attempt is from a known device when it presents a device token (issued by an earlier
//! sign-in of the same user, see [`device_token`]): then only the device's own limit
//! applies. Otherwise three do: the account at this source address, every unknown source of
//! the account together (the account-wide ceiling, audited as `user.lockout` when it runs
//! dry) and the source address over all accounts (a count per minute kept with atomic adds,
//! so a busy shared address does not serialise its sign-ins). An attacker guessing from
//! unknown addresses never locks out the owner's known devices, passkeys or emailed codes.
//!
//! The account at one source and the account on one device are progressive delays: a few
//! failures in a row are free, then each further one doubles the wait before the next try
//! (a success ends the streak, a long quiet forgets it). The account-wide ceiling is a token
//! bucket, so guesses spread over many addresses are bounded to a steady rate.

use gatehouse_storage::{Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::AuditOrigin;
use crate::context::{Context, Timestamp};
use crate::domain::audit::AuditAction;
use crate::domain::change::record_change;
use crate::domain::crypto::{MasterKey, base64url, constant_time_eq, from_base64url};
use crate::domain::keyspace;
use crate::domain::users::UserRecord;
use crate::error::DomainResult;

/// Prefix of device tokens.
pub const DEVICE_TOKEN_PREFIX: &str = "gdt_";

/// A bucket's size and refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Attempts a full bucket allows at once.
    pub capacity: u32,
    /// One attempt more every this many milliseconds.
    pub refill_millis: i64,
}

/// A progressive delay: waits that double with each failure in a row past the free ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures in a row that need no wait.
    pub free: u32,
    /// The wait after the first failure past the free ones; each further failure doubles it.
    pub first_delay_millis: i64,
    /// The longest wait.
    pub max_delay_millis: i64,
    /// A streak with no attempt for this long is forgotten.
    pub forget_after_millis: i64,
}

impl Backoff {
    /// The wait before the next attempt after `failures` failures in a row.
    pub fn delay_millis(&self, failures: u32) -> i64 {
        let Some(past_free) = failures.checked_sub(self.free) else {
            return 0;
        };
        let doubled = self
            .first_delay_millis
            .saturating_mul(1_i64 << past_free.min(32));
        doubled.min(self.max_delay_millis)
    }
}

const TWELVE_HOURS_MILLIS: i64 = 12 * 3_600_000;

/// An account at one unknown source: ten wrong passwords in a row, then 30 s, 1 min, 2 min …
/// up to 15 minutes between tries.
pub const PER_SOURCE: Backoff = Backoff {
    free: 10,
    first_delay_millis: 30_000,
    max_delay_millis: 900_000,
    forget_after_millis: TWELVE_HOURS_MILLIS,
};
/// Every unknown source of an account together: thirty, then one every five minutes.
pub const UNKNOWN_SOURCES: Limit = Limit {
    capacity: 30,
    refill_millis: 300_000,
};
/// An account on one known device: ten in a row, then 15 s, 30 s … up to 5 minutes.
pub const PER_DEVICE: Backoff = Backoff {
    free: 10,
    first_delay_millis: 15_000,
    max_delay_millis: 300_000,
    forget_after_millis: TWELVE_HOURS_MILLIS,
};
/// Attempts one unknown source may have failed or in flight per window, over all accounts
/// of a tenant.
pub const SOURCE_PER_WINDOW: i64 = 200;
/// The window of [`SOURCE_PER_WINDOW`].
pub const SOURCE_WINDOW_MILLIS: i64 = 60_000;

/// How a slot is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// A progressive delay read with conflicts: exact across nodes and concurrent attempts.
    Streak(Backoff),
    /// The account-wide ceiling of unknown sources: a bucket, audited when it runs dry.
    Ceiling(Limit),
    /// A source over all accounts: atomic adds over fixed windows, so one busy address does
    /// not serialise every sign-in; the count is taken before the check, so only attempts
    /// whose reservations commit at the same instant can pass it together.
    Window {
        /// End of the window (the key names it).
        ends: Timestamp,
    },
}

/// One bucket an attempt takes a slot of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    key: Vec<u8>,
    rule: Rule,
    /// A window key of no further use, cleared on the way.
    stale: Option<Vec<u8>>,
}

fn source_window(tenant: &str, kind: &str, source: &str, now: Timestamp) -> Slot {
    let window = now.0.div_euclid(SOURCE_WINDOW_MILLIS);
    let key =
        |window: i64| keyspace::source_attempts(tenant, kind, &format!("{source}\u{0}{window}"));
    Slot {
        key: key(window),
        rule: Rule::Window {
            ends: Timestamp((window + 1) * SOURCE_WINDOW_MILLIS),
        },
        stale: Some(key(window - 2)),
    }
}

/// The buckets of a password attempt at `now` on `account` (a normalised email) from
/// `source`, or from the known `device`.
pub fn password_slots(
    tenant: &str,
    account: &str,
    device: Option<Uuid>,
    source: &str,
    now: Timestamp,
) -> Vec<Slot> {
    let bucket = |scope: &str, rule| Slot {
        key: keyspace::sign_in_attempts(tenant, account, scope),
        rule,
        stale: None,
    };
    match device {
        Some(device) => vec![bucket(&format!("dev:{device}"), Rule::Streak(PER_DEVICE))],
        None => vec![
            bucket(&format!("src:{source}"), Rule::Streak(PER_SOURCE)),
            bucket("unknown", Rule::Ceiling(UNKNOWN_SOURCES)),
            source_window(tenant, "password", source, now),
        ],
    }
}

/// The slot of a failed passkey sign-in from one source over all accounts.
pub fn passkey_source_slot(tenant: &str, source: &str, now: Timestamp) -> Slot {
    source_window(tenant, "passkey", source, now)
}

/// The slot of an emailed code from one source over all addresses.
pub fn code_source_slot(tenant: &str, source: &str, now: Timestamp) -> Slot {
    source_window(tenant, "code", source, now)
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Bucket {
    tokens: f64,
    updated: Timestamp,
    /// When the bucket ran dry and was audited as a lockout (ceiling only).
    locked_at: Option<Timestamp>,
}

impl Bucket {
    fn full(limit: Limit, now: Timestamp) -> Bucket {
        Bucket {
            tokens: f64::from(limit.capacity),
            updated: now,
            locked_at: None,
        }
    }

    fn refreshed(self, limit: Limit, now: Timestamp) -> Bucket {
        let elapsed = now.millis_since(self.updated) as f64;
        Bucket {
            tokens: (self.tokens + elapsed / limit.refill_millis.max(1) as f64)
                .min(f64::from(limit.capacity)),
            updated: now,
            locked_at: self.locked_at,
        }
    }

    /// Milliseconds until one slot is free.
    fn wait_millis(&self, limit: Limit) -> i64 {
        ((1.0 - self.tokens).max(0.0) * limit.refill_millis as f64).ceil() as i64
    }
}

/// Failures in a row of a progressive delay (attempts in flight included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Streak {
    failures: u32,
    /// The latest attempt.
    last: Timestamp,
}

impl Streak {
    /// Milliseconds until the next attempt may start.
    fn wait_millis(&self, backoff: Backoff, now: Timestamp) -> i64 {
        let allowed_at = self
            .last
            .0
            .saturating_add(backoff.delay_millis(self.failures));
        (allowed_at - now.0).max(0)
    }
}

async fn read_streak(
    tx: &Transaction,
    key: &[u8],
    backoff: Backoff,
    now: Timestamp,
) -> DomainResult<Streak> {
    let stored = match tx.get(key).await? {
        Some(bytes) => Some(codec::decode::<Streak>(&bytes)?),
        None => None,
    };
    Ok(stored
        .filter(|streak| now.millis_since(streak.last) < backoff.forget_after_millis)
        .unwrap_or(Streak {
            failures: 0,
            last: now,
        }))
}

async fn read(tx: &Transaction, key: &[u8], limit: Limit, now: Timestamp) -> DomainResult<Bucket> {
    Ok(match tx.get(key).await? {
        Some(bytes) => codec::decode::<Bucket>(&bytes)?.refreshed(limit, now),
        None => Bucket::full(limit, now),
    })
}

async fn window_count(tx: &Transaction, key: &[u8]) -> DomainResult<i64> {
    Ok(tx
        .snapshot_get(key)
        .await?
        .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
        .map_or(0, i64::from_le_bytes))
}

/// What [`reserve`] read of one slot.
enum Held {
    Streak(Streak),
    Bucket(Bucket),
    Window,
}

/// The outcome of [`reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// A slot of every bucket is taken: check the credential now.
    Granted,
    /// A bucket is empty; nothing was taken. Try again after this many seconds.
    Refused {
        /// Seconds until every bucket has a slot.
        retry_after_seconds: u64,
    },
}

/// Takes one slot of each of `slots`, or none when one of them is empty. `user` is the
/// account's user when it has one: the first refusal by the ceiling of unknown sources
/// audits `user.lockout` for it (in this transaction; commit it also when refused).
pub async fn reserve(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    slots: &[Slot],
    user: Option<&UserRecord>,
    source: &str,
) -> DomainResult<Reservation> {
    let now = context.now();
    let mut held = Vec::with_capacity(slots.len());
    let mut wait = 0;
    for slot in slots {
        match slot.rule {
            Rule::Streak(backoff) => {
                let streak = read_streak(tx, &slot.key, backoff, now).await?;
                wait = wait.max(streak.wait_millis(backoff, now));
                held.push(Held::Streak(streak));
            }
            Rule::Ceiling(limit) => {
                let bucket = read(tx, &slot.key, limit, now).await?;
                wait = wait.max(bucket.wait_millis(limit));
                held.push(Held::Bucket(bucket));
            }
            Rule::Window { ends } => {
                if window_count(tx, &slot.key).await? >= SOURCE_PER_WINDOW {
                    wait = wait.max(ends.millis_since(now));
                }
                held.push(Held::Window);
            }
        }
    }
    if wait == 0 {
        for (slot, held) in slots.iter().zip(&mut held) {
            match held {
                Held::Streak(streak) => {
                    streak.failures = streak.failures.saturating_add(1);
                    streak.last = now;
                    tx.set(&slot.key, &codec::encode(streak)?)?;
                }
                Held::Bucket(bucket) => {
                    bucket.tokens -= 1.0;
                    if bucket.tokens >= 1.0 {
                        bucket.locked_at = None;
                    }
                    tx.set(&slot.key, &codec::encode(bucket)?)?;
                }
                Held::Window => tx.atomic_add(&slot.key, 1)?,
            }
            if let Some(stale) = &slot.stale {
                tx.clear(stale)?;
            }
        }
        return Ok(Reservation::Granted);
    }
    for (slot, held) in slots.iter().zip(&mut held) {
        let (Rule::Ceiling(limit), Held::Bucket(bucket)) = (slot.rule, held) else {
            continue;
        };
        if bucket.tokens < 1.0 && bucket.locked_at.is_none() {
            bucket.locked_at = Some(now);
            tx.set(&slot.key, &codec::encode(bucket)?)?;
            if let Some(user) = user {
                let wait = bucket.wait_millis(limit);
                audit_lockout(tx, context, tenant, user, source, wait).await?;
            }
        }
    }
    metrics::counter!("gatehouse_sign_in_rate_limited_total").increment(1);
    Ok(Reservation::Refused {
        retry_after_seconds: seconds(wait),
    })
}

/// Whole seconds (at least one) covering `millis`.
fn seconds(millis: i64) -> u64 {
    u64::try_from((millis + 999) / 1000).unwrap_or(1).max(1)
}

async fn audit_lockout(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user: &UserRecord,
    source: &str,
    wait_millis: i64,
) -> DomainResult<()> {
    metrics::counter!("gatehouse_sign_in_lockouts_total").increment(1);
    let origin = AuditOrigin {
        actor: "system".to_owned(),
        source_ip: source.to_owned(),
    };
    let audit = origin.event(
        AuditAction::UserLockout,
        format!("user:{}", user.user_id),
        serde_json::json!({
            "factor": "password",
            "scope": "unknown_sources",
            "retry_after_seconds": seconds(wait_millis),
        }),
    );
    record_change(tx, context, tenant, Some(audit), []).await
}

/// Gives back the slots [`reserve`] took, for an attempt that succeeded: a success also
/// ends the streak of its progressive delays.
pub async fn release(tx: &Transaction, context: &Context, slots: &[Slot]) -> DomainResult<()> {
    let now = context.now();
    for slot in slots {
        match slot.rule {
            Rule::Streak(_) => tx.clear(&slot.key)?,
            Rule::Ceiling(limit) => {
                let mut bucket = read(tx, &slot.key, limit, now).await?;
                bucket.tokens = (bucket.tokens + 1.0).min(f64::from(limit.capacity));
                if bucket.tokens >= f64::from(limit.capacity) {
                    tx.clear(&slot.key)?;
                } else {
                    tx.set(&slot.key, &codec::encode(&bucket)?)?;
                }
            }
            Rule::Window { .. } => tx.atomic_add(&slot.key, -1)?,
        }
    }
    Ok(())
}

/// Forgets every password bucket of `account` (an operator's unlock); returns how many.
pub async fn clear_account(tx: &Transaction, tenant: &str, account: &str) -> DomainResult<usize> {
    let (begin, end) = keyspace::sign_in_attempts_subspace(tenant, account).range();
    let cleared = tx
        .get_range(&begin, &end, gatehouse_storage::RangeOptions::default())
        .await?
        .len();
    tx.clear_range(&begin, &end)?;
    Ok(cleared)
}

/// Until when unknown sources may not try a password on `account`: `Some` while the
/// account-wide ceiling is empty.
pub async fn unknown_sources_locked_until(
    tx: &Transaction,
    now: Timestamp,
    tenant: &str,
    account: &str,
) -> DomainResult<Option<Timestamp>> {
    let key = keyspace::sign_in_attempts(tenant, account, "unknown");
    let bucket = read(tx, &key, UNKNOWN_SOURCES, now).await?;
    let wait = bucket.wait_millis(UNKNOWN_SOURCES);
    Ok((wait > 0).then_some(Timestamp(now.0 + wait)))
}

fn device_mac(master_key: &MasterKey, tenant: &str, user_id: Uuid, device: Uuid) -> [u8; 32] {
    let data = format!("{tenant}\u{0}{user_id}\u{0}{device}");
    master_key.mac(b"gatehouse/device-token", data.as_bytes())
}

/// A device token for `device` of `user_id`: `gdt_` and the device id with an HMAC over
/// (tenant, user, device) under a key derived from the master key. Nothing is stored.
pub fn device_token(master_key: &MasterKey, tenant: &str, user_id: Uuid, device: Uuid) -> String {
    let mut bytes = device.as_bytes().to_vec();
    bytes.extend_from_slice(&device_mac(master_key, tenant, user_id, device));
    format!("{DEVICE_TOKEN_PREFIX}{}", base64url(&bytes))
}

/// A new device id and its token.
pub fn new_device_token(
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    user_id: Uuid,
) -> String {
    let device = Uuid::from_bytes(context.random::<16>());
    device_token(master_key, tenant, user_id, device)
}

/// The device a token names, when it was issued to `user_id` of `tenant`; `None` for a
/// token that is malformed or another user's (such an attempt counts as unknown).
pub fn verify_device_token(
    master_key: &MasterKey,
    tenant: &str,
    user_id: Uuid,
    token: &str,
) -> Option<Uuid> {
    let bytes = from_base64url(token.trim().strip_prefix(DEVICE_TOKEN_PREFIX)?)?;
    if bytes.len() != 48 {
        return None;
    }
    let device = Uuid::from_slice(&bytes[..16]).ok()?;
    let expected = device_mac(master_key, tenant, user_id, device);
    constant_time_eq(&expected, &bytes[16..]).then_some(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_free_then_double_up_to_the_longest() {
        let delays: Vec<i64> = (0..18).map(|n| PER_SOURCE.delay_millis(n)).collect();
        assert_eq!(&delays[..10], &[0; 10]);
        assert_eq!(
            &delays[10..],
            &[
                30_000, 60_000, 120_000, 240_000, 480_000, 900_000, 900_000, 900_000
            ]
        );
        assert_eq!(PER_DEVICE.delay_millis(10), 15_000);
        assert_eq!(
            PER_DEVICE.delay_millis(u32::MAX),
            PER_DEVICE.max_delay_millis
        );
    }

    #[test]
    fn a_streak_waits_from_its_latest_attempt() {
        let streak = Streak {
            failures: 11,
            last: Timestamp(1_000_000),
        };
        assert_eq!(streak.wait_millis(PER_SOURCE, Timestamp(1_000_000)), 60_000);
        assert_eq!(streak.wait_millis(PER_SOURCE, Timestamp(1_059_999)), 1);
        assert_eq!(streak.wait_millis(PER_SOURCE, Timestamp(1_060_000)), 0);
    }
}

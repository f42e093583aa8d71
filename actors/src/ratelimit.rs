//! Token-bucket rate limits kept in memory per node, for brute-force protection.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::context::Timestamp;

/// Buckets above this count are pruned of full (idle) entries.
const PRUNE_THRESHOLD: usize = 100_000;

/// A token-bucket limiter over arbitrary string keys.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    refill_per_milli: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Timestamp,
}

impl RateLimiter {
    /// `capacity` tokens, refilled at one per `refill_every_millis`.
    pub fn new(capacity: u32, refill_every_millis: u64) -> RateLimiter {
        RateLimiter {
            capacity: f64::from(capacity),
            refill_per_milli: 1.0 / refill_every_millis.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refreshed(&self, bucket: Bucket, now: Timestamp) -> Bucket {
        let elapsed = now.millis_since(bucket.updated) as f64;
        Bucket {
            tokens: (bucket.tokens + elapsed * self.refill_per_milli).min(self.capacity),
            updated: now,
        }
    }

    /// Whether `key` has a token left (does not spend it).
    pub fn check(&self, key: &str, now: Timestamp) -> bool {
        let Ok(buckets) = self.buckets.lock() else {
            return true;
        };
        buckets
            .get(key)
            .is_none_or(|bucket| self.refreshed(*bucket, now).tokens >= 1.0)
    }

    /// Spends one token of `key`; returns whether one was available.
    pub fn spend(&self, key: &str, now: Timestamp) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() > PRUNE_THRESHOLD {
            buckets.retain(|_, bucket| self.refreshed(*bucket, now).tokens < self.capacity);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let mut refreshed = self.refreshed(*bucket, now);
        let allowed = refreshed.tokens >= 1.0;
        if allowed {
            refreshed.tokens -= 1.0;
        }
        *bucket = refreshed;
        allowed
    }

    /// Forgets `key`: its bucket is full again.
    pub fn clear(&self, key: &str) {
        if let Ok(mut buckets) = self.buckets.lock() {
            buckets.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_and_refills() {
        let limiter = RateLimiter::new(3, 1000);
        let start = Timestamp(0);
        assert!(limiter.spend("k", start));
        assert!(limiter.spend("k", start));
        assert!(limiter.spend("k", start));
        assert!(!limiter.check("k", start));
        assert!(!limiter.spend("k", start));
        assert!(limiter.check("other", start), "keys are independent");
        assert!(limiter.check("k", Timestamp(1000)));
        assert!(limiter.spend("k", Timestamp(1000)));
        assert!(!limiter.spend("k", Timestamp(1000)));
    }
}

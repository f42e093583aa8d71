//! The count and time bounds every load loop obeys.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A shared allowance of operations that also expires at a deadline.
#[derive(Debug)]
pub struct Budget {
    deadline: Instant,
    remaining: AtomicU64,
}

impl Budget {
    /// Allows at most `max_operations` operations, started within `duration` from now.
    pub fn new(duration: Duration, max_operations: u64) -> Self {
        Budget::until(Instant::now() + duration, max_operations)
    }

    /// Allows at most `max_operations` operations, started before `deadline`.
    pub fn until(deadline: Instant, max_operations: u64) -> Self {
        Budget {
            deadline,
            remaining: AtomicU64::new(max_operations),
        }
    }

    /// Claims one operation; false once the deadline passed or the count is spent.
    pub fn claim(&self) -> bool {
        self.claim_at(Instant::now())
    }

    /// Like [`Budget::claim`] with the current time given.
    pub fn claim_at(&self, now: Instant) -> bool {
        if now >= self.deadline {
            return false;
        }
        self.remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    /// Operations not yet claimed.
    pub fn remaining(&self) -> u64 {
        self.remaining.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_count_and_at_deadline() {
        let start = Instant::now();
        let budget = Budget::until(start + Duration::from_secs(60), 2);
        assert!(budget.claim_at(start));
        assert!(budget.claim_at(start));
        assert!(!budget.claim_at(start));
        assert_eq!(budget.remaining(), 0);

        let budget = Budget::until(start + Duration::from_secs(1), 100);
        assert!(budget.claim_at(start));
        assert!(!budget.claim_at(start + Duration::from_secs(1)));
        assert_eq!(budget.remaining(), 99);
    }
}

//! Bounded polling: tests wait for a condition, never for a fixed time.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Pause between two attempts of [`eventually`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A condition that still failed when its time ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StillFailing {
    /// How long it was polled.
    pub timeout: Duration,
    /// How many attempts finished.
    pub attempts: u32,
    /// What the last attempt reported.
    pub last: String,
}

impl fmt::Display for StillFailing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "still failing after {:?} and {} attempts: {}",
            self.timeout, self.attempts, self.last
        )
    }
}

impl std::error::Error for StillFailing {}

/// Runs `check` every [`POLL_INTERVAL`] until it returns `Ok` or `timeout` passes.
///
/// An attempt still running at the deadline is abandoned, so the whole call never takes
/// much longer than `timeout`.
pub async fn eventually<T, E, F, Fut>(timeout: Duration, mut check: F) -> Result<T, StillFailing>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Display,
{
    let deadline = Instant::now() + timeout;
    let mut attempts = 0;
    let mut last = String::from("no attempt finished");
    loop {
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => {
                attempts += 1;
                last = error.to_string();
            }
            Err(_) => {
                last = format!("an attempt was still running at the deadline; before: {last}");
            }
        }
        if Instant::now() + POLL_INTERVAL >= deadline {
            return Err(StillFailing {
                timeout,
                attempts,
                last,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_success() {
        let mut calls = 0;
        let value = eventually(Duration::from_secs(5), || {
            calls += 1;
            let calls = calls;
            async move { if calls < 3 { Err("not yet") } else { Ok(calls) } }
        })
        .await;
        assert_eq!(value, Ok(3));
    }

    #[tokio::test]
    async fn gives_up_with_the_last_error() {
        let started = Instant::now();
        let outcome: Result<(), _> =
            eventually(Duration::from_millis(500), || async { Err("never") }).await;
        let Err(failure) = outcome else {
            panic!("a condition that never holds must fail");
        };
        assert_eq!(failure.last, "never");
        assert!(failure.attempts >= 5, "{failure}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn abandons_an_attempt_that_outlives_the_deadline() {
        let started = Instant::now();
        let outcome: Result<(), StillFailing> = eventually(Duration::from_millis(300), || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<(), String>(())
        })
        .await;
        assert!(outcome.is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

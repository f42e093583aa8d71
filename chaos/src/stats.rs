//! Latency samples, error counts and the per-phase summary printed in the report.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::email::DeliverySummary;

/// What one worker measured: latencies of successful operations and failures by code.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    latencies_ns: Vec<u64>,
    errors_by_code: BTreeMap<String, u64>,
}

impl Tally {
    /// Records a successful operation that took `latency`.
    pub fn success(&mut self, latency: Duration) {
        self.latencies_ns
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records a failed operation under its error code.
    pub fn error(&mut self, code: &str) {
        *self.errors_by_code.entry(code.to_owned()).or_default() += 1;
    }

    /// A tally holding only the failure of a worker that panicked.
    pub fn panicked() -> Tally {
        let mut tally = Tally::default();
        tally.error("WORKER_PANICKED");
        tally
    }

    /// Successful operations so far.
    pub fn operations(&self) -> u64 {
        self.latencies_ns.len() as u64
    }

    /// Failed operations so far.
    pub fn errors(&self) -> u64 {
        self.errors_by_code.values().sum()
    }

    /// Adds another worker's measurements to this one.
    pub fn merge(&mut self, other: Tally) {
        self.latencies_ns.extend(other.latencies_ns);
        for (code, count) in other.errors_by_code {
            *self.errors_by_code.entry(code).or_default() += count;
        }
    }

    /// Summarises the phase, whose workers all ran within `elapsed`.
    pub fn summarize(mut self, elapsed: Duration) -> PhaseSummary {
        self.latencies_ns.sort_unstable();
        let sorted = &self.latencies_ns;
        let operations = sorted.len() as u64;
        let seconds = elapsed.as_secs_f64();
        PhaseSummary {
            operations,
            errors: self.errors_by_code.values().sum(),
            errors_by_code: self.errors_by_code,
            throughput_per_sec: if seconds > 0.0 {
                round3(operations as f64 / seconds)
            } else {
                0.0
            },
            p50_ms: percentile(sorted, 0.50).map(nanos_to_ms),
            p99_ms: percentile(sorted, 0.99).map(nanos_to_ms),
            max_ms: sorted.last().copied().map(nanos_to_ms),
            elapsed_secs: round3(seconds),
            threads: None,
            per_thread_per_sec: None,
            email_delivery: None,
            final_call: None,
            setup_users: None,
        }
    }
}

/// Throughput and latency of one phase, as printed in the JSON report.
///
/// `operations` counts successes only; latencies are of successful operations;
/// `throughput_per_sec` is successes per second of the phase's wall time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseSummary {
    /// Successful operations.
    pub operations: u64,
    /// Failed operations.
    pub errors: u64,
    /// Failed operations by error code.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Successful operations per second.
    pub throughput_per_sec: f64,
    /// Median latency in milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
    /// Slowest successful operation in milliseconds.
    pub max_ms: Option<f64>,
    /// Wall time of the phase, including requests still in flight at its deadline.
    pub elapsed_secs: f64,
    /// Threads of a CPU-bound local phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Successful operations per second of each thread of a CPU-bound local phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_thread_per_sec: Option<Vec<f64>>,
    /// What happened to the messages the `sign_in_code` phase committed, once drained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_delivery: Option<DeliverySummary>,
    /// The last call of a multi-call operation on its own (`passkey_sign_in`,
    /// `totp_complete`); the phase's own figures are of the whole operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_call: Option<CallSummary>,
    /// Users the phase's untimed setup created and enrolled a factor for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_users: Option<u64>,
}

/// Throughput and latency of one call inside a phase's operation, timed on its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    /// The SDK call, e.g. `finish_passkey_sign_in`.
    pub call: &'static str,
    /// Successful calls.
    pub operations: u64,
    /// Failed calls (the operation's earlier calls failing are not counted here).
    pub errors: u64,
    /// Successful calls per second of the phase's wall time.
    pub throughput_per_sec: f64,
    /// Median latency of the call in milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of the call in milliseconds.
    pub p99_ms: Option<f64>,
    /// Slowest successful call in milliseconds.
    pub max_ms: Option<f64>,
}

impl CallSummary {
    /// Summarises the tally of `call` over the phase's wall time `elapsed`.
    pub fn of(call: &'static str, tally: Tally, elapsed: Duration) -> Self {
        let summary = tally.summarize(elapsed);
        CallSummary {
            call,
            operations: summary.operations,
            errors: summary.errors,
            throughput_per_sec: summary.throughput_per_sec,
            p50_ms: summary.p50_ms,
            p99_ms: summary.p99_ms,
            max_ms: summary.max_ms,
        }
    }
}

/// The nearest-rank `quantile` (0..=1) of ascending `sorted` samples.
pub fn percentile(sorted: &[u64], quantile: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (quantile.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

fn nanos_to_ms(nanos: u64) -> f64 {
    round3(nanos as f64 / 1_000_000.0)
}

/// Rounds to three decimals so the report stays readable.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 0.50), Some(50));
        assert_eq!(percentile(&samples, 0.99), Some(99));
        assert_eq!(percentile(&samples, 1.0), Some(100));
        assert_eq!(percentile(&samples, 0.0), Some(1));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn summary_merges_workers_and_counts_errors_by_code() {
        let mut first = Tally::default();
        for ms in [1, 2, 3] {
            first.success(Duration::from_millis(ms));
        }
        first.error("UNAVAILABLE");
        let mut second = Tally::default();
        second.success(Duration::from_millis(10));
        second.error("UNAVAILABLE");
        second.error("INVALID_PASSWORD");
        first.merge(second);
        assert_eq!(first.operations(), 4);
        assert_eq!(first.errors(), 3);

        let summary = first.summarize(Duration::from_secs(2));
        assert_eq!(summary.operations, 4);
        assert_eq!(summary.errors, 3);
        assert_eq!(summary.errors_by_code["UNAVAILABLE"], 2);
        assert_eq!(summary.errors_by_code["INVALID_PASSWORD"], 1);
        assert_eq!(summary.throughput_per_sec, 2.0);
        assert_eq!(summary.p50_ms, Some(2.0));
        assert_eq!(summary.p99_ms, Some(10.0));
        assert_eq!(summary.max_ms, Some(10.0));
    }

    #[test]
    fn empty_phase_has_no_latencies() {
        let summary = Tally::default().summarize(Duration::ZERO);
        assert_eq!(summary.operations, 0);
        assert_eq!(summary.throughput_per_sec, 0.0);
        assert_eq!(summary.p50_ms, None);
        let json = serde_json::to_value(&summary).unwrap_or_default();
        assert!(json["p99_ms"].is_null());
        assert!(json.get("threads").is_none());
        assert!(json.get("email_delivery").is_none());
        assert!(json.get("final_call").is_none());
    }

    #[test]
    fn a_call_summary_uses_the_phase_wall_time() {
        let mut tally = Tally::default();
        for ms in [2, 4, 6, 8] {
            tally.success(Duration::from_millis(ms));
        }
        tally.error("INVALID_CODE");
        let call = CallSummary::of("complete_mfa", tally, Duration::from_secs(4));
        assert_eq!(call.call, "complete_mfa");
        assert_eq!((call.operations, call.errors), (4, 1));
        assert_eq!(call.throughput_per_sec, 1.0);
        assert_eq!(call.p50_ms, Some(4.0));
        assert_eq!(call.p99_ms, Some(8.0));
    }
}

//! The report of a chaos run: JSON for machines, a short summary for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::faults::FaultRecord;
use super::ledger::{Invariant, SessionState, TrackedSession, Verdict};
use crate::stats::PhaseSummary;

/// Everything a run did and found.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    /// Whether every invariant held.
    pub passed: bool,
    /// The seed of the fault schedule and the workers' choices.
    pub seed: u64,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Concurrent workload workers.
    pub concurrency: usize,
    /// Seconds the workload ran.
    pub duration_secs: f64,
    /// Mean seconds between faults.
    pub fault_interval_secs: f64,
    /// Seconds to start the cluster and create the tenant.
    pub cluster_start_secs: f64,
    /// Seconds from the workload's end until every node served again.
    pub heal_secs: f64,
    /// Seconds the final checks took.
    pub check_secs: f64,
    /// Seconds of the whole run.
    pub total_secs: f64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Every fault, in order.
    pub fault_log: Vec<FaultRecord>,
    /// Successes, latencies and errors of each operation of the workload.
    pub operations: BTreeMap<&'static str, PhaseSummary>,
    /// Errors of all operations together, by code.
    pub errors_by_code: BTreeMap<String, u64>,
    /// A few distinct messages of each error code, as `operation on node: message`.
    pub error_messages: BTreeMap<String, Vec<String>>,
    /// Sign-ups acknowledged, and those whose outcome stayed unknown.
    pub sign_ups: SignUpCounts,
    /// Sessions by their final state.
    pub sessions: BTreeMap<&'static str, u64>,
    /// Each invariant's result.
    pub invariants: Vec<InvariantReport>,
}

/// Sign-up outcomes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SignUpCounts {
    /// Acknowledged by the cluster.
    pub acknowledged: u64,
    /// Timed out or cut off: they may or may not exist.
    pub unknown: u64,
}

/// One invariant's result.
#[derive(Debug, Clone, Serialize)]
pub struct InvariantReport {
    /// Its name.
    pub name: &'static str,
    /// What it promises.
    pub description: &'static str,
    /// No violation was seen.
    pub passed: bool,
    /// At least one observation could have shown a violation.
    pub conclusive: bool,
    /// Counts and the first violations.
    #[serde(flatten)]
    pub verdict: Verdict,
}

impl InvariantReport {
    /// The report of `invariant` from its verdict.
    pub fn new(invariant: Invariant, verdict: Verdict) -> Self {
        InvariantReport {
            name: invariant.name(),
            description: invariant.description(),
            passed: verdict.violations == 0,
            conclusive: verdict.checked > 0,
            verdict,
        }
    }
}

/// Sessions counted by final state.
pub fn session_states(sessions: &[TrackedSession]) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    for session in sessions {
        let state = match session.state {
            SessionState::Active => "active",
            SessionState::Unknown => "unknown",
            SessionState::Revoked => "revoked",
            SessionState::RevocationUnknown => "revocation_unknown",
            SessionState::Refused(_) => "refused",
            SessionState::RevokedByReuse => "revoked_by_reuse",
        };
        *counts.entry(state).or_default() += 1;
    }
    counts
}

impl ChaosReport {
    /// A few lines for a person: faults, operations, and each invariant's result.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        let verdict = if self.passed { "PASSED" } else { "FAILED" };
        let _ = writeln!(
            text,
            "chaos {verdict}: seed {} nodes {} workload {:.0}s, {:.1}s in all",
            self.seed, self.nodes, self.duration_secs, self.total_secs
        );
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        let _ = writeln!(text, "  faults: {}", faults.join(", "));
        for (name, summary) in &self.operations {
            let _ = writeln!(
                text,
                "  {name}: {} ok, {} errors {:?}, p50 {} ms, p99 {} ms",
                summary.operations,
                summary.errors,
                summary.errors_by_code,
                millis(summary.p50_ms),
                millis(summary.p99_ms),
            );
        }
        let _ = writeln!(
            text,
            "  sign-ups: {} acknowledged, {} unknown; sessions {:?}",
            self.sign_ups.acknowledged, self.sign_ups.unknown, self.sessions
        );
        for invariant in &self.invariants {
            let mark = if invariant.passed { "pass" } else { "FAIL" };
            let _ = writeln!(
                text,
                "  [{mark}] {}: {} checked, {} violations, {} inconclusive — {}",
                invariant.name,
                invariant.verdict.checked,
                invariant.verdict.violations,
                invariant.verdict.inconclusive,
                invariant.description
            );
            for detail in &invariant.verdict.details {
                let _ = writeln!(text, "         {detail}");
            }
        }
        text
    }
}

fn millis(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1}"))
}

//! The JSON document a load run prints: run settings, each phase's summary and the
//! figures derived from several phases.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cluster_refresh::ClusterRefreshReport;
use crate::load::{LoadSettings, Phase};
use crate::procfs::{CpuUsage, host_load_average};
use crate::stats::PhaseSummary;

/// The JSON document a load run prints.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Concurrent request workers.
    pub concurrency: usize,
    /// Seconds each phase ran for.
    pub duration_secs: f64,
    /// Cores of this machine, and threads of the local phases.
    pub cores: usize,
    /// Most operations a phase may start.
    pub max_operations: u64,
    /// Tenant created for the run.
    pub tenant_id: String,
    /// Summary of each phase that ran.
    pub phases: PhaseReports,
    /// Phases whose setup failed (no users, no JWKS), with the reason.
    pub failed_phases: BTreeMap<&'static str, String>,
    /// Sign-in throughput divided by bare argon2 hashes per second.
    pub sign_in_vs_argon2: Option<f64>,
    /// The same ratio per CPU-second actually used (node's for sign-in, ours for argon2),
    /// which stays comparable when other work shares the machine.
    pub sign_in_vs_argon2_per_cpu_second: Option<f64>,
    /// Verifications per second per verifying thread.
    pub verify_per_core_per_sec: Option<f64>,
    /// Seconds the untimed `has_permission` setup took: defining the 1,000-permission graph,
    /// granting the chain roots and checking them once.
    pub has_permission_setup_secs: Option<f64>,
    /// Node resident memory right after start, MiB.
    pub node_rss_idle_mb: Option<f64>,
    /// Node resident memory after the last phase, MiB.
    pub node_rss_end_mb: Option<f64>,
    /// Node resident memory after each phase, MiB, when the node's pid is known.
    pub node_rss_after_phase_mb: BTreeMap<&'static str, f64>,
    /// Cores used by the node, this tool and the whole host during each phase.
    pub cpu_during_phase: BTreeMap<&'static str, CpuUsage>,
    /// One-minute load average of the host before the first phase.
    pub host_load_1m_start: Option<f64>,
    /// One-minute load average of the host after the last phase.
    pub host_load_1m_end: Option<f64>,
    /// Whether the node was started by this run or was already running.
    pub node: &'static str,
    /// The node's exit code after SIGTERM, when this run started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_exit_code: Option<i32>,
    /// Local vs forwarded refresh on a 3-node cluster, when `cluster_refresh` ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_refresh: Option<ClusterRefreshReport>,
}

impl LoadReport {
    /// A report of no single-node phase, for a run of the cluster phase alone.
    pub fn without_node(settings: &LoadSettings) -> Self {
        LoadReport {
            concurrency: settings.concurrency,
            duration_secs: settings.duration.as_secs_f64(),
            cores: settings.cores,
            max_operations: settings.max_operations,
            tenant_id: String::new(),
            phases: PhaseReports::default(),
            failed_phases: BTreeMap::new(),
            sign_in_vs_argon2: None,
            sign_in_vs_argon2_per_cpu_second: None,
            verify_per_core_per_sec: None,
            has_permission_setup_secs: None,
            node_rss_idle_mb: None,
            node_rss_end_mb: None,
            node_rss_after_phase_mb: BTreeMap::new(),
            cpu_during_phase: BTreeMap::new(),
            host_load_1m_start: host_load_average(),
            host_load_1m_end: None,
            node: "none",
            node_exit_code: None,
            cluster_refresh: None,
        }
    }
}

/// The summaries of the phases that ran, in run order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseReports {
    /// The `sign_up` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_up: Option<PhaseSummary>,
    /// The `sign_in` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<PhaseSummary>,
    /// The `refresh` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<PhaseSummary>,
    /// The `verify` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<PhaseSummary>,
    /// The `argon2_bare` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argon2_bare: Option<PhaseSummary>,
    /// The `passkey_sign_in` phase, with `finish_passkey_sign_in` alone in `final_call`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passkey_sign_in: Option<PhaseSummary>,
    /// The `totp_complete` phase, with `complete_mfa` alone in `final_call`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_complete: Option<PhaseSummary>,
    /// The `oidc_code_flow` phase: authorize and token, one flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_code_flow: Option<PhaseSummary>,
    /// The `oidc_refresh` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_refresh: Option<PhaseSummary>,
    /// The `sign_in_page` phase: latency is the time to the response headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in_page: Option<PhaseSummary>,
    /// The `has_permission` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_permission: Option<PhaseSummary>,
    /// The `share_check` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_check: Option<PhaseSummary>,
    /// The `sign_in_code` phase, with its `email_delivery`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in_code: Option<PhaseSummary>,
}

impl PhaseReports {
    /// The summary of `phase`, if it ran (the cluster phase reports elsewhere).
    pub fn get(&self, phase: Phase) -> Option<&PhaseSummary> {
        self.slot(phase)?.as_ref()
    }

    /// Stores the summary of `phase`; ignored for the cluster phase.
    pub fn insert(&mut self, phase: Phase, summary: PhaseSummary) {
        if let Some(slot) = self.slot_mut(phase) {
            *slot = Some(summary);
        }
    }

    fn slot(&self, phase: Phase) -> Option<&Option<PhaseSummary>> {
        Some(match phase {
            Phase::SignUp => &self.sign_up,
            Phase::SignIn => &self.sign_in,
            Phase::Refresh => &self.refresh,
            Phase::Verify => &self.verify,
            Phase::Argon2Bare => &self.argon2_bare,
            Phase::PasskeySignIn => &self.passkey_sign_in,
            Phase::TotpComplete => &self.totp_complete,
            Phase::OidcCodeFlow => &self.oidc_code_flow,
            Phase::OidcRefresh => &self.oidc_refresh,
            Phase::SignInPage => &self.sign_in_page,
            Phase::HasPermission => &self.has_permission,
            Phase::ShareCheck => &self.share_check,
            Phase::SignInCode => &self.sign_in_code,
            Phase::ClusterRefresh => return None,
        })
    }

    fn slot_mut(&mut self, phase: Phase) -> Option<&mut Option<PhaseSummary>> {
        Some(match phase {
            Phase::SignUp => &mut self.sign_up,
            Phase::SignIn => &mut self.sign_in,
            Phase::Refresh => &mut self.refresh,
            Phase::Verify => &mut self.verify,
            Phase::Argon2Bare => &mut self.argon2_bare,
            Phase::PasskeySignIn => &mut self.passkey_sign_in,
            Phase::TotpComplete => &mut self.totp_complete,
            Phase::OidcCodeFlow => &mut self.oidc_code_flow,
            Phase::OidcRefresh => &mut self.oidc_refresh,
            Phase::SignInPage => &mut self.sign_in_page,
            Phase::HasPermission => &mut self.has_permission,
            Phase::ShareCheck => &mut self.share_check,
            Phase::SignInCode => &mut self.sign_in_code,
            Phase::ClusterRefresh => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::Tally;

    #[test]
    fn each_single_node_phase_has_a_slot_and_the_cluster_phase_none() {
        let mut reports = PhaseReports::default();
        reports.insert(
            Phase::ShareCheck,
            Tally::default().summarize(Duration::from_secs(1)),
        );
        assert!(reports.get(Phase::ShareCheck).is_some());
        assert!(reports.get(Phase::HasPermission).is_none());
        reports.insert(
            Phase::ClusterRefresh,
            Tally::default().summarize(Duration::from_secs(1)),
        );
        assert!(reports.get(Phase::ClusterRefresh).is_none());
        for phase in Phase::ALL.into_iter().filter(|phase| !phase.is_cluster()) {
            reports.insert(phase, Tally::default().summarize(Duration::from_secs(1)));
            assert!(reports.get(phase).is_some(), "{phase}");
        }
        let json = serde_json::to_value(&reports).unwrap_or_default();
        assert!(json["share_check"].is_object(), "{json}");
        assert!(json["sign_in_code"].is_object(), "{json}");
        assert!(json["passkey_sign_in"].is_object(), "{json}");
        assert!(json["totp_complete"].is_object(), "{json}");
    }
}

//! What the cluster acknowledged during a run, and what the checks found.
//!
//! Workers keep their own sessions (one worker presents a session's tokens, so no two
//! requests ever race on one token by accident) and share the acknowledged accounts and
//! the verdicts, each behind a mutex held only for a push.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use gatehouse_protocol::{ApiError, ErrorCode};
use serde::Serialize;

/// Violations quoted per invariant in the report; the rest are only counted.
const DETAILS_KEPT: usize = 20;

/// A user whose sign-up the cluster acknowledged.
#[derive(Debug, Clone)]
pub struct Account {
    /// The email as signed up with.
    pub email: String,
    /// Its password.
    pub password: String,
    /// The user id the acknowledgement named.
    pub user_id: String,
}

/// What the workload knows about a session after its last request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// The newest token is known and unspent: it may be presented.
    Active,
    /// A refresh timed out or the node went away: whether it rotated is unknown, so its
    /// token is never presented again.
    Unknown,
    /// A revocation was acknowledged.
    Revoked,
    /// A revocation timed out: it may or may not have happened.
    RevocationUnknown,
    /// The cluster refused the newest token with this code (a violation).
    Refused(String),
    /// The final race presented the newest token to every node and reuse detection
    /// revoked the session.
    RevokedByReuse,
}

/// One session as the workload tracks it.
#[derive(Debug, Clone)]
pub struct TrackedSession {
    /// The session id.
    pub session_id: String,
    /// Its user.
    pub user_id: String,
    /// The newest refresh token the cluster handed out for it.
    pub latest: String,
    /// Every token the cluster accepted for it, oldest first.
    pub spent: Vec<String>,
    /// What is known after the last request.
    pub state: SessionState,
}

impl TrackedSession {
    /// A session just created by a sign-up or sign-in.
    pub fn new(session_id: String, user_id: String, refresh_token: String) -> Self {
        TrackedSession {
            session_id,
            user_id,
            latest: refresh_token,
            spent: Vec::new(),
            state: SessionState::Active,
        }
    }

    /// Records an acknowledged refresh: the presented token is spent, `next` is newest.
    pub fn rotated(&mut self, next: String) {
        let spent = std::mem::replace(&mut self.latest, next);
        self.spent.push(spent);
    }
}

/// The invariants a run checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// (a) every acknowledged sign-up exists, with its user id, and can sign in.
    AcknowledgedSignUpsExist,
    /// (b) no two users share a normalised (trimmed, lowercased) email.
    EmailsUnique,
    /// (c) no refresh token is accepted twice.
    RefreshTokensSingleUse,
    /// (d) a session whose revocation was acknowledged never refreshes afterwards.
    RevokedSessionsStayRevoked,
    /// (e) the newest token of every session in a known state is accepted: no
    /// acknowledged rotation or session is lost.
    AcknowledgedRotationsKept,
}

impl Invariant {
    /// Every invariant, in report order.
    pub const ALL: [Invariant; 5] = [
        Invariant::AcknowledgedSignUpsExist,
        Invariant::EmailsUnique,
        Invariant::RefreshTokensSingleUse,
        Invariant::RevokedSessionsStayRevoked,
        Invariant::AcknowledgedRotationsKept,
    ];

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::AcknowledgedSignUpsExist => "acknowledged_sign_ups_exist",
            Invariant::EmailsUnique => "emails_unique",
            Invariant::RefreshTokensSingleUse => "refresh_tokens_single_use",
            Invariant::RevokedSessionsStayRevoked => "revoked_sessions_stay_revoked",
            Invariant::AcknowledgedRotationsKept => "acknowledged_rotations_kept",
        }
    }

    /// What it promises, for the human summary.
    pub fn description(self) -> &'static str {
        match self {
            Invariant::AcknowledgedSignUpsExist => {
                "every acknowledged sign-up exists with its user id and can sign in"
            }
            Invariant::EmailsUnique => "no two users share a normalised email",
            Invariant::RefreshTokensSingleUse => {
                "no refresh token is accepted twice (spent tokens re-presented, fresh ones raced)"
            }
            Invariant::RevokedSessionsStayRevoked => {
                "no session refreshes after an acknowledged revocation"
            }
            Invariant::AcknowledgedRotationsKept => {
                "the newest token of every session in a known state is accepted"
            }
        }
    }
}

/// How one invariant fared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Observations that could have shown a violation.
    pub checked: u64,
    /// Observations that did show one.
    pub violations: u64,
    /// Observations whose outcome was unknown (a timeout, an unreachable node).
    pub inconclusive: u64,
    /// The first violations, described.
    pub details: Vec<String>,
}

impl Verdict {
    fn violation(&mut self, detail: String) {
        self.violations += 1;
        if self.details.len() < DETAILS_KEPT {
            self.details.push(detail);
        }
    }
}

/// What every worker shares: acknowledged accounts, issued tokens and the verdicts.
#[derive(Debug, Default)]
pub struct Ledger {
    accounts: Mutex<Vec<Account>>,
    unknown_sign_ups: Mutex<u64>,
    issued_tokens: Mutex<HashSet<String>>,
    verdicts: Mutex<BTreeMap<Invariant, Verdict>>,
}

impl Ledger {
    /// Records an acknowledged sign-up.
    pub fn add_account(&self, account: Account) {
        lock(&self.accounts).push(account);
    }

    /// Counts a sign-up whose outcome is unknown.
    pub fn add_unknown_sign_up(&self) {
        *lock(&self.unknown_sign_ups) += 1;
    }

    /// Acknowledged sign-ups so far.
    pub fn accounts(&self) -> Vec<Account> {
        lock(&self.accounts).clone()
    }

    /// Sign-ups whose outcome stayed unknown.
    pub fn unknown_sign_ups(&self) -> u64 {
        *lock(&self.unknown_sign_ups)
    }

    /// A random acknowledged account, if any.
    pub fn random_account(&self, rng: &mut impl rand::Rng) -> Option<Account> {
        let accounts = lock(&self.accounts);
        if accounts.is_empty() {
            return None;
        }
        accounts.get(rng.gen_range(0..accounts.len())).cloned()
    }

    /// Records a refresh token the cluster handed out; a token handed out twice (to two
    /// sessions, or twice to one) breaks single use.
    pub fn issued(&self, token: &str, session_id: &str) {
        let fresh = lock(&self.issued_tokens).insert(token.to_owned());
        let mut verdicts = lock(&self.verdicts);
        let verdict = verdicts
            .entry(Invariant::RefreshTokensSingleUse)
            .or_default();
        verdict.checked += 1;
        if !fresh {
            verdict.violation(format!(
                "session {session_id}: the cluster handed out a refresh token it had handed out before"
            ));
        }
    }

    /// Counts an observation of `invariant` that found nothing wrong.
    pub fn pass(&self, invariant: Invariant) {
        lock(&self.verdicts).entry(invariant).or_default().checked += 1;
    }

    /// Counts an observation of `invariant` that found a violation.
    pub fn violation(&self, invariant: Invariant, detail: String) {
        let mut verdicts = lock(&self.verdicts);
        let verdict = verdicts.entry(invariant).or_default();
        verdict.checked += 1;
        verdict.violation(detail);
    }

    /// Counts an observation of `invariant` whose outcome is unknown.
    pub fn inconclusive(&self, invariant: Invariant) {
        lock(&self.verdicts)
            .entry(invariant)
            .or_default()
            .inconclusive += 1;
    }

    /// The verdict of every invariant so far.
    pub fn verdicts(&self) -> BTreeMap<Invariant, Verdict> {
        let mut verdicts = lock(&self.verdicts).clone();
        for invariant in Invariant::ALL {
            verdicts.entry(invariant).or_default();
        }
        verdicts
    }
}

/// How a request that could change state ended, as far as the client can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The cluster gave a definite answer with this code.
    Refused(ErrorCode),
    /// No definite answer (timeout, node gone, internal error): it may have happened.
    Unknown(ErrorCode),
}

impl Outcome {
    /// Classifies a failed request: only codes that say what the server decided count as
    /// definite.
    pub fn of(error: &ApiError) -> Outcome {
        match error.code {
            ErrorCode::Unavailable
            | ErrorCode::DeadlineExceeded
            | ErrorCode::Internal
            | ErrorCode::Conflict => Outcome::Unknown(error.code),
            code => Outcome::Refused(code),
        }
    }
}

/// Whether a refresh of a revoked session, or of a spent token, was refused as it must be.
pub fn refused_as_revoked_or_reused(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::SessionRevoked | ErrorCode::RefreshTokenReused
    )
}

/// Locks a mutex held only for pushes and clones, so poisoning cannot corrupt it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_spends_the_newest_token() {
        let mut session = TrackedSession::new("s".into(), "u".into(), "t0".into());
        session.rotated("t1".into());
        session.rotated("t2".into());
        assert_eq!(session.latest, "t2");
        assert_eq!(session.spent, ["t0", "t1"]);
    }

    #[test]
    fn a_token_issued_twice_is_a_violation() {
        let ledger = Ledger::default();
        ledger.issued("t1", "s");
        ledger.issued("t2", "s");
        ledger.issued("t1", "s");
        let verdict = &ledger.verdicts()[&Invariant::RefreshTokensSingleUse];
        assert_eq!((verdict.checked, verdict.violations), (3, 1));
        assert_eq!(ledger.verdicts().len(), Invariant::ALL.len());
    }

    #[test]
    fn timeouts_are_unknown_and_decisions_are_definite() {
        let unknown = ApiError::new(ErrorCode::DeadlineExceeded, "slow");
        assert_eq!(
            Outcome::of(&unknown),
            Outcome::Unknown(ErrorCode::DeadlineExceeded)
        );
        let refused = ApiError::new(ErrorCode::RefreshTokenReused, "spent");
        assert_eq!(
            Outcome::of(&refused),
            Outcome::Refused(ErrorCode::RefreshTokenReused)
        );
        assert!(refused_as_revoked_or_reused(ErrorCode::SessionRevoked));
        assert!(!refused_as_revoked_or_reused(
            ErrorCode::InvalidRefreshToken
        ));
    }
}

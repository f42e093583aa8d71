//! The mixed workload: sign-ups (some racing the same email on two nodes), sign-ins,
//! refreshes that always present a session's newest token, and revocations through the
//! server key, each followed by a refresh attempt on another node.
//!
//! Workers own their sessions, so a token is only ever presented by the worker holding
//! it. A refresh whose outcome is unknown is never retried with the same token: the
//! session becomes [`SessionState::Unknown`] and is left alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use gatehouse_protocol::v1;
use gatehouse_protocol::{ApiError, ErrorCode};
use rand::Rng;
use rand::rngs::StdRng;

use super::ledger::{
    Account, Invariant, Ledger, Outcome, SessionState, TrackedSession, refused_as_revoked_or_reused,
};
use super::pool::NodePool;
use crate::budget::Budget;
use crate::stats::Tally;

/// The operations of the workload, as named in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// A sign-up with a fresh email.
    SignUp,
    /// One email signed up on two nodes at once, spelled in two cases.
    SignUpRace,
    /// A sign-in of an acknowledged account.
    SignIn,
    /// A refresh with a session's newest token.
    Refresh,
    /// A revocation through the server key.
    Revoke,
    /// A refresh of a just-revoked session, through another node.
    RefreshAfterRevoke,
}

impl Operation {
    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Operation::SignUp => "sign_up",
            Operation::SignUpRace => "sign_up_race",
            Operation::SignIn => "sign_in",
            Operation::Refresh => "refresh",
            Operation::Revoke => "revoke",
            Operation::RefreshAfterRevoke => "refresh_after_revoke",
        }
    }
}

// The mix, as cumulative shares of a roll in 0..1: 10% sign-ups, 4% sign-up races, 8%
// sign-ins, 6% revocations, and the remaining 72% refreshes, which cost no argon2 hash
// and so dominate the request count the way they do in production.
const SIGN_UP_BELOW: f64 = 0.10;
const SIGN_UP_RACE_BELOW: f64 = 0.14;
const SIGN_IN_BELOW: f64 = 0.22;
const REVOKE_BELOW: f64 = 0.28;

/// Distinct error messages kept per error code, for diagnosis.
const MESSAGES_PER_CODE: usize = 3;

/// What one worker leaves behind: its sessions and its measurements.
#[derive(Debug, Default)]
pub struct WorkerOutcome {
    /// Every session the worker created.
    pub sessions: Vec<TrackedSession>,
    /// Latencies and errors per operation.
    pub tallies: BTreeMap<Operation, Tally>,
    /// The first distinct messages of each error code, as `operation: message`.
    pub error_messages: BTreeMap<String, Vec<String>>,
}

impl WorkerOutcome {
    /// Keeps `message` among the examples of `code` unless enough are kept already.
    pub fn keep_message(&mut self, code: &str, message: String) {
        let kept = self.error_messages.entry(code.to_owned()).or_default();
        if kept.len() < MESSAGES_PER_CODE && !kept.contains(&message) {
            kept.push(message);
        }
    }
}

/// One workload worker.
#[derive(Debug)]
pub struct Worker {
    index: usize,
    run_id: String,
    rng: StdRng,
    pool: Arc<NodePool>,
    ledger: Arc<Ledger>,
    next_email: u64,
    outcome: WorkerOutcome,
}

impl Worker {
    /// A worker with its own seeded random source.
    pub fn new(
        index: usize,
        run_id: &str,
        rng: StdRng,
        pool: Arc<NodePool>,
        ledger: Arc<Ledger>,
    ) -> Self {
        Worker {
            index,
            run_id: run_id.to_owned(),
            rng,
            pool,
            ledger,
            next_email: 0,
            outcome: WorkerOutcome::default(),
        }
    }

    /// Runs operations until `budget` runs out.
    pub async fn run(mut self, budget: Arc<Budget>) -> WorkerOutcome {
        while budget.claim() {
            let active = self.active_sessions();
            let roll: f64 = self.rng.r#gen();
            if active.is_empty() || roll < SIGN_UP_BELOW {
                self.sign_up().await;
            } else if roll < SIGN_UP_RACE_BELOW {
                self.sign_up_race().await;
            } else if roll < SIGN_IN_BELOW {
                self.sign_in().await;
            } else if roll < REVOKE_BELOW {
                self.revoke().await;
            } else {
                let chosen = active[self.rng.gen_range(0..active.len())];
                self.refresh(chosen).await;
            }
        }
        self.outcome
    }

    fn active_sessions(&self) -> Vec<usize> {
        (0..self.outcome.sessions.len())
            .filter(|&index| self.outcome.sessions[index].state == SessionState::Active)
            .collect()
    }

    fn new_account_email(&mut self, label: &str) -> (String, String) {
        let number = self.next_email;
        self.next_email += 1;
        let worker = self.index;
        let run = &self.run_id;
        (
            format!("{label}-{run}-{worker}-{number}@example.com"),
            format!("chaos-{run}-password-{worker}-{number}"),
        )
    }

    fn tally(&mut self, operation: Operation) -> &mut Tally {
        self.outcome.tallies.entry(operation).or_default()
    }

    /// Counts a failed request and keeps its message as an example.
    fn failed(&mut self, operation: Operation, node_id: &str, error: &ApiError) {
        self.tally(operation).error(error.code.as_str());
        self.outcome.keep_message(
            error.code.as_str(),
            format!("{} on node {node_id}: {}", operation.name(), error.message),
        );
    }

    fn new_session(&mut self, reply: &v1::SignInReply) {
        self.ledger.issued(&reply.refresh_token, &reply.session_id);
        self.outcome.sessions.push(TrackedSession::new(
            reply.session_id.clone(),
            reply.user_id.clone(),
            reply.refresh_token.clone(),
        ));
    }

    async fn sign_up(&mut self) {
        let Some(node) = self.pool.pick(&mut self.rng) else {
            self.tally(Operation::SignUp).error("NO_LIVE_NODE");
            return;
        };
        let (email, password) = self.new_account_email("chaos");
        let started = Instant::now();
        match node.client.sign_up_with_password(&email, &password).await {
            Ok(reply) => {
                self.tally(Operation::SignUp).success(started.elapsed());
                self.ledger.add_account(Account {
                    email,
                    password,
                    user_id: reply.user_id.clone(),
                });
                self.new_session(&reply);
            }
            Err(error) => {
                self.failed(Operation::SignUp, &node.node_id, &error);
                if matches!(Outcome::of(&error), Outcome::Unknown(_)) {
                    self.ledger.add_unknown_sign_up();
                }
            }
        }
    }

    /// Signs one email up on two nodes at once, once as `Race-…@Example.com` and once in
    /// lower case; at most one may be acknowledged.
    async fn sign_up_race(&mut self) {
        let Some((first, second)) = self.pool.pick_two(&mut self.rng) else {
            self.tally(Operation::SignUpRace).error("NO_LIVE_NODE");
            return;
        };
        let (email, password) = self.new_account_email("Race");
        let shouted = email.replace("@example.com", "@Example.com");
        let lower = email.to_lowercase();
        let started = Instant::now();
        let (left, right) = tokio::join!(
            first.client.sign_up_with_password(&shouted, &password),
            second.client.sign_up_with_password(&lower, &password),
        );
        let elapsed = started.elapsed();
        let mut acknowledged = Vec::new();
        for ((reply, email), node_id) in [(left, &shouted), (right, &lower)]
            .into_iter()
            .zip([&first.node_id, &second.node_id])
        {
            match reply {
                Ok(reply) => {
                    self.tally(Operation::SignUpRace).success(elapsed);
                    acknowledged.push(reply.user_id.clone());
                    self.ledger.add_account(Account {
                        email: email.clone(),
                        password: password.clone(),
                        user_id: reply.user_id.clone(),
                    });
                    self.new_session(&reply);
                }
                Err(error) => {
                    self.failed(Operation::SignUpRace, node_id, &error);
                    if matches!(Outcome::of(&error), Outcome::Unknown(_)) {
                        self.ledger.add_unknown_sign_up();
                    }
                }
            }
        }
        if acknowledged.len() > 1 {
            self.ledger.violation(
                Invariant::EmailsUnique,
                format!(
                    "{lower}: sign-ups on nodes {} and {} were both acknowledged, users {acknowledged:?}",
                    first.node_id, second.node_id
                ),
            );
        } else {
            self.ledger.pass(Invariant::EmailsUnique);
        }
    }

    async fn sign_in(&mut self) {
        let Some(account) = self.ledger.random_account(&mut self.rng) else {
            return self.sign_up().await;
        };
        let Some(node) = self.pool.pick(&mut self.rng) else {
            self.tally(Operation::SignIn).error("NO_LIVE_NODE");
            return;
        };
        let started = Instant::now();
        match node
            .client
            .sign_in_with_password(&account.email, &account.password)
            .await
        {
            Ok(reply) => {
                self.tally(Operation::SignIn).success(started.elapsed());
                self.ledger.pass(Invariant::AcknowledgedSignUpsExist);
                self.new_session(&reply);
            }
            Err(error) => {
                self.failed(Operation::SignIn, &node.node_id, &error);
                match Outcome::of(&error) {
                    Outcome::Refused(ErrorCode::InvalidCredentials | ErrorCode::UserNotFound) => {
                        self.ledger.violation(
                            Invariant::AcknowledgedSignUpsExist,
                            format!(
                                "{} (user {}): sign-in on node {} refused: {error}",
                                account.email, account.user_id, node.node_id
                            ),
                        );
                    }
                    _ => self
                        .ledger
                        .inconclusive(Invariant::AcknowledgedSignUpsExist),
                }
            }
        }
    }

    async fn refresh(&mut self, index: usize) {
        let Some(node) = self.pool.pick(&mut self.rng) else {
            self.tally(Operation::Refresh).error("NO_LIVE_NODE");
            return;
        };
        let token = self.outcome.sessions[index].latest.clone();
        let started = Instant::now();
        let result = node.client.refresh_session(&token).await;
        let elapsed = started.elapsed();
        match result {
            Ok(reply) => {
                self.tally(Operation::Refresh).success(elapsed);
                self.ledger.pass(Invariant::AcknowledgedRotationsKept);
                let session = &mut self.outcome.sessions[index];
                if reply.session_id != session.session_id {
                    let detail = format!(
                        "a token of session {} refreshed session {} on node {}",
                        session.session_id, reply.session_id, node.node_id
                    );
                    self.ledger
                        .violation(Invariant::RefreshTokensSingleUse, detail);
                }
                self.ledger
                    .issued(&reply.refresh_token, &session.session_id);
                session.rotated(reply.refresh_token);
            }
            Err(error) => {
                self.failed(Operation::Refresh, &node.node_id, &error);
                let session = &mut self.outcome.sessions[index];
                match Outcome::of(&error) {
                    Outcome::Unknown(_) => {
                        session.state = SessionState::Unknown;
                        self.ledger
                            .inconclusive(Invariant::AcknowledgedRotationsKept);
                    }
                    Outcome::Refused(code) => {
                        session.state = SessionState::Refused(code.as_str().to_owned());
                        let detail = format!(
                            "session {}: its newest token was refused by node {}: {error}",
                            session.session_id, node.node_id
                        );
                        self.ledger
                            .violation(Invariant::AcknowledgedRotationsKept, detail);
                    }
                }
            }
        }
    }

    /// Revokes a random active (or unknown) session, then asks another node to refresh it.
    async fn revoke(&mut self) {
        let candidates: Vec<usize> = (0..self.outcome.sessions.len())
            .filter(|&index| {
                matches!(
                    self.outcome.sessions[index].state,
                    SessionState::Active | SessionState::Unknown
                )
            })
            .collect();
        if candidates.is_empty() {
            return self.sign_up().await;
        }
        let index = candidates[self.rng.gen_range(0..candidates.len())];
        let Some(node) = self.pool.pick(&mut self.rng) else {
            self.tally(Operation::Revoke).error("NO_LIVE_NODE");
            return;
        };
        let session_id = self.outcome.sessions[index].session_id.clone();
        let started = Instant::now();
        match node.server.revoke_session(&session_id).await {
            Ok(()) => {
                self.tally(Operation::Revoke).success(started.elapsed());
                self.outcome.sessions[index].state = SessionState::Revoked;
            }
            Err(error) => {
                self.failed(Operation::Revoke, &node.node_id, &error);
                let session = &mut self.outcome.sessions[index];
                match Outcome::of(&error) {
                    Outcome::Unknown(_) => session.state = SessionState::RevocationUnknown,
                    Outcome::Refused(code) => {
                        session.state = SessionState::Refused(code.as_str().to_owned());
                        self.ledger.violation(
                            Invariant::AcknowledgedRotationsKept,
                            format!(
                                "session {session_id}: revocation on node {} refused: {error}",
                                node.node_id
                            ),
                        );
                    }
                }
                return;
            }
        }
        self.refresh_after_revoke(index, &node.node_id).await;
    }

    /// Presents the revoked session's newest token to a node other than the revoker.
    async fn refresh_after_revoke(&mut self, index: usize, revoker: &str) {
        let Some(node) = self.pool.pick_other(revoker, &mut self.rng) else {
            return;
        };
        let session = &self.outcome.sessions[index];
        let (session_id, token) = (session.session_id.clone(), session.latest.clone());
        let started = Instant::now();
        let result = node.client.refresh_session(&token).await;
        let elapsed = started.elapsed();
        match result {
            Ok(reply) => {
                self.tally(Operation::RefreshAfterRevoke).error("ACCEPTED");
                self.ledger.violation(
                    Invariant::RevokedSessionsStayRevoked,
                    format!(
                        "session {session_id} revoked via node {revoker} refreshed on node {} right after",
                        node.node_id
                    ),
                );
                self.ledger.issued(&reply.refresh_token, &session_id);
                self.outcome.sessions[index].rotated(reply.refresh_token);
            }
            Err(error) => match Outcome::of(&error) {
                Outcome::Refused(code) if refused_as_revoked_or_reused(code) => {
                    // The expected answer: count it as the operation's success.
                    self.tally(Operation::RefreshAfterRevoke).success(elapsed);
                    self.ledger.pass(Invariant::RevokedSessionsStayRevoked);
                }
                Outcome::Refused(_) => {
                    self.failed(Operation::RefreshAfterRevoke, &node.node_id, &error);
                    self.ledger.violation(
                        Invariant::RevokedSessionsStayRevoked,
                        format!(
                            "session {session_id} revoked via node {revoker}: node {} answered {error}",
                            node.node_id
                        ),
                    );
                }
                Outcome::Unknown(_) => {
                    self.failed(Operation::RefreshAfterRevoke, &node.node_id, &error);
                    self.ledger
                        .inconclusive(Invariant::RevokedSessionsStayRevoked);
                }
            },
        }
    }
}

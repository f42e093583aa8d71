//! The checks after the run, on a healed and converged cluster, through the API only.
//!
//! Order matters: presenting a spent token makes reuse detection revoke its session, so
//! the revoked sessions and the newest tokens are checked first, then a few fresh tokens
//! are raced to every node at once, and spent tokens are re-presented last.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gatehouse_protocol::sdk::{Client, SPENT_REFRESH_TOKENS_REMEMBERED};
use gatehouse_protocol::{ErrorCode, v1};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::ledger::{
    Account, Invariant, Ledger, Outcome, SessionState, TrackedSession, refused_as_revoked_or_reused,
};
use super::pool::{NodeClients, NodePool};

/// Users per page when listing them all.
const PAGE_SIZE: u32 = 200;
/// Pages listed at most; far more than any run creates.
const MAX_PAGES: usize = 1_000;
/// Acknowledged accounts that also sign in at the end (each costs an argon2 hash).
const SIGN_IN_SAMPLES: usize = 10;
/// Fresh tokens presented to every node at once.
const RACED_SESSIONS: usize = 16;
/// Only this many of a session's newest spent tokens are re-presented: the node keeps
/// the last [`SPENT_REFRESH_TOKENS_REMEMBERED`] and answers an older one as unknown, and the final
/// checks (plus at most one refresh of unknown outcome) rotate a session a few more times.
const SPENT_WINDOW: usize = SPENT_REFRESH_TOKENS_REMEMBERED / 2;

/// How much the final checks do and how long they may take.
#[derive(Debug, Clone)]
pub struct CheckLimits {
    /// Spent tokens re-presented at most.
    pub spent_token_samples: usize,
    /// Time for all the checks together; what is left unchecked counts as inconclusive.
    pub time_limit: Duration,
}

/// Runs every check, recording the verdicts in `ledger`; `sessions` are updated as the
/// checks rotate and revoke them.
pub async fn check_invariants(
    pool: &NodePool,
    ledger: &Ledger,
    sessions: &mut [TrackedSession],
    rng: &mut StdRng,
    limits: &CheckLimits,
) {
    let deadline = Instant::now() + limits.time_limit;
    let checks = Checks {
        pool,
        ledger,
        deadline,
    };
    checks.sign_ups_and_emails(rng).await;
    checks.revoked_sessions(sessions, rng).await;
    checks.newest_tokens(sessions, rng).await;
    checks.raced_tokens(sessions, rng).await;
    checks
        .spent_tokens(sessions, rng, limits.spent_token_samples)
        .await;
}

struct Checks<'a> {
    pool: &'a NodePool,
    ledger: &'a Ledger,
    deadline: Instant,
}

impl Checks<'_> {
    fn node(&self, rng: &mut StdRng) -> Option<NodeClients> {
        if Instant::now() >= self.deadline {
            return None;
        }
        self.pool.pick(rng)
    }

    /// (a) and (b): every acknowledged account is listed under its user id, and no
    /// normalised email is listed twice; a sample of the accounts signs in.
    async fn sign_ups_and_emails(&self, rng: &mut StdRng) {
        let accounts = self.ledger.accounts();
        let listed = match self.node(rng) {
            Some(node) => list_all_users(&node.server).await,
            None => Err("no time or node left".to_owned()),
        };
        let users = match listed {
            Ok(users) => users,
            Err(error) => {
                eprintln!("chaos: listing users failed: {error}");
                for _ in &accounts {
                    self.ledger
                        .inconclusive(Invariant::AcknowledgedSignUpsExist);
                }
                self.ledger.inconclusive(Invariant::EmailsUnique);
                return;
            }
        };
        let mut by_email: BTreeMap<String, Vec<&v1::User>> = BTreeMap::new();
        for user in &users {
            by_email
                .entry(normalise(&user.email))
                .or_default()
                .push(user);
        }
        for (email, holders) in &by_email {
            if holders.len() > 1 {
                let ids: Vec<&str> = holders.iter().map(|user| user.user_id.as_str()).collect();
                self.ledger.violation(
                    Invariant::EmailsUnique,
                    format!("{email} is held by {} users: {ids:?}", holders.len()),
                );
            } else {
                self.ledger.pass(Invariant::EmailsUnique);
            }
        }
        for account in &accounts {
            let found = by_email
                .get(&normalise(&account.email))
                .is_some_and(|holders| holders.iter().any(|u| u.user_id == account.user_id));
            if found {
                self.ledger.pass(Invariant::AcknowledgedSignUpsExist);
            } else {
                self.ledger.violation(
                    Invariant::AcknowledgedSignUpsExist,
                    format!(
                        "{} (user {}) was acknowledged but is not listed",
                        account.email, account.user_id
                    ),
                );
            }
        }
        let sample: Vec<&Account> = accounts.choose_multiple(rng, SIGN_IN_SAMPLES).collect();
        for account in sample {
            let Some(node) = self.node(rng) else {
                self.ledger
                    .inconclusive(Invariant::AcknowledgedSignUpsExist);
                continue;
            };
            match node
                .client
                .sign_in_with_password(&account.email, &account.password)
                .await
            {
                Ok(reply) if reply.user_id == account.user_id => {
                    self.ledger.pass(Invariant::AcknowledgedSignUpsExist);
                }
                Ok(reply) => self.ledger.violation(
                    Invariant::AcknowledgedSignUpsExist,
                    format!(
                        "{} signed in as user {}, acknowledged as {}",
                        account.email, reply.user_id, account.user_id
                    ),
                ),
                Err(error) => match Outcome::of(&error) {
                    Outcome::Unknown(_) => {
                        self.ledger
                            .inconclusive(Invariant::AcknowledgedSignUpsExist);
                    }
                    Outcome::Refused(_) => self.ledger.violation(
                        Invariant::AcknowledgedSignUpsExist,
                        format!(
                            "{} (user {}) cannot sign in on node {}: {error}",
                            account.email, account.user_id, node.node_id
                        ),
                    ),
                },
            }
        }
    }

    /// (d): the newest known token of every session with an acknowledged revocation is
    /// refused as revoked (or reused).
    async fn revoked_sessions(&self, sessions: &mut [TrackedSession], rng: &mut StdRng) {
        for session in sessions
            .iter_mut()
            .filter(|session| session.state == SessionState::Revoked)
        {
            self.expect_revoked(session, "acknowledged revocation", rng)
                .await;
        }
    }

    async fn expect_revoked(&self, session: &mut TrackedSession, why: &str, rng: &mut StdRng) {
        let invariant = Invariant::RevokedSessionsStayRevoked;
        let Some(node) = self.node(rng) else {
            self.ledger.inconclusive(invariant);
            return;
        };
        match node.client.refresh_session(&session.latest).await {
            Ok(reply) => {
                self.ledger.violation(
                    invariant,
                    format!(
                        "session {} ({why}) refreshed on node {} at the end",
                        session.session_id, node.node_id
                    ),
                );
                session.rotated(reply.refresh_token);
            }
            Err(error) => match Outcome::of(&error) {
                Outcome::Refused(code) if refused_as_revoked_or_reused(code) => {
                    self.ledger.pass(invariant);
                }
                Outcome::Refused(_) => self.ledger.violation(
                    invariant,
                    format!(
                        "session {} ({why}): node {} answered {error}",
                        session.session_id, node.node_id
                    ),
                ),
                Outcome::Unknown(_) => self.ledger.inconclusive(invariant),
            },
        }
    }

    /// (e): the newest token of every active session is still accepted.
    async fn newest_tokens(&self, sessions: &mut [TrackedSession], rng: &mut StdRng) {
        let invariant = Invariant::AcknowledgedRotationsKept;
        for session in sessions
            .iter_mut()
            .filter(|session| session.state == SessionState::Active)
        {
            let Some(node) = self.node(rng) else {
                self.ledger.inconclusive(invariant);
                continue;
            };
            match node.client.refresh_session(&session.latest).await {
                Ok(reply) => {
                    self.ledger.pass(invariant);
                    self.ledger
                        .issued(&reply.refresh_token, &session.session_id);
                    session.rotated(reply.refresh_token);
                }
                Err(error) => match Outcome::of(&error) {
                    Outcome::Unknown(_) => {
                        self.ledger.inconclusive(invariant);
                        session.state = SessionState::Unknown;
                    }
                    Outcome::Refused(code) => {
                        self.ledger.violation(
                            invariant,
                            format!(
                                "session {}: node {} refused its newest token at the end: {error}",
                                session.session_id, node.node_id
                            ),
                        );
                        session.state = SessionState::Refused(code.as_str().to_owned());
                    }
                },
            }
        }
    }

    /// (c), concurrently: a few fresh tokens go to every node at once; at most one may be
    /// accepted, and reuse detection then revokes the session, which (d) checks.
    async fn raced_tokens(&self, sessions: &mut [TrackedSession], rng: &mut StdRng) {
        let mut active: Vec<&mut TrackedSession> = sessions
            .iter_mut()
            .filter(|session| session.state == SessionState::Active)
            .collect();
        active.shuffle(rng);
        for session in active.into_iter().take(RACED_SESSIONS) {
            let nodes = self.pool.live();
            if nodes.len() < 2 || Instant::now() >= self.deadline {
                self.ledger.inconclusive(Invariant::RefreshTokensSingleUse);
                continue;
            }
            let answers = race(&nodes, &session.latest).await;
            let winners: Vec<(&String, &v1::RefreshSessionReply)> = answers
                .iter()
                .filter_map(|(node_id, answer)| Some((node_id, answer.as_ref().ok()?)))
                .collect();
            let unknown = answers.iter().any(|(_, answer)| {
                matches!(answer, Err(error) if matches!(Outcome::of(error), Outcome::Unknown(_)))
            });
            let reused = answers.iter().any(|(_, answer)| {
                matches!(answer, Err(error) if error.code == ErrorCode::RefreshTokenReused)
            });
            let codes: Vec<String> = answers
                .iter()
                .map(|(node_id, answer)| match answer {
                    Ok(_) => format!("{node_id}: accepted"),
                    Err(error) => format!("{node_id}: {}", error.code),
                })
                .collect();
            match winners.as_slice() {
                [] if unknown => {
                    self.ledger.inconclusive(Invariant::RefreshTokensSingleUse);
                    session.state = SessionState::Unknown;
                }
                [] => {
                    self.ledger.pass(Invariant::RefreshTokensSingleUse);
                    self.ledger.violation(
                        Invariant::AcknowledgedRotationsKept,
                        format!(
                            "session {}: no node accepted its fresh token in the race: {codes:?}",
                            session.session_id
                        ),
                    );
                    session.state = SessionState::Refused("RACE".to_owned());
                }
                [(_, reply)] => {
                    self.ledger.pass(Invariant::RefreshTokensSingleUse);
                    self.ledger
                        .issued(&reply.refresh_token, &session.session_id);
                    session.rotated(reply.refresh_token.clone());
                    session.state = if reused {
                        SessionState::RevokedByReuse
                    } else {
                        SessionState::Unknown
                    };
                }
                _ => {
                    self.ledger.violation(
                        Invariant::RefreshTokensSingleUse,
                        format!(
                            "session {}: one fresh token was accepted {} times at once: {codes:?}",
                            session.session_id,
                            winners.len()
                        ),
                    );
                    session.state = SessionState::Refused("RACE".to_owned());
                }
            }
            if session.state == SessionState::RevokedByReuse {
                self.expect_revoked(session, "revoked by reuse detection", rng)
                    .await;
            }
        }
    }

    /// (c), one by one: a sample of spent tokens is re-presented; each must be refused as
    /// reused (or, once reuse detection revoked the session, as revoked).
    async fn spent_tokens(&self, sessions: &[TrackedSession], rng: &mut StdRng, samples: usize) {
        let invariant = Invariant::RefreshTokensSingleUse;
        let candidates: Vec<(&str, &str)> = sessions
            .iter()
            .flat_map(|session| {
                let recent = session.spent.len().saturating_sub(SPENT_WINDOW);
                session.spent[recent..]
                    .iter()
                    .map(|token| (session.session_id.as_str(), token.as_str()))
            })
            .collect();
        let sample: Vec<&(&str, &str)> = candidates.choose_multiple(rng, samples).collect();
        let mut presented: BTreeSet<&str> = BTreeSet::new();
        for (session_id, token) in sample {
            presented.insert(session_id);
            let Some(node) = self.node(rng) else {
                self.ledger.inconclusive(invariant);
                continue;
            };
            match node.client.refresh_session(token).await {
                Ok(_) => self.ledger.violation(
                    invariant,
                    format!(
                        "session {session_id}: a spent token was accepted again on node {}",
                        node.node_id
                    ),
                ),
                Err(error) => match Outcome::of(&error) {
                    Outcome::Refused(code) if refused_as_revoked_or_reused(code) => {
                        self.ledger.pass(invariant);
                    }
                    Outcome::Refused(_) => self.ledger.violation(
                        invariant,
                        format!(
                            "session {session_id}: a spent token got {error} on node {}, not reuse",
                            node.node_id
                        ),
                    ),
                    Outcome::Unknown(_) => self.ledger.inconclusive(invariant),
                },
            }
        }
        eprintln!(
            "chaos: re-presented spent tokens of {} sessions",
            presented.len()
        );
    }
}

/// Presents `token` to every node at once; answers by node id.
async fn race(
    nodes: &[NodeClients],
    token: &str,
) -> Vec<(
    String,
    Result<v1::RefreshSessionReply, gatehouse_protocol::ApiError>,
)> {
    let mut requests = JoinSet::new();
    for node in nodes {
        let (node_id, client, token) =
            (node.node_id.clone(), node.client.clone(), token.to_owned());
        requests.spawn(async move { (node_id, client.refresh_session(&token).await) });
    }
    let mut answers = Vec::with_capacity(nodes.len());
    while let Some(joined) = requests.join_next().await {
        if let Ok(answer) = joined {
            answers.push(answer);
        }
    }
    answers.sort_by(|left, right| left.0.cmp(&right.0));
    answers
}

/// Every user of the tenant, page by page.
async fn list_all_users(server: &Client) -> Result<Vec<v1::User>, String> {
    let mut users = Vec::new();
    let mut page_token = String::new();
    for _ in 0..MAX_PAGES {
        let reply = server
            .list_users(v1::ListUsersRequest {
                page_size: PAGE_SIZE,
                page_token: page_token.clone(),
                email_prefix: String::new(),
                include_anonymous: false,
            })
            .await
            .map_err(|error| error.to_string())?;
        users.extend(reply.users);
        if reply.next_page_token.is_empty() {
            return Ok(users);
        }
        page_token = reply.next_page_token;
    }
    Err(format!("more than {MAX_PAGES} pages of users"))
}

/// The uniqueness key of an email, as the server defines it: trimmed and lowercased.
pub fn normalise(email: &str) -> String {
    email.trim().to_lowercase()
}

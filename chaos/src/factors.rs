//! The second-factor phases: `passkey_sign_in` (a whole discoverable passkey sign-in) and
//! `totp_complete` (a password sign-in that answers `MFA_REQUIRED`, completed with a TOTP
//! code).
//!
//! Both set up untimed on the run's client-key connections. `passkey_sign_in` signs up one
//! user per worker and registers a passkey for it with the kit's software authenticator
//! ([`SoftPasskey`], one per worker) at [`PASSKEY_ORIGIN`]; each operation is
//! `BeginPasskeySignIn` (no email), the authenticator's assertion and
//! `FinishPasskeySignIn`. `totp_complete` gives each worker a pool of users with TOTP
//! enrolled; each operation is `SignInWithPassword` then `CompleteMfa` with a code.
//!
//! The server accepts a code of the steps one before to one after the current 30-second
//! step, each user's steps in increasing order only. A worker therefore takes the next user
//! of its pool whose last accepted step is below the step after the current one, and sends
//! the code of the current step, or of the next one when the current one is spent; the
//! pool is sized from the duration so that this never runs out ([`totp_users_per_worker`]).
//! The code of the step before is never sent: near a step boundary it could turn two steps
//! old before the server checks it.
//!
//! The phase's figures are of the whole operation; `final_call` times the last call alone
//! (`finish_passkey_sign_in`, `complete_mfa`), which is the factor's own cost. Password
//! sign-in is argon2-bound, so `totp_complete`'s throughput is capped by the password step.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gatehouse_cluster_tests::passkey::SoftPasskey;
use gatehouse_cluster_tests::totp::{secret_from_otpauth, totp_sha1};
use gatehouse_protocol::ErrorCode;
use gatehouse_protocol::sdk::{Client, SecondFactor};

use crate::budget::Budget;
use crate::error::ChaosError;
use crate::stats::{CallSummary, PhaseSummary, Tally};
use crate::workload::{Step, code, run_workers};

/// The origin the software authenticator signs for; a tenant without trusted domains
/// accepts `http://localhost` on any port.
pub const PASSKEY_ORIGIN: &str = "http://localhost:3000";
/// Seconds of one TOTP step.
pub const TOTP_STEP_SECS: u64 = 30;
/// Digits of a TOTP code.
const TOTP_DIGITS: u32 = 6;
/// Password-plus-TOTP sign-ins per second per core assumed when sizing the user pools; well
/// above the argon2 ceiling (about 55 per core on the reference machine), so pools are big
/// enough.
const SIGN_INS_PER_CORE_PER_SEC: f64 = 100.0;
/// The most users one worker's TOTP pool gets, whatever the duration.
const MAX_TOTP_USERS_PER_WORKER: usize = 2_000;

/// A user the setup created, with its password.
#[derive(Debug, Clone)]
struct Login {
    email: String,
    password: String,
}

fn login(run_id: &str, phase: &str, worker: usize, index: usize) -> Login {
    Login {
        email: format!("{phase}-{run_id}-{worker}-{index}@example.com"),
        password: format!("{phase}-{run_id}-password-{worker}-{index}"),
    }
}

fn run_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..12].to_owned()
}

/// Signs `login` up on `client` and returns the client acting as the new user.
async fn sign_up(client: &Client, login: &Login) -> Result<Client, String> {
    let reply = client
        .sign_up_with_password(&login.email, &login.password)
        .await
        .map_err(|error| format!("sign up: {error}"))?;
    Ok(client.with_access_token(&reply.access_token))
}

/// Runs one setup task per connection, within `limit`, and collects their results.
async fn per_worker<T, F, Fut>(
    connections: &[Client],
    limit: Duration,
    what: &str,
    task: F,
) -> Result<Vec<T>, ChaosError>
where
    T: Send + 'static,
    F: Fn(usize, Client) -> Fut,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let handles: Vec<_> = connections
        .iter()
        .enumerate()
        .map(|(index, client)| tokio::spawn(task(index, client.clone())))
        .collect();
    let joined = tokio::time::timeout(limit, async move {
        let mut results = Vec::with_capacity(handles.len());
        for handle in handles {
            results.push(
                handle
                    .await
                    .map_err(|error| format!("setup task panicked: {error}"))
                    .and_then(|result| result),
            );
        }
        results
    })
    .await
    .map_err(|_| ChaosError::Local(format!("{what}: setup took longer than {limit:?}")))?;
    joined
        .into_iter()
        .collect::<Result<Vec<T>, String>>()
        .map_err(|error| ChaosError::Local(format!("{what}: {error}")))
}

/// The `passkey_sign_in` workers: one user and one authenticator holding its passkey each.
#[derive(Debug)]
pub struct PasskeySetup {
    workers: Vec<(Client, SoftPasskey)>,
}

impl PasskeySetup {
    /// Users signed up, one per worker.
    pub fn users(&self) -> u64 {
        self.workers.len() as u64
    }
}

/// Signs up one user per connection and registers a passkey for each, within `limit`.
pub async fn prepare_passkey_sign_in(
    connections: &[Client],
    limit: Duration,
) -> Result<PasskeySetup, ChaosError> {
    let run = run_id();
    let workers = per_worker(connections, limit, "passkey_sign_in", |index, client| {
        let login = login(&run, "passkey", index, 0);
        async move {
            let user = sign_up(&client, &login).await?;
            let ceremony = user
                .begin_passkey_registration()
                .await
                .map_err(|error| format!("begin passkey registration: {error}"))?;
            let mut passkey = SoftPasskey::new();
            let credential = passkey
                .register(PASSKEY_ORIGIN, &ceremony.options_json)
                .map_err(|error| format!("authenticator registration: {error}"))?;
            user.finish_passkey_registration(&ceremony.ceremony_id, &credential, "load")
                .await
                .map_err(|error| format!("finish passkey registration: {error}"))?;
            Ok((client, passkey))
        }
    })
    .await?;
    Ok(PasskeySetup { workers })
}

/// Runs `passkey_sign_in`: whole sign-ins, with `FinishPasskeySignIn` also timed alone.
pub async fn run_passkey_sign_in(setup: PasskeySetup, budget: Arc<Budget>) -> PhaseSummary {
    let users = setup.users();
    let finish = Arc::new(Mutex::new(Tally::default()));
    let workers = setup
        .workers
        .into_iter()
        .map(|(client, passkey)| PasskeyWorker {
            client,
            passkey,
            finish: Arc::clone(&finish),
        })
        .collect();
    let mut summary = run_workers(workers, budget).await;
    let elapsed = Duration::from_secs_f64(summary.elapsed_secs);
    let tally = std::mem::take(&mut *lock(&finish));
    summary.final_call = Some(CallSummary::of("finish_passkey_sign_in", tally, elapsed));
    summary.setup_users = Some(users);
    summary
}

struct PasskeyWorker {
    client: Client,
    passkey: SoftPasskey,
    finish: Arc<Mutex<Tally>>,
}

impl Step for PasskeyWorker {
    async fn step(&mut self) -> Result<(), String> {
        let ceremony = self
            .client
            .begin_passkey_sign_in("")
            .await
            .map_err(|error| code(&error))?;
        let assertion = self
            .passkey
            .sign_in(PASSKEY_ORIGIN, &ceremony.options_json)
            .map_err(|_| "AUTHENTICATOR_FAILED".to_owned())?;
        let begun = Instant::now();
        let outcome = self
            .client
            .finish_passkey_sign_in(&ceremony.ceremony_id, &assertion)
            .await;
        let latency = begun.elapsed();
        let mut finish = lock(&self.finish);
        match outcome {
            Ok(_) => {
                finish.success(latency);
                Ok(())
            }
            Err(error) => {
                let code = code(&error);
                finish.error(&code);
                Err(code)
            }
        }
    }
}

/// Users of one worker's TOTP pool for a phase of `duration`: enough for the sign-ins a
/// worker could make at [`SIGN_INS_PER_CORE_PER_SEC`] on `cores`, given that a user takes
/// at least `duration / 30 s + 2` completions (the current step and the next, then one per
/// step that starts), and never more than `max_operations` needs.
pub fn totp_users_per_worker(
    duration: Duration,
    concurrency: usize,
    cores: usize,
    max_operations: u64,
) -> usize {
    let concurrency = concurrency.max(1) as f64;
    let by_rate = SIGN_INS_PER_CORE_PER_SEC * cores.max(1) as f64 * duration.as_secs_f64();
    let per_worker = (by_rate.min(max_operations as f64) / concurrency).ceil();
    let per_user = (duration.as_secs() / TOTP_STEP_SECS + 2) as f64;
    ((per_worker / per_user).ceil() as usize + 1).clamp(2, MAX_TOTP_USERS_PER_WORKER)
}

/// A user with TOTP enrolled and the last step the server accepted from it.
#[derive(Debug)]
struct TotpUser {
    login: Login,
    secret: Vec<u8>,
    last_step: u64,
}

impl TotpUser {
    /// The step whose code to send at step `current`: the current one, or the next when
    /// the current one is spent; `None` while the next one is spent as well.
    fn usable_step(&self, current: u64) -> Option<u64> {
        let step = current.max(self.last_step + 1);
        (step <= current + 1).then_some(step)
    }
}

/// The `totp_complete` workers: a pool of users with TOTP enrolled each.
#[derive(Debug)]
pub struct TotpSetup {
    workers: Vec<(Client, Vec<TotpUser>)>,
}

impl TotpSetup {
    /// Users signed up and enrolled, over all workers.
    pub fn users(&self) -> u64 {
        self.workers.iter().map(|(_, pool)| pool.len() as u64).sum()
    }
}

/// Signs up `users_per_worker` users per connection and enrols TOTP for each, within
/// `limit`.
pub async fn prepare_totp_complete(
    connections: &[Client],
    users_per_worker: usize,
    limit: Duration,
) -> Result<TotpSetup, ChaosError> {
    let run = run_id();
    let workers = per_worker(connections, limit, "totp_complete", |index, client| {
        let logins: Vec<Login> = (0..users_per_worker)
            .map(|user| login(&run, "totp", index, user))
            .collect();
        async move {
            let mut pool = Vec::with_capacity(logins.len());
            for login in logins {
                pool.push(enrol_totp(&client, login).await?);
            }
            Ok((client, pool))
        }
    })
    .await?;
    Ok(TotpSetup { workers })
}

async fn enrol_totp(client: &Client, login: Login) -> Result<TotpUser, String> {
    let user = sign_up(client, &login).await?;
    let enrolment = user
        .enroll_totp()
        .await
        .map_err(|error| format!("enroll TOTP: {error}"))?;
    let secret = secret_from_otpauth(&enrolment.otpauth_uri)?;
    // Confirm with the step before when it cannot turn two steps old in flight, so the
    // current and the next step stay unused for the timed part.
    let now = unix_seconds();
    let current = now / TOTP_STEP_SECS;
    let step = if now % TOTP_STEP_SECS >= 3 {
        current - 1
    } else {
        current
    };
    user.confirm_totp(&totp_code(&secret, step))
        .await
        .map_err(|error| format!("confirm TOTP: {error}"))?;
    Ok(TotpUser {
        login,
        secret,
        last_step: step,
    })
}

/// Runs `totp_complete`: password sign-in then `CompleteMfa` with a TOTP code, with
/// `CompleteMfa` also timed alone.
pub async fn run_totp_complete(setup: TotpSetup, budget: Arc<Budget>) -> PhaseSummary {
    let users = setup.users();
    let complete = Arc::new(Mutex::new(Tally::default()));
    let workers = setup
        .workers
        .into_iter()
        .map(|(client, pool)| TotpWorker {
            client,
            pool,
            next: 0,
            complete: Arc::clone(&complete),
        })
        .collect();
    let mut summary = run_workers(workers, budget).await;
    let elapsed = Duration::from_secs_f64(summary.elapsed_secs);
    let tally = std::mem::take(&mut *lock(&complete));
    summary.final_call = Some(CallSummary::of("complete_mfa", tally, elapsed));
    summary.setup_users = Some(users);
    summary
}

struct TotpWorker {
    client: Client,
    pool: Vec<TotpUser>,
    /// Where the search for a usable user starts: the pool is used in rotation.
    next: usize,
    complete: Arc<Mutex<Tally>>,
}

/// The next user of `pool` in rotation from `*next` with a usable step at `current`, and
/// that step; moves `*next` past it.
fn pick(pool: &[TotpUser], next: &mut usize, current: u64) -> Option<(usize, u64)> {
    let len = pool.len();
    (0..len)
        .map(|offset| (*next + offset) % len)
        .find_map(|index| Some((index, pool[index].usable_step(current)?)))
        .inspect(|(index, _)| *next = (index + 1) % len)
}

impl Step for TotpWorker {
    async fn step(&mut self) -> Result<(), String> {
        let current = unix_seconds() / TOTP_STEP_SECS;
        let Some((index, step)) = pick(&self.pool, &mut self.next, current) else {
            // Counted as a failure so that a pool too small shows; wait for a new step.
            let into = unix_seconds() % TOTP_STEP_SECS;
            tokio::time::sleep(Duration::from_secs(TOTP_STEP_SECS - into)).await;
            return Err("TOTP_POOL_EXHAUSTED".to_owned());
        };
        let user = &mut self.pool[index];
        let ticket = match self
            .client
            .sign_in_with_password(&user.login.email, &user.login.password)
            .await
        {
            Ok(_) => return Err("MFA_NOT_REQUIRED".to_owned()),
            Err(error) if error.code == ErrorCode::MfaRequired => error
                .mfa_ticket()
                .map(str::to_owned)
                .ok_or_else(|| "MFA_REQUIRED_WITHOUT_TICKET".to_owned())?,
            Err(error) => return Err(code(&error)),
        };
        let totp = totp_code(&user.secret, step);
        let begun = Instant::now();
        let outcome = self
            .client
            .complete_mfa(&ticket, SecondFactor::Totp(&totp))
            .await;
        let latency = begun.elapsed();
        // Whatever the outcome, the step may have been spent: never send it again.
        user.last_step = step;
        let mut complete = lock(&self.complete);
        match outcome {
            Ok(_) => {
                complete.success(latency);
                Ok(())
            }
            Err(error) => {
                let code = code(&error);
                complete.error(&code);
                Err(code)
            }
        }
    }
}

fn totp_code(secret: &[u8], step: u64) -> String {
    totp_sha1(secret, step * TOTP_STEP_SECS, TOTP_DIGITS, TOTP_STEP_SECS)
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Locks a tally that is only held to record one call, so poisoning cannot corrupt it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(last_step: u64) -> TotpUser {
        TotpUser {
            login: login("run", "totp", 0, 0),
            secret: vec![1; 20],
            last_step,
        }
    }

    #[test]
    fn a_user_sends_the_current_step_then_the_next_then_waits() {
        assert_eq!(user(99).usable_step(100), Some(100));
        assert_eq!(
            user(50).usable_step(100),
            Some(100),
            "old steps are skipped"
        );
        assert_eq!(user(100).usable_step(100), Some(101));
        assert_eq!(user(101).usable_step(100), None);
        assert_eq!(user(101).usable_step(101), Some(102));
    }

    #[test]
    fn a_worker_rotates_through_its_pool_and_skips_spent_users() {
        let mut pool = vec![user(99), user(101), user(99)];
        let mut next = 0;
        assert_eq!(pick(&pool, &mut next, 100), Some((0, 100)));
        assert_eq!(
            pick(&pool, &mut next, 100),
            Some((2, 100)),
            "user 1 is spent"
        );
        pool[0].last_step = 101;
        pool[2].last_step = 100;
        assert_eq!(pick(&pool, &mut next, 100), Some((2, 101)));
        pool[2].last_step = 101;
        assert_eq!(pick(&pool, &mut next, 100), None);
        assert_eq!(pick(&pool, &mut next, 101), Some((0, 102)));
        assert_eq!(pick(&[], &mut next, 101), None);
    }

    #[test]
    fn pools_cover_the_duration_at_the_assumed_rate() {
        let ten = Duration::from_secs(10);
        // 100/s per core on 2 cores for 10 s over 16 workers: 125 each, 2 per user.
        assert_eq!(totp_users_per_worker(ten, 16, 2, u64::MAX), 64);
        // A minute: 750 each, each user takes at least 4 steps.
        assert_eq!(
            totp_users_per_worker(Duration::from_secs(60), 16, 2, u64::MAX),
            189
        );
        assert_eq!(totp_users_per_worker(ten, 16, 2, 32), 2);
        assert_eq!(
            totp_users_per_worker(Duration::from_secs(1_000_000), 1, 64, u64::MAX),
            MAX_TOTP_USERS_PER_WORKER
        );
    }

    #[test]
    fn codes_are_those_of_the_step() {
        let secret = b"12345678901234567890";
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082, six digits 287082.
        assert_eq!(totp_code(secret, 1), totp_sha1(secret, 59, 6, 30));
        assert_eq!(totp_code(secret, 1), "287082");
    }
}

//! The bounded pool of threads that hash and verify passwords, with fair admission.
//!
//! Every job names its source (tenant and client address). Waiting jobs are capped per
//! source and per tenant (`RATE_LIMITED` beyond that) and in total (`UNAVAILABLE`).
//! Threads take verifications (sign-ins) before new hashes (sign-ups, password changes),
//! with one hash after every [`VERIFY_BURST`] verifications while both wait, and within
//! each class take turns between tenants and, inside a tenant, between sources, so one
//! source's flood waits behind itself and not in front of everyone else.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;

use super::{
    Argon2Params, Scratch, Verification, hash_password_blocking, verify_password_blocking,
};
use crate::context::Context;
use crate::error::{DomainError, DomainResult};

/// Verifications a thread takes in a row while new hashes wait, before it takes one hash.
pub const VERIFY_BURST: u32 = 4;

/// Who a hashing job is for: its share of the queue is counted by tenant and by source.
#[derive(Debug, Clone, Copy)]
pub struct HashSource<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The client's address (empty when unknown).
    pub client: &'a str,
}

impl<'a> HashSource<'a> {
    /// The source `client` of `tenant`.
    pub fn new(tenant: &'a str, client: &'a str) -> HashSource<'a> {
        HashSource { tenant, client }
    }
}

/// Threads and queue lengths of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    /// Hashing threads; 0 means one per core.
    pub threads: usize,
    /// Jobs that may wait in all.
    pub queue: usize,
    /// Jobs one source may have waiting.
    pub per_source: usize,
    /// Jobs one tenant may have waiting.
    pub per_tenant: usize,
}

impl Default for PoolSize {
    fn default() -> Self {
        PoolSize {
            threads: 0,
            queue: 4096,
            per_source: 32,
            per_tenant: 2048,
        }
    }
}

/// The two classes of work; verifications go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Verify,
    Hash,
}

enum Job {
    Hash {
        password: String,
        salt: [u8; 16],
        reply: oneshot::Sender<DomainResult<String>>,
    },
    Verify {
        password: String,
        phc: Arc<str>,
        reply: oneshot::Sender<DomainResult<Verification>>,
    },
}

struct QueuedJob {
    job: Job,
    tenant: String,
    client: String,
    queued_at: Instant,
}

/// One class's waiting jobs: tenants take turns, and inside a tenant its sources do.
#[derive(Default)]
struct Lanes {
    tenants: VecDeque<String>,
    by_tenant: HashMap<String, TenantLane>,
}

#[derive(Default)]
struct TenantLane {
    sources: VecDeque<String>,
    jobs: HashMap<String, VecDeque<QueuedJob>>,
}

impl Lanes {
    fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    fn push(&mut self, job: QueuedJob) {
        if !self.by_tenant.contains_key(&job.tenant) {
            self.tenants.push_back(job.tenant.clone());
        }
        let lane = self.by_tenant.entry(job.tenant.clone()).or_default();
        if !lane.jobs.contains_key(&job.client) {
            lane.sources.push_back(job.client.clone());
        }
        lane.jobs
            .entry(job.client.clone())
            .or_default()
            .push_back(job);
    }

    fn pop(&mut self) -> Option<QueuedJob> {
        let tenant = self.tenants.pop_front()?;
        let lane = self.by_tenant.get_mut(&tenant)?;
        let source = lane.sources.pop_front()?;
        let queue = lane.jobs.get_mut(&source)?;
        let job = queue.pop_front();
        if queue.is_empty() {
            lane.jobs.remove(&source);
        } else {
            lane.sources.push_back(source);
        }
        if lane.sources.is_empty() {
            self.by_tenant.remove(&tenant);
        } else {
            self.tenants.push_back(tenant);
        }
        job
    }
}

#[derive(Default)]
struct State {
    verify: Lanes,
    hash: Lanes,
    queued: usize,
    by_source: HashMap<(String, String), usize>,
    by_tenant: HashMap<String, usize>,
    verifies_in_a_row: u32,
    stopped: bool,
    /// Tests hold the threads back to fill the queue first.
    #[cfg(test)]
    paused: bool,
    /// The order jobs were taken in: source and class.
    #[cfg(test)]
    taken: Vec<(String, Class)>,
}

impl State {
    fn next(&mut self) -> Option<QueuedJob> {
        #[cfg(test)]
        if self.paused {
            return None;
        }
        let take_hash = !self.hash.is_empty()
            && (self.verify.is_empty() || self.verifies_in_a_row >= VERIFY_BURST);
        // Counted only for a job taken: a worker waking to an empty queue changes nothing.
        let (job, class) = if take_hash {
            let job = self.hash.pop()?;
            self.verifies_in_a_row = 0;
            (job, Class::Hash)
        } else {
            let job = self.verify.pop()?;
            self.verifies_in_a_row += 1;
            (job, Class::Verify)
        };
        self.queued -= 1;
        let key = (job.tenant.clone(), job.client.clone());
        decrement(&mut self.by_source, &key);
        decrement(&mut self.by_tenant, &job.tenant);
        #[cfg(test)]
        self.taken.push((job.client.clone(), class));
        let _ = class;
        Some(job)
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

struct Pool {
    state: Mutex<State>,
    work: Condvar,
    size: PoolSize,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Stops the threads once the last handle is dropped.
struct Stopper(Arc<Pool>);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.lock().stopped = true;
        self.0.work.notify_all();
    }
}

/// A bounded pool of threads that hash and verify passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    pool: Arc<Pool>,
    _stopper: Arc<Stopper>,
    /// Hash of a random password, verified against when the user does not exist so that
    /// unknown users cost the same time as wrong passwords.
    decoy_hash: Arc<str>,
    context: Context,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Starts the pool's threads, hashing new passwords with `cost`.
    pub fn start(context: Context, size: PoolSize, cost: Argon2Params) -> DomainResult<Self> {
        // Refused parameters fail the start, not every sign-in.
        cost.to_params()?;
        let threads = if size.threads == 0 {
            std::thread::available_parallelism().map_or(2, usize::from)
        } else {
            size.threads
        };
        let size = PoolSize {
            queue: size.queue.max(1),
            per_source: size.per_source.max(1),
            per_tenant: size.per_tenant.max(1),
            ..size
        };
        let pool = Arc::new(Pool {
            state: Mutex::default(),
            work: Condvar::new(),
            size,
        });
        for index in 0..threads {
            let pool = Arc::clone(&pool);
            std::thread::Builder::new()
                .name(format!("password-hash-{index}"))
                .spawn(move || run_worker(&pool, cost))
                .map_err(|error| DomainError::Internal(format!("spawn hash thread: {error}")))?;
        }
        let decoy_password = crate::domain::crypto::base64url(&context.random::<24>());
        // Made with the configured cost, so an unknown user costs what a real one does.
        let decoy_hash = hash_password_blocking(
            &decoy_password,
            &context.random::<16>(),
            cost,
            &mut Scratch::default(),
        )?;
        Ok(PasswordHasher {
            _stopper: Arc::new(Stopper(Arc::clone(&pool))),
            pool,
            decoy_hash: decoy_hash.into(),
            context,
        })
    }

    /// Hashes a new password for `source`. The job is queued (or refused) when this is
    /// called, before the returned future is awaited.
    pub fn hash(
        &self,
        source: HashSource<'_>,
        password: &str,
    ) -> impl Future<Output = DomainResult<String>> + Send + use<> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Hash {
            password: password.to_owned(),
            salt: self.context.random::<16>(),
            reply,
        };
        let submitted = self.submit(source, Class::Hash, job);
        async move {
            submitted?;
            answer.await.map_err(|_| hasher_gone())?
        }
    }

    /// Verifies `password` against `phc`, or against the decoy hash when there is no user,
    /// so the caller can answer both cases in the same time. Queued like [`Self::hash`],
    /// ahead of new hashes.
    pub fn verify(
        &self,
        source: HashSource<'_>,
        password: &str,
        phc: Option<&str>,
    ) -> impl Future<Output = DomainResult<Verification>> + Send + use<> {
        let (reply, answer) = oneshot::channel();
        let phc: Arc<str> = match phc {
            Some(phc) => phc.into(),
            None => Arc::clone(&self.decoy_hash),
        };
        let real = !Arc::ptr_eq(&phc, &self.decoy_hash);
        let job = Job::Verify {
            password: password.to_owned(),
            phc,
            reply,
        };
        let submitted = self.submit(source, Class::Verify, job);
        async move {
            submitted?;
            let verification = answer.await.map_err(|_| hasher_gone())??;
            Ok(Verification {
                matches: verification.matches && real,
                needs_rehash: verification.needs_rehash && real,
            })
        }
    }

    // The queue-wait metric times the pool itself, not domain time.
    #[allow(clippy::disallowed_methods)]
    fn submit(&self, source: HashSource<'_>, class: Class, job: Job) -> DomainResult<()> {
        let size = self.pool.size;
        let mut state = self.pool.lock();
        if state.stopped {
            return Err(hasher_gone());
        }
        let key = (source.tenant.to_owned(), source.client.to_owned());
        let of_source = state.by_source.get(&key).copied().unwrap_or(0);
        let of_tenant = state.by_tenant.get(source.tenant).copied().unwrap_or(0);
        if of_source >= size.per_source || of_tenant >= size.per_tenant {
            metrics::counter!("gatehouse_password_hash_rate_limited_total").increment(1);
            return Err(DomainError::RateLimited);
        }
        if state.queued >= size.queue {
            metrics::counter!("gatehouse_password_hash_rejected_total").increment(1);
            return Err(DomainError::Unavailable(
                "password hashing is saturated".to_owned(),
            ));
        }
        state.queued += 1;
        *state.by_source.entry(key).or_insert(0) += 1;
        *state.by_tenant.entry(source.tenant.to_owned()).or_insert(0) += 1;
        let queued = QueuedJob {
            job,
            tenant: source.tenant.to_owned(),
            client: source.client.to_owned(),
            queued_at: Instant::now(),
        };
        match class {
            Class::Verify => state.verify.push(queued),
            Class::Hash => state.hash.push(queued),
        }
        drop(state);
        self.pool.work.notify_one();
        Ok(())
    }
}

fn hasher_gone() -> DomainError {
    DomainError::Unavailable("password hashing pool stopped".to_owned())
}

fn run_worker(pool: &Pool, cost: Argon2Params) {
    let mut scratch = Scratch::default();
    loop {
        let next = {
            let mut state = pool.lock();
            loop {
                if state.stopped {
                    return;
                }
                if let Some(job) = state.next() {
                    break job;
                }
                state = pool
                    .work
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        metrics::histogram!("gatehouse_password_hash_queue_seconds")
            .record(next.queued_at.elapsed().as_secs_f64());
        match next.job {
            Job::Hash {
                password,
                salt,
                reply,
            } => {
                let _ = reply.send(hash_password_blocking(&password, &salt, cost, &mut scratch));
            }
            Job::Verify {
                password,
                phc,
                reply,
            } => {
                let _ = reply.send(verify_password_blocking(
                    &password,
                    &phc,
                    cost,
                    &mut scratch,
                ));
            }
        }
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;

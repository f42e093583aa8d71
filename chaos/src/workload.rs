//! The request phases (`sign_up`, `sign_in`, `refresh`), their shared accounts, and the
//! worker loop the authorization phases (see [`crate::authz`]) run on the same connections.
//!
//! Every phase runs `concurrency` async workers, one SDK connection each, that loop until
//! the phase's [`Budget`] (a deadline and a count) runs out. Request errors are counted by
//! their `ApiError` code and never stop a worker.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use gatehouse_protocol::ApiError;
use gatehouse_protocol::sdk::{Client, Credentials};

use crate::budget::Budget;
use crate::error::ChaosError;
use crate::stats::{PhaseSummary, Tally};

/// How many access tokens are kept for the `verify` phase.
const TOKEN_POOL_SIZE: usize = 256;

/// Deadline of each request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Email and password of a user the load generator created.
#[derive(Debug, Clone)]
pub struct Account {
    /// Unique email of the run.
    pub email: String,
    /// Its password (16+ characters).
    pub password: String,
}

/// Connections, accounts and tokens shared by the request phases of one run.
#[derive(Debug)]
pub struct Workload {
    clients: Vec<Client>,
    /// Server-key connections for sign-ups, when set ([`Workload::sign_up_as_server`]).
    sign_up_clients: OnceLock<Vec<Client>>,
    run_id: String,
    next_email: AtomicU64,
    accounts: Mutex<Vec<Account>>,
    access_tokens: Mutex<Vec<String>>,
}

impl Workload {
    /// Opens `connections` client connections to `tenant` with its publishable key.
    pub async fn connect(
        endpoint: &str,
        tenant: &str,
        publishable_key: &str,
        connections: usize,
    ) -> Result<Arc<Self>, ChaosError> {
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections.max(1) {
            let client = Client::builder(endpoint)
                .tenant(tenant)
                .credentials(Credentials::Client {
                    publishable_key: publishable_key.to_owned(),
                })
                .timeout(REQUEST_TIMEOUT)
                .build()
                .await
                .map_err(|error| ChaosError::api("connect", error))?;
            clients.push(client);
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        Ok(Arc::new(Workload {
            clients,
            sign_up_clients: OnceLock::new(),
            run_id: run_id[..12].to_owned(),
            next_email: AtomicU64::new(0),
            accounts: Mutex::new(Vec::new()),
            access_tokens: Mutex::new(Vec::new()),
        }))
    }

    /// Signs users up with the tenant's server key: a node limits client sign-ups per source
    /// address, and every request of one generator comes from one.
    pub fn sign_up_as_server(&self, secret_key: &str) {
        let _ = self
            .sign_up_clients
            .set(crate::authz::server_clients(&self.clients, secret_key));
    }

    /// The client-key connections, one per worker, without a user token.
    pub fn connections(&self) -> &[Client] {
        &self.clients
    }

    /// Accounts created so far.
    pub fn accounts(&self) -> Vec<Account> {
        lock(&self.accounts).clone()
    }

    /// Access tokens collected from sign-ups and sign-ins, at most a few hundred.
    pub fn access_tokens(&self) -> Vec<String> {
        lock(&self.access_tokens).clone()
    }

    /// Runs the `sign_up` phase: each operation creates a user with a unique email.
    pub async fn sign_up(self: &Arc<Self>, budget: Arc<Budget>) -> PhaseSummary {
        let workers = (0..self.clients.len())
            .map(|index| SignUpWorker {
                workload: Arc::clone(self),
                client: match self.sign_up_clients.get() {
                    Some(clients) => clients[index % clients.len()].clone(),
                    None => self.client(index),
                },
            })
            .collect();
        run_workers(workers, budget).await
    }

    /// Signs up users, untimed, until at least `wanted` accounts exist or `limit` is hit.
    pub async fn ensure_accounts(
        self: &Arc<Self>,
        wanted: usize,
        limit: Duration,
    ) -> Result<(), ChaosError> {
        let missing = wanted.saturating_sub(lock(&self.accounts).len());
        if missing == 0 {
            return Ok(());
        }
        eprintln!("gatehouse-load: signing up {missing} users first");
        let summary = self
            .sign_up(Arc::new(Budget::new(limit, missing as u64 * 2)))
            .await;
        if lock(&self.accounts).is_empty() {
            return Err(ChaosError::Local(format!(
                "could not sign up any user: {:?}",
                summary.errors_by_code
            )));
        }
        Ok(())
    }

    /// Runs the `sign_in` phase over the accounts created so far.
    pub async fn sign_in(self: &Arc<Self>, budget: Arc<Budget>) -> PhaseSummary {
        let accounts: Arc<[Account]> = self.accounts().into();
        let stride = self.clients.len();
        let workers = (0..stride)
            .map(|index| SignInWorker {
                workload: Arc::clone(self),
                client: self.client(index),
                accounts: Arc::clone(&accounts),
                next: index,
                stride,
            })
            .collect();
        run_workers(workers, budget).await
    }

    /// Runs the `refresh` phase: each worker signs in once (untimed, before `budget` is
    /// made), then refreshes in a chain.
    pub async fn refresh(self: &Arc<Self>, budget: impl FnOnce() -> Budget) -> PhaseSummary {
        let accounts = self.accounts();
        let mut workers = Vec::with_capacity(self.clients.len());
        let mut setup_failures = Tally::default();
        for index in 0..self.clients.len() {
            let Some(account) = accounts.get(index % accounts.len().max(1)).cloned() else {
                setup_failures.error("NO_ACCOUNT");
                continue;
            };
            let client = self.client(index);
            match client
                .sign_in_with_password(&account.email, &account.password)
                .await
            {
                Ok(reply) => workers.push(RefreshWorker {
                    client,
                    account,
                    refresh_token: reply.refresh_token,
                }),
                Err(error) => setup_failures.error(&format!("SETUP_{}", code(&error))),
            }
        }
        if setup_failures.errors() > 0 {
            eprintln!(
                "gatehouse-load: refresh: {} workers could not sign in",
                setup_failures.errors()
            );
        }
        run_workers(workers, Arc::new(budget())).await
    }

    fn client(&self, index: usize) -> Client {
        self.clients[index % self.clients.len()].clone()
    }

    fn new_account(&self) -> Account {
        let number = self.next_email.fetch_add(1, Ordering::Relaxed);
        Account {
            email: format!("load-{}-{number}@example.com", self.run_id),
            password: format!("load-{}-pass-{number}", self.run_id),
        }
    }

    fn keep_token(&self, token: String) {
        let mut tokens = lock(&self.access_tokens);
        if tokens.len() < TOKEN_POOL_SIZE && !token.is_empty() {
            tokens.push(token);
        }
    }
}

/// One worker's state; `step` performs one timed operation.
pub(crate) trait Step: Send + 'static {
    /// Performs one operation, failing with an error code.
    fn step(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// Runs `workers` concurrently until `budget` runs out and summarises them.
pub(crate) async fn run_workers<W: Step>(workers: Vec<W>, budget: Arc<Budget>) -> PhaseSummary {
    let started = Instant::now();
    let handles: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while budget.claim() {
                    let begun = Instant::now();
                    match worker.step().await {
                        Ok(()) => tally.success(begun.elapsed()),
                        Err(code) => tally.error(&code),
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for handle in handles {
        total.merge(handle.await.unwrap_or_else(|_| Tally::panicked()));
    }
    total.summarize(started.elapsed())
}

struct SignUpWorker {
    workload: Arc<Workload>,
    client: Client,
}

impl Step for SignUpWorker {
    async fn step(&mut self) -> Result<(), String> {
        let account = self.workload.new_account();
        let reply = self
            .client
            .sign_up_with_password(&account.email, &account.password)
            .await
            .map_err(|error| code(&error))?;
        self.workload.keep_token(reply.access_token);
        lock(&self.workload.accounts).push(account);
        Ok(())
    }
}

struct SignInWorker {
    workload: Arc<Workload>,
    client: Client,
    accounts: Arc<[Account]>,
    next: usize,
    stride: usize,
}

impl Step for SignInWorker {
    async fn step(&mut self) -> Result<(), String> {
        let account = self
            .accounts
            .get(self.next % self.accounts.len().max(1))
            .ok_or_else(|| "NO_ACCOUNT".to_owned())?;
        self.next = self.next.wrapping_add(self.stride);
        let reply = self
            .client
            .sign_in_with_password(&account.email, &account.password)
            .await
            .map_err(|error| code(&error))?;
        self.workload.keep_token(reply.access_token);
        Ok(())
    }
}

struct RefreshWorker {
    client: Client,
    account: Account,
    refresh_token: String,
}

impl Step for RefreshWorker {
    async fn step(&mut self) -> Result<(), String> {
        match self.client.refresh_session(&self.refresh_token).await {
            Ok(reply) => {
                self.refresh_token = reply.refresh_token;
                Ok(())
            }
            Err(error) => {
                // The chain may be spent or revoked: start a new session to keep going.
                if let Ok(reply) = self
                    .client
                    .sign_in_with_password(&self.account.email, &self.account.password)
                    .await
                {
                    self.refresh_token = reply.refresh_token;
                }
                Err(code(&error))
            }
        }
    }
}

/// The stable code of an API error, as counted in `errors_by_code`.
pub(crate) fn code(error: &ApiError) -> String {
    error.code.as_str().to_owned()
}

/// Locks a mutex that is only held for pushes and clones, so poisoning cannot corrupt it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

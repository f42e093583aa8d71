//! Password policy and argon2id hashing on a bounded pool of dedicated threads.
//!
//! Hashing takes tens of milliseconds of CPU, so it never runs on an async worker or in an
//! actor handler: requests queue here, a fixed number of threads drain the queue, and a full
//! queue is reported as `UNAVAILABLE` instead of growing latency without bound.

use std::sync::Arc;
use std::time::Instant;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{mpsc, oneshot};

use crate::context::Context;
use crate::error::{DomainError, DomainResult};

/// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2 iterations.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Argon2 lanes.
pub const ARGON2_PARALLELISM: u32 = 1;

/// The argon2id cost of new hashes; a stored hash with other parameters is rehashed with
/// these at its next successful sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params {
            memory_kib: ARGON2_MEMORY_KIB,
            iterations: ARGON2_ITERATIONS,
            parallelism: ARGON2_PARALLELISM,
        }
    }
}

/// Shortest accepted new password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in bytes; longer input is malformed, not a weak password.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Passwords so common that attackers try them first (case-insensitive).
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Checks the shape of any submitted password (sign-in included).
pub fn validate_password_input(password: &str) -> DomainResult<()> {
    if password.is_empty() {
        return Err(DomainError::invalid("password", "must not be empty"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(DomainError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    if password.chars().any(|c| c == '\0') {
        return Err(DomainError::invalid("password", "must not contain NUL"));
    }
    Ok(())
}

/// Checks a new password against the policy: length and the common-password list.
/// No composition rules, as NIST SP 800-63B recommends.
pub fn validate_new_password(password: &str) -> DomainResult<()> {
    validate_password_input(password)?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(DomainError::InvalidPassword(format!(
            "must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let lowered = password.to_lowercase();
    if COMMON_PASSWORDS
        .lines()
        .any(|common| !common.is_empty() && common == lowered)
    {
        return Err(DomainError::InvalidPassword(
            "is one of the most common passwords".to_owned(),
        ));
    }
    Ok(())
}

/// Argon2 working memory, kept by each hashing thread so that 19 MiB is not allocated and
/// page-faulted for every password (and not left behind in allocator arenas).
#[derive(Default)]
pub struct Scratch {
    blocks: Vec<Block>,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scratch({} blocks)", self.blocks.len())
    }
}

impl Scratch {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.blocks.len() < needed {
            self.blocks.resize(needed, Block::default());
        }
        &mut self.blocks[..needed]
    }
}

impl Argon2Params {
    fn to_params(self) -> DomainResult<Params> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|error| DomainError::Internal(format!("argon2 parameters: {error}")))
    }

    /// Whether a stored hash's algorithm and parameters are these.
    fn made_with(&self, parsed: &PasswordHash<'_>) -> bool {
        parsed.algorithm.as_str() == "argon2id"
            && Params::try_from(parsed).is_ok_and(|params| {
                params.m_cost() == self.memory_kib
                    && params.t_cost() == self.iterations
                    && params.p_cost() == self.parallelism
            })
    }
}

/// Hashes `password` into an argon2id PHC string with `cost`.
pub fn hash_password_blocking(
    password: &str,
    salt: &[u8; 16],
    cost: Argon2Params,
    scratch: &mut Scratch,
) -> DomainResult<String> {
    let internal =
        |error: &dyn std::fmt::Display| DomainError::Internal(format!("argon2 hash: {error}"));
    let params = cost.to_params()?;
    let salt_string = SaltString::encode_b64(salt).map_err(|error| internal(&error))?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut output,
            scratch.blocks(&params),
        )
        .map_err(|error| internal(&error))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|error| internal(&error))?,
        salt: Some(salt_string.as_salt()),
        hash: Some(Output::new(&output).map_err(|error| internal(&error))?),
    };
    Ok(phc.to_string())
}

/// Outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The password matches.
    pub matches: bool,
    /// The stored hash uses other parameters than the configured ones and should be replaced.
    pub needs_rehash: bool,
}

/// Verifies `password` against a PHC string, using the parameters stored in it; a hash
/// made with other parameters than `configured` needs a rehash.
pub fn verify_password_blocking(
    password: &str,
    phc: &str,
    configured: Argon2Params,
    scratch: &mut Scratch,
) -> DomainResult<Verification> {
    let corrupt = |error: &dyn std::fmt::Display| {
        DomainError::Internal(format!("stored password hash: {error}"))
    };
    let parsed = PasswordHash::new(phc).map_err(|error| corrupt(&error))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|error| corrupt(&error))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|error| corrupt(&error))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|error| corrupt(&error))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(DomainError::Internal(
            "stored password hash lacks salt or hash".to_owned(),
        ));
    };
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|error| corrupt(&error))?;
    let mut output = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut output,
            scratch.blocks(&params),
        )
        .map_err(|error| corrupt(&error))?;
    // `Output` compares in constant time.
    let matches = Output::new(&output).map_err(|error| corrupt(&error))? == expected;
    let needs_rehash = !configured.made_with(&parsed);
    Ok(Verification {
        matches,
        needs_rehash,
    })
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
    queued_at: Instant,
}

/// A bounded pool of threads that hash and verify passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    queue: mpsc::Sender<QueuedJob>,
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
    /// Starts `threads` hashing threads (0 = one per core) behind a queue of `queue_len`,
    /// hashing new passwords with `cost`.
    pub fn start(
        context: Context,
        threads: usize,
        queue_len: usize,
        cost: Argon2Params,
    ) -> DomainResult<Self> {
        // Refused parameters fail the start, not every sign-in.
        cost.to_params()?;
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, usize::from)
        } else {
            threads
        };
        let (sender, receiver) = mpsc::channel::<QueuedJob>(queue_len.max(1));
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        for index in 0..threads {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("password-hash-{index}"))
                .spawn(move || run_worker(&receiver, cost))
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
            queue: sender,
            decoy_hash: decoy_hash.into(),
            context,
        })
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: &str) -> DomainResult<String> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash {
            password: password.to_owned(),
            salt: self.context.random::<16>(),
            reply,
        })?;
        answer.await.map_err(|_| hasher_gone())?
    }

    /// Verifies `password` against `phc`, or against the decoy hash when there is no user,
    /// so the caller can answer both cases in the same time.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> DomainResult<Verification> {
        let (reply, answer) = oneshot::channel();
        let phc: Arc<str> = match phc {
            Some(phc) => phc.into(),
            None => Arc::clone(&self.decoy_hash),
        };
        let real = !Arc::ptr_eq(&phc, &self.decoy_hash);
        self.submit(Job::Verify {
            password: password.to_owned(),
            phc,
            reply,
        })?;
        let verification = answer.await.map_err(|_| hasher_gone())??;
        Ok(Verification {
            matches: verification.matches && real,
            needs_rehash: verification.needs_rehash && real,
        })
    }

    // The queue-wait metric times the pool itself, not domain time.
    #[allow(clippy::disallowed_methods)]
    fn submit(&self, job: Job) -> DomainResult<()> {
        self.queue
            .try_send(QueuedJob {
                job,
                queued_at: Instant::now(),
            })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => {
                    metrics::counter!("gatehouse_password_hash_rejected_total").increment(1);
                    DomainError::Unavailable("password hashing is saturated".to_owned())
                }
                mpsc::error::TrySendError::Closed(_) => hasher_gone(),
            })
    }
}

fn hasher_gone() -> DomainError {
    DomainError::Unavailable("password hashing pool stopped".to_owned())
}

fn run_worker(receiver: &std::sync::Mutex<mpsc::Receiver<QueuedJob>>, cost: Argon2Params) {
    let mut scratch = Scratch::default();
    loop {
        let next = match receiver.lock() {
            Ok(mut guard) => guard.blocking_recv(),
            Err(_) => return,
        };
        let Some(QueuedJob { job, queued_at }) = next else {
            return;
        };
        metrics::histogram!("gatehouse_password_hash_queue_seconds")
            .record(queued_at.elapsed().as_secs_f64());
        match job {
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
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const OWASP: Argon2Params = Argon2Params {
        memory_kib: ARGON2_MEMORY_KIB,
        iterations: ARGON2_ITERATIONS,
        parallelism: ARGON2_PARALLELISM,
    };

    fn scratch() -> Scratch {
        Scratch::default()
    }

    #[test]
    fn a_hash_made_with_other_configured_parameters_asks_for_a_rehash() {
        let cheap = Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let stronger = Argon2Params {
            memory_kib: 128,
            iterations: 2,
            parallelism: 2,
        };
        let phc = hash_password_blocking("pw-123456", &[3; 16], cheap, &mut scratch()).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        let under_other =
            verify_password_blocking("pw-123456", &phc, stronger, &mut scratch()).unwrap();
        assert!(under_other.matches && under_other.needs_rehash);
        let under_same =
            verify_password_blocking("pw-123456", &phc, cheap, &mut scratch()).unwrap();
        assert!(under_same.matches && !under_same.needs_rehash);
        // Each parameter alone counts.
        for other in [
            Argon2Params {
                memory_kib: 128,
                ..cheap
            },
            Argon2Params {
                iterations: 2,
                ..cheap
            },
            Argon2Params {
                parallelism: 2,
                memory_kib: 64,
                ..cheap
            },
        ] {
            let verification =
                verify_password_blocking("pw-123456", &phc, other, &mut scratch()).unwrap();
            assert!(verification.needs_rehash, "{other:?}");
        }
    }

    #[tokio::test]
    async fn the_pool_hashes_with_its_configured_parameters() {
        let cost = Argon2Params {
            memory_kib: 256,
            iterations: 1,
            parallelism: 2,
        };
        let hasher = PasswordHasher::start(Context::system(), 1, 4, cost).unwrap();
        let phc = hasher.hash("a long enough password").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=2$"), "{phc}");
        let verification = hasher
            .verify("a long enough password", Some(&phc))
            .await
            .unwrap();
        assert!(verification.matches && !verification.needs_rehash);
        let invalid = Argon2Params {
            memory_kib: 1,
            ..cost
        };
        assert!(PasswordHasher::start(Context::system(), 1, 4, invalid).is_err());
    }

    #[test]
    fn policy_rejects_short_common_and_oversized_passwords() {
        assert!(matches!(
            validate_new_password("short"),
            Err(DomainError::InvalidPassword(_))
        ));
        assert!(matches!(
            validate_new_password("Password123"),
            Err(DomainError::InvalidPassword(_))
        ));
        assert!(matches!(
            validate_new_password(&"x".repeat(10_000)),
            Err(DomainError::InvalidArgument {
                field: "password",
                ..
            })
        ));
        assert!(validate_new_password("correct horse battery staple").is_ok());
        // Length counts characters, not bytes: eight multi-byte characters pass.
        assert!(validate_new_password("ääääääää").is_ok());
    }

    #[test]
    fn hashes_use_owasp_argon2id_parameters_and_verify() {
        let phc = hash_password_blocking("correct horse battery", &[1; 16], OWASP, &mut scratch())
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let good =
            verify_password_blocking("correct horse battery", &phc, OWASP, &mut scratch()).unwrap();
        assert!(good.matches && !good.needs_rehash);
        assert!(
            !verify_password_blocking("wrong", &phc, OWASP, &mut scratch())
                .unwrap()
                .matches
        );
    }

    #[test]
    fn old_parameters_ask_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(&[2; 16]).unwrap();
        let phc = argon2::password_hash::PasswordHasher::hash_password(&weak, b"pw-123456", &salt)
            .unwrap()
            .to_string();
        let verification =
            verify_password_blocking("pw-123456", &phc, OWASP, &mut scratch()).unwrap();
        assert!(verification.matches && verification.needs_rehash);
    }

    #[tokio::test]
    async fn pool_verifies_and_never_matches_the_decoy() {
        let hasher = PasswordHasher::start(Context::system(), 2, 16, OWASP).unwrap();
        let phc = hasher.hash("a long enough password").await.unwrap();
        assert!(
            hasher
                .verify("a long enough password", Some(&phc))
                .await
                .unwrap()
                .matches
        );
        assert!(
            !hasher
                .verify("a long enough password", None)
                .await
                .unwrap()
                .matches
        );
    }
}

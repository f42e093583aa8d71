//! Password policy and argon2id hashing on a bounded pool of dedicated threads (`pool`).
//!
//! Hashing takes tens of milliseconds of CPU, so it never runs on an async worker or in an
//! actor handler: requests queue in the pool, a fixed number of threads drain the queue, and
//! a full queue is reported as `UNAVAILABLE` instead of growing latency without bound.

mod pool;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::error::{DomainError, DomainResult};

pub use pool::{HashSource, PasswordHasher, PoolSize, VERIFY_BURST};

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
}

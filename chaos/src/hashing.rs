//! The `argon2_bare` phase: the server's password hash, computed locally on every core.
//!
//! Each sign-in costs the node one argon2id verification, so hashes per second on all
//! cores of this machine are the ceiling that sign-in throughput is compared against.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::budget::Budget;
use crate::error::ChaosError;
use crate::stats::PhaseSummary;
use crate::threads::run_on_threads;

/// Memory cost of the server's argon2id, in KiB.
pub const MEMORY_KIB: u32 = 19_456;
/// Iterations of the server's argon2id.
pub const ITERATIONS: u32 = 2;
/// Lanes of the server's argon2id.
pub const PARALLELISM: u32 = 1;

const PASSWORD: &str = "bare-argon2-load-password";

/// The hasher with the server's parameters.
pub fn server_argon2() -> Result<Argon2<'static>, ChaosError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|error| ChaosError::Local(format!("argon2 parameters: {error}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes into PHC strings on `threads` threads until `budget` runs out (blocks).
pub fn run_argon2_phase(threads: usize, budget: &Budget) -> Result<PhaseSummary, ChaosError> {
    let argon2 = server_argon2()?;
    Ok(run_on_threads(threads, budget, |thread, iteration| {
        let mut salt = [0u8; 16];
        salt[..8].copy_from_slice(&(thread as u64).to_le_bytes());
        salt[8..].copy_from_slice(&iteration.to_le_bytes());
        let salt = SaltString::encode_b64(&salt).map_err(|_| "ARGON2_SALT".to_owned())?;
        argon2
            .hash_password(PASSWORD.as_bytes(), &salt)
            .map(drop)
            .map_err(|_| "ARGON2_FAILED".to_owned())
    }))
}

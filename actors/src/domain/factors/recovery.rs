//! Recovery codes: ten single-use codes, shown once, stored as keyed hashes (HMAC under a
//! key derived from the master key), compared in constant time.

use gatehouse_storage::Transaction;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::FactorsRecord;
use crate::audit::AuditOrigin;
use crate::context::{Context, Timestamp};
use crate::domain::audit::AuditAction;
use crate::domain::change::record_change;
use crate::domain::crypto::{MasterKey, constant_time_eq};
use crate::domain::users::UserRecord;
use crate::error::DomainResult;

/// Codes per set.
pub const CODES_PER_SET: usize = 10;
/// Characters the codes are written in (no 0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Characters per code (two groups of five: about 49 bits).
const CODE_CHARS: usize = 10;

/// A user's recovery codes.
#[derive(Clone, Serialize, Deserialize)]
pub struct RecoveryCodes {
    /// Keyed hash of each code; `None` once used.
    pub hashes: Vec<Option<serde_bytes::ByteBuf>>,
    /// When the set was generated.
    pub created_at: Timestamp,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCodes")
            .field("remaining", &self.remaining())
            .finish_non_exhaustive()
    }
}

fn hash(master_key: &MasterKey, tenant: &str, user_id: Uuid, code: &str) -> [u8; 32] {
    let data = format!("{tenant}\u{0}{user_id}\u{0}{code}");
    master_key.mac(b"gatehouse/recovery-code", data.as_bytes())
}

/// The canonical form of a typed code: lower case, no separators or spaces.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn random_code(context: &Context) -> String {
    let mut code = String::with_capacity(CODE_CHARS + 1);
    while code.len() < CODE_CHARS + 1 {
        // Rejection sampling keeps every character equally likely.
        let [byte] = context.random::<1>();
        let limit = 256 - 256 % ALPHABET.len();
        if usize::from(byte) < limit {
            if code.len() == CODE_CHARS / 2 {
                code.push('-');
            }
            code.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
        }
    }
    code
}

impl RecoveryCodes {
    /// A fresh set: the stored hashes and the codes to show once.
    pub fn generate(
        context: &Context,
        master_key: &MasterKey,
        tenant: &str,
        user_id: Uuid,
    ) -> (RecoveryCodes, Vec<String>) {
        let codes: Vec<String> = (0..CODES_PER_SET).map(|_| random_code(context)).collect();
        let hashes = codes
            .iter()
            .map(|code| {
                let digest = hash(master_key, tenant, user_id, &normalize(code));
                Some(serde_bytes::ByteBuf::from(digest.to_vec()))
            })
            .collect();
        let set = RecoveryCodes {
            hashes,
            created_at: context.now(),
        };
        (set, codes)
    }

    /// Unused codes left.
    pub fn remaining(&self) -> usize {
        self.hashes.iter().filter(|hash| hash.is_some()).count()
    }

    /// Spends `code` if it is one of the unused codes.
    pub fn spend(
        &mut self,
        master_key: &MasterKey,
        tenant: &str,
        user_id: Uuid,
        code: &str,
    ) -> bool {
        let normalized = normalize(code);
        if normalized.len() != CODE_CHARS {
            return false;
        }
        let presented = hash(master_key, tenant, user_id, &normalized);
        let mut found = None;
        for (index, stored) in self.hashes.iter().enumerate() {
            if let Some(stored) = stored
                && constant_time_eq(stored, &presented)
            {
                found = Some(index);
            }
        }
        match found {
            Some(index) => {
                self.hashes[index] = None;
                true
            }
            None => false,
        }
    }
}

/// Audits the use of a recovery code (and how many are left).
pub async fn record_use(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user: &UserRecord,
    factors: &FactorsRecord,
) -> DomainResult<()> {
    let remaining = factors
        .recovery
        .as_ref()
        .map_or(0, RecoveryCodes::remaining);
    let origin = AuditOrigin {
        actor: format!("user:{}", user.user_id),
        source_ip: String::new(),
    };
    let audit = origin.event(
        AuditAction::UserFactorRemove,
        format!("user:{}", user.user_id),
        serde_json::json!({ "factor": "recovery_code", "used": true, "remaining": remaining }),
    );
    record_change(tx, context, tenant, Some(audit), []).await
}

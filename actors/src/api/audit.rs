//! The audit ledger for operators and for a tenant's own server: list and verify.

use crate::access::Caller;
use crate::domain::audit::{self, AuditEntry, AuditVerification};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

/// Entries read per transaction while verifying.
const VERIFY_PAGE: usize = 500;

/// A page of ledger entries in sequence order.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Token of the next page, empty at the end.
    pub next_page_token: String,
}

impl Gatehouse {
    /// Ledger entries of the caller's tenant, oldest first.
    pub async fn list_audit_entries(
        &self,
        caller: &Caller,
        page_size: u32,
        page_token: &str,
    ) -> DomainResult<AuditPage> {
        let tenant = caller.require_server()?;
        let after = match super::decode_page_token('a', page_token)? {
            Some(seq) => seq.parse::<u64>().map_err(|_| {
                DomainError::invalid("page_token", "is not a token from a previous page")
            })?,
            None => 0,
        };
        let limit = super::page_size(page_size);
        let tenant_id = tenant.tenant_id();
        let mut entries = self
            .services
            .db
            .run(|tx| async move { audit::read_entries(&tx, tenant_id, after, limit + 1).await })
            .await?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_page_token = match (more, entries.last()) {
            (true, Some(last)) => super::encode_page_token('a', &last.seq.to_string()),
            _ => String::new(),
        };
        Ok(AuditPage {
            entries,
            next_page_token,
        })
    }

    /// Walks the caller's tenant ledger and reports the first break, if any.
    pub async fn verify_audit_ledger(&self, caller: &Caller) -> DomainResult<AuditVerification> {
        let tenant = caller.require_server()?;
        audit::verify(&self.services.db, tenant.tenant_id(), VERIFY_PAGE).await
    }
}

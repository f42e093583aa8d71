//! `gatehouse.v1.Audit`: list and verify a tenant's ledger (operator, or the tenant's server).

use gatehouse_actors::audit::AuditEntry;
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::audit_server::Audit;
use tonic::{Request, Response, Status};

use super::Api;
use super::convert::timestamp;

/// A ledger entry on the wire, with everything needed to recompute its hash.
pub fn entry(record: &AuditEntry) -> v1::AuditEntry {
    v1::AuditEntry {
        seq: record.seq,
        at: Some(timestamp(record.at)),
        actor: record.event.actor.clone(),
        action: record.event.action.clone(),
        target: record.event.target.clone(),
        source_ip: record.event.source_ip.clone(),
        details_json: record.event.details.to_string(),
        prev_hash: record.prev_hash.clone(),
        hash: record.hash.clone(),
        at_unix_millis: record.at.0,
    }
}

#[tonic::async_trait]
impl Audit for Api {
    async fn list_audit_entries(
        &self,
        request: Request<v1::ListAuditEntriesRequest>,
    ) -> Result<Response<v1::ListAuditEntriesReply>, Status> {
        self.rpc("Audit/ListAuditEntries", request, |call| async move {
            let body = call.body();
            let page = self
                .gatehouse
                .list_audit_entries(&call.caller, body.page_size, &body.page_token)
                .await?;
            Ok(v1::ListAuditEntriesReply {
                entries: page.entries.iter().map(entry).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn verify_audit_ledger(
        &self,
        request: Request<v1::VerifyAuditLedgerRequest>,
    ) -> Result<Response<v1::AuditVerification>, Status> {
        self.rpc("Audit/VerifyAuditLedger", request, |call| async move {
            let report = self.gatehouse.verify_audit_ledger(&call.caller).await?;
            let problem = report.problem.as_ref();
            Ok(v1::AuditVerification {
                ok: report.is_ok(),
                entries_checked: report.entries_checked,
                head_seq: report.head_seq,
                first_bad_seq: problem.map_or(0, |problem| problem.seq),
                problem: problem
                    .map_or_else(String::new, |problem| problem.kind.as_str().to_owned()),
                reason: problem.map_or_else(String::new, |problem| problem.reason.clone()),
            })
        })
        .await
    }
}

//! `gatehouse admin audit …`: list, verify and export a tenant's hash-chained ledger.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1;
use serde_json::{Value, json};

use super::TenantFlag;
use super::output::Output;
use crate::error::{NodeError, NodeResult};

/// Audit ledger commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the chain; exits non-zero when an entry is tampered with, missing or reordered.
    Verify {
        #[command(flatten)]
        tenant: TenantFlag,
    },
    /// Write every entry as NDJSON (one JSON object per line) to a file or standard output.
    Export {
        #[command(flatten)]
        tenant: TenantFlag,
        /// Output file; standard output when omitted.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Show one page of entries.
    List {
        #[command(flatten)]
        tenant: TenantFlag,
        #[arg(long, default_value_t = 50)]
        page_size: u32,
        #[arg(long, default_value = "")]
        page_token: String,
    },
}

/// An entry as exported: every field needed to recompute its hash.
fn entry_json(entry: &v1::AuditEntry) -> Value {
    let details: Value = serde_json::from_str(&entry.details_json).unwrap_or(Value::Null);
    json!({
        "seq": entry.seq,
        "at": entry.at.as_ref().map(ToString::to_string),
        "at_unix_millis": entry.at_unix_millis,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "source_ip": entry.source_ip,
        "details": details,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    })
}

/// Runs one `audit` command.
pub async fn run_audit(client: &Client, out: &Output, command: AuditCommand) -> NodeResult<()> {
    match command {
        AuditCommand::Verify { tenant } => {
            let report = client
                .with_tenant(&tenant.tenant)
                .verify_audit_ledger()
                .await?;
            let value = json!({
                "ok": report.ok,
                "entries_checked": report.entries_checked,
                "head_seq": report.head_seq,
                "first_bad_seq": report.first_bad_seq,
                "problem": report.problem,
                "reason": report.reason,
            });
            if report.ok {
                let text = format!("ok: {} entries verified", report.entries_checked);
                out.value(&value, &text);
                Ok(())
            } else {
                let text = format!(
                    "broken at seq {}: {} ({})",
                    report.first_bad_seq, report.problem, report.reason
                );
                out.value(&value, &text);
                Err(NodeError::BrokenLedger {
                    tenant: tenant.tenant,
                    seq: report.first_bad_seq,
                    problem: report.problem,
                })
            }
        }
        AuditCommand::Export { tenant, output } => {
            let client = client.with_tenant(&tenant.tenant);
            let mut sink: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).map_err(|source| NodeError::Io {
                        action: "create",
                        path: path.clone(),
                        source,
                    })?,
                )),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut token = String::new();
            let mut written = 0u64;
            loop {
                let page = client.list_audit_entries(200, &token).await?;
                for entry in &page.entries {
                    writeln!(sink, "{}", entry_json(entry)).map_err(NodeError::AuditExport)?;
                    written += 1;
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
            sink.flush().map_err(NodeError::AuditExport)?;
            if let Some(path) = output {
                eprintln!("exported {written} entries to {}", path.display());
            }
            Ok(())
        }
        AuditCommand::List {
            tenant,
            page_size,
            page_token,
        } => {
            let page = client
                .with_tenant(&tenant.tenant)
                .list_audit_entries(page_size, &page_token)
                .await?;
            let mut rows = comfy_table::Table::new();
            rows.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
                .set_header(vec!["seq", "at", "actor", "action", "target", "source"]);
            for entry in &page.entries {
                rows.add_row(vec![
                    entry.seq.to_string(),
                    entry
                        .at
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    entry.actor.clone(),
                    entry.action.clone(),
                    entry.target.clone(),
                    entry.source_ip.clone(),
                ]);
            }
            let mut text = rows.to_string();
            if !page.next_page_token.is_empty() {
                text.push_str(&format!(
                    "\nnext page: --page-token {}",
                    page.next_page_token
                ));
            }
            let value = json!({
                "entries": page.entries.iter().map(entry_json).collect::<Vec<_>>(),
                "next_page_token": page.next_page_token,
            });
            out.value(&value, &text);
            Ok(())
        }
    }
}

//! `gatehouse admin email …`: the delivery log and the templates of every message kind; and
//! the email flags of `tenant config`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1;
use serde_json::{Value, json};

use super::TenantFlag;
use super::output::Output;
use crate::error::{NodeError, NodeResult};

/// Email administration.
#[derive(Debug, Subcommand)]
pub enum EmailCommand {
    /// The tenant's delivery log, newest first.
    Deliveries {
        #[command(flatten)]
        tenant: TenantFlag,
        #[arg(long, default_value_t = 50)]
        page_size: u32,
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Templates of the message kinds.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Mail a verification code (and a link, with --redirect-url) to an address; an address
    /// with no unverified user gets nothing, with the same answer.
    SendVerification(SendFlags),
    /// Mail a password-reset code (and a link, with --redirect-url); an address without a
    /// user gets nothing, with the same answer.
    SendPasswordReset(SendFlags),
}

/// The address and link of a message an operator sends.
#[derive(Debug, Args)]
pub struct SendFlags {
    #[command(flatten)]
    tenant: TenantFlag,
    /// The recipient address.
    #[arg(long)]
    email: String,
    /// Where the link leads (one of the tenant's trusted domains); empty: code only.
    #[arg(long, default_value = "")]
    redirect_url: String,
}

/// `email template …`.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Show the tenant's template of a kind (or the built-in default) and its variables.
    Get {
        #[command(flatten)]
        tenant: TenantFlag,
        #[arg(long)]
        kind: String,
    },
    /// Set the tenant's template of a kind; refused, with the error, unless it renders.
    /// Parts not given keep their current text.
    Set {
        #[command(flatten)]
        tenant: TenantFlag,
        #[arg(long)]
        kind: String,
        #[command(flatten)]
        parts: TemplateParts,
    },
    /// Go back to the built-in template of a kind.
    Reset {
        #[command(flatten)]
        tenant: TenantFlag,
        #[arg(long)]
        kind: String,
    },
    /// Render the tenant's template of a kind (or the given files) with example values.
    Preview {
        #[command(flatten)]
        tenant: TenantFlag,
        #[arg(long)]
        kind: String,
        #[command(flatten)]
        parts: TemplateParts,
    },
}

/// Template parts given on the command line; the others keep the current template's text.
#[derive(Debug, Args)]
pub struct TemplateParts {
    #[arg(long)]
    subject: Option<String>,
    #[arg(long)]
    html_file: Option<PathBuf>,
    #[arg(long)]
    text_file: Option<PathBuf>,
}

impl TemplateParts {
    fn any(&self) -> bool {
        self.subject.is_some() || self.html_file.is_some() || self.text_file.is_some()
    }

    /// `(subject, html, text)`: the given parts over `current`.
    fn over(self, current: v1::EmailTemplate) -> NodeResult<(String, String, String)> {
        let read = |path: Option<PathBuf>, current: String| match path {
            Some(path) => read_file(&path),
            None => Ok(current),
        };
        Ok((
            self.subject.unwrap_or(current.subject),
            read(self.html_file, current.html)?,
            read(self.text_file, current.text)?,
        ))
    }
}

/// Email and redirect flags of `tenant config`.
#[derive(Debug, Args)]
pub struct EmailConfigFlags {
    /// Trusted redirect domain (repeatable; replaces the list): host, host:port or *.domain.
    #[arg(long = "trusted-domain")]
    trusted_domains: Vec<String>,
    /// Remove every trusted redirect domain.
    #[arg(long, conflicts_with = "trusted_domains")]
    clear_trusted_domains: bool,
    /// Sender address of the tenant's email.
    #[arg(long)]
    email_from: Option<String>,
    /// Sender name (empty: the tenant's name).
    #[arg(long)]
    email_from_name: Option<String>,
    /// Reply-To address (empty: none).
    #[arg(long)]
    email_reply_to: Option<String>,
    /// Restrict users until they verify their email.
    #[arg(long)]
    email_verification_required: Option<bool>,
    /// Lifetime of emailed codes and links in seconds (5-600).
    #[arg(long)]
    email_code_ttl: Option<u32>,
    /// Wrong tries per code (1-20).
    #[arg(long)]
    email_code_attempts: Option<u32>,
    /// Messages with codes per address per window.
    #[arg(long)]
    email_sends_per_address: Option<u32>,
    /// Messages with codes per source address per window.
    #[arg(long)]
    email_sends_per_source: Option<u32>,
    /// Length of the send window in seconds.
    #[arg(long)]
    email_send_window: Option<u32>,
    /// Allow sign-in with an emailed code or magic link.
    #[arg(long)]
    sign_in_code: Option<bool>,
    /// Let a code sent to an unknown address sign it up.
    #[arg(long)]
    sign_up_with_code: Option<bool>,
    /// Mail a notice on a sign-in from a new source address and user agent.
    #[arg(long)]
    email_new_sign_in_notice: Option<bool>,
    /// Answer password sign-up the same for taken and new addresses (no session from
    /// sign-up; the owner of a taken address is mailed a notice).
    #[arg(long)]
    sign_up_enumeration_protection: Option<bool>,
}

impl EmailConfigFlags {
    /// Copies the given flags into `request`.
    pub fn apply(self, request: &mut v1::UpdateTenantConfigRequest) {
        if self.clear_trusted_domains || !self.trusted_domains.is_empty() {
            request.set_trusted_domains = true;
            request.trusted_domains = self.trusted_domains;
        }
        request.email_from_address = self.email_from;
        request.email_from_name = self.email_from_name;
        request.email_reply_to = self.email_reply_to;
        request.email_verification_required = self.email_verification_required;
        request.email_code_ttl_seconds = self.email_code_ttl;
        request.email_code_max_attempts = self.email_code_attempts;
        request.email_sends_per_address = self.email_sends_per_address;
        request.email_sends_per_source = self.email_sends_per_source;
        request.email_send_window_seconds = self.email_send_window;
        request.sign_in_code_enabled = self.sign_in_code;
        request.sign_up_with_code_enabled = self.sign_up_with_code;
        request.email_new_sign_in_notice = self.email_new_sign_in_notice;
        request.sign_up_enumeration_protection = self.sign_up_enumeration_protection;
    }
}

fn time(at: Option<&prost_types::Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_string()))
}

fn read_file(path: &PathBuf) -> NodeResult<String> {
    std::fs::read_to_string(path).map_err(|source| NodeError::Io {
        action: "read",
        path: path.clone(),
        source,
    })
}

fn print_deliveries(out: &Output, reply: &v1::ListEmailDeliveriesReply) {
    let mut rows = Table::new();
    rows.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "message_id",
        "kind",
        "to",
        "status",
        "attempts",
        "last smtp",
        "last error",
    ]);
    for delivery in &reply.deliveries {
        let last = delivery.attempts.last();
        rows.add_row(vec![
            delivery.message_id.clone(),
            delivery.kind.clone(),
            delivery.to.clone(),
            delivery.status.clone(),
            delivery.attempts.len().to_string(),
            last.map_or_else(String::new, |attempt| attempt.smtp_code.to_string()),
            last.map_or_else(String::new, |attempt| attempt.error.clone()),
        ]);
    }
    let mut text = rows.to_string();
    if !reply.next_page_token.is_empty() {
        text.push_str(&format!(
            "\nnext page: --page-token {}",
            reply.next_page_token
        ));
    }
    let deliveries: Vec<Value> = reply
        .deliveries
        .iter()
        .map(|delivery| {
            json!({
                "message_id": delivery.message_id,
                "kind": delivery.kind,
                "to": delivery.to,
                "status": delivery.status,
                "created_at": time(delivery.created_at.as_ref()),
                "sent_at": time(delivery.sent_at.as_ref()),
                "next_attempt_at": time(delivery.next_attempt_at.as_ref()),
                "attempts": delivery.attempts.iter().map(|attempt| json!({
                    "at": time(attempt.at.as_ref()),
                    "outcome": attempt.outcome,
                    "smtp_code": attempt.smtp_code,
                    "latency_ms": attempt.latency_ms,
                    "error": attempt.error,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let value = json!({ "deliveries": deliveries, "next_page_token": reply.next_page_token });
    out.value(&value, &text);
}

fn print_template(out: &Output, template: &v1::EmailTemplate) {
    let value = json!({
        "kind": template.kind,
        "custom": template.custom,
        "updated_at": time(template.updated_at.as_ref()),
        "variables": template.variables,
        "subject": template.subject,
        "html": template.html,
        "text": template.text,
    });
    let origin = if template.custom {
        "the tenant's own"
    } else {
        "built-in default"
    };
    let text = format!(
        "kind: {} ({origin})\nvariables: {}\nsubject: {}\n--- html ---\n{}\n--- text ---\n{}",
        template.kind,
        template.variables.join(", "),
        template.subject,
        template.html,
        template.text
    );
    out.value(&value, &text);
}

/// Runs one `email` command.
pub async fn run_email(client: &Client, out: &Output, command: EmailCommand) -> NodeResult<()> {
    match command {
        EmailCommand::Deliveries {
            tenant,
            page_size,
            page_token,
        } => {
            let reply = client
                .with_tenant(&tenant.tenant)
                .list_email_deliveries(page_size, &page_token)
                .await?;
            print_deliveries(out, &reply);
        }
        EmailCommand::SendVerification(flags) => {
            client
                .with_tenant(&flags.tenant.tenant)
                .send_email_verification(&flags.email, &flags.redirect_url)
                .await?;
            out.done("requested a verification message for", &flags.email);
        }
        EmailCommand::SendPasswordReset(flags) => {
            client
                .with_tenant(&flags.tenant.tenant)
                .send_password_reset(&flags.email, &flags.redirect_url)
                .await?;
            out.done("requested a password-reset message for", &flags.email);
        }
        EmailCommand::Template(TemplateCommand::Get { tenant, kind }) => {
            let template = client
                .with_tenant(&tenant.tenant)
                .get_email_template(&kind)
                .await?;
            print_template(out, &template);
        }
        EmailCommand::Template(TemplateCommand::Set {
            tenant,
            kind,
            parts,
        }) => {
            let client = client.with_tenant(&tenant.tenant);
            let (subject, html, text) = parts.over(client.get_email_template(&kind).await?)?;
            let request = v1::SetEmailTemplateRequest {
                kind,
                subject,
                html,
                text,
            };
            let template = client.set_email_template(request).await?;
            print_template(out, &template);
        }
        EmailCommand::Template(TemplateCommand::Reset { tenant, kind }) => {
            let template = client
                .with_tenant(&tenant.tenant)
                .reset_email_template(&kind)
                .await?;
            print_template(out, &template);
        }
        EmailCommand::Template(TemplateCommand::Preview {
            tenant,
            kind,
            parts,
        }) => {
            let client = client.with_tenant(&tenant.tenant);
            let mut request = v1::PreviewEmailTemplateRequest {
                kind: kind.clone(),
                use_given: parts.any(),
                ..v1::PreviewEmailTemplateRequest::default()
            };
            if request.use_given {
                let current = client.get_email_template(&kind).await?;
                (request.subject, request.html, request.text) = parts.over(current)?;
            }
            let rendered = client.preview_email_template(request).await?;
            let value = json!({
                "subject": rendered.subject,
                "html": rendered.html,
                "text": rendered.text,
            });
            let text = format!(
                "subject: {}\n--- html ---\n{}\n--- text ---\n{}",
                rendered.subject, rendered.html, rendered.text
            );
            out.value(&value, &text);
        }
    }
    Ok(())
}

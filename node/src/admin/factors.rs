//! `gatehouse admin user factors …`: a user's second factors (TOTP, recovery codes,
//! passkeys); and the MFA and passkey flags and output of `tenant config`.

use clap::{Args, Subcommand, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1;
use serde_json::{Value, json};

use super::TenantFlag;
use super::output::Output;
use crate::error::NodeResult;

/// `user factors …`.
#[derive(Debug, Subcommand)]
pub enum FactorCommand {
    /// Show a user's TOTP app, recovery codes, recent failures and passkeys.
    List {
        #[command(flatten)]
        tenant: TenantFlag,
        user_id: String,
    },
    /// Remove a user's TOTP app (with its recovery codes) or one passkey; revokes the
    /// user's sessions.
    Remove {
        #[command(flatten)]
        tenant: TenantFlag,
        user_id: String,
        /// Which factor.
        #[arg(value_enum)]
        factor: FactorKind,
        /// The passkey's id (for `passkey` only).
        #[arg(required_if_eq("factor", "passkey"))]
        passkey_id: Option<String>,
    },
}

/// A kind of second factor an operator removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FactorKind {
    Totp,
    Passkey,
}

impl FactorKind {
    fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::Passkey => "passkey",
        }
    }
}

/// MFA and passkey flags of `tenant config`.
#[derive(Debug, Args)]
pub struct MfaConfigFlags {
    /// Require a second factor of every user.
    #[arg(long)]
    mfa_required: Option<bool>,
    /// How long a user without a second factor may still sign in to enrol, in seconds.
    #[arg(long)]
    mfa_grace_period: Option<u32>,
    /// How recent a sign-in sensitive operations need, in seconds (60-86400).
    #[arg(long)]
    step_up_window: Option<u32>,
    /// Allow passkeys.
    #[arg(long)]
    passkeys_enabled: Option<bool>,
    /// Passkey relying-party id, a domain (empty: derived from the trusted domains).
    #[arg(long)]
    passkey_rp_id: Option<String>,
    /// Passkey relying-party name (empty: the tenant's name).
    #[arg(long)]
    passkey_rp_name: Option<String>,
    /// Origin allowed to run passkey ceremonies (repeatable; replaces the list).
    #[arg(long = "passkey-origin")]
    passkey_origins: Vec<String>,
    /// Remove every passkey origin (the origins are then derived).
    #[arg(long, conflicts_with = "passkey_origins")]
    clear_passkey_origins: bool,
}

impl MfaConfigFlags {
    /// Copies the given flags into `request`.
    pub fn apply(self, request: &mut v1::UpdateTenantConfigRequest) {
        if self.clear_passkey_origins || !self.passkey_origins.is_empty() {
            request.set_passkey_origins = true;
            request.passkey_origins = self.passkey_origins;
        }
        request.mfa_required = self.mfa_required;
        request.mfa_grace_period_seconds = self.mfa_grace_period;
        request.step_up_window_seconds = self.step_up_window;
        request.passkeys_enabled = self.passkeys_enabled;
        request.passkey_rp_id = self.passkey_rp_id;
        request.passkey_rp_name = self.passkey_rp_name;
    }
}

fn time(at: Option<&prost_types::Timestamp>) -> String {
    at.map_or_else(String::new, |at| at.to_string())
}

fn time_json(at: Option<&prost_types::Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_string()))
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// The MFA and passkey parts of a tenant's config, as JSON.
pub fn config_json(config: Option<&v1::TenantConfig>) -> Value {
    let mfa = config.and_then(|config| config.mfa.as_ref());
    let passkeys = config.and_then(|config| config.passkeys.as_ref());
    json!({
        "mfa": mfa.map_or(Value::Null, |mfa| json!({
            "required": mfa.required,
            "grace_period_seconds": mfa.grace_period_seconds,
            "step_up_window_seconds": mfa.step_up_window_seconds,
        })),
        "anonymous_enabled": config.is_some_and(|config| config.anonymous_enabled),
        "anonymous_idle_ttl_seconds": config.map(|config| config.anonymous_idle_ttl_seconds),
        "refresh_grace_seconds": config.map(|config| config.refresh_grace_seconds),
        "passkeys": passkeys.map_or(Value::Null, |passkeys| json!({
            "enabled": passkeys.enabled,
            "rp_id": passkeys.rp_id,
            "rp_name": passkeys.rp_name,
            "origins": passkeys.origins,
            "effective_rp_id": passkeys.effective_rp_id,
            "effective_origins": passkeys.effective_origins,
        })),
    })
}

/// The MFA and passkey parts of a tenant's config, as `(field, value)` rows.
pub fn config_rows(config: Option<&v1::TenantConfig>) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut row = |field: &str, value: String| rows.push((field.to_owned(), value));
    if let Some(mfa) = config.and_then(|config| config.mfa.as_ref()) {
        row("mfa required", mfa.required.to_string());
        row(
            "mfa grace period",
            format!("{} s", mfa.grace_period_seconds),
        );
        row(
            "step-up window",
            format!("{} s", mfa.step_up_window_seconds),
        );
    }
    if let Some(config) = config {
        row("anonymous enabled", config.anonymous_enabled.to_string());
        row(
            "anonymous idle ttl",
            format!("{} s", config.anonymous_idle_ttl_seconds),
        );
        row(
            "refresh grace",
            format!("{} s", config.refresh_grace_seconds),
        );
    }
    if let Some(passkeys) = config.and_then(|config| config.passkeys.as_ref()) {
        let or_derived = |value: &str| {
            if value.is_empty() {
                "(derived)".to_owned()
            } else {
                value.to_owned()
            }
        };
        row("passkeys enabled", passkeys.enabled.to_string());
        row("passkey rp id", or_derived(&passkeys.rp_id));
        row("passkey rp name", or_derived(&passkeys.rp_name));
        row("passkey origins", or_derived(&passkeys.origins.join(", ")));
        row("passkey effective rp id", passkeys.effective_rp_id.clone());
        row(
            "passkey effective origins",
            passkeys.effective_origins.join(", "),
        );
    }
    rows
}

fn passkey_json(passkey: &v1::Passkey) -> Value {
    json!({
        "passkey_id": passkey.passkey_id,
        "name": passkey.name,
        "credential_id": passkey.credential_id,
        "created_at": time_json(passkey.created_at.as_ref()),
        "last_used_at": time_json(passkey.last_used_at.as_ref()),
        "counter": passkey.counter,
        "backup_eligible": passkey.backup_eligible,
        "backup_state": passkey.backup_state,
    })
}

fn factors_json(factors: &v1::FactorList) -> Value {
    json!({
        "totp_confirmed": factors.totp_confirmed,
        "totp_created_at": time_json(factors.totp_created_at.as_ref()),
        "totp_last_used_at": time_json(factors.totp_last_used_at.as_ref()),
        "recovery_codes_remaining": factors.recovery_codes_remaining,
        "recent_failures": factors.recent_failures,
        "password_locked_until": time_json(factors.password_locked_until.as_ref()),
        "passkeys": factors.passkeys.iter().map(passkey_json).collect::<Vec<_>>(),
    })
}

fn factors_text(factors: &v1::FactorList) -> String {
    let mut summary = Table::new();
    summary
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(vec!["factor", "value"]);
    summary.add_row(vec!["totp confirmed", yes_no(factors.totp_confirmed)]);
    summary.add_row(vec![
        "totp created_at".to_owned(),
        time(factors.totp_created_at.as_ref()),
    ]);
    summary.add_row(vec![
        "totp last_used_at".to_owned(),
        time(factors.totp_last_used_at.as_ref()),
    ]);
    summary.add_row(vec![
        "recovery codes remaining".to_owned(),
        factors.recovery_codes_remaining.to_string(),
    ]);
    summary.add_row(vec![
        "recent failures".to_owned(),
        factors.recent_failures.to_string(),
    ]);
    summary.add_row(vec![
        "password locked for unknown sources until".to_owned(),
        time(factors.password_locked_until.as_ref()),
    ]);
    let mut text = summary.to_string();
    text.push_str(&format!("\npasskeys: {}", factors.passkeys.len()));
    if !factors.passkeys.is_empty() {
        let mut passkeys = Table::new();
        passkeys.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "passkey_id",
            "name",
            "created_at",
            "last_used_at",
            "counter",
            "backup eligible",
            "backed up",
        ]);
        for passkey in &factors.passkeys {
            passkeys.add_row(vec![
                passkey.passkey_id.clone(),
                passkey.name.clone(),
                time(passkey.created_at.as_ref()),
                time(passkey.last_used_at.as_ref()),
                passkey.counter.to_string(),
                yes_no(passkey.backup_eligible).to_owned(),
                yes_no(passkey.backup_state).to_owned(),
            ]);
        }
        text.push_str(&format!("\n{passkeys}"));
    }
    text
}

/// Runs one `user factors` command.
pub async fn run_factors(client: &Client, out: &Output, command: FactorCommand) -> NodeResult<()> {
    match command {
        FactorCommand::List { tenant, user_id } => {
            let factors = client
                .with_tenant(&tenant.tenant)
                .list_factors(&user_id)
                .await?;
            out.value(&factors_json(&factors), &factors_text(&factors));
        }
        FactorCommand::Remove {
            tenant,
            user_id,
            factor,
            passkey_id,
        } => {
            let passkey_id = passkey_id.unwrap_or_default();
            let revoked = client
                .with_tenant(&tenant.tenant)
                .remove_factor(&user_id, factor.as_str(), &passkey_id)
                .await?;
            let removed = match factor {
                FactorKind::Totp => "the TOTP app and recovery codes".to_owned(),
                FactorKind::Passkey => format!("passkey {passkey_id}"),
            };
            let value = json!({
                "result": "removed",
                "user_id": user_id,
                "factor": factor.as_str(),
                "passkey_id": passkey_id,
                "revoked_sessions": revoked,
            });
            let text = format!("removed {removed} of {user_id}; revoked {revoked} sessions");
            out.value(&value, &text);
        }
    }
    Ok(())
}

//! `admin tenant config --anonymous-*` and `admin user impersonate`.

use std::time::Duration;

use clap::Args;
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1;
use serde_json::json;

use super::TenantFlag;
use super::output::Output;
use crate::error::NodeResult;

/// Parses `30m`, `12h`, `30d` (humantime) or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|error| error.to_string())
}

fn seconds(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

/// Anonymous-user flags of `tenant config`.
#[derive(Debug, Args)]
pub struct AnonymousConfigFlags {
    /// Allow `Auth.SignInAnonymously`.
    #[arg(long)]
    anonymous_enabled: Option<bool>,
    /// Delete anonymous users idle this long (e.g. `30d`, `12h`, or seconds; 1 h to 1 year).
    #[arg(long, value_parser = parse_duration)]
    anonymous_idle_ttl: Option<Duration>,
}

impl AnonymousConfigFlags {
    /// Copies the given flags into `request`.
    pub fn apply(self, request: &mut v1::UpdateTenantConfigRequest) {
        request.anonymous_enabled = self.anonymous_enabled;
        request.anonymous_idle_ttl_seconds = self.anonymous_idle_ttl.map(seconds);
    }
}

/// `user impersonate`.
#[derive(Debug, Args)]
pub struct ImpersonateArgs {
    #[command(flatten)]
    tenant: TenantFlag,
    /// The user to act as.
    user_id: String,
    /// Why (required; kept on the session and in the audit ledger).
    #[arg(long)]
    reason: String,
    /// How long the session lasts (`30m` by default; 10 s to 12 h); it cannot be refreshed
    /// past that.
    #[arg(long, value_parser = parse_duration, default_value = "30m")]
    duration: Duration,
}

/// Starts an impersonation session and prints its tokens.
pub async fn run_impersonate(
    client: &Client,
    out: &Output,
    args: ImpersonateArgs,
) -> NodeResult<()> {
    let reply = client
        .with_tenant(&args.tenant.tenant)
        .impersonate_user(&args.user_id, &args.reason, seconds(args.duration))
        .await?;
    let tokens = reply.tokens.unwrap_or_default();
    let session = reply.session.unwrap_or_default();
    let time = |at: Option<&prost_types::Timestamp>| at.map(ToString::to_string);
    let value = json!({
        "user_id": reply.user_id,
        "session_id": reply.session_id,
        "impersonator": session.impersonator,
        "reason": session.impersonation_reason,
        "expires_at": time(session.expires_at.as_ref()),
        "access_token": tokens.access_token,
        "access_token_expires_at": time(tokens.access_token_expires_at.as_ref()),
        "refresh_token": tokens.refresh_token,
    });
    let text = format!(
        "impersonating {} in session {} until {}\naccess token: {}\nrefresh token: {}",
        reply.user_id,
        reply.session_id,
        time(session.expires_at.as_ref()).unwrap_or_default(),
        tokens.access_token,
        tokens.refresh_token,
    );
    out.value(&value, &text);
    Ok(())
}

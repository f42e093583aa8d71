//! `gatehouse admin oauth provider …`: a tenant's upstream sign-in providers, and
//! `gatehouse admin user links`: the providers linked to a user.

use std::io::Read;

use clap::{Args, Subcommand, ValueEnum};
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::{ApiError, ErrorCode, v1};
use serde_json::{Value, json};

use super::TenantFlag;
use super::output::Output;

/// Upstream sign-in administration.
#[derive(Debug, Subcommand)]
pub enum OAuthCommand {
    /// Upstream providers ("Sign in with …") of a tenant.
    #[command(subcommand)]
    Provider(ProviderCommand),
}

/// Provider administration.
#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Add a provider; prints the callback URL to register with it.
    Add {
        #[command(flatten)]
        tenant: TenantFlag,
        /// Id in URLs: 1 to 40 of a-z, 0-9 and '-'.
        #[arg(long)]
        id: String,
        /// The protocol and its defaults.
        #[arg(long, value_enum)]
        kind: Kind,
        /// Shown on sign-in pages; defaults from the kind.
        #[arg(long, default_value = "")]
        display_name: String,
        /// Required for `oidc`; preset for the other kinds.
        #[arg(long, default_value = "")]
        issuer: String,
        /// The OAuth client id.
        #[arg(long)]
        client_id: String,
        #[command(flatten)]
        secret: SecretFlags,
        /// A scope to ask for (repeatable); the kind's defaults when none.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Let a verified upstream email link to an existing user with that address.
        #[arg(long)]
        allow_email_linking: bool,
        /// Do not create users on first sign-in.
        #[arg(long)]
        no_sign_up: bool,
    },
    /// The tenant's providers.
    List {
        #[command(flatten)]
        tenant: TenantFlag,
    },
    /// Show one provider.
    Get {
        #[command(flatten)]
        tenant: TenantFlag,
        provider_id: String,
    },
    /// Change a provider; options not given keep their value.
    Update {
        #[command(flatten)]
        tenant: TenantFlag,
        provider_id: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        client_id: Option<String>,
        #[command(flatten)]
        secret: SecretFlags,
        /// Replace the scopes (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Replace the scopes with the kind's defaults.
        #[arg(long, conflicts_with = "scopes")]
        clear_scopes: bool,
        #[arg(long)]
        allow_email_linking: Option<bool>,
        #[arg(long)]
        allow_sign_up: Option<bool>,
    },
    /// Remove a provider.
    Remove {
        #[command(flatten)]
        tenant: TenantFlag,
        provider_id: String,
    },
}

/// Provider kinds as the CLI spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Any OpenID provider, by issuer.
    Oidc,
    /// GitHub (or GitHub Enterprise Server with --issuer).
    Github,
    /// Google.
    Google,
    /// Microsoft identity platform.
    Microsoft,
}

impl From<Kind> for v1::OAuthProviderKind {
    fn from(kind: Kind) -> v1::OAuthProviderKind {
        match kind {
            Kind::Oidc => v1::OAuthProviderKind::OauthProviderKindOidc,
            Kind::Github => v1::OAuthProviderKind::OauthProviderKindGithub,
            Kind::Google => v1::OAuthProviderKind::OauthProviderKindGoogle,
            Kind::Microsoft => v1::OAuthProviderKind::OauthProviderKindMicrosoft,
        }
    }
}

/// Where the client secret comes from; never echoed.
#[derive(Debug, Args)]
pub struct SecretFlags {
    /// The OAuth client secret (visible to other local users in the process list: prefer
    /// --client-secret-stdin or the environment).
    #[arg(
        long,
        env = "GATEHOUSE_OAUTH_CLIENT_SECRET",
        hide_env_values = true,
        conflicts_with = "client_secret_stdin"
    )]
    client_secret: Option<String>,
    /// Read the client secret from standard input.
    #[arg(long)]
    client_secret_stdin: bool,
}

impl SecretFlags {
    /// The secret, if one was given.
    fn read(self) -> Result<Option<String>, ApiError> {
        if !self.client_secret_stdin {
            return Ok(self.client_secret.filter(|secret| !secret.is_empty()));
        }
        let mut secret = String::new();
        std::io::stdin()
            .read_to_string(&mut secret)
            .map_err(|error| {
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("cannot read the client secret from standard input: {error}"),
                )
            })?;
        let secret = secret.trim_end_matches(['\r', '\n']).to_owned();
        Ok((!secret.is_empty()).then_some(secret))
    }
}

fn time(at: Option<&prost_types::Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_string()))
}

fn kind_name(kind: v1::OAuthProviderKind) -> &'static str {
    match kind {
        v1::OAuthProviderKind::OauthProviderKindOidc => "oidc",
        v1::OAuthProviderKind::OauthProviderKindGithub => "github",
        v1::OAuthProviderKind::OauthProviderKindGoogle => "google",
        v1::OAuthProviderKind::OauthProviderKindMicrosoft => "microsoft",
        v1::OAuthProviderKind::OauthProviderKindUnspecified => "",
    }
}

fn provider_json(provider: &v1::OAuthProvider) -> Value {
    json!({
        "provider_id": provider.provider_id,
        "kind": kind_name(provider.kind()),
        "display_name": provider.display_name,
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "scopes": provider.scopes,
        "allow_email_linking": provider.allow_email_linking,
        "allow_sign_up": provider.allow_sign_up,
        "created_at": time(provider.created_at.as_ref()),
        "updated_at": time(provider.updated_at.as_ref()),
        "redirect_uri": provider.redirect_uri,
    })
}

fn provider_line(provider: &v1::OAuthProvider) -> String {
    format!(
        "{} {} {:?} issuer={} client_id={} [{}]{}{}\n  callback: {}",
        provider.provider_id,
        kind_name(provider.kind()),
        provider.display_name,
        provider.issuer,
        provider.client_id,
        provider.scopes.join(" "),
        if provider.allow_email_linking {
            " email-linking"
        } else {
            ""
        },
        if provider.allow_sign_up {
            ""
        } else {
            " no-sign-up"
        },
        provider.redirect_uri,
    )
}

fn link_json(account: &v1::LinkedAccount) -> Value {
    json!({
        "provider_id": account.provider_id,
        "subject": account.subject,
        "email": account.email,
        "scopes": account.scopes,
        "linked_at": time(account.linked_at.as_ref()),
        "last_sign_in_at": time(account.last_sign_in_at.as_ref()),
        "has_refresh_token": account.has_refresh_token,
    })
}

fn link_line(account: &v1::LinkedAccount) -> String {
    format!(
        "{} subject={} {} [{}]{}",
        account.provider_id,
        account.subject,
        account.email,
        account.scopes.join(" "),
        if account.has_refresh_token {
            " refresh-token"
        } else {
            ""
        }
    )
}

/// Runs an OAuth command.
pub async fn run_oauth(
    client: &Client,
    out: &Output,
    command: OAuthCommand,
) -> Result<(), ApiError> {
    let OAuthCommand::Provider(command) = command;
    match command {
        ProviderCommand::Add {
            tenant,
            id,
            kind,
            display_name,
            issuer,
            client_id,
            secret,
            scopes,
            allow_email_linking,
            no_sign_up,
        } => {
            let Some(client_secret) = secret.read()? else {
                return Err(ApiError::new(
                    ErrorCode::InvalidArgument,
                    "give the client secret with --client-secret-stdin, \
                     GATEHOUSE_OAUTH_CLIENT_SECRET or --client-secret",
                ));
            };
            let provider = client
                .with_tenant(&tenant.tenant)
                .create_oauth_provider(v1::CreateOAuthProviderRequest {
                    provider_id: id,
                    kind: v1::OAuthProviderKind::from(kind) as i32,
                    display_name,
                    issuer,
                    client_id,
                    client_secret,
                    scopes,
                    allow_email_linking,
                    allow_sign_up: no_sign_up.then_some(false),
                })
                .await?;
            out.value(&provider_json(&provider), &provider_line(&provider));
        }
        ProviderCommand::List { tenant } => {
            let providers = client
                .with_tenant(&tenant.tenant)
                .list_oauth_providers()
                .await?;
            let text = providers
                .iter()
                .map(provider_line)
                .collect::<Vec<_>>()
                .join("\n");
            out.value(
                &json!({ "providers": providers.iter().map(provider_json).collect::<Vec<_>>() }),
                &text,
            );
        }
        ProviderCommand::Get {
            tenant,
            provider_id,
        } => {
            let provider = client
                .with_tenant(&tenant.tenant)
                .get_oauth_provider(&provider_id)
                .await?;
            out.value(&provider_json(&provider), &provider_line(&provider));
        }
        ProviderCommand::Update {
            tenant,
            provider_id,
            display_name,
            issuer,
            client_id,
            secret,
            scopes,
            clear_scopes,
            allow_email_linking,
            allow_sign_up,
        } => {
            let set_scopes = clear_scopes || !scopes.is_empty();
            let provider = client
                .with_tenant(&tenant.tenant)
                .update_oauth_provider(v1::UpdateOAuthProviderRequest {
                    provider_id,
                    display_name,
                    issuer,
                    client_id,
                    client_secret: secret.read()?,
                    scopes,
                    set_scopes,
                    allow_email_linking,
                    allow_sign_up,
                })
                .await?;
            out.value(&provider_json(&provider), &provider_line(&provider));
        }
        ProviderCommand::Remove {
            tenant,
            provider_id,
        } => {
            client
                .with_tenant(&tenant.tenant)
                .delete_oauth_provider(&provider_id)
                .await?;
            out.done("removed", &provider_id);
        }
    }
    Ok(())
}

/// `gatehouse admin user links`: the providers linked to a user.
pub async fn run_links(
    client: &Client,
    out: &Output,
    tenant: &TenantFlag,
    user_id: &str,
) -> Result<(), ApiError> {
    let accounts = client
        .with_tenant(&tenant.tenant)
        .list_linked_accounts(user_id)
        .await?;
    let text = accounts
        .iter()
        .map(link_line)
        .collect::<Vec<_>>()
        .join("\n");
    out.value(
        &json!({ "accounts": accounts.iter().map(link_json).collect::<Vec<_>>() }),
        &text,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: OAuthCommand,
    }

    #[test]
    fn add_takes_the_secret_from_the_flag_and_sign_up_defaults_on() {
        let cli = Cli::try_parse_from([
            "oauth",
            "provider",
            "add",
            "--tenant",
            "acme",
            "--id",
            "gh",
            "--kind",
            "github",
            "--client-id",
            "Iv1.abc",
            "--client-secret",
            "s3cret",
            "--scope",
            "read:user",
            "--scope",
            "user:email",
        ])
        .unwrap_or_else(|error| panic!("{error}"));
        let OAuthCommand::Provider(ProviderCommand::Add {
            kind,
            secret,
            scopes,
            no_sign_up,
            ..
        }) = cli.command
        else {
            panic!("not an add");
        };
        assert!(matches!(kind, Kind::Github));
        assert_eq!(scopes, ["read:user", "user:email"]);
        assert!(!no_sign_up);
        assert_eq!(secret.read().ok().flatten().as_deref(), Some("s3cret"));
    }

    #[test]
    fn the_secret_flag_and_stdin_exclude_each_other() {
        let parsed = Cli::try_parse_from([
            "oauth",
            "provider",
            "add",
            "--tenant",
            "acme",
            "--id",
            "gh",
            "--kind",
            "github",
            "--client-id",
            "x",
            "--client-secret",
            "s",
            "--client-secret-stdin",
        ]);
        assert!(parsed.is_err());
    }

    #[test]
    fn an_unknown_kind_is_refused() {
        let parsed = Cli::try_parse_from([
            "oauth",
            "provider",
            "add",
            "--tenant",
            "acme",
            "--id",
            "x",
            "--kind",
            "facebook",
            "--client-id",
            "x",
        ]);
        assert!(parsed.is_err());
    }
}

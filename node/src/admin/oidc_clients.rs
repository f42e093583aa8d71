//! `gatehouse admin oidc-client …`: the OpenID Connect clients of a tenant.

use clap::Subcommand;
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::{ApiError, v1};
use serde_json::{Value, json};

use super::TenantFlag;
use super::output::Output;

/// OpenID Connect client administration.
#[derive(Debug, Subcommand)]
pub enum OidcClientCommand {
    /// Register a client; prints its id, and the secret of a confidential client once.
    Create {
        #[command(flatten)]
        tenant: TenantFlag,
        /// Human name, shown on consent pages.
        #[arg(long)]
        name: String,
        /// Where authorization answers may go, matched exactly (repeatable, 1 to 20).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A public client (browser or native app): no secret, PKCE only.
        #[arg(long)]
        public: bool,
        /// An allowed scope (repeatable); `openid profile email` when none.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A client of the tenant itself, which may skip the consent page.
        #[arg(long)]
        first_party: bool,
        /// Where the browser may go after sign-out (repeatable, 0 to 20).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
    },
    /// The tenant's clients, oldest first.
    List {
        #[command(flatten)]
        tenant: TenantFlag,
    },
    /// Show one client.
    Get {
        #[command(flatten)]
        tenant: TenantFlag,
        client_id: String,
    },
    /// Change a client; options not given keep their value.
    Update {
        #[command(flatten)]
        tenant: TenantFlag,
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        /// Replace the redirect URIs (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Replace the post-logout redirect URIs (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Remove every post-logout redirect URI.
        #[arg(long, conflicts_with = "post_logout_redirect_uris")]
        clear_post_logout_redirect_uris: bool,
        /// Replace the allowed scopes (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Replace the allowed scopes with the defaults.
        #[arg(long, conflicts_with = "scopes")]
        default_scopes: bool,
        #[arg(long)]
        first_party: Option<bool>,
    },
    /// Delete a client.
    Delete {
        #[command(flatten)]
        tenant: TenantFlag,
        client_id: String,
    },
    /// Give a confidential client a new secret (printed once); the old one stops working.
    RotateSecret {
        #[command(flatten)]
        tenant: TenantFlag,
        client_id: String,
    },
}

fn time(at: Option<&prost_types::Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_string()))
}

fn kind_name(kind: v1::OidcClientKind) -> &'static str {
    match kind {
        v1::OidcClientKind::Public => "public",
        v1::OidcClientKind::Confidential => "confidential",
        v1::OidcClientKind::Unspecified => "",
    }
}

fn client_json(client: &v1::OidcClient) -> Value {
    json!({
        "client_id": client.client_id,
        "name": client.name,
        "kind": kind_name(client.kind()),
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "allowed_scopes": client.allowed_scopes,
        "first_party": client.first_party,
        "created_at": time(client.created_at.as_ref()),
        "updated_at": time(client.updated_at.as_ref()),
        "created_by": client.created_by,
    })
}

fn client_line(client: &v1::OidcClient) -> String {
    format!(
        "{} {} {:?} [{}]{}\n  redirect: {}",
        client.client_id,
        kind_name(client.kind()),
        client.name,
        client.allowed_scopes.join(" "),
        if client.first_party {
            " first-party"
        } else {
            ""
        },
        client.redirect_uris.join(" "),
    )
}

/// The client, with its secret when one was issued.
fn issued(out: &Output, client: &v1::OidcClient, secret: &str) {
    let mut value = client_json(client);
    let mut text = client_line(client);
    if !secret.is_empty() {
        value["client_secret"] = Value::String(secret.to_owned());
        text.push_str(&format!(
            "\nclient secret (shown once, store it now): {secret}"
        ));
    }
    out.value(&value, &text);
}

/// Runs an OpenID Connect client command.
pub async fn run_oidc_client(
    client: &Client,
    out: &Output,
    command: OidcClientCommand,
) -> Result<(), ApiError> {
    match command {
        OidcClientCommand::Create {
            tenant,
            name,
            redirect_uris,
            public,
            scopes,
            first_party,
            post_logout_redirect_uris,
        } => {
            let kind = if public {
                v1::OidcClientKind::Public
            } else {
                v1::OidcClientKind::Confidential
            };
            let reply = client
                .with_tenant(&tenant.tenant)
                .create_oidc_client(v1::CreateOidcClientRequest {
                    name,
                    kind: kind as i32,
                    redirect_uris,
                    post_logout_redirect_uris,
                    allowed_scopes: scopes,
                    first_party,
                })
                .await?;
            issued(out, &reply.client.unwrap_or_default(), &reply.client_secret);
        }
        OidcClientCommand::List { tenant } => {
            let clients = client
                .with_tenant(&tenant.tenant)
                .list_oidc_clients()
                .await?;
            let text = clients
                .iter()
                .map(client_line)
                .collect::<Vec<_>>()
                .join("\n");
            out.value(
                &json!({ "clients": clients.iter().map(client_json).collect::<Vec<_>>() }),
                &text,
            );
        }
        OidcClientCommand::Get { tenant, client_id } => {
            let found = client
                .with_tenant(&tenant.tenant)
                .get_oidc_client(&client_id)
                .await?;
            out.value(&client_json(&found), &client_line(&found));
        }
        OidcClientCommand::Update {
            tenant,
            client_id,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            clear_post_logout_redirect_uris,
            scopes,
            default_scopes,
            first_party,
        } => {
            let request = v1::UpdateOidcClientRequest {
                client_id,
                name,
                set_redirect_uris: !redirect_uris.is_empty(),
                redirect_uris,
                set_post_logout_redirect_uris: clear_post_logout_redirect_uris
                    || !post_logout_redirect_uris.is_empty(),
                post_logout_redirect_uris,
                set_allowed_scopes: default_scopes || !scopes.is_empty(),
                allowed_scopes: scopes,
                first_party,
            };
            let changed = client
                .with_tenant(&tenant.tenant)
                .update_oidc_client(request)
                .await?;
            out.value(&client_json(&changed), &client_line(&changed));
        }
        OidcClientCommand::Delete { tenant, client_id } => {
            client
                .with_tenant(&tenant.tenant)
                .delete_oidc_client(&client_id)
                .await?;
            out.done("deleted", &client_id);
        }
        OidcClientCommand::RotateSecret { tenant, client_id } => {
            let reply = client
                .with_tenant(&tenant.tenant)
                .rotate_oidc_client_secret(&client_id)
                .await?;
            issued(out, &reply.client.unwrap_or_default(), &reply.client_secret);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: OidcClientCommand,
    }

    #[test]
    fn create_takes_repeated_uris_and_scopes_and_is_confidential_unless_public() {
        let cli = Cli::try_parse_from([
            "oidc-client",
            "create",
            "--tenant",
            "acme",
            "--name",
            "Portal",
            "--redirect-uri",
            "https://a.example/cb",
            "--redirect-uri",
            "com.example.app:/cb",
            "--scope",
            "email",
            "--post-logout-redirect-uri",
            "https://a.example/bye",
        ])
        .unwrap();
        let OidcClientCommand::Create {
            redirect_uris,
            public,
            scopes,
            first_party,
            post_logout_redirect_uris,
            ..
        } = cli.command
        else {
            panic!("{:?}", cli.command);
        };
        assert_eq!(
            redirect_uris,
            ["https://a.example/cb", "com.example.app:/cb"]
        );
        assert!(!public && !first_party);
        assert_eq!(scopes, ["email"]);
        assert_eq!(post_logout_redirect_uris, ["https://a.example/bye"]);
        // A redirect URI is required.
        assert!(
            Cli::try_parse_from(["oidc-client", "create", "--tenant", "acme", "--name", "x"])
                .is_err()
        );
    }

    #[test]
    fn rotate_secret_is_spelled_with_a_hyphen() {
        let cli =
            Cli::try_parse_from(["oidc-client", "rotate-secret", "--tenant", "acme", "gci_x"])
                .unwrap();
        assert!(matches!(
            cli.command,
            OidcClientCommand::RotateSecret { .. }
        ));
    }
}

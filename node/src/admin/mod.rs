//! `gatehouse admin …`: the operator CLI, a thin client of the gRPC API through the SDK.

mod api_keys;
mod audit;
mod email;
mod factors;
mod impersonation;
mod oauth;
mod oidc_clients;
mod output;
mod shares;
mod teams;
mod webhooks;

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use gatehouse_protocol::sdk::{Client, Credentials};
use gatehouse_protocol::v1;

use output::Output;

use crate::error::{NodeError, NodeResult};

/// Flags shared by every admin command.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// gRPC endpoint of any node.
    #[arg(
        long,
        env = "GATEHOUSE_ENDPOINT",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    endpoint: String,
    /// File holding the operator key (written by the node on first start).
    #[arg(
        long,
        env = "GATEHOUSE_OPERATOR_KEY_FILE",
        default_value = "./gatehouse-data/operator.key",
        global = true
    )]
    operator_key_file: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Tenants (projects).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Users of a tenant.
    #[command(subcommand)]
    User(UserCommand),
    /// Sessions of a tenant's users.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The cluster.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Teams, members and invitations.
    #[command(subcommand)]
    Team(teams::TeamCommand),
    /// Permission definitions and grants.
    #[command(subcommand)]
    Permission(teams::PermissionCommand),
    /// Shares: create, list, revoke, proposals.
    #[command(subcommand)]
    Share(shares::ShareCommand),
    /// Webhook endpoints, delivery logs and replay.
    #[command(subcommand)]
    Webhook(webhooks::WebhookCommand),
    /// The hash-chained audit ledger: verify, export, list.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Email: the delivery log and the message templates.
    #[command(subcommand)]
    Email(email::EmailCommand),
    /// API keys of the tenant, its users and teams: create, list, get, revoke.
    #[command(subcommand)]
    Apikey(api_keys::ApiKeyCommand),
    /// Upstream sign-in: the tenant's providers (add, list, get, update, remove).
    #[command(subcommand)]
    Oauth(oauth::OAuthCommand),
    /// OpenID Connect clients of the tenant (Gatehouse as their provider): create, list, get,
    /// update, delete, rotate-secret.
    #[command(subcommand)]
    OidcClient(oidc_clients::OidcClientCommand),
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Members, status, generation, addresses and actors per kind, as the node sees them.
    Status,
    /// Which node owns an actor (a tenant, or one of its sessions or shares), as the node
    /// sees it.
    Owner {
        #[command(flatten)]
        tenant: TenantFlag,
        /// The actor's kind.
        #[arg(long, value_enum)]
        kind: OwnedKind,
        /// The session or share id (not given for a tenant).
        entity_id: Option<String>,
    },
}

/// Kinds of actor a node can own.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OwnedKind {
    Tenant,
    Session,
    Share,
}

impl From<OwnedKind> for v1::ActorKind {
    fn from(kind: OwnedKind) -> v1::ActorKind {
        match kind {
            OwnedKind::Tenant => v1::ActorKind::Tenant,
            OwnedKind::Session => v1::ActorKind::Session,
            OwnedKind::Share => v1::ActorKind::Share,
        }
    }
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its id, publishable client key and secret server key.
    Create {
        /// Human name.
        name: String,
        /// Tenant id (3-63 of a-z, 0-9, -); generated when omitted.
        #[arg(long)]
        id: Option<String>,
    },
    /// List tenants.
    List {
        #[arg(long, default_value_t = 50)]
        page_size: u32,
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Show a tenant.
    Get { tenant_id: String },
    /// Change a tenant's settings.
    Config {
        tenant_id: String,
        /// Access-token lifetime in seconds.
        #[arg(long)]
        access_token_ttl: Option<u32>,
        /// Absolute session lifetime in seconds.
        #[arg(long)]
        session_absolute_ttl: Option<u32>,
        /// Idle session lifetime in seconds.
        #[arg(long)]
        session_idle_ttl: Option<u32>,
        /// Refresh grace window in seconds (0..=300, 0 is off).
        #[arg(long)]
        refresh_grace: Option<u32>,
        /// Allow password sign-up through client keys.
        #[arg(long)]
        password_sign_up: Option<bool>,
        /// Allow signed-in users to create teams.
        #[arg(long)]
        client_team_creation: Option<bool>,
        /// Put tenant-wide permissions in access tokens.
        #[arg(long)]
        permission_claims: Option<bool>,
        #[command(flatten)]
        email: email::EmailConfigFlags,
        #[command(flatten)]
        mfa: Box<factors::MfaConfigFlags>,
        #[command(flatten)]
        anonymous: impersonation::AnonymousConfigFlags,
    },
}

#[derive(Debug, Args)]
pub struct TenantFlag {
    /// Tenant id.
    #[arg(long, short = 't')]
    pub tenant: String,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user.
    Create {
        #[command(flatten)]
        tenant: TenantFlag,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        display_name: String,
        /// Read a password from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        email_verified: bool,
    },
    /// List users, optionally by email prefix.
    List {
        #[command(flatten)]
        tenant: TenantFlag,
        #[arg(long, default_value = "")]
        email_prefix: String,
        #[arg(long, default_value_t = 50)]
        page_size: u32,
        #[arg(long, default_value = "")]
        page_token: String,
        /// Also list anonymous users.
        #[arg(long)]
        include_anonymous: bool,
    },
    /// Show a user.
    Get {
        #[command(flatten)]
        tenant: TenantFlag,
        user_id: String,
    },
    /// Change a user.
    Update {
        #[command(flatten)]
        tenant: TenantFlag,
        user_id: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        email_verified: Option<bool>,
        /// Read a new password from standard input (revokes every session).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Suspend a user and revoke its sessions.
    Suspend {
        #[command(flatten)]
        tenant: TenantFlag,
        user_id: String,
    },
    /// Lift a suspension.
    Reactivate {
        #[command(flatten)]
        tenant: TenantFlag,
        user_id: String,
    },
    /// Ban a user for good, with a reason; revokes its sessions (`reactivate` lifts it).
    Ban {
        #[command(flatten)]
        tenant: TenantFlag,
        user_id: String,
        /// Why (1 to 500 characters); kept on the user and in the audit ledger.
        #[arg(long)]
        reason: String,
    },
    /// Clear a user's lockout after failed second-factor tries.
    Unlock {
        #[command(flatten)]
        tenant: TenantFlag,
        user_id: String,
    },
    /// A user's second factors.
    #[command(subcommand)]
    Factors(factors::FactorCommand),
    /// Start an impersonation session as a user; prints its tokens.
    Impersonate(impersonation::ImpersonateArgs),
    /// The upstream providers linked to a user.
    Links {
        #[command(flatten)]
        tenant: TenantFlag,
        user_id: String,
    },
    /// Delete a user and its sessions.
    Delete {
        #[command(flatten)]
        tenant: TenantFlag,
        user_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum SessionCommand {
    /// List a user's sessions.
    List {
        #[command(flatten)]
        tenant: TenantFlag,
        #[arg(long)]
        user: String,
        /// Include revoked and expired sessions.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a session.
    Revoke {
        #[command(flatten)]
        tenant: TenantFlag,
        session_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Rotate a tenant's signing key; the old key stays in the JWKS until its tokens expire.
    Rotate {
        #[command(flatten)]
        tenant: TenantFlag,
    },
}

fn read_password() -> NodeResult<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(NodeError::PasswordInput)?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

/// Runs one admin command.
pub async fn run(args: AdminArgs) -> NodeResult<()> {
    let operator_key = match std::env::var("GATEHOUSE_OPERATOR_KEY") {
        Ok(key) if !key.is_empty() => key,
        _ => std::fs::read_to_string(&args.operator_key_file)
            .map(|text| text.trim().to_owned())
            .map_err(|source| NodeError::OperatorKey {
                path: args.operator_key_file.clone(),
                source,
            })?,
    };
    let client = Client::builder(args.endpoint.clone())
        .credentials(Credentials::Operator { operator_key })
        .build()
        .await
        .map_err(|source| NodeError::Connect {
            endpoint: args.endpoint.clone(),
            source,
        })?;
    let out = Output { json: args.json };
    match args.command {
        AdminCommand::Tenant(command) => match command {
            TenantCommand::Create { name, id } => {
                let reply = client.create_tenant(&name, id.as_deref()).await?;
                out.created_tenant(&reply);
            }
            TenantCommand::List {
                page_size,
                page_token,
            } => {
                let reply = client.list_tenants(page_size, &page_token).await?;
                out.tenants(&reply.tenants, &reply.next_page_token);
            }
            TenantCommand::Config {
                tenant_id,
                access_token_ttl,
                session_absolute_ttl,
                session_idle_ttl,
                refresh_grace,
                password_sign_up,
                client_team_creation,
                permission_claims,
                email,
                mfa,
                anonymous,
            } => {
                let mut request = v1::UpdateTenantConfigRequest {
                    tenant_id,
                    access_token_ttl_seconds: access_token_ttl,
                    session_absolute_ttl_seconds: session_absolute_ttl,
                    session_idle_ttl_seconds: session_idle_ttl,
                    refresh_grace_seconds: refresh_grace,
                    password_sign_up_enabled: password_sign_up,
                    client_team_creation_enabled: client_team_creation,
                    permission_claims_in_token: permission_claims,
                    ..v1::UpdateTenantConfigRequest::default()
                };
                email.apply(&mut request);
                mfa.apply(&mut request);
                anonymous.apply(&mut request);
                let tenant = client.update_tenant_config(request).await?;
                out.tenant(&tenant);
            }
            TenantCommand::Get { tenant_id } => {
                let tenant = client.get_tenant(&tenant_id).await?;
                out.tenant(&tenant);
            }
        },
        AdminCommand::User(command) => run_user(&client, &out, command).await?,
        AdminCommand::Session(command) => match command {
            SessionCommand::List { tenant, user, all } => {
                let sessions = client
                    .with_tenant(&tenant.tenant)
                    .list_sessions(&user, all)
                    .await?;
                out.sessions(&sessions);
            }
            SessionCommand::Revoke { tenant, session_id } => {
                client
                    .with_tenant(&tenant.tenant)
                    .revoke_session(&session_id)
                    .await?;
                out.done("revoked", &session_id);
            }
        },
        AdminCommand::Share(command) => shares::run_share(&client, &out, command).await?,
        AdminCommand::Webhook(command) => webhooks::run_webhook(&client, &out, command).await?,
        AdminCommand::Audit(command) => audit::run_audit(&client, &out, command).await?,
        AdminCommand::Email(command) => email::run_email(&client, &out, command).await?,
        AdminCommand::Apikey(command) => api_keys::run_api_key(&client, &out, command).await?,
        AdminCommand::Oauth(command) => oauth::run_oauth(&client, &out, command).await?,
        AdminCommand::OidcClient(command) => {
            oidc_clients::run_oidc_client(&client, &out, command).await?
        }
        AdminCommand::Team(command) => teams::run_team(&client, &out, command).await?,
        AdminCommand::Permission(command) => teams::run_permission(&client, &out, command).await?,
        AdminCommand::Cluster(ClusterCommand::Status) => {
            let status = client.cluster_status().await?;
            out.cluster(&status);
        }
        AdminCommand::Cluster(ClusterCommand::Owner {
            tenant,
            kind,
            entity_id,
        }) => {
            let owner = client
                .get_owner(
                    kind.into(),
                    &tenant.tenant,
                    entity_id.as_deref().unwrap_or_default(),
                )
                .await?;
            out.owner(&owner);
        }
        AdminCommand::Key(KeyCommand::Rotate { tenant }) => {
            let key = client.rotate_signing_key(&tenant.tenant).await?;
            out.signing_key(&key);
        }
    }
    Ok(())
}

async fn run_user(client: &Client, out: &Output, command: UserCommand) -> NodeResult<()> {
    let stdin_password = |wanted: bool| -> NodeResult<Option<String>> {
        if !wanted {
            return Ok(None);
        }
        read_password().map(Some)
    };
    match command {
        UserCommand::Create {
            tenant,
            email,
            display_name,
            password_stdin,
            email_verified,
        } => {
            let user = client
                .with_tenant(&tenant.tenant)
                .create_user(v1::CreateUserRequest {
                    email,
                    password: stdin_password(password_stdin)?,
                    display_name,
                    email_verified,
                })
                .await?;
            out.user(&user);
        }
        UserCommand::List {
            tenant,
            email_prefix,
            page_size,
            page_token,
            include_anonymous,
        } => {
            let reply = client
                .with_tenant(&tenant.tenant)
                .list_users(v1::ListUsersRequest {
                    page_size,
                    page_token,
                    email_prefix,
                    include_anonymous,
                })
                .await?;
            out.users(&reply.users, &reply.next_page_token);
        }
        UserCommand::Get { tenant, user_id } => {
            out.user(
                &client
                    .with_tenant(&tenant.tenant)
                    .get_user(&user_id)
                    .await?,
            );
        }
        UserCommand::Update {
            tenant,
            user_id,
            email,
            display_name,
            email_verified,
            password_stdin,
        } => {
            let user = client
                .with_tenant(&tenant.tenant)
                .update_user(v1::UpdateUserRequest {
                    user_id,
                    email,
                    display_name,
                    password: stdin_password(password_stdin)?,
                    email_verified,
                    ..v1::UpdateUserRequest::default()
                })
                .await?;
            out.user(&user);
        }
        UserCommand::Suspend { tenant, user_id } => {
            out.user(
                &client
                    .with_tenant(&tenant.tenant)
                    .suspend_user(&user_id)
                    .await?,
            );
        }
        UserCommand::Reactivate { tenant, user_id } => {
            out.user(
                &client
                    .with_tenant(&tenant.tenant)
                    .reactivate_user(&user_id)
                    .await?,
            );
        }
        UserCommand::Ban {
            tenant,
            user_id,
            reason,
        } => {
            out.user(
                &client
                    .with_tenant(&tenant.tenant)
                    .ban_user(&user_id, &reason)
                    .await?,
            );
        }
        UserCommand::Unlock { tenant, user_id } => {
            let unlocked = client
                .with_tenant(&tenant.tenant)
                .unlock_user(&user_id)
                .await?;
            out.value(
                &serde_json::json!({
                    "result": "unlocked",
                    "id": user_id,
                    "cleared_failures": unlocked.cleared_failures,
                    "cleared_password_limits": unlocked.cleared_password_limits,
                }),
                &format!(
                    "unlocked {user_id}: {} second-factor failures, {} password limits cleared",
                    unlocked.cleared_failures, unlocked.cleared_password_limits
                ),
            );
        }
        UserCommand::Factors(command) => factors::run_factors(client, out, command).await?,
        UserCommand::Impersonate(args) => {
            impersonation::run_impersonate(client, out, args).await?;
        }
        UserCommand::Links { tenant, user_id } => {
            oauth::run_links(client, out, &tenant, &user_id).await?;
        }
        UserCommand::Delete { tenant, user_id } => {
            client
                .with_tenant(&tenant.tenant)
                .delete_user(&user_id)
                .await?;
            out.done("deleted", &user_id);
        }
    }
    Ok(())
}

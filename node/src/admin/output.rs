//! Human tables by default, JSON with `--json`.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use gatehouse_protocol::v1;
use serde_json::{Value, json};

/// How results are printed.
pub struct Output {
    /// JSON instead of tables.
    pub json: bool,
}

fn time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp.map_or_else(String::new, |at| at.to_string())
}

fn time_json(timestamp: Option<&prost_types::Timestamp>) -> Value {
    timestamp.map_or(Value::Null, |at| Value::String(at.to_string()))
}

fn user_state(state: i32) -> &'static str {
    match v1::UserState::try_from(state) {
        Ok(v1::UserState::Active) => "active",
        Ok(v1::UserState::Suspended) => "suspended",
        Ok(v1::UserState::Banned) => "banned",
        _ => "unknown",
    }
}

fn user_json(user: &v1::User) -> Value {
    json!({
        "user_id": user.user_id,
        "email": user.email,
        "display_name": user.display_name,
        "state": user_state(user.state),
        "ban_reason": user.ban_reason,
        "email_verified": user.email_verified,
        "has_password": user.has_password,
        "is_anonymous": user.is_anonymous,
        "created_at": time_json(user.created_at.as_ref()),
        "updated_at": time_json(user.updated_at.as_ref()),
    })
}

fn session_json(session: &v1::Session) -> Value {
    json!({
        "session_id": session.session_id,
        "user_id": session.user_id,
        "created_at": time_json(session.created_at.as_ref()),
        "last_used_at": time_json(session.last_used_at.as_ref()),
        "expires_at": time_json(session.expires_at.as_ref()),
        "ip_address": session.ip_address,
        "user_agent": session.user_agent,
        "revoked": session.revoked,
        "revoked_reason": session.revoked_reason,
        "impersonator": session.impersonator,
        "impersonation_reason": session.impersonation_reason,
        "anonymous": session.anonymous,
    })
}

fn key_json(key: &v1::SigningKey) -> Value {
    json!({
        "kid": key.kid,
        "algorithm": key.algorithm,
        "active": key.active,
        "created_at": time_json(key.created_at.as_ref()),
    })
}

fn tenant_json(tenant: &v1::Tenant) -> Value {
    json!({
        "tenant_id": tenant.tenant_id,
        "display_name": tenant.display_name,
        "created_at": time_json(tenant.created_at.as_ref()),
        "config": super::factors::config_json(tenant.config.as_ref()),
        "signing_keys": tenant.signing_keys.iter().map(key_json).collect::<Vec<_>>(),
        "api_keys": tenant.api_keys.iter().map(|key| json!({
            "key_id": key.key_id, "kind": key.kind, "display": key.display,
        })).collect::<Vec<_>>(),
    })
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    table
}

impl Output {
    fn print_json(&self, value: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }

    /// A new tenant with its one-time secrets.
    pub fn created_tenant(&self, reply: &v1::CreateTenantReply) {
        let tenant_id = reply
            .tenant
            .as_ref()
            .map_or("", |tenant| tenant.tenant_id.as_str());
        if self.json {
            self.print_json(&json!({
                "tenant_id": tenant_id,
                "publishable_client_key": reply.publishable_client_key,
                "secret_server_key": reply.secret_server_key,
            }));
        } else {
            let mut out = table(&["field", "value"]);
            out.add_row(vec!["tenant_id", tenant_id]);
            out.add_row(vec![
                "publishable_client_key",
                &reply.publishable_client_key,
            ]);
            out.add_row(vec!["secret_server_key", &reply.secret_server_key]);
            println!("{out}");
            println!("The secret server key is shown only now; store it safely.");
        }
    }

    /// One tenant.
    pub fn tenant(&self, tenant: &v1::Tenant) {
        if self.json {
            self.print_json(&tenant_json(tenant));
            return;
        }
        let mut out = table(&["field", "value"]);
        out.add_row(vec!["tenant_id", &tenant.tenant_id]);
        out.add_row(vec!["display_name", &tenant.display_name]);
        out.add_row(vec![
            "created_at".to_owned(),
            time(tenant.created_at.as_ref()),
        ]);
        for (field, value) in super::factors::config_rows(tenant.config.as_ref()) {
            out.add_row(vec![field, value]);
        }
        for key in &tenant.signing_keys {
            let state = if key.active { "active" } else { "retired" };
            out.add_row(vec![
                format!("signing key {}", key.kid),
                format!("{} {state}", key.algorithm),
            ]);
        }
        for key in &tenant.api_keys {
            out.add_row(vec![
                format!("{} key {}", key.kind, key.key_id),
                key.display.clone(),
            ]);
        }
        println!("{out}");
    }

    /// A page of tenants.
    pub fn tenants(&self, tenants: &[v1::Tenant], next_page_token: &str) {
        if self.json {
            self.print_json(&json!({
                "tenants": tenants.iter().map(tenant_json).collect::<Vec<_>>(),
                "next_page_token": next_page_token,
            }));
            return;
        }
        let mut out = table(&["tenant_id", "display_name", "created_at"]);
        for tenant in tenants {
            out.add_row(vec![
                tenant.tenant_id.clone(),
                tenant.display_name.clone(),
                time(tenant.created_at.as_ref()),
            ]);
        }
        println!("{out}");
        if !next_page_token.is_empty() {
            println!("next page: --page-token {next_page_token}");
        }
    }

    /// One user.
    pub fn user(&self, user: &v1::User) {
        if self.json {
            self.print_json(&user_json(user));
        } else {
            self.users(std::slice::from_ref(user), "");
        }
    }

    /// A page of users.
    pub fn users(&self, users: &[v1::User], next_page_token: &str) {
        if self.json {
            self.print_json(&json!({
                "users": users.iter().map(user_json).collect::<Vec<_>>(),
                "next_page_token": next_page_token,
            }));
            return;
        }
        let mut out = table(&[
            "user_id",
            "email",
            "display_name",
            "state",
            "verified",
            "created_at",
        ]);
        for user in users {
            out.add_row(vec![
                user.user_id.clone(),
                user.email.clone(),
                user.display_name.clone(),
                if user.ban_reason.is_empty() {
                    user_state(user.state).to_owned()
                } else {
                    format!("{} ({})", user_state(user.state), user.ban_reason)
                },
                user.email_verified.to_string(),
                time(user.created_at.as_ref()),
            ]);
        }
        println!("{out}");
        if !next_page_token.is_empty() {
            println!("next page: --page-token {next_page_token}");
        }
    }

    /// A user's sessions.
    pub fn sessions(&self, sessions: &[v1::Session]) {
        if self.json {
            self.print_json(
                &json!({ "sessions": sessions.iter().map(session_json).collect::<Vec<_>>() }),
            );
            return;
        }
        let mut out = table(&[
            "session_id",
            "created_at",
            "last_used_at",
            "ip",
            "user_agent",
            "revoked",
        ]);
        for session in sessions {
            out.add_row(vec![
                session.session_id.clone(),
                time(session.created_at.as_ref()),
                time(session.last_used_at.as_ref()),
                session.ip_address.clone(),
                session.user_agent.clone(),
                if session.revoked {
                    session.revoked_reason.clone()
                } else {
                    String::new()
                },
            ]);
        }
        println!("{out}");
    }

    /// The cluster view of one node.
    pub fn cluster(&self, status: &v1::ClusterStatus) {
        if self.json {
            self.print_json(&json!({
                "self_node_id": status.self_node_id,
                "mode": status.mode,
                "members": status.members.iter().map(|member| json!({
                    "node_id": member.node_id,
                    "generation": member.generation,
                    "status": member.status,
                    "grpc_addr": member.grpc_addr,
                    "http_addr": member.http_addr,
                    "actors": member.actors,
                    "is_self": member.is_self,
                })).collect::<Vec<_>>(),
            }));
            return;
        }
        let mut out = table(&[
            "node_id",
            "status",
            "generation",
            "grpc",
            "http",
            "tenant actors",
            "session actors",
        ]);
        for member in &status.members {
            let actors = |kind: &str| {
                member
                    .actors
                    .get(kind)
                    .copied()
                    .unwrap_or_default()
                    .to_string()
            };
            let name = if member.is_self {
                format!("{} (this node)", member.node_id)
            } else {
                member.node_id.clone()
            };
            out.add_row(vec![
                name,
                member.status.clone(),
                member.generation.to_string(),
                member.grpc_addr.clone(),
                member.http_addr.clone(),
                actors("tenant"),
                actors("session"),
            ]);
        }
        println!("{out}");
    }

    /// The node owning an actor.
    pub fn owner(&self, owner: &v1::ActorOwner) {
        if self.json {
            self.print_json(&json!({
                "key": owner.key,
                "node_id": owner.node_id,
                "generation": owner.generation,
                "grpc_addr": owner.grpc_addr,
                "http_addr": owner.http_addr,
                "is_self": owner.is_self,
            }));
            return;
        }
        let mut out = table(&["actor", "owner", "generation", "grpc", "http"]);
        let name = if owner.is_self {
            format!("{} (this node)", owner.node_id)
        } else {
            owner.node_id.clone()
        };
        out.add_row(vec![
            owner.key.clone(),
            name,
            owner.generation.to_string(),
            owner.grpc_addr.clone(),
            owner.http_addr.clone(),
        ]);
        println!("{out}");
    }

    /// A signing key.
    pub fn signing_key(&self, key: &v1::SigningKey) {
        if self.json {
            self.print_json(&key_json(key));
        } else {
            println!("new signing key {} ({}) is active", key.kid, key.algorithm);
        }
    }

    /// A JSON value, or its human text.
    pub fn value(&self, value: &Value, text: &str) {
        if self.json {
            self.print_json(value);
        } else {
            println!("{text}");
        }
    }

    /// A completed action on one id.
    pub fn done(&self, action: &str, id: &str) {
        if self.json {
            self.print_json(&json!({ "result": action, "id": id }));
        } else {
            println!("{action} {id}");
        }
    }
}

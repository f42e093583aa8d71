//! User management for server and operator callers, and the signed-in user's own record.

use crate::access::Caller;
use crate::domain::audit::{AuditOrigin, current_source_ip};
use crate::domain::passwords::{HashSource, validate_new_password};
use crate::domain::users::{
    self, NewUser, UserChanges, UserCursor, UserRecord, UserState, parse_email, validate_metadata,
    validate_user_display_name,
};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

/// A page of users.
#[derive(Debug, Clone)]
pub struct UserPage {
    /// The users.
    pub users: Vec<UserRecord>,
    /// Token of the next page, empty at the end.
    pub next_page_token: String,
}

/// A requested change to a user; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    /// New email.
    pub email: Option<String>,
    /// New display name.
    pub display_name: Option<String>,
    /// New password (revokes every session).
    pub password: Option<String>,
    /// New verification flag.
    pub email_verified: Option<bool>,
    /// New client metadata (JSON object).
    pub client_metadata: Option<String>,
    /// New client read-only metadata (JSON object).
    pub client_read_only_metadata: Option<String>,
    /// New server metadata (JSON object).
    pub server_metadata: Option<String>,
}

impl Gatehouse {
    /// Creates a user (password optional).
    pub async fn create_user(
        &self,
        caller: &Caller,
        email: &str,
        password: Option<&str>,
        display_name: &str,
        email_verified: bool,
    ) -> DomainResult<UserRecord> {
        let tenant = caller.require_server()?;
        let email = parse_email(email)?;
        validate_user_display_name(display_name)?;
        let password_hash = match password {
            Some(password) => {
                validate_new_password(password)?;
                let source_ip = current_source_ip();
                let source = HashSource::new(tenant.tenant_id(), &source_ip);
                Some(self.services.hasher.hash(source, password).await?)
            }
            None => None,
        };
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let origin = &AuditOrigin::of(caller);
        services
            .db
            .run(|tx| {
                let new_user = NewUser {
                    email: email.clone(),
                    display_name: display_name.trim().to_owned(),
                    password_hash: password_hash.clone(),
                    email_verified,
                };
                async move {
                    users::changes::create(&tx, &services.context, tenant_id, new_user, origin)
                        .await
                }
            })
            .await
    }

    /// Reads a user.
    pub async fn get_user(&self, caller: &Caller, user_id: &str) -> DomainResult<UserRecord> {
        let tenant = caller.require_server()?;
        let user_id = super::parse_id("user_id", user_id)?;
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move { users::read_user(&tx, tenant_id, user_id).await })
            .await
    }

    /// The user of the caller's access token.
    pub async fn get_current_user(&self, caller: &Caller) -> DomainResult<UserRecord> {
        let (tenant, claims) = caller.require_user_even_restricted()?;
        let user_id =
            uuid::Uuid::try_parse(&claims.sub).map_err(|_| DomainError::InvalidAccessToken)?;
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move { users::read_user(&tx, tenant_id, user_id).await })
            .await
    }

    /// Applies changes to a user.
    pub async fn update_user(
        &self,
        caller: &Caller,
        user_id: &str,
        update: UserUpdate,
    ) -> DomainResult<UserRecord> {
        let tenant = caller.tenant()?;
        let user_id = match caller.acting_user()? {
            // A signed-in client changes only itself, and only its client-owned fields.
            Some(me) => {
                if !user_id.is_empty() && user_id != me.to_string() {
                    return Err(DomainError::PermissionDenied(
                        "clients update only their own user",
                    ));
                }
                let server_owned = update.email.is_some()
                    || update.password.is_some()
                    || update.email_verified.is_some()
                    || update.client_read_only_metadata.is_some()
                    || update.server_metadata.is_some();
                if server_owned {
                    return Err(DomainError::PermissionDenied(
                        "clients may change only display_name and client_metadata_json",
                    ));
                }
                me
            }
            None => super::parse_id("user_id", user_id)?,
        };
        let email = update.email.as_deref().map(parse_email).transpose()?;
        if let Some(name) = &update.display_name {
            validate_user_display_name(name)?;
        }
        for (field, value) in [
            ("client_metadata_json", &update.client_metadata),
            (
                "client_read_only_metadata_json",
                &update.client_read_only_metadata,
            ),
            ("server_metadata_json", &update.server_metadata),
        ] {
            if let Some(value) = value {
                validate_metadata(field, value)?;
            }
        }
        let password_hash = match update.password.as_deref() {
            Some(password) => {
                validate_new_password(password)?;
                let source_ip = current_source_ip();
                let source = HashSource::new(tenant.tenant_id(), &source_ip);
                Some(self.services.hasher.hash(source, password).await?)
            }
            None => None,
        };
        let changes = UserChanges {
            email,
            display_name: update.display_name.map(|name| name.trim().to_owned()),
            password_hash,
            email_verified: update.email_verified,
            client_metadata: update.client_metadata,
            client_read_only_metadata: update.client_read_only_metadata,
            server_metadata: update.server_metadata,
        };
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let changes = &changes;
        // Operators and servers changing a user are audited; a user editing itself is not.
        let audited = caller
            .is_trusted()
            .then(|| (AuditOrigin::of(caller), changed_fields(changes)));
        let audited = &audited;
        services
            .db
            .run(|tx| async move {
                let audited = audited
                    .as_ref()
                    .map(|(origin, fields)| (origin, fields.as_slice()));
                let context = &services.context;
                let changes = changes.clone();
                users::changes::update(&tx, context, tenant_id, user_id, changes, audited).await
            })
            .await
    }

    /// Deletes a user with its email index entry and sessions.
    pub async fn delete_user(&self, caller: &Caller, user_id: &str) -> DomainResult<()> {
        let tenant = caller.require_server()?;
        let user_id = super::parse_id("user_id", user_id)?;
        let tenant_id = tenant.tenant_id();
        let services = &self.services;
        let origin = &AuditOrigin::of(caller);
        services
            .db
            .run(|tx| async move {
                users::changes::delete(&tx, &services.context, tenant_id, user_id, origin).await
            })
            .await
            .map(drop)
    }

    /// Lists users by creation, or by email when `email_prefix` is set; anonymous users only
    /// with `include_anonymous` (and never by email: they have none).
    pub async fn list_users(
        &self,
        caller: &Caller,
        page_size: u32,
        page_token: &str,
        email_prefix: &str,
        include_anonymous: bool,
    ) -> DomainResult<UserPage> {
        let tenant = caller.require_server()?;
        if email_prefix.len() > users::MAX_EMAIL_BYTES || email_prefix.chars().any(char::is_control)
        {
            return Err(DomainError::invalid(
                "email_prefix",
                "is not a valid email prefix",
            ));
        }
        let limit = super::page_size(page_size);
        let prefix = (!email_prefix.is_empty()).then(|| email_prefix.trim());
        let cursor = match prefix {
            None => super::decode_page_token('u', page_token)?
                .map(|id| super::parse_id("page_token", &id).map(UserCursor::AfterId))
                .transpose()?,
            Some(_) => super::decode_page_token('e', page_token)?.map(UserCursor::AfterEmail),
        };
        let tenant_id = tenant.tenant_id();
        let cursor = &cursor;
        let (page, next) = self
            .services
            .db
            .run(|tx| async move {
                let cursor = cursor.clone();
                users::list_users(&tx, tenant_id, prefix, cursor, limit, include_anonymous).await
            })
            .await?;
        let next_page_token = match next {
            Some(UserCursor::AfterId(id)) => super::encode_page_token('u', &id.to_string()),
            Some(UserCursor::AfterEmail(email)) => super::encode_page_token('e', &email),
            None => String::new(),
        };
        Ok(UserPage {
            users: page,
            next_page_token,
        })
    }

    /// Suspends a user and revokes its sessions.
    pub async fn suspend_user(&self, caller: &Caller, user_id: &str) -> DomainResult<UserRecord> {
        self.set_user_state(caller, user_id, UserState::Suspended, None)
            .await
    }

    /// Lifts a suspension.
    pub async fn reactivate_user(
        &self,
        caller: &Caller,
        user_id: &str,
    ) -> DomainResult<UserRecord> {
        self.set_user_state(caller, user_id, UserState::Active, None)
            .await
    }

    /// Bans a user for good (until an operator reactivates them), with a reason, and revokes
    /// its sessions.
    pub async fn ban_user(
        &self,
        caller: &Caller,
        user_id: &str,
        reason: &str,
    ) -> DomainResult<UserRecord> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(DomainError::invalid(
                "reason",
                "must be 1 to 500 characters",
            ));
        }
        self.set_user_state(caller, user_id, UserState::Banned, Some(reason))
            .await
    }

    async fn set_user_state(
        &self,
        caller: &Caller,
        user_id: &str,
        state: UserState,
        ban_reason: Option<&str>,
    ) -> DomainResult<UserRecord> {
        let tenant = caller.require_server()?;
        let user_id = super::parse_id("user_id", user_id)?;
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let origin = &AuditOrigin::of(caller);
        services
            .db
            .run(|tx| async move {
                let context = &services.context;
                let reason = ban_reason;
                users::changes::set_state(&tx, context, tenant_id, user_id, state, reason, origin)
                    .await
            })
            .await
    }
}

/// Names of the fields a change touches, for the audit ledger (values stay out of it).
fn changed_fields(changes: &UserChanges) -> Vec<&'static str> {
    [
        ("email", changes.email.is_some()),
        ("display_name", changes.display_name.is_some()),
        ("password", changes.password_hash.is_some()),
        ("email_verified", changes.email_verified.is_some()),
        ("client_metadata", changes.client_metadata.is_some()),
        (
            "client_read_only_metadata",
            changes.client_read_only_metadata.is_some(),
        ),
        ("server_metadata", changes.server_metadata.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

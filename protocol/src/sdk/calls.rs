//! Typed helpers over the generated clients; each returns the reply or an [`ApiError`].
//!
//! Only idempotent reads (get, list) are retried on `UNAVAILABLE`. Sign-up, sign-in and
//! refresh never are: a retried refresh could present a spent token and look like reuse.

use super::client::{Client, once};
use crate::status::ApiError;
use crate::v1;

impl Client {
    /// Creates a user with an email and password and signs it in. When the tenant protects
    /// sign-up from enumeration the reply has `verification_required` set and no tokens or
    /// user, whether the address was new or taken: the new user verifies the emailed code
    /// ([`Client::verify_email`]) and then signs in.
    pub async fn sign_up_with_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<v1::SignInReply, ApiError> {
        let request = v1::SignUpWithPasswordRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            display_name: String::new(),
        };
        once(self.auth().sign_up_with_password(request)).await
    }

    /// Signs in with an email and password.
    pub async fn sign_in_with_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<v1::SignInReply, ApiError> {
        self.sign_in_with_password_on_device(email, password, "")
            .await
    }

    /// Signs in with email and password from a known device: `device_token` is the
    /// `device_token` of an earlier [`SignInReply`](v1::SignInReply) (empty: unknown device).
    pub async fn sign_in_with_password_on_device(
        &self,
        email: &str,
        password: &str,
        device_token: &str,
    ) -> Result<v1::SignInReply, ApiError> {
        let request = v1::SignInWithPasswordRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            device_token: device_token.to_owned(),
        };
        once(self.auth().sign_in_with_password(request)).await
    }

    /// Exchanges a refresh token for a new token pair; the presented token is spent.
    pub async fn refresh_session(
        &self,
        refresh_token: &str,
    ) -> Result<v1::RefreshSessionReply, ApiError> {
        let request = v1::RefreshSessionRequest {
            refresh_token: refresh_token.to_owned(),
        };
        once(self.auth().refresh_session(request)).await
    }

    /// Ends the session of `refresh_token`, or of the bearer access token when it is empty.
    pub async fn sign_out(&self, refresh_token: &str) -> Result<(), ApiError> {
        let request = v1::SignOutRequest {
            refresh_token: refresh_token.to_owned(),
        };
        once(self.auth().sign_out(request)).await.map(drop)
    }

    /// Creates a user (server or operator credentials).
    pub async fn create_user(&self, request: v1::CreateUserRequest) -> Result<v1::User, ApiError> {
        once(self.users().create_user(request)).await
    }

    /// Fetches a user by id.
    pub async fn get_user(&self, user_id: &str) -> Result<v1::User, ApiError> {
        self.read(|| {
            let mut users = self.users();
            let request = v1::GetUserRequest {
                user_id: user_id.to_owned(),
            };
            async move { users.get_user(request).await }
        })
        .await
    }

    /// Fetches the user of the bearer access token.
    pub async fn get_current_user(&self) -> Result<v1::User, ApiError> {
        self.read(|| {
            let mut users = self.users();
            async move { users.get_current_user(v1::GetCurrentUserRequest {}).await }
        })
        .await
    }

    /// Changes the fields of a user that are set in `request`.
    pub async fn update_user(&self, request: v1::UpdateUserRequest) -> Result<v1::User, ApiError> {
        once(self.users().update_user(request)).await
    }

    /// Deletes a user with its email index and sessions.
    pub async fn delete_user(&self, user_id: &str) -> Result<(), ApiError> {
        let request = v1::DeleteUserRequest {
            user_id: user_id.to_owned(),
        };
        once(self.users().delete_user(request)).await.map(drop)
    }

    /// Lists one page of users.
    pub async fn list_users(
        &self,
        request: v1::ListUsersRequest,
    ) -> Result<v1::ListUsersReply, ApiError> {
        self.read(|| {
            let mut users = self.users();
            let request = request.clone();
            async move { users.list_users(request).await }
        })
        .await
    }

    /// Blocks a user's sign-in and refresh and revokes its sessions.
    pub async fn suspend_user(&self, user_id: &str) -> Result<v1::User, ApiError> {
        let request = v1::SuspendUserRequest {
            user_id: user_id.to_owned(),
        };
        once(self.users().suspend_user(request)).await
    }

    /// Lifts a user's suspension.
    pub async fn reactivate_user(&self, user_id: &str) -> Result<v1::User, ApiError> {
        let request = v1::ReactivateUserRequest {
            user_id: user_id.to_owned(),
        };
        once(self.users().reactivate_user(request)).await
    }

    /// Lists a user's sessions, with revoked and expired ones when `include_inactive`.
    pub async fn list_sessions(
        &self,
        user_id: &str,
        include_inactive: bool,
    ) -> Result<Vec<v1::Session>, ApiError> {
        let reply = self
            .read(|| {
                let mut sessions = self.sessions();
                let request = v1::ListSessionsRequest {
                    user_id: user_id.to_owned(),
                    include_inactive,
                };
                async move { sessions.list_sessions(request).await }
            })
            .await?;
        Ok(reply.sessions)
    }

    /// Revokes one session.
    pub async fn revoke_session(&self, session_id: &str) -> Result<(), ApiError> {
        let request = v1::RevokeSessionRequest {
            session_id: session_id.to_owned(),
        };
        once(self.sessions().revoke_session(request))
            .await
            .map(drop)
    }

    /// Revokes every session of a user and returns how many were active.
    pub async fn revoke_user_sessions(&self, user_id: &str) -> Result<u32, ApiError> {
        let request = v1::RevokeUserSessionsRequest {
            user_id: user_id.to_owned(),
        };
        let reply = once(self.sessions().revoke_user_sessions(request)).await?;
        Ok(reply.revoked)
    }

    /// Creates a tenant; the reply holds its keys, the secret one shown only this once.
    pub async fn create_tenant(
        &self,
        display_name: &str,
        tenant_id: Option<&str>,
    ) -> Result<v1::CreateTenantReply, ApiError> {
        let request = v1::CreateTenantRequest {
            display_name: display_name.to_owned(),
            tenant_id: tenant_id.unwrap_or_default().to_owned(),
        };
        once(self.tenants().create_tenant(request)).await
    }

    /// Fetches a tenant by id.
    pub async fn get_tenant(&self, tenant_id: &str) -> Result<v1::Tenant, ApiError> {
        self.read(|| {
            let mut tenants = self.tenants();
            let request = v1::GetTenantRequest {
                tenant_id: tenant_id.to_owned(),
            };
            async move { tenants.get_tenant(request).await }
        })
        .await
    }

    /// Lists one page of tenants; an empty `page_token` asks for the first page.
    pub async fn list_tenants(
        &self,
        page_size: u32,
        page_token: &str,
    ) -> Result<v1::ListTenantsReply, ApiError> {
        self.read(|| {
            let mut tenants = self.tenants();
            let request = v1::ListTenantsRequest {
                page_size,
                page_token: page_token.to_owned(),
            };
            async move { tenants.list_tenants(request).await }
        })
        .await
    }

    /// Creates a new active signing key for a tenant.
    pub async fn rotate_signing_key(&self, tenant_id: &str) -> Result<v1::SigningKey, ApiError> {
        let request = v1::RotateSigningKeyRequest {
            tenant_id: tenant_id.to_owned(),
        };
        once(self.tenants().rotate_signing_key(request)).await
    }

    /// Changes tenant settings (operator only).
    pub async fn update_tenant_config(
        &self,
        request: v1::UpdateTenantConfigRequest,
    ) -> Result<v1::Tenant, ApiError> {
        once(self.tenants().update_tenant_config(request)).await
    }

    /// The cluster as the answering node sees it (operator only).
    pub async fn cluster_status(&self) -> Result<v1::ClusterStatus, ApiError> {
        self.read(|| {
            let mut cluster = self.cluster();
            async move {
                cluster
                    .get_cluster_status(v1::GetClusterStatusRequest {})
                    .await
            }
        })
        .await
    }

    /// The node that owns an actor as the answering node sees it (operator only);
    /// `entity_id` is the session or share id, empty for [`v1::ActorKind::Tenant`].
    pub async fn get_owner(
        &self,
        kind: v1::ActorKind,
        tenant_id: &str,
        entity_id: &str,
    ) -> Result<v1::ActorOwner, ApiError> {
        self.read(|| {
            let mut cluster = self.cluster();
            let request = v1::GetOwnerRequest {
                kind: kind as i32,
                tenant_id: tenant_id.to_owned(),
                entity_id: entity_id.to_owned(),
            };
            async move { cluster.get_owner(request).await }
        })
        .await
    }
}

//! `gatehouse.v1.Users`.

use gatehouse_actors::UserUpdate;
use gatehouse_actors::api::user_emails::EmailChange;
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::users_server::Users;
use tonic::{Request, Response, Status};

use super::{Api, convert};

#[tonic::async_trait]
impl Users for Api {
    async fn create_user(
        &self,
        request: Request<v1::CreateUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.rpc("Users/CreateUser", request, |call| async move {
            let body = call.body();
            let user = self
                .gatehouse
                .create_user(
                    &call.caller,
                    &body.email,
                    body.password.as_deref(),
                    &body.display_name,
                    body.email_verified,
                )
                .await?;
            Ok(convert::user(&user, &call.caller))
        })
        .await
    }

    async fn get_user(
        &self,
        request: Request<v1::GetUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.rpc("Users/GetUser", request, |call| async move {
            let user = self
                .gatehouse
                .get_user(&call.caller, &call.body().user_id)
                .await?;
            Ok(convert::user(&user, &call.caller))
        })
        .await
    }

    async fn get_current_user(
        &self,
        request: Request<v1::GetCurrentUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.rpc("Users/GetCurrentUser", request, |call| async move {
            let user = self.gatehouse.get_current_user(&call.caller).await?;
            Ok(convert::user(&user, &call.caller))
        })
        .await
    }

    async fn update_user(
        &self,
        request: Request<v1::UpdateUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.rpc("Users/UpdateUser", request, |call| async move {
            let (caller, body) = call.into_parts();
            let update = UserUpdate {
                email: body.email,
                display_name: body.display_name,
                password: body.password,
                email_verified: body.email_verified,
                client_metadata: body.client_metadata_json,
                client_read_only_metadata: body.client_read_only_metadata_json,
                server_metadata: body.server_metadata_json,
            };
            let user = self
                .gatehouse
                .update_user(&caller, &body.user_id, update)
                .await?;
            Ok(convert::user(&user, &caller))
        })
        .await
    }

    async fn delete_user(
        &self,
        request: Request<v1::DeleteUserRequest>,
    ) -> Result<Response<v1::DeleteUserReply>, Status> {
        self.rpc("Users/DeleteUser", request, |call| async move {
            self.gatehouse
                .delete_user(&call.caller, &call.body().user_id)
                .await?;
            Ok(v1::DeleteUserReply {})
        })
        .await
    }

    async fn list_users(
        &self,
        request: Request<v1::ListUsersRequest>,
    ) -> Result<Response<v1::ListUsersReply>, Status> {
        self.rpc("Users/ListUsers", request, |call| async move {
            let body = call.body();
            let page = self
                .gatehouse
                .list_users(
                    &call.caller,
                    body.page_size,
                    &body.page_token,
                    &body.email_prefix,
                    body.include_anonymous,
                )
                .await?;
            Ok(v1::ListUsersReply {
                users: page
                    .users
                    .iter()
                    .map(|user| convert::user(user, &call.caller))
                    .collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn suspend_user(
        &self,
        request: Request<v1::SuspendUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.rpc("Users/SuspendUser", request, |call| async move {
            let user = self
                .gatehouse
                .suspend_user(&call.caller, &call.body().user_id)
                .await?;
            Ok(convert::user(&user, &call.caller))
        })
        .await
    }

    async fn ban_user(
        &self,
        request: Request<v1::BanUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.rpc("Users/BanUser", request, |call| async move {
            let body = call.body();
            let user = self
                .gatehouse
                .ban_user(&call.caller, &body.user_id, &body.reason)
                .await?;
            Ok(convert::user(&user, &call.caller))
        })
        .await
    }

    async fn reactivate_user(
        &self,
        request: Request<v1::ReactivateUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.rpc("Users/ReactivateUser", request, |call| async move {
            let user = self
                .gatehouse
                .reactivate_user(&call.caller, &call.body().user_id)
                .await?;
            Ok(convert::user(&user, &call.caller))
        })
        .await
    }

    async fn add_user_email(
        &self,
        request: Request<v1::UserEmailRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.user_email("Users/AddUserEmail", request, EmailChange::Add)
            .await
    }

    async fn make_user_email_primary(
        &self,
        request: Request<v1::UserEmailRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.user_email(
            "Users/MakeUserEmailPrimary",
            request,
            EmailChange::MakePrimary,
        )
        .await
    }

    async fn remove_user_email(
        &self,
        request: Request<v1::UserEmailRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.user_email("Users/RemoveUserEmail", request, EmailChange::Remove)
            .await
    }

    async fn impersonate_user(
        &self,
        request: Request<v1::ImpersonateUserRequest>,
    ) -> Result<Response<v1::ImpersonateUserReply>, Status> {
        self.rpc("Users/ImpersonateUser", request, |call| async move {
            let client = call.client_info();
            let body = call.body();
            let signed_in = self
                .gatehouse
                .impersonate_user(
                    &call.caller,
                    &body.user_id,
                    &body.reason,
                    body.duration_seconds,
                    &client,
                )
                .await?;
            Ok(v1::ImpersonateUserReply {
                user_id: signed_in.user.user_id.to_string(),
                session_id: signed_in.session.session_id.to_string(),
                tokens: Some(v1::TokenPair {
                    access_token: signed_in.access_token.token.clone(),
                    access_token_expires_at: Some(convert::timestamp(
                        signed_in.access_token.expires_at,
                    )),
                    refresh_token: signed_in.refresh_token.clone(),
                }),
                user: Some(convert::user(&signed_in.user, &call.caller)),
                session: Some(convert::session(&signed_in.session)),
            })
        })
        .await
    }
}

impl Api {
    /// The three address calls: one change to one of a user's addresses.
    async fn user_email(
        &self,
        method: &'static str,
        request: Request<v1::UserEmailRequest>,
        change: EmailChange,
    ) -> Result<Response<v1::User>, Status> {
        self.rpc(method, request, |call| async move {
            let body = call.body();
            let user = self
                .gatehouse
                .change_user_email(&call.caller, &body.user_id, &body.email, change)
                .await?;
            Ok(convert::user(&user, &call.caller))
        })
        .await
    }
}

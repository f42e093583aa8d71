//! `gatehouse.v1.Users`.

use gatehouse_actors::UserUpdate;
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::users_server::Users;
use tonic::{Request, Response, Status};

use super::{Api, convert, observe, to_status};

#[tonic::async_trait]
impl Users for Api {
    async fn create_user(
        &self,
        request: Request<v1::CreateUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        observe("Users/CreateUser", async {
            let caller = self.caller(&request).await?;
            let body = request.get_ref();
            let user = self
                .gatehouse
                .create_user(
                    &caller,
                    &body.email,
                    body.password.as_deref(),
                    &body.display_name,
                    body.email_verified,
                )
                .await
                .map_err(to_status)?;
            Ok(convert::user(&user, &caller))
        })
        .await
    }

    async fn get_user(
        &self,
        request: Request<v1::GetUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        observe("Users/GetUser", async {
            let caller = self.caller(&request).await?;
            let user = self
                .gatehouse
                .get_user(&caller, &request.get_ref().user_id)
                .await
                .map_err(to_status)?;
            Ok(convert::user(&user, &caller))
        })
        .await
    }

    async fn get_current_user(
        &self,
        request: Request<v1::GetCurrentUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        observe("Users/GetCurrentUser", async {
            let caller = self.caller(&request).await?;
            let user = self
                .gatehouse
                .get_current_user(&caller)
                .await
                .map_err(to_status)?;
            Ok(convert::user(&user, &caller))
        })
        .await
    }

    async fn update_user(
        &self,
        request: Request<v1::UpdateUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        observe("Users/UpdateUser", async {
            let caller = self.caller(&request).await?;
            let body = request.into_inner();
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
                .await
                .map_err(to_status)?;
            Ok(convert::user(&user, &caller))
        })
        .await
    }

    async fn delete_user(
        &self,
        request: Request<v1::DeleteUserRequest>,
    ) -> Result<Response<v1::DeleteUserReply>, Status> {
        observe("Users/DeleteUser", async {
            let caller = self.caller(&request).await?;
            self.gatehouse
                .delete_user(&caller, &request.get_ref().user_id)
                .await
                .map_err(to_status)?;
            Ok(v1::DeleteUserReply {})
        })
        .await
    }

    async fn list_users(
        &self,
        request: Request<v1::ListUsersRequest>,
    ) -> Result<Response<v1::ListUsersReply>, Status> {
        observe("Users/ListUsers", async {
            let caller = self.caller(&request).await?;
            let body = request.get_ref();
            let page = self
                .gatehouse
                .list_users(
                    &caller,
                    body.page_size,
                    &body.page_token,
                    &body.email_prefix,
                )
                .await
                .map_err(to_status)?;
            Ok(v1::ListUsersReply {
                users: page
                    .users
                    .iter()
                    .map(|user| convert::user(user, &caller))
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
        observe("Users/SuspendUser", async {
            let caller = self.caller(&request).await?;
            let user = self
                .gatehouse
                .suspend_user(&caller, &request.get_ref().user_id)
                .await
                .map_err(to_status)?;
            Ok(convert::user(&user, &caller))
        })
        .await
    }

    async fn reactivate_user(
        &self,
        request: Request<v1::ReactivateUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        observe("Users/ReactivateUser", async {
            let caller = self.caller(&request).await?;
            let user = self
                .gatehouse
                .reactivate_user(&caller, &request.get_ref().user_id)
                .await
                .map_err(to_status)?;
            Ok(convert::user(&user, &caller))
        })
        .await
    }
}

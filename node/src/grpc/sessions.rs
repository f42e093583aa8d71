//! `gatehouse.v1.Sessions`.

use gatehouse_protocol::v1;
use gatehouse_protocol::v1::sessions_server::Sessions;
use tonic::{Request, Response, Status};

use super::{Api, convert};

#[tonic::async_trait]
impl Sessions for Api {
    async fn list_sessions(
        &self,
        request: Request<v1::ListSessionsRequest>,
    ) -> Result<Response<v1::ListSessionsReply>, Status> {
        self.rpc("Sessions/ListSessions", request, |call| async move {
            let body = call.body();
            let sessions = self
                .gatehouse
                .list_sessions(&call.caller, &body.user_id, body.include_inactive)
                .await?;
            Ok(v1::ListSessionsReply {
                sessions: sessions.iter().map(convert::session).collect(),
            })
        })
        .await
    }

    async fn revoke_session(
        &self,
        request: Request<v1::RevokeSessionRequest>,
    ) -> Result<Response<v1::RevokeSessionReply>, Status> {
        self.rpc("Sessions/RevokeSession", request, |call| async move {
            self.gatehouse
                .revoke_session(&call.caller, &call.body().session_id)
                .await?;
            Ok(v1::RevokeSessionReply {})
        })
        .await
    }

    async fn revoke_user_sessions(
        &self,
        request: Request<v1::RevokeUserSessionsRequest>,
    ) -> Result<Response<v1::RevokeUserSessionsReply>, Status> {
        self.rpc("Sessions/RevokeUserSessions", request, |call| async move {
            let revoked = self
                .gatehouse
                .revoke_user_sessions(&call.caller, &call.body().user_id)
                .await?;
            Ok(v1::RevokeUserSessionsReply { revoked })
        })
        .await
    }
}

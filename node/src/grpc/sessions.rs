//! `gatehouse.v1.Sessions`.

use gatehouse_protocol::v1;
use gatehouse_protocol::v1::sessions_server::Sessions;
use tonic::{Request, Response, Status};

use super::{Api, convert, observe, to_status};

#[tonic::async_trait]
impl Sessions for Api {
    async fn list_sessions(
        &self,
        request: Request<v1::ListSessionsRequest>,
    ) -> Result<Response<v1::ListSessionsReply>, Status> {
        observe("Sessions/ListSessions", async {
            let caller = self.caller(&request).await?;
            let body = request.get_ref();
            let sessions = self
                .gatehouse
                .list_sessions(&caller, &body.user_id, body.include_inactive)
                .await
                .map_err(to_status)?;
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
        observe("Sessions/RevokeSession", async {
            let caller = self.caller(&request).await?;
            self.gatehouse
                .revoke_session(&caller, &request.get_ref().session_id)
                .await
                .map_err(to_status)?;
            Ok(v1::RevokeSessionReply {})
        })
        .await
    }

    async fn revoke_user_sessions(
        &self,
        request: Request<v1::RevokeUserSessionsRequest>,
    ) -> Result<Response<v1::RevokeUserSessionsReply>, Status> {
        observe("Sessions/RevokeUserSessions", async {
            let caller = self.caller(&request).await?;
            let revoked = self
                .gatehouse
                .revoke_user_sessions(&caller, &request.get_ref().user_id)
                .await
                .map_err(to_status)?;
            Ok(v1::RevokeUserSessionsReply { revoked })
        })
        .await
    }
}

//! The internal node-to-node gRPC service: runs forwarded owner calls on this node.

use std::sync::Arc;

use gatehouse_actors::Gatehouse;
use gatehouse_actors::crypto::constant_time_eq;
use gatehouse_actors::routing::OwnerCall;
use gatehouse_protocol::internal::v1::internal_server::Internal;
use gatehouse_protocol::internal::v1::{ForwardReply, ForwardRequest};
use gatehouse_protocol::{ErrorCode, error_status};
use tonic::{Request, Response, Status};

use super::CLUSTER_SECRET_HEADER;

/// Serves forwarded calls from other nodes that present the cluster secret.
#[derive(Debug, Clone)]
pub struct InternalService {
    gatehouse: Arc<Gatehouse>,
    /// `None` when clustering is off: every internal call is refused.
    secret: Option<Arc<str>>,
}

impl InternalService {
    /// The service; `secret` is the configured cluster secret, if any.
    pub fn new(gatehouse: Arc<Gatehouse>, secret: Option<&str>) -> InternalService {
        InternalService {
            gatehouse,
            secret: secret.filter(|secret| !secret.is_empty()).map(Arc::from),
        }
    }

    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let presented = request
            .metadata()
            .get(CLUSTER_SECRET_HEADER)
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        match &self.secret {
            Some(secret) if constant_time_eq(secret.as_bytes(), presented) => Ok(()),
            _ => Err(error_status(
                ErrorCode::PermissionDenied,
                "node-to-node calls need the cluster secret",
                None,
            )),
        }
    }
}

#[tonic::async_trait]
impl Internal for InternalService {
    async fn forward(
        &self,
        request: Request<ForwardRequest>,
    ) -> Result<Response<ForwardReply>, Status> {
        self.authorize(&request)?;
        let call: OwnerCall =
            ciborium::from_reader(request.get_ref().call.as_slice()).map_err(|error| {
                error_status(
                    ErrorCode::InvalidArgument,
                    format!("undecodable forwarded call: {error}"),
                    Some("call"),
                )
            })?;
        metrics::counter!("gatehouse_forwarded_calls_received_total").increment(1);
        let answer = self.gatehouse.execute_forwarded(call).await;
        let mut reply = Vec::new();
        ciborium::into_writer(&answer, &mut reply).map_err(|error| {
            error_status(ErrorCode::Internal, format!("encode reply: {error}"), None)
        })?;
        Ok(Response::new(ForwardReply { reply }))
    }
}

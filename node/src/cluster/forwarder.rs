//! Sends owner calls to other nodes over the internal gRPC service.

use crate::error::NodeError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use gatehouse_actors::cluster::Member;
use gatehouse_actors::routing::{EncodedReply, ForwardError, Forwarder, OwnerCall, WireError};
use gatehouse_protocol::internal::v1::ForwardRequest;
use gatehouse_protocol::internal::v1::internal_client::InternalClient;
use tonic::transport::{Channel, Endpoint};

use super::CLUSTER_SECRET_HEADER;

/// Deadline of one forwarded call.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to an owner may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Forwards over gRPC, keeping one channel per peer.
pub struct GrpcForwarder {
    secret: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl std::fmt::Debug for GrpcForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcForwarder").finish_non_exhaustive()
    }
}

impl GrpcForwarder {
    /// A forwarder that authenticates with `cluster_secret`.
    pub fn new(cluster_secret: &str) -> Result<GrpcForwarder, NodeError> {
        Ok(GrpcForwarder {
            secret: cluster_secret
                .parse()
                .map_err(|_| NodeError::ClusterSecret)?,
            channels: Mutex::new(HashMap::new()),
        })
    }

    async fn channel(&self, addr: &str) -> Result<Channel, ForwardError> {
        if let Some(channel) = self
            .channels
            .lock()
            .ok()
            .and_then(|channels| channels.get(addr).cloned())
        {
            return Ok(channel);
        }
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|error| ForwardError::Unreachable(format!("bad address {addr}: {error}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FORWARD_TIMEOUT)
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|error| ForwardError::Unreachable(format!("connect {addr}: {error}")))?;
        if let Ok(mut channels) = self.channels.lock() {
            channels.insert(addr.to_owned(), channel.clone());
        }
        Ok(channel)
    }

    fn forget(&self, addr: &str) {
        if let Ok(mut channels) = self.channels.lock() {
            channels.remove(addr);
        }
    }
}

/// Whether a failed call provably never reached the peer (the connection could not be made).
fn never_sent(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        let text = error.to_string().to_lowercase();
        if text.contains("tcp connect error")
            || text.contains("connection refused")
            || text.contains("error trying to connect")
        {
            return true;
        }
        source = error.source();
    }
    false
}

#[async_trait::async_trait]
impl Forwarder for GrpcForwarder {
    async fn forward(
        &self,
        owner: &Member,
        call: &OwnerCall,
    ) -> Result<Result<EncodedReply, WireError>, ForwardError> {
        let channel = self.channel(&owner.grpc_addr).await?;
        let (kind, key) = call.target();
        let mut encoded = Vec::new();
        ciborium::into_writer(call, &mut encoded)
            .map_err(|error| ForwardError::Unreachable(format!("encode call: {error}")))?;
        let mut request = tonic::Request::new(ForwardRequest {
            kind: kind.as_str().to_owned(),
            key,
            call: encoded,
        });
        request
            .metadata_mut()
            .insert(CLUSTER_SECRET_HEADER, self.secret.clone());
        request.set_timeout(FORWARD_TIMEOUT);
        match InternalClient::new(channel).forward(request).await {
            Ok(reply) => ciborium::from_reader(reply.into_inner().reply.as_slice())
                .map_err(|error| ForwardError::NoAnswer(format!("decode reply: {error}"))),
            Err(status) => {
                self.forget(&owner.grpc_addr);
                if never_sent(&status) {
                    Err(ForwardError::Unreachable(status.to_string()))
                } else {
                    Err(ForwardError::NoAnswer(status.to_string()))
                }
            }
        }
    }
}

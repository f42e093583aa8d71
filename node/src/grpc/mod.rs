//! The public gRPC API: one service per noun behind one edge (`edge`), plus health and
//! reflection.

mod audit;
mod auth;
mod cluster;
mod convert;
mod edge;
mod origin;
mod permissions;
mod sessions;
mod shares;
mod teams;
mod tenants;
mod users;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use gatehouse_actors::Gatehouse;
use gatehouse_protocol::internal::v1::internal_server::InternalServer;
use gatehouse_protocol::v1::audit_server::AuditServer;
use gatehouse_protocol::v1::auth_server::AuthServer;
use gatehouse_protocol::v1::cluster_server::ClusterServer;
use gatehouse_protocol::v1::permissions_server::PermissionsServer;
use gatehouse_protocol::v1::sessions_server::SessionsServer;
use gatehouse_protocol::v1::shares_server::SharesServer;
use gatehouse_protocol::v1::teams_server::TeamsServer;
use gatehouse_protocol::v1::tenants_server::TenantsServer;
use gatehouse_protocol::v1::users_server::UsersServer;
use gatehouse_protocol::v1::webhooks_server::WebhooksServer;
use tonic::{Request, Status};

pub use edge::in_flight;
use edge::{Call, RpcError};

/// Shared state of every service.
#[derive(Debug, Clone)]
pub struct Api {
    gatehouse: Arc<Gatehouse>,
    node: Arc<NodeInfo>,
}

/// How this node describes itself.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Node id.
    pub node_id: String,
    /// Start generation.
    pub generation: u64,
    /// Bound gRPC address.
    pub grpc_addr: String,
    /// Bound HTTP address.
    pub http_addr: String,
}

impl Api {
    /// Runs one public RPC through the edge; see [`edge::rpc`].
    async fn rpc<T, R, F, Fut>(
        &self,
        method: &'static str,
        request: Request<T>,
        body: F,
    ) -> Result<tonic::Response<R>, Status>
    where
        F: FnOnce(Call<T>) -> Fut,
        Fut: Future<Output = Result<R, RpcError>>,
    {
        edge::rpc(&self.gatehouse, method, request, body).await
    }
}

/// Serves the gRPC API on `listener` until `shutdown` resolves.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    gatehouse: Arc<Gatehouse>,
    node: NodeInfo,
    internal: crate::cluster::InternalService,
    listener: tokio::net::TcpListener,
    health: tonic_health::server::HealthReporter,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let api = Api {
        gatehouse,
        node: Arc::new(node),
    };
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(gatehouse_protocol::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| format!("cannot build gRPC reflection: {error}"))?;
    health.set_serving::<AuthServer<Api>>().await;
    health.set_serving::<WebhooksServer<Api>>().await;
    health.set_serving::<AuditServer<Api>>().await;
    health.set_serving::<UsersServer<Api>>().await;
    health.set_serving::<SessionsServer<Api>>().await;
    health.set_serving::<TenantsServer<Api>>().await;
    health.set_serving::<TeamsServer<Api>>().await;
    health.set_serving::<PermissionsServer<Api>>().await;
    health.set_serving::<SharesServer<Api>>().await;
    tonic::transport::Server::builder()
        .layer(origin::SourceAddressLayer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(AuthServer::new(api.clone()))
        .add_service(WebhooksServer::new(api.clone()))
        .add_service(AuditServer::new(api.clone()))
        .add_service(UsersServer::new(api.clone()))
        .add_service(SessionsServer::new(api.clone()))
        .add_service(TenantsServer::new(api.clone()))
        .add_service(TeamsServer::new(api.clone()))
        .add_service(PermissionsServer::new(api.clone()))
        .add_service(SharesServer::new(api.clone()))
        .add_service(ClusterServer::new(api))
        .add_service(InternalServer::new(internal))
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY small replies wait for delayed ACKs (~40 ms per call).
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(|error| format!("gRPC server failed: {error}"))
}

/// The address a listener actually bound.
pub fn local_addr(listener: &tokio::net::TcpListener) -> Result<SocketAddr, String> {
    listener
        .local_addr()
        .map_err(|error| format!("cannot read listener address: {error}"))
}

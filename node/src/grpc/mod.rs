//! The public gRPC API: credential extraction, error mapping, and one service per noun.

mod audit;
mod auth;
mod cluster;
mod convert;
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use gatehouse_actors::sessions::ClientInfo;
use gatehouse_actors::{Caller, Credentials, DomainError, Gatehouse};
use gatehouse_protocol::internal::v1::internal_server::InternalServer;
use gatehouse_protocol::metadata::{
    AUTHORIZATION_HEADER, CLIENT_KEY_HEADER, OPERATOR_KEY_HEADER, SERVER_KEY_HEADER, TENANT_HEADER,
};
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
use gatehouse_protocol::{ErrorCode, error_status};
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

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
    /// Authenticates the request's metadata into a caller.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let credentials = credentials(request.metadata())?;
        self.gatehouse
            .authenticate(&credentials)
            .await
            .map_err(to_status)
    }
}

fn header(metadata: &MetadataMap, name: &'static str) -> Result<Option<String>, Status> {
    match metadata.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|text| Some(text.trim().to_owned()))
            .map_err(|_| {
                error_status(
                    ErrorCode::InvalidArgument,
                    format!("metadata {name} is not valid ascii"),
                    Some(name),
                )
            }),
    }
}

fn credentials(metadata: &MetadataMap) -> Result<Credentials, Status> {
    let access_token = match header(metadata, AUTHORIZATION_HEADER)? {
        None => None,
        Some(value) => {
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(|| {
                    error_status(
                        ErrorCode::InvalidAccessToken,
                        "authorization must be `Bearer <access token>`",
                        Some(AUTHORIZATION_HEADER),
                    )
                })?;
            Some(token.trim().to_owned())
        }
    };
    Ok(Credentials {
        tenant: header(metadata, TENANT_HEADER)?,
        client_key: header(metadata, CLIENT_KEY_HEADER)?,
        server_key: header(metadata, SERVER_KEY_HEADER)?,
        operator_key: header(metadata, OPERATOR_KEY_HEADER)?,
        access_token,
    })
}

fn client_info<T>(request: &Request<T>) -> ClientInfo {
    ClientInfo {
        ip_address: request
            .remote_addr()
            .map(|addr| addr.ip().to_string())
            .unwrap_or_default(),
        user_agent: request
            .metadata()
            .get("user-agent")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Maps a domain error onto the wire; internal details go to the log only.
pub fn to_status(error: DomainError) -> Status {
    let code = error.code();
    if code == ErrorCode::Internal {
        tracing::error!(%error, "internal error");
    }
    error_status(code, error.public_message(), error.field())
}

/// RPCs being handled right now; shutdown waits for this to reach zero.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Number of RPCs being handled.
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::SeqCst)
}

struct InFlightGuard;

impl InFlightGuard {
    fn enter() -> InFlightGuard {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlightGuard
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs one RPC body, recording its count, outcome and latency.
async fn observe<T>(
    method: &'static str,
    body: impl Future<Output = Result<T, Status>>,
) -> Result<tonic::Response<T>, Status> {
    let _in_flight = InFlightGuard::enter();
    let started = Instant::now();
    let result = body.await;
    let outcome = match &result {
        Ok(_) => "OK".to_owned(),
        Err(status) => status
            .metadata()
            .get(gatehouse_protocol::metadata::ERROR_CODE_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("UNKNOWN")
            .to_owned(),
    };
    metrics::counter!("gatehouse_rpc_requests_total", "method" => method, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("gatehouse_rpc_duration_seconds", "method" => method)
        .record(started.elapsed().as_secs_f64());
    result.map(tonic::Response::new)
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

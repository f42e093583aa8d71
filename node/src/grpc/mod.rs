//! The public gRPC API: one service per noun behind one edge (`edge`), plus health and
//! reflection.

mod api_keys;
mod audit;
mod auth;
mod cluster;
mod convert;
mod edge;
mod email;
mod mfa;
mod oauth;
mod oidc_clients;
mod origin;
mod passkeys;
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
use gatehouse_protocol::v1::api_keys_server::ApiKeysServer;
use gatehouse_protocol::v1::audit_server::AuditServer;
use gatehouse_protocol::v1::auth_server::AuthServer;
use gatehouse_protocol::v1::cluster_server::ClusterServer;
use gatehouse_protocol::v1::email_server::EmailServer;
use gatehouse_protocol::v1::mfa_server::MfaServer;
use gatehouse_protocol::v1::o_auth_server::OAuthServer;
use gatehouse_protocol::v1::oidc_clients_server::OidcClientsServer;
use gatehouse_protocol::v1::passkeys_server::PasskeysServer;
use gatehouse_protocol::v1::permissions_server::PermissionsServer;
use gatehouse_protocol::v1::sessions_server::SessionsServer;
use gatehouse_protocol::v1::shares_server::SharesServer;
use gatehouse_protocol::v1::teams_server::TeamsServer;
use gatehouse_protocol::v1::tenants_server::TenantsServer;
use gatehouse_protocol::v1::users_server::UsersServer;
use gatehouse_protocol::v1::webhooks_server::WebhooksServer;
use tonic::server::NamedService;
use tonic::{Request, Status};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::error::{NodeError, NodeResult};

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
    health: HealthReporter,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    limits: crate::listen::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> NodeResult<()> {
    let api = Api {
        gatehouse,
        node: Arc::new(node),
    };
    let descriptors = gatehouse_protocol::PUBLIC_FILE_DESCRIPTOR_SET;
    // v1alpha beside v1: grpcio's reflection client, older grpcurl and several GUI clients
    // only speak v1alpha.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptors)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptors)
        .build_v1alpha()?;
    set_public_services(&health, ServingStatus::Serving).await;
    tonic::transport::Server::builder()
        .timeout(limits.request)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .max_concurrent_streams(limits.max_streams)
        .concurrency_limit_per_connection(limits.max_streams as usize)
        // Outermost: the connection's request count and address, before anything else.
        .layer(crate::listen::grpc::ConnectionLayer)
        .layer(origin::SourceAddressLayer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(AuthServer::new(api.clone()))
        .add_service(WebhooksServer::new(api.clone()))
        .add_service(AuditServer::new(api.clone()))
        .add_service(UsersServer::new(api.clone()))
        .add_service(SessionsServer::new(api.clone()))
        .add_service(TenantsServer::new(api.clone()))
        .add_service(TeamsServer::new(api.clone()))
        .add_service(PermissionsServer::new(api.clone()))
        .add_service(SharesServer::new(api.clone()))
        .add_service(EmailServer::new(api.clone()))
        .add_service(MfaServer::new(api.clone()))
        .add_service(PasskeysServer::new(api.clone()))
        .add_service(ApiKeysServer::new(api.clone()))
        .add_service(OAuthServer::new(api.clone()))
        .add_service(OidcClientsServer::new(api.clone()))
        .add_service(ClusterServer::new(api))
        .add_service(InternalServer::new(internal))
        .serve_with_incoming_shutdown(crate::listen::grpc::incoming(listener, limits), shutdown)
        .await?;
    Ok(())
}

/// The address a listener actually bound.
pub fn local_addr(listener: &tokio::net::TcpListener) -> NodeResult<SocketAddr> {
    listener.local_addr().map_err(|source| NodeError::System {
        action: "read listener address",
        source,
    })
}

/// Every public service's full name, as health checks and reflection clients name it.
pub const PUBLIC_SERVICES: [&str; 16] = [
    <AuthServer<Api> as NamedService>::NAME,
    <UsersServer<Api> as NamedService>::NAME,
    <SessionsServer<Api> as NamedService>::NAME,
    <TeamsServer<Api> as NamedService>::NAME,
    <PermissionsServer<Api> as NamedService>::NAME,
    <SharesServer<Api> as NamedService>::NAME,
    <WebhooksServer<Api> as NamedService>::NAME,
    <AuditServer<Api> as NamedService>::NAME,
    <TenantsServer<Api> as NamedService>::NAME,
    <ClusterServer<Api> as NamedService>::NAME,
    <EmailServer<Api> as NamedService>::NAME,
    <MfaServer<Api> as NamedService>::NAME,
    <PasskeysServer<Api> as NamedService>::NAME,
    <ApiKeysServer<Api> as NamedService>::NAME,
    <OAuthServer<Api> as NamedService>::NAME,
    <OidcClientsServer<Api> as NamedService>::NAME,
];

/// Reports every public service to the gRPC health service as `status`.
pub async fn set_public_services(health: &HealthReporter, status: ServingStatus) {
    for service in PUBLIC_SERVICES {
        health.set_service_status(service, status).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use prost::Message as _;

    use super::PUBLIC_SERVICES;

    /// A service added to the protos but not to the server (or to health) fails here.
    #[test]
    fn every_public_service_in_the_descriptors_is_served_and_health_checked() {
        let set = prost_types::FileDescriptorSet::decode(gatehouse_protocol::FILE_DESCRIPTOR_SET)
            .unwrap();
        let mut described: Vec<String> = set
            .file
            .iter()
            .filter(|file| file.package() == "gatehouse.v1")
            .flat_map(|file| {
                file.service
                    .iter()
                    .map(|service| format!("gatehouse.v1.{}", service.name()))
            })
            .collect();
        described.sort();
        let mut served: Vec<String> = PUBLIC_SERVICES.iter().map(|s| (*s).to_owned()).collect();
        served.sort();
        assert_eq!(described, served);
    }
}

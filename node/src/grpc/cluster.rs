//! `gatehouse.v1.Cluster` (operator only): members, status, generation, addresses, actors.

use gatehouse_actors::DomainError;
use gatehouse_actors::cluster::{ActorKind, MemberStatus};
use gatehouse_actors::runtime::session_actor::session_key;
use gatehouse_actors::runtime::share_actor::share_key;
use gatehouse_actors::tenants::validate_tenant_id;
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::cluster_server::Cluster;
use tonic::{Request, Response, Status};

use super::Api;

#[tonic::async_trait]
impl Cluster for Api {
    async fn get_cluster_status(
        &self,
        request: Request<v1::GetClusterStatusRequest>,
    ) -> Result<Response<v1::ClusterStatus>, Status> {
        self.rpc("Cluster/GetClusterStatus", request, |call| async move {
            call.caller.require_operator()?;
            let node = &self.node;
            let Some(membership) = self.gatehouse.membership() else {
                return Ok(v1::ClusterStatus {
                    self_node_id: node.node_id.clone(),
                    mode: "single".to_owned(),
                    members: vec![v1::ClusterMember {
                        node_id: node.node_id.clone(),
                        generation: node.generation,
                        status: MemberStatus::Serving.as_str().to_owned(),
                        grpc_addr: node.grpc_addr.clone(),
                        http_addr: node.http_addr.clone(),
                        actors: self
                            .gatehouse
                            .active_actors_by_kind()
                            .into_iter()
                            .map(|(kind, count)| (kind.to_owned(), count as u64))
                            .collect(),
                        is_self: true,
                    }],
                });
            };
            Ok(v1::ClusterStatus {
                self_node_id: membership.self_id.clone(),
                mode: "cluster".to_owned(),
                members: membership
                    .members
                    .iter()
                    .map(|member| v1::ClusterMember {
                        node_id: member.node_id.clone(),
                        generation: member.generation,
                        status: member.status.as_str().to_owned(),
                        grpc_addr: member.grpc_addr.clone(),
                        http_addr: member.http_addr.clone(),
                        actors: member.actors.iter().cloned().collect(),
                        is_self: member.node_id == membership.self_id,
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn get_owner(
        &self,
        request: Request<v1::GetOwnerRequest>,
    ) -> Result<Response<v1::ActorOwner>, Status> {
        self.rpc("Cluster/GetOwner", request, |call| async move {
            call.caller.require_operator()?;
            let (kind, key) = placement_key(call.body())?;
            let clustered = self.gatehouse.membership().and_then(|membership| {
                membership.owner(kind, &key).map(|member| v1::ActorOwner {
                    node_id: member.node_id.clone(),
                    generation: member.generation,
                    grpc_addr: member.grpc_addr.clone(),
                    http_addr: member.http_addr.clone(),
                    is_self: member.node_id == membership.self_id,
                    key: key.clone(),
                })
            });
            // No cluster, or no serving member yet: the actor runs where the call lands.
            let node = &self.node;
            Ok(clustered.unwrap_or_else(|| v1::ActorOwner {
                node_id: node.node_id.clone(),
                generation: node.generation,
                grpc_addr: node.grpc_addr.clone(),
                http_addr: node.http_addr.clone(),
                is_self: true,
                key,
            }))
        })
        .await
    }
}

/// The actor kind and placement key a `GetOwner` request names, keyed as the router keys it.
fn placement_key(request: &v1::GetOwnerRequest) -> Result<(ActorKind, String), DomainError> {
    validate_tenant_id(&request.tenant_id)?;
    let tenant = &request.tenant_id;
    let entity = || {
        if request.entity_id.is_empty() {
            return Err(DomainError::invalid("entity_id", "must not be empty"));
        }
        uuid::Uuid::try_parse(&request.entity_id)
            .map_err(|_| DomainError::invalid("entity_id", "is not a valid id"))
    };
    match v1::ActorKind::try_from(request.kind) {
        Ok(v1::ActorKind::Tenant) if request.entity_id.is_empty() => {
            Ok((ActorKind::Tenant, tenant.clone()))
        }
        Ok(v1::ActorKind::Tenant) => Err(DomainError::invalid(
            "entity_id",
            "must be empty for a tenant actor",
        )),
        Ok(v1::ActorKind::Session) => Ok((ActorKind::Session, session_key(tenant, entity()?))),
        Ok(v1::ActorKind::Share) => Ok((ActorKind::Share, share_key(tenant, entity()?))),
        Ok(v1::ActorKind::Unspecified) | Err(_) => Err(DomainError::invalid(
            "kind",
            "must be tenant, session or share",
        )),
    }
}

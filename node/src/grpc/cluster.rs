//! `gatehouse.v1.Cluster` (operator only): members, status, generation, addresses, actors.

use gatehouse_actors::cluster::MemberStatus;
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
}

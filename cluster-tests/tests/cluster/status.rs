//! `cluster_status` from any node lists every member with status, generation and addresses.

use std::collections::BTreeSet;

use crate::support::{members_by_id, three_nodes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_on_every_node_lists_every_member() {
    let sandbox = three_nodes().await;
    let ids: BTreeSet<&str> = sandbox.nodes().iter().map(|node| node.id()).collect();
    assert_eq!(ids, BTreeSet::from(["a", "b", "c"]));

    for observer in sandbox.nodes() {
        let status = observer.cluster_status().await.unwrap();
        assert_eq!(status.mode, "cluster");
        assert_eq!(status.self_node_id, observer.id());
        let members = members_by_id(&status);
        assert_eq!(
            members.keys().copied().collect::<BTreeSet<_>>(),
            ids,
            "node {} lists {status:?}",
            observer.id()
        );
        for node in sandbox.nodes() {
            let member = members[node.id()];
            let seen_by = observer.id();
            assert_eq!(member.status, "serving", "{seen_by} sees {member:?}");
            assert_ne!(member.generation, 0, "{seen_by} sees {member:?}");
            assert_eq!(
                member.generation,
                node.generation(),
                "{seen_by} sees the generation {} reports for itself",
                node.id()
            );
            assert_eq!(
                member.grpc_addr,
                node.grpc_addr().unwrap().to_string(),
                "{seen_by} sees {member:?}"
            );
            assert_eq!(
                member.http_addr,
                node.http_addr().unwrap().to_string(),
                "{seen_by} sees {member:?}"
            );
            assert_eq!(member.is_self, node.id() == observer.id(), "{member:?}");
            for kind in ["tenant", "session"] {
                assert!(
                    member.actors.contains_key(kind),
                    "{seen_by} sees no {kind} actor count for {member:?}"
                );
            }
        }
    }
}

//! `Cluster.GetOwner` on a node that is not clustered: it answers with itself for every
//! kind of actor, and refuses bad requests and non-operators.

use gatehouse_protocol::ErrorCode;
use gatehouse_protocol::v1::ActorKind;

use crate::testkit::{PASSWORD, TestNode, unique_email};

#[tokio::test]
async fn a_single_node_owns_every_actor_and_refuses_bad_requests() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Owners").await;
    let operator = node.operator().await;
    let signed_up = node
        .client(&tenant)
        .await
        .sign_up_with_password(&unique_email("owner"), PASSWORD)
        .await
        .unwrap();
    let status = operator.cluster_status().await.unwrap();
    let share_id = uuid::Uuid::new_v4().to_string();
    for (kind, entity) in [
        (ActorKind::Tenant, ""),
        (ActorKind::Session, signed_up.session_id.as_str()),
        (ActorKind::Share, share_id.as_str()),
    ] {
        let owner = operator.get_owner(kind, &tenant.id, entity).await.unwrap();
        assert!(owner.is_self, "{kind:?}: {owner:?}");
        assert_eq!(owner.node_id, status.self_node_id, "{kind:?}");
        assert_eq!(owner.generation, status.members[0].generation, "{kind:?}");
        assert_eq!(owner.grpc_addr, node.grpc.to_string(), "{kind:?}");
        assert_eq!(owner.http_addr, node.http.to_string(), "{kind:?}");
        let key = if entity.is_empty() {
            tenant.id.clone()
        } else {
            format!("{}/{entity}", tenant.id)
        };
        assert_eq!(owner.key, key, "{kind:?}");
    }
    // The kit asks the same question for the cluster tests.
    let through_kit = node
        .kit()
        .owner(ActorKind::Session, &tenant.id, &signed_up.session_id)
        .await
        .unwrap();
    assert_eq!(through_kit.node_id, status.self_node_id);

    let valid_id = uuid::Uuid::new_v4().to_string();
    for (kind, tenant_id, entity, field) in [
        (ActorKind::Unspecified, tenant.id.as_str(), "", "kind"),
        (ActorKind::Session, tenant.id.as_str(), "", "entity_id"),
        (
            ActorKind::Share,
            tenant.id.as_str(),
            "not-a-uuid",
            "entity_id",
        ),
        (
            ActorKind::Tenant,
            tenant.id.as_str(),
            valid_id.as_str(),
            "entity_id",
        ),
        (
            ActorKind::Session,
            "Not A Tenant",
            valid_id.as_str(),
            "tenant_id",
        ),
        (ActorKind::Tenant, "", "", "tenant_id"),
    ] {
        let error = operator
            .get_owner(kind, tenant_id, entity)
            .await
            .unwrap_err();
        assert_eq!(
            error.code,
            ErrorCode::InvalidArgument,
            "{kind:?} {tenant_id:?} {entity:?}"
        );
        assert_eq!(error.field.as_deref(), Some(field), "{error:?}");
    }

    let refused = node
        .server(&tenant)
        .await
        .get_owner(ActorKind::Tenant, &tenant.id, "")
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::PermissionDenied, "{refused:?}");
}

//! gRPC reflection v1alpha (what grpcio's reflection client and older grpcurl speak) and the
//! gRPC health service, checked over the network for every public service.

use prost::Message as _;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha::{ServerReflectionRequest, ServerReflectionResponse};

use crate::testkit::TestNode;

/// The public services a client may call, as named on the wire.
const PUBLIC_SERVICES: [&str; 16] = [
    "gatehouse.v1.Auth",
    "gatehouse.v1.Users",
    "gatehouse.v1.Sessions",
    "gatehouse.v1.Teams",
    "gatehouse.v1.Permissions",
    "gatehouse.v1.Shares",
    "gatehouse.v1.Webhooks",
    "gatehouse.v1.Audit",
    "gatehouse.v1.Tenants",
    "gatehouse.v1.Cluster",
    "gatehouse.v1.Email",
    "gatehouse.v1.Mfa",
    "gatehouse.v1.Passkeys",
    "gatehouse.v1.ApiKeys",
    "gatehouse.v1.OAuth",
    "gatehouse.v1.OidcClients",
];

async fn channel(node: &TestNode) -> Channel {
    Channel::from_shared(node.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Sends one v1alpha reflection request on a fresh stream and returns its single answer.
async fn try_reflect(
    channel: &Channel,
    request: MessageRequest,
) -> Result<ServerReflectionResponse, tonic::Status> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1alpha reflection is served")
        .into_inner();
    responses.next().await.expect("one answer")
}

async fn reflect(channel: &Channel, request: MessageRequest) -> MessageResponse {
    let response = try_reflect(channel, request).await.unwrap();
    response.message_response.expect("an answer")
}

async fn listed_services(channel: &Channel) -> Vec<String> {
    let MessageResponse::ListServicesResponse(list) =
        reflect(channel, MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    list.service
        .into_iter()
        .map(|service| service.name)
        .collect()
}

async fn files(
    channel: &Channel,
    request: MessageRequest,
) -> Vec<prost_types::FileDescriptorProto> {
    match reflect(channel, request).await {
        MessageResponse::FileDescriptorResponse(response) => response
            .file_descriptor_proto
            .iter()
            .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
            .collect(),
        other => panic!("expected file descriptors, got {other:?}"),
    }
}

#[tokio::test]
async fn v1alpha_reflection_lists_every_public_service_and_each_is_healthy() {
    let node = TestNode::start().await;
    let channel = channel(&node).await;

    let names = listed_services(&channel).await;
    for expected in PUBLIC_SERVICES {
        assert!(names.iter().any(|name| name == expected), "{names:?}");
    }
    // The node-to-node service is on this port but not described to the public.
    assert!(
        !names
            .iter()
            .any(|name| name.starts_with("gatehouse.internal.")),
        "{names:?}"
    );

    // Every `gatehouse.v1` service reflection shows must answer health checks as serving,
    // so a service added later cannot be listed without being reported.
    let mut health = HealthClient::new(channel.clone());
    let public: Vec<&String> = names
        .iter()
        .filter(|name| name.starts_with("gatehouse.v1."))
        .collect();
    assert_eq!(public.len(), PUBLIC_SERVICES.len(), "{public:?}");
    for service in public {
        let answer = health
            .check(HealthCheckRequest {
                service: service.clone(),
            })
            .await
            .unwrap_or_else(|status| panic!("health of {service}: {status:?}"))
            .into_inner();
        assert_eq!(
            answer.status,
            ServingStatus::Serving as i32,
            "{service} is not serving"
        );
    }
}

#[tokio::test]
async fn v1alpha_reflection_serves_the_file_of_a_symbol_with_its_imports() {
    let node = TestNode::start().await;
    let channel = channel(&node).await;

    let found = files(
        &channel,
        MessageRequest::FileContainingSymbol("gatehouse.v1.Auth.SignInWithPassword".to_owned()),
    )
    .await;
    let auth = found
        .iter()
        .find(|file| file.service.iter().any(|service| service.name() == "Auth"))
        .unwrap_or_else(|| panic!("no file defines Auth: {found:?}"));
    assert_eq!(auth.package(), "gatehouse.v1");
    let sign_in = auth
        .service
        .iter()
        .flat_map(|service| &service.method)
        .find(|method| method.name() == "SignInWithPassword")
        .expect("SignInWithPassword is described");
    assert_eq!(
        sign_in.input_type(),
        ".gatehouse.v1.SignInWithPasswordRequest"
    );

    // A client resolves the file's imports by name; each must be served too.
    for import in &auth.dependency {
        let imported = files(&channel, MessageRequest::FileByFilename(import.clone())).await;
        assert!(
            imported.iter().any(|file| file.name() == import),
            "{import} not served"
        );
    }

    // An unknown symbol ends the stream with NOT_FOUND, as grpcurl expects.
    let unknown = try_reflect(
        &channel,
        MessageRequest::FileContainingSymbol("gatehouse.v1.NoSuchThing".to_owned()),
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
}

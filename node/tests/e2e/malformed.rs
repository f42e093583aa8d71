//! Malformed input gets INVALID_ARGUMENT naming the field, and changes nothing.

use gatehouse_protocol::metadata::{CLIENT_KEY_HEADER, TENANT_HEADER};
use gatehouse_protocol::v1::ListUsersRequest;
use gatehouse_protocol::{ApiError, ErrorCode, v1};
use tonic::codegen::http::uri::PathAndQuery;

use crate::testkit::{PASSWORD, TestNode, TestTenant, unique_email};

/// A sign-up request whose email is raw bytes, so it can carry invalid UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawSignUp {
    #[prost(bytes = "vec", tag = "1")]
    email: Vec<u8>,
    #[prost(string, tag = "2")]
    password: String,
}

async fn raw_sign_up(node: &TestNode, tenant: &TestTenant, email: Vec<u8>) -> ApiError {
    let channel = tonic::transport::Channel::from_shared(node.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(RawSignUp {
        email,
        password: PASSWORD.to_owned(),
    });
    request
        .metadata_mut()
        .insert(TENANT_HEADER, tenant.id.parse().unwrap());
    request
        .metadata_mut()
        .insert(CLIENT_KEY_HEADER, tenant.client_key.parse().unwrap());
    let status = grpc
        .unary::<RawSignUp, v1::SignInReply, _>(
            request,
            PathAndQuery::from_static("/gatehouse.v1.Auth/SignUpWithPassword"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    ApiError::from_status(&status)
}

#[tokio::test]
async fn malformed_inputs_are_invalid_arguments_and_change_nothing() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let server = node.server(&tenant).await;

    let oversized_email = format!("{}@example.com", "a".repeat(5000));
    let long_password = "p".repeat(10 * 1024);
    let good_email = unique_email("valid");
    let cases: Vec<(&str, String, String)> = vec![
        ("email", String::new(), PASSWORD.to_owned()),
        ("email", "   ".to_owned(), PASSWORD.to_owned()),
        ("email", "not-an-email".to_owned(), PASSWORD.to_owned()),
        ("email", oversized_email.clone(), PASSWORD.to_owned()),
        (
            "email",
            "nul\u{0}@example.com".to_owned(),
            PASSWORD.to_owned(),
        ),
        ("password", good_email.clone(), String::new()),
        ("password", good_email.clone(), long_password.clone()),
    ];
    for (field, email, password) in &cases {
        for error in [
            client
                .sign_up_with_password(email, password)
                .await
                .unwrap_err(),
            client
                .sign_in_with_password(email, password)
                .await
                .unwrap_err(),
        ] {
            assert_eq!(error.code, ErrorCode::InvalidArgument, "{field}: {error}");
            assert_eq!(error.field.as_deref(), Some(*field), "{error}");
        }
    }
    let create = server
        .create_user(v1::CreateUserRequest {
            email: oversized_email,
            ..v1::CreateUserRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(create.code, ErrorCode::InvalidArgument);

    let invalid_utf8 = raw_sign_up(&node, &tenant, b"caf\xc3\x28@example.com".to_vec()).await;
    assert_eq!(
        invalid_utf8.code,
        ErrorCode::InvalidArgument,
        "{invalid_utf8}"
    );
    assert_eq!(invalid_utf8.field.as_deref(), Some("email"));

    for (field, bad) in [("user_id", ""), ("user_id", "not-a-uuid")] {
        let error = server.get_user(bad).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidArgument);
        assert_eq!(error.field.as_deref(), Some(field));
    }
    let bad_page = server
        .list_users(ListUsersRequest {
            page_token: "!!not-a-token".to_owned(),
            ..ListUsersRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_page.field.as_deref(), Some("page_token"));
    let bad_refresh = client.refresh_session("").await.unwrap_err();
    assert_eq!(bad_refresh.code, ErrorCode::InvalidArgument);
    assert_eq!(
        client
            .refresh_session(&"x".repeat(10_000))
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    let bad_metadata = server
        .update_user(v1::UpdateUserRequest {
            user_id: uuid::Uuid::new_v4().to_string(),
            client_metadata_json: Some("[1,2]".to_owned()),
            ..v1::UpdateUserRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_metadata.field.as_deref(), Some("client_metadata_json"));

    // Nothing was stored by any of it.
    let users = server
        .list_users(ListUsersRequest::default())
        .await
        .unwrap();
    assert!(users.users.is_empty(), "{:?}", users.users);
    let ok = client
        .sign_up_with_password(&good_email, PASSWORD)
        .await
        .unwrap();
    assert!(!ok.user_id.is_empty(), "the same email is still free");
}

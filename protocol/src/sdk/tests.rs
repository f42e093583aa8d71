//! SDK tests against a fake in-process node on 127.0.0.1: metadata on the wire, retries
//! only for reads, error mapping and deadlines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::{Client, Credentials};
use crate::error_code::ErrorCode;
use crate::metadata::{AUTHORIZATION_HEADER, SERVER_KEY_HEADER, TENANT_HEADER};
use crate::status::error_status;
use crate::v1;
use crate::v1::auth_server::{Auth, AuthServer};
use crate::v1::users_server::{Users, UsersServer};

/// What the fake node saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    tenant: Option<String>,
    server_key: Option<String>,
    authorization: Option<String>,
}

#[derive(Debug, Default)]
struct FakeNode {
    /// `GetUser` answers `UNAVAILABLE` this many times before succeeding.
    get_user_failures: AtomicU32,
    calls: AtomicU32,
    seen: Mutex<Vec<Seen>>,
}

impl FakeNode {
    fn record<T>(&self, request: &Request<T>) {
        let header = |key: &str| {
            request
                .metadata()
                .get(key)
                .map(|value| value.to_str().unwrap().to_owned())
        };
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(Seen {
            tenant: header(TENANT_HEADER),
            server_key: header(SERVER_KEY_HEADER),
            authorization: header(AUTHORIZATION_HEADER),
        });
    }
}

fn unimplemented() -> Status {
    Status::unimplemented("not in the fake node")
}

#[tonic::async_trait]
impl Users for Arc<FakeNode> {
    async fn create_user(
        &self,
        request: Request<v1::CreateUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.record(&request);
        Err(error_status(ErrorCode::Unavailable, "draining", None))
    }

    async fn get_user(
        &self,
        request: Request<v1::GetUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.record(&request);
        let left = self.get_user_failures.load(Ordering::SeqCst);
        if left > 0 {
            self.get_user_failures.store(left - 1, Ordering::SeqCst);
            return Err(Status::unavailable("storage down"));
        }
        Ok(Response::new(v1::User {
            user_id: request.into_inner().user_id,
            ..Default::default()
        }))
    }

    async fn get_current_user(
        &self,
        request: Request<v1::GetCurrentUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.record(&request);
        tokio::time::sleep(Duration::from_secs(5)).await;
        Err(unimplemented())
    }

    async fn update_user(
        &self,
        request: Request<v1::UpdateUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.record(&request);
        Err(error_status(
            ErrorCode::UserEmailAlreadyExists,
            "email is taken",
            Some("email"),
        ))
    }

    async fn delete_user(
        &self,
        _: Request<v1::DeleteUserRequest>,
    ) -> Result<Response<v1::DeleteUserReply>, Status> {
        Err(unimplemented())
    }

    async fn list_users(
        &self,
        _: Request<v1::ListUsersRequest>,
    ) -> Result<Response<v1::ListUsersReply>, Status> {
        Err(unimplemented())
    }

    async fn suspend_user(
        &self,
        _: Request<v1::SuspendUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        Err(unimplemented())
    }

    async fn reactivate_user(
        &self,
        _: Request<v1::ReactivateUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        Err(unimplemented())
    }

    async fn ban_user(&self, _: Request<v1::BanUserRequest>) -> Result<Response<v1::User>, Status> {
        Err(unimplemented())
    }

    async fn add_user_email(
        &self,
        _: Request<v1::UserEmailRequest>,
    ) -> Result<Response<v1::User>, Status> {
        Err(unimplemented())
    }

    async fn make_user_email_primary(
        &self,
        _: Request<v1::UserEmailRequest>,
    ) -> Result<Response<v1::User>, Status> {
        Err(unimplemented())
    }

    async fn remove_user_email(
        &self,
        _: Request<v1::UserEmailRequest>,
    ) -> Result<Response<v1::User>, Status> {
        Err(unimplemented())
    }

    async fn impersonate_user(
        &self,
        _: Request<v1::ImpersonateUserRequest>,
    ) -> Result<Response<v1::ImpersonateUserReply>, Status> {
        Err(unimplemented())
    }
}

#[tonic::async_trait]
impl Auth for Arc<FakeNode> {
    async fn sign_up_with_password(
        &self,
        _: Request<v1::SignUpWithPasswordRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        Err(unimplemented())
    }

    async fn sign_in_with_password(
        &self,
        _: Request<v1::SignInWithPasswordRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        Err(unimplemented())
    }

    async fn refresh_session(
        &self,
        request: Request<v1::RefreshSessionRequest>,
    ) -> Result<Response<v1::RefreshSessionReply>, Status> {
        self.record(&request);
        Err(Status::unavailable("storage down"))
    }

    async fn sign_out(
        &self,
        _: Request<v1::SignOutRequest>,
    ) -> Result<Response<v1::SignOutReply>, Status> {
        Err(unimplemented())
    }

    async fn send_email_verification(
        &self,
        _: Request<v1::SendEmailVerificationRequest>,
    ) -> Result<Response<v1::SendEmailReply>, Status> {
        Err(unimplemented())
    }

    async fn verify_email(
        &self,
        _: Request<v1::VerifyEmailRequest>,
    ) -> Result<Response<v1::VerifyEmailReply>, Status> {
        Err(unimplemented())
    }

    async fn send_password_reset(
        &self,
        _: Request<v1::SendPasswordResetRequest>,
    ) -> Result<Response<v1::SendEmailReply>, Status> {
        Err(unimplemented())
    }

    async fn reset_password(
        &self,
        _: Request<v1::ResetPasswordRequest>,
    ) -> Result<Response<v1::ResetPasswordReply>, Status> {
        Err(unimplemented())
    }

    async fn sign_in_with_code(
        &self,
        _: Request<v1::SignInWithCodeRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        Err(unimplemented())
    }

    async fn change_password(
        &self,
        _: Request<v1::ChangePasswordRequest>,
    ) -> Result<Response<v1::ChangePasswordReply>, Status> {
        Err(unimplemented())
    }

    async fn complete_mfa(
        &self,
        _: Request<v1::CompleteMfaRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        Err(unimplemented())
    }

    async fn sign_in_anonymously(
        &self,
        _: Request<v1::SignInAnonymouslyRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        Err(unimplemented())
    }

    async fn exchange_client_credentials(
        &self,
        _: Request<v1::ExchangeClientCredentialsRequest>,
    ) -> Result<Response<v1::ExchangeClientCredentialsReply>, Status> {
        Err(unimplemented())
    }

    async fn send_sign_in_code(
        &self,
        request: Request<v1::SendSignInCodeRequest>,
    ) -> Result<Response<v1::SendEmailReply>, Status> {
        self.record(&request);
        Err(Status::unavailable("storage down"))
    }

    async fn exchange_o_auth_code(
        &self,
        request: Request<v1::ExchangeOAuthCodeRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        self.record(&request);
        Err(Status::unavailable("storage down"))
    }
}

async fn start(node: Arc<FakeNode>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .add_service(UsersServer::new(node.clone()))
        .add_service(AuthServer::new(node))
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);
    addr
}

async fn server_client(addr: SocketAddr) -> Client {
    Client::builder(addr.to_string())
        .tenant("acme")
        .credentials(Credentials::Server {
            secret_key: "sk_test".into(),
        })
        .timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn metadata_reaches_the_node_and_follows_with_methods() {
    let node = Arc::new(FakeNode::default());
    let client = server_client(start(node.clone()).await).await;

    let user = client.get_user("usr_1").await.unwrap();
    assert_eq!(user.user_id, "usr_1");
    client
        .with_tenant("other")
        .with_access_token("a.b.c")
        .get_user("usr_2")
        .await
        .unwrap();

    let seen = node.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            Seen {
                tenant: Some("acme".into()),
                server_key: Some("sk_test".into()),
                authorization: None,
            },
            Seen {
                tenant: Some("other".into()),
                server_key: Some("sk_test".into()),
                authorization: Some("Bearer a.b.c".into()),
            },
        ]
    );
}

#[tokio::test]
async fn reads_are_retried_on_unavailable() {
    let node = Arc::new(FakeNode::default());
    node.get_user_failures.store(2, Ordering::SeqCst);
    let client = server_client(start(node.clone()).await).await;

    assert_eq!(client.get_user("usr_1").await.unwrap().user_id, "usr_1");
    assert_eq!(node.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn reads_give_up_after_the_configured_retries() {
    let node = Arc::new(FakeNode::default());
    node.get_user_failures.store(10, Ordering::SeqCst);
    let addr = start(node.clone()).await;
    let client = Client::builder(format!("http://{addr}"))
        .retries(1)
        .build()
        .await
        .unwrap();

    let error = client.get_user("usr_1").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::Unavailable);
    assert_eq!(node.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn writes_and_refresh_are_never_retried() {
    let node = Arc::new(FakeNode::default());
    let client = server_client(start(node.clone()).await).await;

    let error = client
        .create_user(v1::CreateUserRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::Unavailable);
    assert_eq!(node.calls.load(Ordering::SeqCst), 1);

    // A retried send would spend another send allowance and mail a second code.
    client
        .send_sign_in_code("a@example.com", "")
        .await
        .unwrap_err();
    assert_eq!(node.calls.load(Ordering::SeqCst), 2);
    let error = client.refresh_session("rt_1").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::Unavailable);
    assert_eq!(node.calls.load(Ordering::SeqCst), 3);
    // An upstream sign-in's code is single use: a retry could only fail or double-spend.
    let error = client.exchange_oauth_code("goc_1").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::Unavailable);
    assert_eq!(node.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn server_error_codes_and_fields_arrive() {
    let client = server_client(start(Arc::new(FakeNode::default())).await).await;

    let error = client
        .update_user(v1::UpdateUserRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::UserEmailAlreadyExists);
    assert_eq!(error.field.as_deref(), Some("email"));
    assert_eq!(error.message, "email is taken");
    assert_eq!(error.grpc_code, tonic::Code::AlreadyExists);
}

#[tokio::test]
async fn slow_calls_fail_with_deadline_exceeded() {
    let client = server_client(start(Arc::new(FakeNode::default())).await).await;

    let started = std::time::Instant::now();
    let error = client.get_current_user().await.unwrap_err();
    assert_eq!(error.code, ErrorCode::DeadlineExceeded, "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unreachable_node_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let error = Client::builder(format!("http://{addr}"))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::Unavailable);
    assert!(error.message.starts_with("cannot connect to"), "{error}");
}

#[test]
fn invalid_endpoint_names_the_field() {
    let error = Client::builder("http://bad host").build_lazy().unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidArgument);
    assert_eq!(error.field.as_deref(), Some("endpoint"));
}

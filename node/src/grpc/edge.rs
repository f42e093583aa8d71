//! The edge every public RPC passes through once: it counts the call, turns the request's
//! metadata into a [`Caller`], runs the handler's body and maps its error onto the wire.
//! Handlers hold only the translation between wire messages and domain calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use gatehouse_actors::sessions::ClientInfo;
use gatehouse_actors::{Caller, Credentials, DomainError, Gatehouse};
use gatehouse_protocol::metadata::{
    AUTHORIZATION_HEADER, BEARER_PREFIX, CLIENT_KEY_HEADER, OPERATOR_KEY_HEADER, SERVER_KEY_HEADER,
    TENANT_HEADER,
};
use gatehouse_protocol::{ErrorCode, error_status, error_status_with};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

/// Why a public RPC failed; turned into a [`Status`] only by [`rpc`].
#[derive(Debug)]
pub enum RpcError {
    /// The domain refused or failed the operation.
    Domain(DomainError),
    /// The request broke the wire contract before it reached the domain (bad metadata, a
    /// missing `oneof`), reported with exactly this code, message and field.
    Wire {
        /// The stable code.
        code: ErrorCode,
        /// The message shown to the caller.
        message: String,
        /// The request field at fault, if any.
        field: Option<&'static str>,
    },
}

impl RpcError {
    /// A request that breaks the wire contract.
    pub fn wire(code: ErrorCode, message: impl Into<String>, field: Option<&'static str>) -> Self {
        RpcError::Wire {
            code,
            message: message.into(),
            field,
        }
    }

    /// An invalid request field, with the message the caller sees.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        RpcError::wire(ErrorCode::InvalidArgument, message, Some(field))
    }

    fn code(&self) -> ErrorCode {
        match self {
            RpcError::Domain(error) => error.code(),
            RpcError::Wire { code, .. } => *code,
        }
    }

    /// The status on the wire; internal details go to the log only.
    fn into_status(self) -> Status {
        match self {
            RpcError::Domain(error) => {
                let code = error.code();
                if code == ErrorCode::Internal {
                    tracing::error!(%error, "internal error");
                }
                error_status_with(
                    code,
                    error.public_message(),
                    error.field(),
                    &error.metadata(),
                )
            }
            RpcError::Wire {
                code,
                message,
                field,
            } => error_status(code, message, field),
        }
    }
}

impl From<DomainError> for RpcError {
    fn from(error: DomainError) -> Self {
        RpcError::Domain(error)
    }
}

/// One authenticated call as a handler sees it.
#[derive(Debug)]
pub struct Call<T> {
    /// Who is calling, already authenticated.
    pub caller: Caller,
    request: Request<T>,
}

impl<T> Call<T> {
    /// The request message.
    pub fn body(&self) -> &T {
        self.request.get_ref()
    }

    /// The caller and the request message, for handlers that move fields out of it.
    pub fn into_parts(self) -> (Caller, T) {
        (self.caller, self.request.into_inner())
    }

    /// Where the call came from, as recorded on the sessions it creates.
    pub fn client_info(&self) -> ClientInfo {
        ClientInfo {
            ip_address: self
                .request
                .remote_addr()
                .map(|addr| addr.ip().to_string())
                .unwrap_or_default(),
            user_agent: self
                .request
                .metadata()
                .get("user-agent")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// The one call whose bearer token is not checked against its session and user: signing
/// out of a session that already ended (or of a blocked user's) stays a harmless no-op.
const SIGN_OUT: &str = "Auth/SignOut";

/// Runs one public RPC named `method` (`Service/Method`, the metrics label): authenticates the
/// request's metadata, runs `body` with the caller, maps its error to a status and records the
/// call's count, outcome and latency.
pub async fn rpc<T, R, F, Fut>(
    gatehouse: &Gatehouse,
    method: &'static str,
    request: Request<T>,
    body: F,
) -> Result<Response<R>, Status>
where
    F: FnOnce(Call<T>) -> Fut,
    Fut: Future<Output = Result<R, RpcError>>,
{
    let _in_flight = InFlightGuard::enter();
    let started = Instant::now();
    let result = async {
        let mut credentials = credentials(request.metadata())?;
        credentials.ending_session = method == SIGN_OUT;
        let caller = gatehouse.authenticate(&credentials).await?;
        body(Call { caller, request }).await
    }
    .await;
    let outcome = match &result {
        Ok(_) => "OK",
        Err(error) => error.code().as_str(),
    };
    metrics::counter!("gatehouse_rpc_requests_total", "method" => method, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("gatehouse_rpc_duration_seconds", "method" => method)
        .record(started.elapsed().as_secs_f64());
    result.map(Response::new).map_err(RpcError::into_status)
}

fn header(metadata: &MetadataMap, name: &'static str) -> Result<Option<String>, RpcError> {
    match metadata.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|text| Some(text.trim().to_owned()))
            .map_err(|_| {
                RpcError::wire(
                    ErrorCode::InvalidArgument,
                    format!("metadata {name} is not valid ascii"),
                    Some(name),
                )
            }),
    }
}

fn credentials(metadata: &MetadataMap) -> Result<Credentials, RpcError> {
    let access_token = match header(metadata, AUTHORIZATION_HEADER)? {
        None => None,
        Some(value) => {
            // The scheme is case-insensitive (RFC 9110 §11.1).
            let token = value
                .get(..BEARER_PREFIX.len())
                .filter(|scheme| scheme.eq_ignore_ascii_case(BEARER_PREFIX))
                .map(|_| &value[BEARER_PREFIX.len()..])
                .ok_or_else(|| {
                    RpcError::wire(
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
        ending_session: false,
    })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use gatehouse_protocol::metadata::ERROR_CODE_HEADER;

    fn code_header(status: &Status) -> &str {
        status
            .metadata()
            .get(ERROR_CODE_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    #[test]
    fn a_malformed_authorization_header_is_an_invalid_access_token() {
        let mut metadata = MetadataMap::new();
        metadata.insert(AUTHORIZATION_HEADER, "Basic abc".parse().unwrap());
        let status = credentials(&metadata).unwrap_err().into_status();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(code_header(&status), "INVALID_ACCESS_TOKEN");
        assert_eq!(
            status.message(),
            "authorization must be `Bearer <access token>`"
        );
    }

    #[test]
    fn bearer_tokens_and_keys_are_trimmed() {
        let mut metadata = MetadataMap::new();
        metadata.insert(AUTHORIZATION_HEADER, "bearer  abc ".parse().unwrap());
        metadata.insert(TENANT_HEADER, " acme".parse().unwrap());
        let credentials = credentials(&metadata).unwrap();
        assert_eq!(credentials.access_token.as_deref(), Some("abc"));
        assert_eq!(credentials.tenant.as_deref(), Some("acme"));
        assert_eq!(credentials.server_key, None);
        let mut metadata = MetadataMap::new();
        metadata.insert(AUTHORIZATION_HEADER, "BEARER xyz".parse().unwrap());
        let credentials = super::credentials(&metadata).unwrap();
        assert_eq!(credentials.access_token.as_deref(), Some("xyz"));
    }

    #[test]
    fn domain_errors_keep_their_code_message_and_field() {
        let status = RpcError::from(DomainError::invalid("email", "is empty")).into_status();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(code_header(&status), "INVALID_ARGUMENT");
        assert_eq!(status.message(), "invalid email: is empty");
    }

    #[test]
    fn internal_details_stay_off_the_wire() {
        let status = RpcError::from(DomainError::Internal("disk on fire".to_owned())).into_status();
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}

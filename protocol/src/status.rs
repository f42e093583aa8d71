//! Errors on the wire: how a server turns an [`ErrorCode`] into a `tonic::Status` and how a
//! client turns any `tonic::Status` back into an [`ApiError`].
//!
//! The code travels three ways so every kind of client finds it: as `google.rpc.ErrorInfo`
//! in the status details (rich clients), as the `x-gatehouse-error-code` metadata entry
//! (grpcurl and plain clients), and implicitly as the gRPC status code.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error_code::{ERROR_DOMAIN, ErrorCode, FIELD_METADATA_KEY};
use crate::metadata::ERROR_CODE_HEADER;

/// Builds the status a server returns for `code`, naming the offending request `field` if any.
pub fn error_status(code: ErrorCode, message: impl Into<String>, field: Option<&str>) -> Status {
    error_status_with(code, message, field, &[])
}

/// Like [`error_status`], with further `ErrorInfo` metadata (the ticket of `MFA_REQUIRED`).
pub fn error_status_with(
    code: ErrorCode,
    message: impl Into<String>,
    field: Option<&str>,
    extra: &[(&str, String)],
) -> Status {
    let message = message.into();
    let mut details = ErrorDetails::new();
    let mut info_metadata: HashMap<String, String> = extra
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect();
    if let Some(field) = field {
        info_metadata.insert(FIELD_METADATA_KEY.to_owned(), field.to_owned());
        details.add_bad_request_violation(field, message.clone());
    }
    details.set_error_info(code.as_str(), ERROR_DOMAIN, info_metadata);

    let mut status = Status::with_error_details(code.grpc_code(), message, details);
    status
        .metadata_mut()
        .insert(ERROR_CODE_HEADER, MetadataValue::from_static(code.as_str()));
    status
}

/// An error returned by a Gatehouse node (or raised by the SDK itself), as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The stable error code; derived from the gRPC code when the server sent none.
    pub code: ErrorCode,
    /// The human-readable message from the server, for logs and people, not for matching.
    pub message: String,
    /// The request field the error is about, when the server named one.
    pub field: Option<String>,
    /// The gRPC status code as received (or as raised locally by the SDK).
    pub grpc_code: Code,
    /// Further `ErrorInfo` metadata, e.g. `mfa_ticket` and `mfa_factors` of `MFA_REQUIRED`.
    pub metadata: BTreeMap<String, String>,
}

impl ApiError {
    /// An error raised on the client side, reported with the code's own gRPC code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            grpc_code: code.grpc_code(),
            metadata: BTreeMap::new(),
        }
    }

    /// The ticket of an `MFA_REQUIRED` error, for `Auth.CompleteMfa`.
    pub fn mfa_ticket(&self) -> Option<&str> {
        self.metadata
            .get(crate::error_code::MFA_TICKET_METADATA_KEY)
            .map(String::as_str)
    }

    /// The factors an `MFA_REQUIRED` error says the user can complete with.
    pub fn mfa_factors(&self) -> Vec<&str> {
        self.metadata
            .get(crate::error_code::MFA_FACTORS_METADATA_KEY)
            .map(|text| text.split(',').filter(|f| !f.is_empty()).collect())
            .unwrap_or_default()
    }

    /// The seconds a `RATE_LIMITED` error says to wait before trying again, when it says.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.metadata
            .get(crate::error_code::RETRY_AFTER_METADATA_KEY)
            .and_then(|text| text.parse().ok())
    }

    /// The same error, naming the request field it is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Reads the error code and field from any status: `ErrorInfo` first, then the
    /// `x-gatehouse-error-code` metadata, else a mapping of the gRPC code.
    pub fn from_status(status: &Status) -> Self {
        let details = status.get_error_details();
        let info = details
            .error_info()
            .filter(|info| info.domain == ERROR_DOMAIN);
        let code = info
            .and_then(|info| info.reason.parse::<ErrorCode>().ok())
            .or_else(|| code_from_header(status))
            .unwrap_or_else(|| code_from_grpc(status));
        let field = info
            .and_then(|info| info.metadata.get(FIELD_METADATA_KEY).cloned())
            .or_else(|| {
                details
                    .bad_request()
                    .and_then(|bad_request| bad_request.field_violations.first())
                    .map(|violation| violation.field.clone())
            });
        let metadata = info
            .map(|info| {
                info.metadata
                    .iter()
                    .filter(|(key, _)| key.as_str() != FIELD_METADATA_KEY)
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            code,
            message: status.message().to_owned(),
            field,
            grpc_code: status.code(),
            metadata,
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.code,
            ErrorCode::Unavailable | ErrorCode::Conflict | ErrorCode::RateLimited
        )
    }
}

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        Self::from_status(&status)
    }
}

impl From<&Status> for ApiError {
    fn from(status: &Status) -> Self {
        Self::from_status(status)
    }
}

impl std::error::Error for ApiError {}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code.as_str().to_ascii_lowercase())?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

fn code_from_header(status: &Status) -> Option<ErrorCode> {
    status
        .metadata()
        .get(ERROR_CODE_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn code_from_grpc(status: &Status) -> ErrorCode {
    match status.code() {
        Code::Unavailable => ErrorCode::Unavailable,
        Code::DeadlineExceeded => ErrorCode::DeadlineExceeded,
        // tonic reports its own client-side request timeout as CANCELLED "Timeout expired".
        Code::Cancelled if status.message() == tonic::TimeoutExpired(()).to_string() => {
            ErrorCode::DeadlineExceeded
        }
        // Gatehouse always names its errors; an unnamed UNKNOWN comes from the transport (a
        // connection cut mid-call), where the outcome is unknown and a retry may succeed.
        Code::Unknown => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Sends a status through the HTTP/2 header encoding a real server and client use.
    fn over_the_wire(status: &Status) -> Status {
        let mut headers = http::HeaderMap::new();
        status
            .add_header(&mut headers)
            .unwrap_or_else(|_| panic!("status for {status:?} does not encode"));
        Status::from_header_map(&headers).unwrap_or_else(|| panic!("no status in {headers:?}"))
    }

    #[test]
    fn every_code_round_trips_with_a_field() {
        for &code in ErrorCode::ALL {
            let status = over_the_wire(&error_status(code, "email is taken", Some("email")));
            assert_eq!(status.code(), code.grpc_code());
            assert_eq!(
                ApiError::from(status),
                ApiError {
                    code,
                    message: "email is taken".to_owned(),
                    field: Some("email".to_owned()),
                    grpc_code: code.grpc_code(),
                    metadata: BTreeMap::new(),
                }
            );
        }
    }

    #[test]
    fn an_mfa_ticket_travels_in_the_error_info() {
        let status = over_the_wire(&error_status_with(
            ErrorCode::MfaRequired,
            "a second factor is required",
            None,
            &[
                (
                    crate::error_code::MFA_TICKET_METADATA_KEY,
                    "gmt_abc".to_owned(),
                ),
                (
                    crate::error_code::MFA_FACTORS_METADATA_KEY,
                    "totp,passkey".to_owned(),
                ),
            ],
        ));
        let error = ApiError::from(status);
        assert_eq!(error.code, ErrorCode::MfaRequired);
        assert_eq!(error.mfa_ticket(), Some("gmt_abc"));
        assert_eq!(error.mfa_factors(), vec!["totp", "passkey"]);
        assert_eq!(error.field, None);
    }

    #[test]
    fn every_code_round_trips_without_a_field() {
        for &code in ErrorCode::ALL {
            let error = ApiError::from(over_the_wire(&error_status(code, "no", None)));
            assert_eq!(error.code, code);
            assert_eq!(error.field, None);
            assert_eq!(error.grpc_code, code.grpc_code());
        }
    }

    #[test]
    fn status_carries_error_info_bad_request_and_header() {
        let status = error_status(ErrorCode::InvalidPassword, "too short", Some("password"));
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "INVALID_PASSWORD");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(
            info.metadata.get("field").map(String::as_str),
            Some("password")
        );
        let violations = &details.bad_request().expect("bad request").field_violations;
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "password");
        assert_eq!(violations[0].description, "too short");
        let header = status.metadata().get(ERROR_CODE_HEADER).expect("header");
        assert_eq!(header.to_str().ok(), Some("INVALID_PASSWORD"));
    }

    #[test]
    fn no_bad_request_without_a_field() {
        let status = error_status(ErrorCode::UserNotFound, "no such user", None);
        assert!(status.get_error_details().bad_request().is_none());
    }

    #[test]
    fn header_is_the_fallback_without_details() {
        let mut status = Status::unauthenticated("revoked");
        status.metadata_mut().insert(
            ERROR_CODE_HEADER,
            MetadataValue::from_static("SESSION_REVOKED"),
        );
        let error = ApiError::from(over_the_wire(&status));
        assert_eq!(error.code, ErrorCode::SessionRevoked);
        assert_eq!(error.grpc_code, Code::Unauthenticated);
    }

    #[test]
    fn unknown_reason_falls_back_to_header_then_grpc_code() {
        let mut details = ErrorDetails::new();
        details.set_error_info("FROM_THE_FUTURE", ERROR_DOMAIN, HashMap::new());
        let mut status = Status::with_error_details(Code::NotFound, "gone", details.clone());
        status.metadata_mut().insert(
            ERROR_CODE_HEADER,
            MetadataValue::from_static("USER_NOT_FOUND"),
        );
        assert_eq!(ApiError::from(&status).code, ErrorCode::UserNotFound);

        let status = Status::with_error_details(Code::NotFound, "gone", details);
        assert_eq!(ApiError::from(&status).code, ErrorCode::Internal);
    }

    #[test]
    fn foreign_domain_is_ignored() {
        let mut details = ErrorDetails::new();
        details.set_error_info("USER_NOT_FOUND", "example.com", HashMap::new());
        let status = Status::with_error_details(Code::Unavailable, "proxy", details);
        assert_eq!(ApiError::from(&status).code, ErrorCode::Unavailable);
    }

    #[test]
    fn plain_statuses_map_from_the_grpc_code() {
        let cases = [
            (Status::unavailable("down"), ErrorCode::Unavailable),
            (
                Status::deadline_exceeded("slow"),
                ErrorCode::DeadlineExceeded,
            ),
            (Status::unknown("transport error"), ErrorCode::Unavailable),
            (Status::unimplemented("old node"), ErrorCode::Internal),
            (Status::cancelled("by caller"), ErrorCode::Internal),
        ];
        for (status, code) in cases {
            let error = ApiError::from(&status);
            assert_eq!(error.code, code, "{status:?}");
            assert_eq!(error.grpc_code, status.code());
            assert_eq!(error.field, None);
        }
    }

    #[test]
    fn client_side_timeout_is_deadline_exceeded() {
        let status = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        let error = ApiError::from(status);
        assert_eq!(error.code, ErrorCode::DeadlineExceeded);
        assert_eq!(error.grpc_code, Code::Cancelled);
    }

    #[test]
    fn display_is_lowercase_code_message_and_field() {
        let error =
            ApiError::new(ErrorCode::InvalidArgument, "must not be empty").with_field("email");
        assert_eq!(
            error.to_string(),
            "invalid_argument: must not be empty (field email)"
        );
        assert_eq!(
            ApiError::new(ErrorCode::Internal, "").to_string(),
            "internal"
        );
    }
}

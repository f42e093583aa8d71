//! HTTP: JWKS and OIDC discovery per tenant, the upstream sign-in routes (`oauth_http`), the
//! hosted pages (`pages`), health and readiness; Prometheus metrics on the metrics listener
//! (`[metrics] listen`), and on this one only with a bearer token or when explicitly allowed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gatehouse_actors::domain::crypto::{constant_time_eq, sha256};
use gatehouse_actors::{DomainError, Gatehouse};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

/// State shared by the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    /// The domain.
    pub gatehouse: Arc<Gatehouse>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// False once the node starts draining.
    pub ready: Arc<AtomicBool>,
    /// The token `/metrics` asks for, when one is configured.
    pub metrics_token: Option<MetricsToken>,
}

/// `[metrics] bearer_token`: the SHA-256 of the token, compared in constant time.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    /// The configured token; `None` when it is empty.
    pub fn new(token: &str) -> Option<MetricsToken> {
        (!token.is_empty()).then(|| MetricsToken(sha256(token.as_bytes())))
    }

    fn admits(&self, headers: &HeaderMap) -> bool {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        constant_time_eq(&self.0, &sha256(presented.as_bytes()))
    }
}

/// The public router. `/metrics` is on it only when a token is configured (and then asks
/// for it) or when `metrics_on_http` allows it openly.
pub fn router(state: HttpState, metrics_on_http: bool) -> Router {
    let mut router = Router::new()
        .route("/t/{tenant}/.well-known/jwks.json", get(jwks))
        .route(
            "/t/{tenant}/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if metrics_on_http || state.metrics_token.is_some() {
        router = router.route("/metrics", get(metrics));
    }
    router
        .merge(crate::oauth_http::router())
        .merge(crate::oidc_http::router())
        .merge(crate::pages::router())
        .with_state(state)
}

/// The metrics listener's router: `/metrics` only.
pub fn metrics_router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// A domain error as `{"code", "message"}` with the code's HTTP status.
pub(crate) fn error_response(error: &DomainError) -> Response {
    let code = error.code();
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(json!({ "code": code.as_str(), "message": error.public_message() })),
    )
        .into_response()
}

fn cached_json(body: serde_json::Value) -> Response {
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

/// `?include_anonymous=true` of the JWKS.
#[derive(Debug, Default, serde::Deserialize)]
struct JwksQuery {
    #[serde(default)]
    include_anonymous: bool,
}

/// The tenant's JWKS; the anonymous users' key only with `?include_anonymous=true`, so an
/// app that did not opt in rejects anonymous tokens.
async fn jwks(
    State(state): State<HttpState>,
    Path(tenant): Path<String>,
    Query(query): Query<JwksQuery>,
) -> Response {
    let include_anonymous = query.include_anonymous;
    match state.gatehouse.services().tenant(&tenant).await {
        Ok(tenant) => match serde_json::to_value(if include_anonymous {
            tenant.keys.jwks_with_anonymous()
        } else {
            tenant.keys.jwks()
        }) {
            Ok(body) => cached_json(body),
            Err(error) => error_response(&DomainError::Internal(error.to_string())),
        },
        Err(error) => error_response(&error),
    }
}

async fn openid_configuration(
    State(state): State<HttpState>,
    Path(tenant): Path<String>,
) -> Response {
    match state.gatehouse.services().tenant(&tenant).await {
        Ok(tenant) => cached_json(json!({
            "issuer": tenant.issuer,
            "jwks_uri": format!("{}/.well-known/jwks.json", tenant.issuer),
            "token_endpoint": format!("{}/oauth2/token", tenant.issuer),
            "userinfo_endpoint": format!("{}/oauth2/userinfo", tenant.issuer),
            "revocation_endpoint": format!("{}/oauth2/revoke", tenant.issuer),
            "introspection_endpoint": format!("{}/oauth2/introspect", tenant.issuer),
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile", "email"],
            "claims_supported": [
                "sub", "iss", "aud", "azp", "exp", "iat", "auth_time", "nonce", "amr", "sid",
                "email", "email_verified", "name", "tid", "role", "is_restricted",
            ],
            "authorization_endpoint": format!("{}/oauth2/authorize", tenant.issuer),
            "authorization_response_iss_parameter_supported": true,
            "end_session_endpoint": format!("{}/oauth2/end_session", tenant.issuer),
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
        })),
        Err(error) => error_response(&error),
    }
}

async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token
        && !token.admits(&headers)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need the configured bearer token",
        )
            .into_response();
    }
    for (kind, count) in state.gatehouse.active_actors_by_kind() {
        metrics::gauge!("gatehouse_actors_live", "kind" => kind).set(count as f64);
    }
    let stats = state.gatehouse.services().db.stats();
    metrics::gauge!("gatehouse_storage_durable_syncs").set(stats.durable_syncs as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<HttpState>) -> Response {
    if !state.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    let probe = state
        .gatehouse
        .services()
        .db
        .run(|tx| async move {
            tx.snapshot_get(b"\x00readiness-probe").await?;
            Ok::<_, DomainError>(())
        })
        .await;
    match probe {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness probe failed");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response()
        }
    }
}

//! HTTP: JWKS and OIDC discovery per tenant, the upstream sign-in routes (`oauth_http`),
//! Prometheus metrics, health and readiness.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/t/{tenant}/.well-known/jwks.json", get(jwks))
        .route(
            "/t/{tenant}/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(crate::oauth_http::router())
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
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["code"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "sid", "tid", "role", "is_restricted"],
        })),
        Err(error) => error_response(&error),
    }
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    for (kind, count) in state.gatehouse.active_actors_by_kind() {
        metrics::gauge!("gatehouse_actors_live", "kind" => kind).set(count as f64);
    }
    let stats = state.gatehouse.services().db.stats();
    metrics::gauge!("gatehouse_storage_durable_syncs").set(stats.durable_syncs as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
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

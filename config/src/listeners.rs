//! `[connections]` (what a client's connection may hold on both listeners) and `[metrics]`
//! (where `/metrics` is served).

use serde::{Deserialize, Serialize};

use crate::{ConfigError, invalid, parse_socket_addr};

/// `[connections]`: limits on the gRPC and HTTP listeners, so a connection that sends
/// nothing, half a request or no further request is closed instead of held open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsSection {
    /// Seconds a new connection has to send its request header (HTTP) or the HTTP/2
    /// preface (gRPC); also how long an HTTP/1 keep-alive connection waits for the next one.
    pub header_read_timeout_seconds: u32,
    /// Seconds one request (an RPC or an HTTP request) may take before it is answered
    /// with a timeout.
    pub request_timeout_seconds: u32,
    /// Seconds a connection with no request in flight stays open.
    pub idle_timeout_seconds: u32,
    /// Open connections one source IP address may hold on each listener; more are closed
    /// as soon as they are accepted.
    pub max_per_source: u32,
    /// Concurrent HTTP/2 streams (RPCs) one gRPC connection may have.
    pub max_streams_per_connection: u32,
    /// Seconds between HTTP/2 keep-alive pings the gRPC listener sends.
    pub http2_keepalive_interval_seconds: u32,
    /// Seconds a keep-alive ping may wait for its answer before the connection is closed.
    pub http2_keepalive_timeout_seconds: u32,
    /// Seconds of TCP silence before the kernel probes a gRPC peer (TCP keep-alive).
    pub tcp_keepalive_seconds: u32,
}

impl Default for ConnectionsSection {
    fn default() -> Self {
        ConnectionsSection {
            header_read_timeout_seconds: 10,
            request_timeout_seconds: 30,
            idle_timeout_seconds: 60,
            max_per_source: 256,
            max_streams_per_connection: 100,
            http2_keepalive_interval_seconds: 30,
            http2_keepalive_timeout_seconds: 10,
            tcp_keepalive_seconds: 60,
        }
    }
}

impl ConnectionsSection {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let ranges: [(&str, u32, u32, u32); 8] = [
            (
                "connections.header_read_timeout_seconds",
                self.header_read_timeout_seconds,
                1,
                300,
            ),
            (
                "connections.request_timeout_seconds",
                self.request_timeout_seconds,
                1,
                3600,
            ),
            (
                "connections.idle_timeout_seconds",
                self.idle_timeout_seconds,
                1,
                3600,
            ),
            (
                "connections.max_per_source",
                self.max_per_source,
                1,
                1_000_000,
            ),
            (
                "connections.max_streams_per_connection",
                self.max_streams_per_connection,
                1,
                10_000,
            ),
            (
                "connections.http2_keepalive_interval_seconds",
                self.http2_keepalive_interval_seconds,
                1,
                3600,
            ),
            (
                "connections.http2_keepalive_timeout_seconds",
                self.http2_keepalive_timeout_seconds,
                1,
                300,
            ),
            (
                "connections.tcp_keepalive_seconds",
                self.tcp_keepalive_seconds,
                1,
                7200,
            ),
        ];
        for (key, value, least, most) in ranges {
            if !(least..=most).contains(&value) {
                return Err(invalid(key, &format!("must be between {least} and {most}")));
            }
        }
        Ok(())
    }
}

/// `[metrics]`: where the Prometheus metrics are served. By default they are on no public
/// listener: set `listen` for a separate (private) listener, `bearer_token` to serve them on
/// the HTTP listener to callers that present it, or `on_http` to serve them there openly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Listen address of a listener that serves only `/metrics`; empty means none.
    pub listen: String,
    /// When set (at least 16 characters), `/metrics` is also served on the HTTP listener,
    /// to requests with `Authorization: Bearer <token>`; the metrics listener asks for it too.
    pub bearer_token: String,
    /// Serve `/metrics` on the HTTP listener without a token (the old behaviour; only for
    /// an HTTP listener that is not reachable from outside).
    pub on_http: bool,
}

impl MetricsSection {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !self.listen.is_empty() {
            parse_socket_addr("metrics.listen", &self.listen)?;
        }
        if !self.bearer_token.is_empty() && self.bearer_token.len() < 16 {
            return Err(invalid(
                "metrics.bearer_token",
                "must be at least 16 characters when set",
            ));
        }
        Ok(())
    }
}

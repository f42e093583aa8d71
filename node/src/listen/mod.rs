//! What a client's connection may hold, on both listeners: a cap on open connections per
//! source address, a deadline for the first bytes, and an idle timeout for connections with
//! no request in flight. The gRPC listener (`grpc`) and the HTTP listeners (`http`) share
//! the connection wrapper [`Guarded`].

pub mod grpc;
pub mod http;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use gatehouse_config::ConnectionsSection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// The limits of `[connections]`, as durations and counts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send the request header (HTTP) or the HTTP/2 preface (gRPC).
    pub header_read: Duration,
    /// Time one request may take.
    pub request: Duration,
    /// Time a connection with no request in flight stays open.
    pub idle: Duration,
    /// Open connections per source address on one listener.
    pub max_per_source: usize,
    /// Concurrent streams per gRPC connection.
    pub max_streams: u32,
    /// HTTP/2 keep-alive ping interval.
    pub keepalive_interval: Duration,
    /// HTTP/2 keep-alive ping timeout.
    pub keepalive_timeout: Duration,
    /// TCP keep-alive idle time.
    pub tcp_keepalive: Duration,
}

impl Limits {
    /// The limits a config section sets.
    pub fn from_config(section: &ConnectionsSection) -> Limits {
        let seconds = |value: u32| Duration::from_secs(u64::from(value));
        Limits {
            header_read: seconds(section.header_read_timeout_seconds),
            request: seconds(section.request_timeout_seconds),
            idle: seconds(section.idle_timeout_seconds),
            max_per_source: section.max_per_source as usize,
            max_streams: section.max_streams_per_connection,
            keepalive_interval: seconds(section.http2_keepalive_interval_seconds),
            keepalive_timeout: seconds(section.http2_keepalive_timeout_seconds),
            tcp_keepalive: seconds(section.tcp_keepalive_seconds),
        }
    }
}

/// Open connections per source address on one listener.
#[derive(Debug, Clone)]
pub struct SourceLimiter {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max: usize,
}

impl SourceLimiter {
    /// A limiter that lets each source hold `max` connections.
    pub fn new(max: usize) -> SourceLimiter {
        SourceLimiter {
            open: Arc::default(),
            max: max.max(1),
        }
    }

    /// A slot for one more connection from `ip`, or `None` when it holds its share.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<SourceSlot> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            limiter: self.clone(),
            ip,
        })
    }
}

/// One open connection counted against its source; dropping it frees the place.
#[derive(Debug)]
pub struct SourceSlot {
    limiter: SourceLimiter,
    ip: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self
            .limiter
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Requests in flight on one connection, and since when it has had none.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        })
    }

    /// Counts one request until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight {
            activity: Arc::clone(self),
        }
    }

    /// When the connection is idle for `idle`; `None` while a request is in flight.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let since = *self
            .idle_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(since + idle)
    }
}

/// One request in flight on a connection.
#[derive(Debug)]
pub struct InFlight {
    activity: Arc<Activity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut since = self
            .activity
            .idle_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *since = Instant::now();
        self.activity.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An accepted connection under the listener's limits: it holds its source's slot, fails
/// its reads once it has been idle too long, and (gRPC) once the first `preface` bytes did
/// not arrive in time. A failed read makes the server close the connection.
#[derive(Debug)]
pub struct Guarded {
    stream: TcpStream,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    activity: Arc<Activity>,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    preface: Option<(usize, Pin<Box<Sleep>>)>,
    _slot: SourceSlot,
}

impl Guarded {
    /// Wraps `stream`; `preface` is how many bytes must arrive within `header_read`.
    fn new(
        stream: TcpStream,
        remote: SocketAddr,
        slot: SourceSlot,
        limits: &Limits,
        preface: Option<usize>,
    ) -> Guarded {
        let local = stream.local_addr().ok();
        let now = Instant::now();
        Guarded {
            stream,
            remote,
            local,
            activity: Activity::new(),
            idle: limits.idle,
            idle_timer: Box::pin(tokio::time::sleep_until(now + limits.idle)),
            preface: preface.map(|bytes| {
                let timer = Box::pin(tokio::time::sleep_until(now + limits.header_read));
                (bytes, timer)
            }),
            _slot: slot,
        }
    }

    /// The connection's request counter.
    pub fn activity(&self) -> Arc<Activity> {
        Arc::clone(&self.activity)
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Whether the connection must be closed now; otherwise the timers are armed.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<&'static str> {
        if let Some((_, timer)) = &mut self.preface
            && timer.as_mut().poll(cx).is_ready()
        {
            return Some("the HTTP/2 preface did not arrive in time");
        }
        loop {
            let deadline = match self.activity.idle_deadline(self.idle) {
                Some(deadline) if deadline <= Instant::now() => {
                    return Some("idle connection");
                }
                Some(deadline) => deadline,
                // Looked at again a full period later; the request's end moves it on.
                None => Instant::now() + self.idle,
            };
            if self.idle_timer.deadline() != deadline {
                self.idle_timer.as_mut().reset(deadline);
            }
            if self.idle_timer.as_mut().poll(cx).is_pending() {
                return None;
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        if let Poll::Ready(result) = Pin::new(&mut this.stream).poll_read(cx, buf) {
            if let Some((missing, _)) = &mut this.preface {
                *missing = missing.saturating_sub(buf.filled().len() - before);
                if *missing == 0 {
                    this.preface = None;
                }
            }
            return Poll::Ready(result);
        }
        match this.expired(cx) {
            Some(reason) => {
                tracing::debug!(remote = %this.remote, reason, "closing connection");
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, reason)))
            }
            None => Poll::Pending,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Accepts the next connection that its source's share admits; connections beyond the
/// share are closed at once. `preface` as in [`Guarded::new`].
async fn accept(
    listener: &TcpListener,
    limiter: &SourceLimiter,
    limits: &Limits,
    preface: Option<usize>,
) -> Guarded {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors and the like: wait a little instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = limiter.try_acquire(remote.ip()) else {
            metrics::counter!("gatehouse_connections_refused_total").increment(1);
            tracing::debug!(%remote, "source holds its share of connections; closing");
            drop(stream);
            continue;
        };
        // Without TCP_NODELAY small replies wait for delayed ACKs (~40 ms per call).
        let _ = stream.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(limits.tcp_keepalive);
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        return Guarded::new(stream, remote, slot, limits, preface);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_source_holds_at_most_its_share_and_gets_places_back() {
        let limiter = SourceLimiter::new(2);
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limiter.try_acquire(one).unwrap();
        let _second = limiter.try_acquire(one).unwrap();
        assert!(limiter.try_acquire(one).is_none());
        assert!(limiter.try_acquire(other).is_some());
        drop(first);
        assert!(limiter.try_acquire(one).is_some());
    }
}

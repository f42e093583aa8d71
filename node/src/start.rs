//! `gatehouse start`: boot a node, serve until SIGTERM/SIGINT, drain, exit.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gatehouse_actors::cluster::{MemberStatus, Membership, MembershipView};
use gatehouse_actors::context::Context;
use gatehouse_actors::crypto::MasterKey;
use gatehouse_actors::domain::email::EmailSettings;
use gatehouse_actors::passwords::Argon2Params;
use gatehouse_actors::routing::ClusterWiring;
use gatehouse_actors::webhooks::WebhookSettings;
use gatehouse_actors::{Gatehouse, GatehouseOptions};
use gatehouse_config::{Config, StorageBackendKind};
use gatehouse_storage::{Database, StorageError};
use tokio::sync::watch;

use crate::StartArgs;
use crate::email_sender::SmtpSender;
use crate::error::{NodeError, NodeResult};
use crate::webhook_sender::{HttpWebhookSender, SystemResolver};
use crate::{cluster, grpc, http, listen, telemetry, upstream};

/// Runs a node until it is told to stop.
pub async fn run(args: StartArgs) -> NodeResult<()> {
    let mut config = Config::load_from_env(args.config.as_deref())?;
    if let Some(data_dir) = args.data_dir {
        config.node.data_dir = data_dir;
    }
    if let Some(addr) = args.grpc_addr {
        config.node.grpc_addr = addr;
    }
    if let Some(addr) = args.http_addr {
        config.node.http_addr = addr;
    }
    if let Some(backend) = args.storage {
        config.storage.backend = backend;
    }
    config.validate()?;
    telemetry::init_logging(&config.node.log, &config.node.log_format);
    let metrics = telemetry::init_metrics()?;

    let data_dir = config.node.data_dir.clone();
    create_private_dir(&data_dir)?;
    let master_key = load_or_create_master_key(&config.master_key_path())?;
    // Keeps FoundationDB's network thread alive until `run` returns.
    let _fdb_network = boot_fdb(&config)?;
    let db = open_storage(&config).await?;

    let grpc_listener = bind(
        config.grpc_addr()?,
        &config.node.grpc_addr,
        "node.grpc_addr",
    )
    .await?;
    let http_listener = bind(
        config.http_addr()?,
        &config.node.http_addr,
        "node.http_addr",
    )
    .await?;
    let metrics_listener = match config.metrics_addr()? {
        Some(addr) => Some(bind(addr, &config.metrics.listen, "metrics.listen").await?),
        None => None,
    };
    let grpc_addr = grpc::local_addr(&grpc_listener)?;
    let http_addr = grpc::local_addr(&http_listener)?;
    let public_url = if config.node.public_url.is_empty() {
        format!("http://{http_addr}")
    } else {
        config.node.public_url.clone()
    };

    let node = grpc::NodeInfo {
        node_id: if config.cluster.node_id.is_empty() {
            format!("node-{grpc_addr}")
        } else {
            config.cluster.node_id.clone()
        },
        generation: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as u64)
            .unwrap_or(0),
        grpc_addr: grpc_addr.to_string(),
        http_addr: http_addr.to_string(),
    };
    let clustered = !config.cluster.gossip_addr.is_empty();
    let (membership_publisher, cluster) = if clustered {
        let (publisher, view) = MembershipView::new(Membership::single(&node.node_id));
        let wiring = ClusterWiring {
            membership: view,
            forwarder: Arc::new(cluster::GrpcForwarder::new(&config.cluster.cluster_secret)?),
        };
        (Some(publisher), Some(wiring))
    } else {
        (None, None)
    };

    let gatehouse = Gatehouse::start(
        db,
        Context::system(),
        master_key,
        GatehouseOptions {
            public_url,
            password_hash_threads: config.auth.password_hash_threads as usize,
            password_hash_queue: config.auth.password_hash_queue as usize,
            password_hash_queue_per_source: config.auth.password_hash_queue_per_source as usize,
            password_hash_queue_per_tenant: config.auth.password_hash_queue_per_tenant as usize,
            cluster,
            webhooks: webhook_settings(&config)?,
            email: email_settings(&config)?,
            argon2: Argon2Params {
                memory_kib: config.auth.argon2_memory_kib,
                iterations: config.auth.argon2_iterations,
                parallelism: config.auth.argon2_parallelism,
            },
            upstream: Some(Arc::new(
                upstream::OidcUpstream::new(config.oauth.allow_private_providers)
                    .map_err(NodeError::UpstreamClient)?,
            )),
            ..GatehouseOptions::default()
        },
    )
    .await
    .map_err(|source| NodeError::Domain {
        action: "start",
        source,
    })?;

    let gossip = match membership_publisher {
        Some(publisher) => {
            let gossip = Arc::new(
                cluster::Gossip::start(cluster::GossipSettings {
                    node_id: node.node_id.clone(),
                    gossip_addr: config.cluster.gossip_addr.parse().map_err(|source| {
                        NodeError::InvalidAddress {
                            setting: "cluster.gossip_addr",
                            source,
                        }
                    })?,
                    seeds: config.cluster.seeds.clone(),
                    cluster_id: config.cluster.cluster_id.clone(),
                    grpc_addr,
                    http_addr,
                })
                .await?,
            );
            gossip.spawn_refresher(gatehouse.clone(), publisher);
            Some(gossip)
        }
        None => None,
    };

    let operator_key_path = config.operator_key_path();
    match gatehouse
        .ensure_operator_key()
        .await
        .map_err(|source| NodeError::Domain {
            action: "create the operator key",
            source,
        })? {
        Some(key) => {
            write_secret_file(&operator_key_path, &key)?;
            println!(
                "gatehouse: created the operator key and wrote it to {} (mode 0600)",
                operator_key_path.display()
            );
        }
        None if operator_key_path.exists() => {
            println!(
                "gatehouse: operator key is in {}",
                operator_key_path.display()
            );
        }
        None => println!(
            "gatehouse: an operator key already exists in storage; {} is not on this machine",
            operator_key_path.display()
        ),
    }

    let limits = listen::Limits::from_config(&config.connections);
    let stop_signals = StopSignals::watch()?;
    let (stop_sender, stop_receiver) = watch::channel(false);
    let ready = Arc::new(AtomicBool::new(true));
    let (health, health_service) = tonic_health::server::health_reporter();
    let internal = cluster::InternalService::new(
        gatehouse.clone(),
        clustered.then_some(config.cluster.cluster_secret.as_str()),
    );
    let grpc_task = tokio::spawn(grpc::serve(
        gatehouse.clone(),
        node.clone(),
        internal,
        grpc_listener,
        health.clone(),
        health_service,
        limits,
        stopped(stop_receiver.clone()),
    ));
    let http_state = http::HttpState {
        gatehouse: gatehouse.clone(),
        metrics,
        ready: ready.clone(),
        metrics_token: http::MetricsToken::new(&config.metrics.bearer_token),
    };
    let metrics_addr = match &metrics_listener {
        Some(listener) => Some(grpc::local_addr(listener)?),
        None => None,
    };
    if let Some(listener) = metrics_listener {
        let router = http::metrics_router(http_state.clone());
        let stop = stopped(stop_receiver.clone());
        tokio::spawn(listen::http::serve(listener, router, limits, stop));
    }
    let public_router = http::router(http_state, config.metrics.on_http);
    let http_stop = stopped(stop_receiver.clone());
    let http_task = tokio::spawn(async move {
        listen::http::serve(http_listener, public_router, limits, http_stop).await;
        Ok(())
    });

    if let Some(gossip) = &gossip {
        gossip.set_status(MemberStatus::Serving).await;
    }
    let metrics_field = metrics_addr
        .map(|addr| format!(" metrics={addr}"))
        .unwrap_or_default();
    println!(
        "gatehouse: ready grpc={grpc_addr} http={http_addr}{metrics_field} storage={} data_dir={} node_id={}",
        gatehouse.services().db.backend_name(),
        data_dir.display(),
        node.node_id
    );
    tracing::info!(%grpc_addr, %http_addr, "node serving");

    let signal = stop_signals.first().await;
    tracing::info!(signal, "draining");
    ready.store(false, Ordering::SeqCst);
    if let Some(gossip) = &gossip {
        // Tell the others first, so they stop routing here while we drain.
        gossip.set_status(MemberStatus::Leaving).await;
        tokio::time::sleep(LEAVE_ANNOUNCE).await;
    }
    grpc::set_public_services(&health, tonic_health::ServingStatus::NotServing).await;
    let _ = stop_sender.send(true);
    // In-flight calls get a grace period to finish. Idle keep-alive connections are not
    // waited for: clients see the connection close and reconnect elsewhere.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(DRAIN_GRACE_SECONDS);
    while grpc::in_flight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settle = (tokio::time::Instant::now() + Duration::from_millis(200)).min(deadline);
    let grpc_result = finish("gRPC", grpc_task, settle).await;
    let http_result = finish("HTTP", http_task, settle).await;
    gatehouse.shutdown().await;
    if let Some(gossip) = gossip {
        gossip.shutdown().await;
    }
    grpc_result.and(http_result)?;
    println!("gatehouse: stopped");
    Ok(())
}

/// Webhook delivery settings from `[webhooks]`, with the HTTP sender.
fn webhook_settings(config: &Config) -> NodeResult<WebhookSettings> {
    let allow_private_targets = config.webhooks.allow_private_targets;
    Ok(WebhookSettings {
        sender: Some(Arc::new(HttpWebhookSender::new(allow_private_targets)?)),
        allow_private_targets,
        resolver: Arc::new(SystemResolver),
        attempt_timeout: Duration::from_secs(u64::from(config.webhooks.attempt_timeout_seconds)),
        ..WebhookSettings::default()
    })
}

/// Email delivery settings from `[email]`; without a host this node sends no email and
/// messages wait in the outbox.
fn email_settings(config: &Config) -> NodeResult<EmailSettings> {
    let email = &config.email;
    if !email.enabled() {
        return Ok(EmailSettings::default());
    }
    Ok(EmailSettings {
        sender: Some(Arc::new(SmtpSender::new(email)?)),
        attempt_timeout: Duration::from_secs(u64::from(email.timeout_seconds)),
        poll_interval: Duration::from_millis(u64::from(email.poll_interval_ms)),
        concurrency: email.attempt_concurrency as usize,
        ..EmailSettings::default()
    })
}

/// How long a leaving node keeps serving while gossip spreads its `leaving` status.
const LEAVE_ANNOUNCE: Duration = Duration::from_millis(800);

/// Seconds in-flight requests get to finish after SIGTERM.
const DRAIN_GRACE_SECONDS: u64 = 10;

async fn finish(
    name: &'static str,
    mut task: tokio::task::JoinHandle<NodeResult<()>>,
    deadline: tokio::time::Instant,
) -> NodeResult<()> {
    match tokio::time::timeout_at(deadline, &mut task).await {
        Ok(joined) => joined.map_err(|source| NodeError::ServerTask {
            server: name,
            source,
        })?,
        Err(_) => {
            tracing::debug!(server = name, "closing idle connections");
            task.abort();
            Ok(())
        }
    }
}

async fn stopped(mut receiver: watch::Receiver<bool>) {
    let _ = receiver.wait_for(|stop| *stop).await;
}

/// SIGTERM and SIGINT, watched from before the node says it is ready: a signal that
/// arrives right after the ready line must drain the node, not kill it.
struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn watch() -> NodeResult<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        let watch = |kind: SignalKind, action: &'static str| {
            signal(kind).map_err(|source| NodeError::System { action, source })
        };
        Ok(StopSignals {
            terminate: watch(SignalKind::terminate(), "watch SIGTERM")?,
            interrupt: watch(SignalKind::interrupt(), "watch SIGINT")?,
        })
    }

    async fn first(mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

fn storage_error(action: &'static str) -> impl FnOnce(StorageError) -> NodeError {
    move |source| NodeError::Storage { action, source }
}

async fn open_storage(config: &Config) -> NodeResult<Database> {
    match config.storage_backend()? {
        StorageBackendKind::Embedded => {
            Database::open_embedded(&config.node.data_dir.join("store"))
                .map_err(storage_error("open the embedded store"))
        }
        StorageBackendKind::Memory => Ok(Database::memory()),
        StorageBackendKind::Postgres => Database::open_postgres(&config.storage.postgres_url)
            .await
            .map_err(storage_error(
                "open the postgres store (storage.postgres_url)",
            )),
        StorageBackendKind::Fdb => open_fdb(config),
    }
}

#[cfg(feature = "fdb")]
fn open_fdb(config: &Config) -> NodeResult<Database> {
    let cluster_file = (!config.storage.fdb_cluster_file.is_empty())
        .then(|| std::path::PathBuf::from(&config.storage.fdb_cluster_file));
    Database::open_fdb(cluster_file.as_deref()).map_err(storage_error(
        "open FoundationDB (storage.fdb_cluster_file)",
    ))
}

#[cfg(feature = "fdb")]
#[allow(unsafe_code)]
fn boot_fdb(config: &Config) -> NodeResult<Option<gatehouse_storage::fdb::FdbNetwork>> {
    if config.storage_backend().ok() != Some(StorageBackendKind::Fdb) {
        return Ok(None);
    }
    // SAFETY: the guard is held by `run` and dropped when it returns, before `main` returns;
    // the process never calls `std::process::exit` while a node runs.
    let network = unsafe { gatehouse_storage::fdb::boot() }
        .map_err(storage_error("start the FoundationDB client"))?;
    Ok(Some(network))
}

#[cfg(not(feature = "fdb"))]
fn boot_fdb(_config: &Config) -> NodeResult<Option<()>> {
    Ok(None)
}

#[cfg(not(feature = "fdb"))]
fn open_fdb(_config: &Config) -> NodeResult<Database> {
    Err(NodeError::FdbNotBuilt)
}

/// Wraps an I/O error with what was being done to which path.
fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NodeError {
    let path = path.to_path_buf();
    move |source| NodeError::Io {
        action,
        path,
        source,
    }
}

async fn bind(
    addr: std::net::SocketAddr,
    configured: &str,
    setting: &'static str,
) -> NodeResult<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind {
            addr: configured.to_owned(),
            setting,
            source,
        })
}

fn create_private_dir(dir: &Path) -> NodeResult<()> {
    fs::create_dir_all(dir).map_err(io_error("create data directory", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io_error("restrict data directory", dir))
}

fn write_secret_file(path: &Path, contents: &str) -> NodeResult<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_error("create", parent))?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("write", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(io_error("restrict", path))?;
    writeln!(file, "{contents}")
        .and_then(|()| file.sync_all())
        .map_err(io_error("write", path))
}

fn load_or_create_master_key(path: &Path) -> NodeResult<MasterKey> {
    match fs::read_to_string(path) {
        Ok(text) => MasterKey::from_hex(&text).map_err(|source| NodeError::MasterKey {
            path: path.to_path_buf(),
            source,
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 32] = Context::system().random();
            write_secret_file(path, &hex::encode(bytes))?;
            tracing::info!(path = %path.display(), "created the master key");
            Ok(MasterKey::from_bytes(&bytes))
        }
        Err(error) => Err(io_error("read master key", path)(error)),
    }
}

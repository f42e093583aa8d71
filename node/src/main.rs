//! `gatehouse`: runs a node (`gatehouse start`) or administers one (`gatehouse admin …`).

mod admin;
mod cluster;
mod email_sender;
mod error;
mod grpc;
mod http;
mod listen;
mod oauth_http;
mod oidc_http;
mod pages;
mod start;
mod telemetry;
mod upstream;
mod webhook_sender;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use error::{NodeError, NodeResult};

/// Gatehouse: user management and authentication, as a cluster.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node. With no arguments: embedded storage in ./gatehouse-data, gRPC on
    /// 127.0.0.1:50051, HTTP on 127.0.0.1:8080.
    Start(StartArgs),
    /// Administer a running node over gRPC with the operator key.
    Admin(admin::AdminArgs),
}

/// Flags of `gatehouse start`; each overrides the config file and environment.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// TOML config file (see config/gatehouse.example.toml).
    #[arg(long, env = "GATEHOUSE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (embedded store, operator key, master key).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// gRPC listen address; port 0 picks a free port.
    #[arg(long)]
    grpc_addr: Option<String>,
    /// HTTP listen address; port 0 picks a free port.
    #[arg(long)]
    http_addr: Option<String>,
    /// Storage backend: embedded, memory, postgres (with storage.postgres_url) or fdb.
    #[arg(long)]
    storage: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> NodeResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| NodeError::System {
            action: "start the async runtime",
            source,
        })?;
    runtime.block_on(async move {
        match cli.command {
            Command::Start(args) => start::run(args).await,
            Command::Admin(args) => admin::run(args).await,
        }
    })
}

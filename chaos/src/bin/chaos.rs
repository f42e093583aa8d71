//! `chaos`: a mixed workload against a sandbox cluster on 127.0.0.1 while nodes are
//! SIGKILLed and SIGSTOPped on a seeded schedule, then invariant checks; the JSON report
//! goes to stdout, a summary to stderr, and the exit code is 1 on any violation (2 when
//! the run itself failed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gatehouse_chaos::ChaosError;
use gatehouse_chaos::chaos::{ChaosSettings, run_chaos};

/// Chaos test of a Gatehouse cluster; progress and summary on stderr, JSON on stdout.
#[derive(Debug, Parser)]
#[command(name = "chaos", version)]
struct Args {
    /// Seconds the workload and the faults run.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Nodes in the cluster (at least 3).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Seed of the fault schedule and the workload's choices (default: random, reported).
    #[arg(long)]
    seed: Option<u64>,
    /// Mean seconds between faults; each outage lasts 0.3–0.7 of it.
    #[arg(long, default_value_t = 8.0)]
    fault_interval: f64,
    /// Concurrent workload workers.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Most workload operations in all.
    #[arg(long, default_value_t = 1_000_000)]
    max_operations: u64,
    /// Spent refresh tokens re-presented at the end, at most.
    #[arg(long, default_value_t = 200)]
    spent_token_samples: usize,
    /// `gatehouse` binary to run (default: GATEHOUSE_BIN, else the one beside this binary,
    /// else target/debug/gatehouse).
    #[arg(long)]
    gatehouse_bin: Option<PathBuf>,
    /// Directory to copy the nodes' logs into at the end.
    #[arg(long)]
    save_logs: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match settings(&args) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("chaos: {error}");
            return ExitCode::from(2);
        }
    };
    match Box::pin(run_chaos(&settings)).await {
        Ok(report) => {
            eprint!("{}", report.summary());
            match serde_json::to_string_pretty(&report) {
                Ok(json) => println!("{json}"),
                Err(error) => {
                    eprintln!("chaos: cannot encode the report: {error}");
                    return ExitCode::from(2);
                }
            }
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("chaos: the run could not complete: {error}");
            ExitCode::from(2)
        }
    }
}

fn settings(args: &Args) -> Result<ChaosSettings, ChaosError> {
    let seconds = |value: f64, flag: &str| {
        if value.is_finite() && value > 0.0 {
            Ok(Duration::from_secs_f64(value))
        } else {
            Err(ChaosError::Setting(format!("--{flag} must be positive")))
        }
    };
    if args.concurrency == 0 {
        return Err(ChaosError::Setting(
            "--concurrency must be at least 1".to_owned(),
        ));
    }
    Ok(ChaosSettings {
        nodes: args.nodes,
        duration: seconds(args.duration, "duration")?,
        fault_interval: seconds(args.fault_interval, "fault-interval")?,
        seed: args.seed.unwrap_or_else(rand::random),
        concurrency: args.concurrency,
        max_operations: args.max_operations,
        spent_token_samples: args.spent_token_samples,
        binary: args.gatehouse_bin.clone(),
        save_logs: args.save_logs.clone(),
        ..ChaosSettings::default()
    })
}

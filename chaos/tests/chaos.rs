//! A short chaos run as a test: three real nodes on one PostgreSQL, a mixed workload for
//! 45 s while nodes are SIGKILLed and SIGSTOPped, then every invariant must hold.
//!
//! The node binary is built first (`cargo build -p gatehouse` in this test's profile), so
//! `cargo test -p gatehouse-chaos` works on its own; `GATEHOUSE_BIN` skips the build.
//! `CHAOS_SEED` replays another schedule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gatehouse_chaos::chaos::{ChaosSettings, run_chaos};

/// Seed of the schedule unless `CHAOS_SEED` says otherwise.
const DEFAULT_SEED: u64 = 20_240_611;
/// How long building the node may take (mostly waiting for other builds' cargo lock).
const BUILD_LIMIT: Duration = Duration::from_secs(20 * 60);

/// The `gatehouse` binary of this test's profile, built if needed.
async fn gatehouse_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("GATEHOUSE_BIN") {
        return PathBuf::from(path);
    }
    // This test runs from target/<profile>/deps; the node lands in target/<profile>.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let profile = profile_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = tokio::process::Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", "gatehouse"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .kill_on_drop(true);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let started = Instant::now();
    let status = tokio::time::timeout(BUILD_LIMIT, build.status())
        .await
        .unwrap_or_else(|_| panic!("cargo build -p gatehouse took over {BUILD_LIMIT:?}"))
        .expect("run cargo build -p gatehouse");
    assert!(status.success(), "cargo build -p gatehouse: {status}");
    eprintln!("gatehouse binary ready in {:?}", started.elapsed());
    let binary = profile_dir.join("gatehouse");
    assert!(binary.is_file(), "no node binary at {}", binary.display());
    binary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_run_keeps_every_invariant() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .map(|seed| seed.parse().expect("CHAOS_SEED is a number"))
        .unwrap_or(DEFAULT_SEED);
    let settings = ChaosSettings {
        nodes: 3,
        duration: Duration::from_secs(45),
        fault_interval: Duration::from_secs(5),
        seed,
        concurrency: 4,
        spent_token_samples: 150,
        check_limit: Duration::from_secs(60),
        binary: Some(gatehouse_binary().await),
        ..ChaosSettings::default()
    };
    let report = Box::pin(run_chaos(&settings))
        .await
        .unwrap_or_else(|error| panic!("the chaos run (seed {seed}) could not complete: {error}"));
    eprint!("{}", report.summary());
    let json = serde_json::to_string_pretty(&report).unwrap();

    for invariant in &report.invariants {
        assert!(
            invariant.passed,
            "invariant {} violated (seed {seed}):\n{json}",
            invariant.name
        );
        assert!(
            invariant.conclusive,
            "invariant {} was never checked (seed {seed}):\n{json}",
            invariant.name
        );
    }
    assert!(report.passed, "{json}");
    assert!(
        report.faults["kill"] >= 1 && report.faults["pause"] >= 1,
        "both kinds of fault must be injected: {:?}",
        report.faults
    );
    let refreshes = report.operations.get("refresh").map_or(0, |r| r.operations);
    assert!(
        refreshes >= 100,
        "too little load to mean anything:\n{json}"
    );
}

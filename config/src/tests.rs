#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn defaults_run_a_single_embedded_node() {
    let config = Config::load(None, vars(&[])).unwrap();
    assert_eq!(
        config.storage_backend().unwrap(),
        StorageBackendKind::Embedded
    );
    assert_eq!(config.grpc_addr().unwrap().to_string(), "127.0.0.1:50051");
    assert_eq!(config.http_addr().unwrap().to_string(), "127.0.0.1:8080");
    assert_eq!(config.node.data_dir, PathBuf::from("./gatehouse-data"));
    assert_eq!(
        config.operator_key_path(),
        PathBuf::from("./gatehouse-data/operator.key")
    );
    assert!(config.cluster.gossip_addr.is_empty());
}

#[test]
fn file_values_are_read() {
    let text = "[node]\ngrpc_addr = \"127.0.0.1:6000\"\n[storage]\nbackend = \"memory\"\n";
    let config = Config::from_parts(Some(text), None, vars(&[])).unwrap();
    assert_eq!(config.node.grpc_addr, "127.0.0.1:6000");
    assert_eq!(
        config.storage_backend().unwrap(),
        StorageBackendKind::Memory
    );
    assert_eq!(
        config.node.http_addr, "127.0.0.1:8080",
        "untouched keys keep defaults"
    );
}

#[test]
fn unknown_file_key_is_rejected_and_named() {
    let text = "[node]\ngrpc_adr = \"127.0.0.1:6000\"\n";
    let error = Config::from_parts(Some(text), None, vars(&[])).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ConfigError::Parse { .. }));
    assert!(message.contains("grpc_adr"), "{message}");
}

#[test]
fn unknown_section_is_rejected() {
    let error = Config::from_parts(Some("[nodes]\nx = 1\n"), None, vars(&[])).unwrap_err();
    assert!(error.to_string().contains("nodes"), "{error}");
}

#[test]
fn environment_overrides_file() {
    let text = "[node]\ngrpc_addr = \"127.0.0.1:6000\"\n";
    let config = Config::from_parts(
        Some(text),
        None,
        vars(&[
            ("GATEHOUSE_NODE_GRPC_ADDR", "127.0.0.1:7000"),
            ("GATEHOUSE_AUTH_PASSWORD_HASH_THREADS", "3"),
            ("GATEHOUSE_CLUSTER_SEEDS", "127.0.0.2:7946, 127.0.0.3:7946"),
            ("GATEHOUSE_CONFIG", "/etc/gatehouse.toml"),
            ("PATH", "/usr/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(config.node.grpc_addr, "127.0.0.1:7000");
    assert_eq!(config.auth.password_hash_threads, 3);
    assert_eq!(
        config.cluster.seeds,
        vec!["127.0.0.2:7946".to_owned(), "127.0.0.3:7946".to_owned()]
    );
}

#[test]
fn unknown_environment_variable_is_rejected_and_named() {
    let error =
        Config::from_parts(None, None, vars(&[("GATEHOUSE_NODE_GRPC_ADR", "x")])).unwrap_err();
    assert_eq!(
        error,
        ConfigError::Env {
            variable: "GATEHOUSE_NODE_GRPC_ADR".to_owned(),
            message: "not a known configuration key".to_owned(),
        }
    );
}

#[test]
fn mistyped_environment_value_names_the_variable() {
    let error = Config::from_parts(
        None,
        None,
        vars(&[("GATEHOUSE_AUTH_PASSWORD_HASH_THREADS", "many")]),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("GATEHOUSE_AUTH_PASSWORD_HASH_THREADS"),
        "{error}"
    );
}

#[test]
fn validation_names_the_key() {
    let cases = [
        ("GATEHOUSE_NODE_GRPC_ADDR", "localhost", "node.grpc_addr"),
        ("GATEHOUSE_STORAGE_BACKEND", "rocks", "storage.backend"),
        ("GATEHOUSE_NODE_LOG_FORMAT", "xml", "node.log_format"),
        (
            "GATEHOUSE_STORAGE_BACKEND",
            "postgres",
            "storage.postgres_url",
        ),
        (
            "GATEHOUSE_AUTH_PASSWORD_HASH_QUEUE",
            "0",
            "auth.password_hash_queue",
        ),
    ];
    for (variable, value, key) in cases {
        let error = Config::load(None, vars(&[(variable, value)])).unwrap_err();
        match error {
            ConfigError::Invalid { key: named, .. } => assert_eq!(named, key),
            other => panic!("{variable}={value}: expected invalid {key}, got {other}"),
        }
    }
}

#[test]
fn gossip_requires_a_shared_issuer_and_a_cluster_secret() {
    let error = Config::load(
        None,
        vars(&[("GATEHOUSE_CLUSTER_GOSSIP_ADDR", "127.0.0.1:7946")]),
    )
    .unwrap_err();
    assert!(error.to_string().contains("node.public_url"), "{error}");
    let error = Config::load(
        None,
        vars(&[
            ("GATEHOUSE_CLUSTER_GOSSIP_ADDR", "127.0.0.1:7946"),
            ("GATEHOUSE_NODE_PUBLIC_URL", "https://auth.example.com"),
        ]),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("cluster.cluster_secret"),
        "{error}"
    );
    let config = Config::load(
        None,
        vars(&[
            ("GATEHOUSE_CLUSTER_GOSSIP_ADDR", "127.0.0.1:7946"),
            ("GATEHOUSE_NODE_PUBLIC_URL", "https://auth.example.com"),
            ("GATEHOUSE_CLUSTER_CLUSTER_SECRET", "0123456789abcdef"),
        ]),
    )
    .unwrap();
    assert_eq!(config.cluster.gossip_addr, "127.0.0.1:7946");
}

#[test]
fn example_file_is_valid_and_matches_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gatehouse.example.toml");
    let config = Config::load(Some(&path), vars(&[])).unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn missing_file_is_a_read_error() {
    let error =
        Config::load(Some(Path::new("/nonexistent/gatehouse.toml")), vars(&[])).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
}

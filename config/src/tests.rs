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

#[test]
fn email_and_argon2_defaults() {
    let config = Config::load(None, vars(&[])).unwrap();
    let email = &config.email;
    assert!(!email.enabled(), "no host means no email is sent");
    assert_eq!(email.port_number().unwrap(), 587);
    assert_eq!(email.tls_mode().unwrap(), EmailTls::StartTls);
    assert_eq!(email.password_source().unwrap(), EmailPasswordSource::None);
    assert!(email.username.is_empty() && email.hello_name.is_empty());
    assert_eq!(email.timeout_seconds, 30);
    assert_eq!(email.attempt_concurrency, 16);
    assert_eq!(email.poll_interval_ms, 200);
    assert_eq!(config.auth.argon2_memory_kib, 19456);
    assert_eq!(config.auth.argon2_iterations, 2);
    assert_eq!(config.auth.argon2_parallelism, 1);
}

#[test]
fn email_and_argon2_file_values_are_read() {
    let text = "[auth]\nargon2_memory_kib = 65536\nargon2_iterations = 3\nargon2_parallelism = 4\n\
                [email]\nhost = \"smtp.example.com\"\nport = 465\ntls = \"tls\"\n\
                username = \"gatehouse\"\npassword_file = \"/run/secrets/smtp\"\n\
                hello_name = \"auth.example.com\"\ntimeout_seconds = 10\n\
                attempt_concurrency = 4\npoll_interval_ms = 500\n";
    let config = Config::from_parts(Some(text), None, vars(&[])).unwrap();
    config.validate().unwrap();
    let email = &config.email;
    assert!(email.enabled());
    assert_eq!(email.host, "smtp.example.com");
    assert_eq!(email.port_number().unwrap(), 465);
    assert_eq!(email.tls_mode().unwrap(), EmailTls::Tls);
    assert_eq!(email.username, "gatehouse");
    assert_eq!(
        email.password_source().unwrap(),
        EmailPasswordSource::File("/run/secrets/smtp".to_owned())
    );
    assert_eq!(email.hello_name, "auth.example.com");
    assert_eq!(
        (
            email.timeout_seconds,
            email.attempt_concurrency,
            email.poll_interval_ms
        ),
        (10, 4, 500)
    );
    assert_eq!(
        (
            config.auth.argon2_memory_kib,
            config.auth.argon2_iterations,
            config.auth.argon2_parallelism
        ),
        (65536, 3, 4)
    );
}

#[test]
fn email_and_argon2_environment_overrides() {
    let text = "[email]\nhost = \"smtp.example.com\"\n";
    let config = Config::load_text_for_tests(
        text,
        &[
            ("GATEHOUSE_EMAIL_HOST", "127.0.0.1"),
            ("GATEHOUSE_EMAIL_PORT", "2525"),
            ("GATEHOUSE_EMAIL_TLS", "none"),
            ("GATEHOUSE_EMAIL_USERNAME", "mailer"),
            ("GATEHOUSE_EMAIL_PASSWORD_ENV", "GATEHOUSE_SMTP_PASSWORD"),
            // Named by email.password_env, so it is the password, not an unknown key.
            ("GATEHOUSE_SMTP_PASSWORD", "hunter2"),
            ("GATEHOUSE_EMAIL_TIMEOUT_SECONDS", "5"),
            ("GATEHOUSE_EMAIL_ATTEMPT_CONCURRENCY", "2"),
            ("GATEHOUSE_EMAIL_POLL_INTERVAL_MS", "50"),
            ("GATEHOUSE_EMAIL_HELLO_NAME", "node-a.example.com"),
            ("GATEHOUSE_AUTH_ARGON2_MEMORY_KIB", "8192"),
            ("GATEHOUSE_AUTH_ARGON2_ITERATIONS", "1"),
            ("GATEHOUSE_AUTH_ARGON2_PARALLELISM", "2"),
        ],
    );
    let email = &config.email;
    assert_eq!(email.host, "127.0.0.1");
    assert_eq!(email.port_number().unwrap(), 2525);
    assert_eq!(email.tls_mode().unwrap(), EmailTls::None);
    assert_eq!(
        email.password_source().unwrap(),
        EmailPasswordSource::Env("GATEHOUSE_SMTP_PASSWORD".to_owned())
    );
    assert_eq!(email.hello_name, "node-a.example.com");
    assert_eq!(
        (
            email.timeout_seconds,
            email.attempt_concurrency,
            email.poll_interval_ms
        ),
        (5, 2, 50)
    );
    assert_eq!(
        (
            config.auth.argon2_memory_kib,
            config.auth.argon2_iterations,
            config.auth.argon2_parallelism
        ),
        (8192, 1, 2)
    );
}

#[test]
fn bad_email_and_argon2_values_name_the_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("GATEHOUSE_EMAIL_TLS", "ssl")], "email.tls"),
        (&[("GATEHOUSE_EMAIL_PORT", "0")], "email.port"),
        (&[("GATEHOUSE_EMAIL_PORT", "70000")], "email.port"),
        (&[("GATEHOUSE_EMAIL_HOST", "smtp example")], "email.host"),
        (&[("GATEHOUSE_EMAIL_HELLO_NAME", "a b")], "email.hello_name"),
        (
            &[
                ("GATEHOUSE_EMAIL_USERNAME", "mailer"),
                ("GATEHOUSE_EMAIL_PASSWORD_ENV", "SMTP_PASSWORD"),
                ("GATEHOUSE_EMAIL_PASSWORD_FILE", "/run/secrets/smtp"),
            ],
            "email.password_file",
        ),
        (&[("GATEHOUSE_EMAIL_USERNAME", "mailer")], "email.username"),
        (
            &[("GATEHOUSE_EMAIL_PASSWORD_FILE", "/run/secrets/smtp")],
            "email.username",
        ),
        (
            &[("GATEHOUSE_EMAIL_TIMEOUT_SECONDS", "0")],
            "email.timeout_seconds",
        ),
        (
            &[("GATEHOUSE_EMAIL_TIMEOUT_SECONDS", "301")],
            "email.timeout_seconds",
        ),
        (
            &[("GATEHOUSE_EMAIL_ATTEMPT_CONCURRENCY", "0")],
            "email.attempt_concurrency",
        ),
        (
            &[("GATEHOUSE_EMAIL_POLL_INTERVAL_MS", "0")],
            "email.poll_interval_ms",
        ),
        (
            &[("GATEHOUSE_AUTH_ARGON2_ITERATIONS", "0")],
            "auth.argon2_iterations",
        ),
        (
            &[("GATEHOUSE_AUTH_ARGON2_ITERATIONS", "11")],
            "auth.argon2_iterations",
        ),
        (
            &[("GATEHOUSE_AUTH_ARGON2_PARALLELISM", "0")],
            "auth.argon2_parallelism",
        ),
        (
            &[("GATEHOUSE_AUTH_ARGON2_PARALLELISM", "17")],
            "auth.argon2_parallelism",
        ),
        (
            &[
                ("GATEHOUSE_AUTH_ARGON2_PARALLELISM", "4"),
                ("GATEHOUSE_AUTH_ARGON2_MEMORY_KIB", "31"),
            ],
            "auth.argon2_memory_kib",
        ),
        (
            &[("GATEHOUSE_AUTH_ARGON2_MEMORY_KIB", "4194305")],
            "auth.argon2_memory_kib",
        ),
    ];
    for (settings, key) in cases {
        let error = Config::load(None, vars(settings)).unwrap_err();
        match error {
            ConfigError::Invalid { key: named, .. } => assert_eq!(named, *key, "{settings:?}"),
            other => panic!("{settings:?}: expected invalid {key}, got {other}"),
        }
    }
}

#[test]
fn bad_email_values_in_the_file_name_the_key() {
    let text = "[email]\ntls = \"STARTTLS\"\n";
    let error = Config::from_parts(Some(text), None, vars(&[]))
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(error.to_string().contains("email.tls"), "{error}");
    let error =
        Config::from_parts(Some("[email]\nsmtp_host = \"x\"\n"), None, vars(&[])).unwrap_err();
    assert!(error.to_string().contains("smtp_host"), "{error}");
}

#[test]
fn the_smallest_argon2_memory_follows_the_lanes() {
    let config = Config::load(
        None,
        vars(&[
            ("GATEHOUSE_AUTH_ARGON2_PARALLELISM", "4"),
            ("GATEHOUSE_AUTH_ARGON2_MEMORY_KIB", "32"),
        ]),
    )
    .unwrap();
    assert_eq!(config.auth.argon2_memory_kib, 32);
}

impl Config {
    /// A file's text plus environment overrides, validated; panics on any error.
    fn load_text_for_tests(text: &str, pairs: &[(&str, &str)]) -> Config {
        let config = Config::from_parts(Some(text), None, vars(pairs)).unwrap();
        config.validate().unwrap();
        config
    }
}

#[test]
fn connection_limits_and_metrics_are_configurable_and_checked() {
    let config = Config::load(None, vars(&[])).unwrap();
    assert_eq!(config.connections.header_read_timeout_seconds, 10);
    assert_eq!(config.connections.max_per_source, 256);
    assert_eq!(config.metrics_addr().unwrap(), None);
    assert!(!config.metrics.on_http && config.metrics.bearer_token.is_empty());
    let config = Config::load(
        None,
        vars(&[
            ("GATEHOUSE_CONNECTIONS_MAX_PER_SOURCE", "4"),
            ("GATEHOUSE_CONNECTIONS_IDLE_TIMEOUT_SECONDS", "2"),
            ("GATEHOUSE_METRICS_LISTEN", "127.0.0.1:9090"),
            ("GATEHOUSE_AUTH_PASSWORD_HASH_QUEUE_PER_SOURCE", "8"),
        ]),
    )
    .unwrap();
    assert_eq!(config.connections.max_per_source, 4);
    assert_eq!(config.connections.idle_timeout_seconds, 2);
    assert_eq!(config.auth.password_hash_queue_per_source, 8);
    assert_eq!(
        config.metrics_addr().unwrap().map(|addr| addr.port()),
        Some(9090)
    );
    for (variable, value, key) in [
        (
            "GATEHOUSE_CONNECTIONS_HEADER_READ_TIMEOUT_SECONDS",
            "0",
            "connections.header_read_timeout_seconds",
        ),
        (
            "GATEHOUSE_CONNECTIONS_MAX_PER_SOURCE",
            "0",
            "connections.max_per_source",
        ),
        ("GATEHOUSE_METRICS_LISTEN", "nowhere", "metrics.listen"),
        (
            "GATEHOUSE_METRICS_BEARER_TOKEN",
            "short",
            "metrics.bearer_token",
        ),
    ] {
        let error = Config::load(None, vars(&[(variable, value)])).unwrap_err();
        assert!(error.to_string().contains(key), "{variable}: {error}");
    }
    let error = Config::from_parts(Some("[metrics]\nport = 1\n"), None, vars(&[])).unwrap_err();
    assert!(error.to_string().contains("port"), "{error}");
}

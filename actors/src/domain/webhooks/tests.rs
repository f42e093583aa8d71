//! Unit tests of signing, backoff, filters and target checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;

use super::deliveries::RetryPolicy;
use super::signing::{self, WebhookSecret};
use super::targets::{HostResolver, check_target, is_private_address, parse_target_url};
use super::*;
use crate::context::{Clock, Context, SystemClock};

/// The system resolver, as the node provides it.
#[derive(Debug)]
struct SystemResolver;

#[async_trait::async_trait]
impl HostResolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<std::net::IpAddr>> {
        let addresses = tokio::net::lookup_host((host, port)).await?;
        Ok(addresses.map(|socket| socket.ip()).collect())
    }
}

#[test]
fn signatures_match_the_standard_webhooks_test_vector() {
    // The reference vector published with the Standard Webhooks specification.
    let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let signature = secret
        .sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
    assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

pub(super) fn header_map(headers: &[(String, String)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn the_reference_library_accepts_our_headers_and_both_secrets_during_rotation() {
    let context = Context::system();
    let current = WebhookSecret::generate(&context);
    let previous = WebhookSecret::generate(&context);
    assert!(current.to_text().starts_with("whsec_"));
    let body = br#"{"type":"user.created","timestamp":"2026-01-01T00:00:00.000Z","data":{}}"#;
    let now = SystemClock.now().as_unix_seconds();
    let headers =
        signing::headers(&[current.clone(), previous.clone()], "msg_1", now, body).unwrap();
    for secret in [&current, &previous] {
        standardwebhooks::Webhook::new(&secret.to_text())
            .unwrap()
            .verify(body, &header_map(&headers))
            .unwrap();
    }
    let stranger = WebhookSecret::generate(&context).to_text();
    assert!(
        standardwebhooks::Webhook::new(&stranger)
            .unwrap()
            .verify(body, &header_map(&headers))
            .is_err()
    );
    assert!(!format!("{current:?}").contains(&current.to_text()[6..]));
}

#[test]
fn backoff_doubles_from_five_seconds_to_an_hour_with_full_jitter() {
    let policy = RetryPolicy::default();
    let expected = [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600];
    for (failures, seconds) in (1..).zip(expected) {
        assert_eq!(policy.ceiling(failures), Duration::from_secs(seconds));
    }
    assert_eq!(policy.ceiling(1000), Duration::from_secs(3600));
    let context = Context::system();
    for failures in 1..20 {
        let mut seen_low = false;
        for _ in 0..200 {
            let delay = policy.delay(failures, u64::from_le_bytes(context.random::<8>()));
            assert!(delay >= policy.min_delay, "{delay:?}");
            assert!(delay <= policy.ceiling(failures), "{delay:?}");
            seen_low |= delay < policy.ceiling(failures) / 2;
        }
        assert!(seen_low, "jitter spreads delays below half the ceiling");
    }
    assert_eq!(policy.delay(3, 0), policy.min_delay);
    assert_eq!(policy.delay(1, 4000), Duration::from_secs(5));
}

#[test]
fn filters_select_exact_types_and_prefix_wildcards() {
    let filter = validate_event_filter(&["user.created".into(), "session.*".into()]).unwrap();
    assert!(filter_matches(&filter, "user.created"));
    assert!(filter_matches(&filter, "session.revoked"));
    assert!(!filter_matches(&filter, "user.deleted"));
    assert!(!filter_matches(&filter, "sessions.x"));
    assert!(
        filter_matches(&[], "team.created"),
        "empty means every event"
    );
    let share = validate_event_filter(&["share.*".into()]).unwrap();
    assert!(filter_matches(&share, "share.proposal.created"));
    for bad in ["user.exploded", "nothing.*", "*", ""] {
        assert!(validate_event_filter(&[bad.into()]).is_err(), "{bad}");
    }
    let deduplicated =
        validate_event_filter(&["user.created".into(), "user.created".into()]).unwrap();
    assert_eq!(deduplicated.len(), 1);
}

#[tokio::test]
async fn private_loopback_and_link_local_targets_are_refused_unless_allowed() {
    for private in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
    ] {
        assert!(
            is_private_address(private.parse::<IpAddr>().unwrap()),
            "{private}"
        );
    }
    for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
        assert!(
            !is_private_address(public.parse::<IpAddr>().unwrap()),
            "{public}"
        );
    }
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:9000/hook",
    ] {
        let parsed = parse_target_url(url, false).unwrap();
        let refused = check_target(&parsed, false, &SystemResolver)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, DomainError::WebhookTargetNotAllowed(_)),
            "{url}: {refused}"
        );
        assert!(
            check_target(&parsed, true, &SystemResolver).await.is_ok(),
            "{url}"
        );
    }
    let public = parse_target_url("http://93.184.216.34/hook", false).unwrap();
    assert!(check_target(&public, false, &SystemResolver).await.is_ok());
    for bad in [
        "",
        "ftp://example.com/",
        "http://user:pw@example.com/",
        "not a url",
    ] {
        assert!(parse_target_url(bad, false).is_err(), "{bad}");
    }
    assert!(parse_target_url("https://example.com/", false).is_err());
    assert!(parse_target_url("https://example.com/", true).is_ok());
}

/// A resolver whose node owns one public address.
#[derive(Debug)]
struct OwningResolver(IpAddr);

#[async_trait::async_trait]
impl HostResolver for OwningResolver {
    async fn resolve(&self, _host: &str, _port: u16) -> std::io::Result<Vec<IpAddr>> {
        Ok(vec![self.0])
    }

    fn is_own_address(&self, address: IpAddr) -> bool {
        address == self.0
    }
}

#[tokio::test]
async fn the_nodes_own_public_address_is_refused_as_a_target() {
    let own: IpAddr = "93.184.216.34".parse().unwrap();
    let resolver = OwningResolver(own);
    for url in ["http://93.184.216.34/hook", "http://node.example.com/hook"] {
        let parsed = parse_target_url(url, false).unwrap();
        let refused = check_target(&parsed, false, &resolver).await.unwrap_err();
        assert!(
            matches!(&refused, DomainError::WebhookTargetNotAllowed(reason) if reason.contains("this node")),
            "{url}: {refused}"
        );
        assert!(check_target(&parsed, true, &resolver).await.is_ok());
    }
    // Another public address is fine.
    let other = parse_target_url("http://8.8.8.8/hook", false).unwrap();
    assert!(check_target(&other, false, &resolver).await.is_ok());
}

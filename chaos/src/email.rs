//! The `sign_in_code` phase: `SendSignInCode` to fresh addresses, then how long the messages
//! took from commit to acceptance by a real SMTP server.
//!
//! The load tool starts a [`SmtpServer`] (aiosmtpd on loopback) and its node with
//! [`node_env`] only when this phase is selected. The phase creates a tenant of its own whose
//! send limits never refuse (untimed setup), then `concurrency` workers each send a code
//! and magic link to `bench-<n>@example.com`, a new unknown address every time, which the
//! tenant's default lets a code sign up, so every successful call commits one message.
//! After the timed part it waits for the outbox to drain (the server has received every
//! committed message and the delivery log shows none pending, or [`DRAIN_LIMIT`] passed)
//! and summarises the delivery log: commit (`created_at`) to acceptance (`sent_at`).
//! The phase's CPU use covers the sends and the drain.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatehouse_cluster_tests::SmtpServer;
use gatehouse_protocol::sdk::{Client, Credentials};
use gatehouse_protocol::v1;
use serde::Serialize;

use crate::budget::Budget;
use crate::error::ChaosError;
use crate::stats::{PhaseSummary, percentile, round3};
use crate::workload::{REQUEST_TIMEOUT, Step, Workload, code, run_workers};

/// How often the node's email dispatcher looks for due messages during this phase (the
/// node's default is 200 ms, which would dominate the send latency).
pub const POLL_INTERVAL_MS: u64 = 20;
/// The longest the phase waits for the outbox to drain after its timed part: the test
/// server accepts a few dozen messages a second on a small machine, far fewer than the node
/// commits, so ten seconds of sends can take minutes to drain.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(600);
/// Where the magic links lead; its host is the phase tenant's one trusted domain.
pub const REDIRECT_URL: &str = "https://app.example.com/auth/callback";
/// Messages one address may be sent per window: more than the phase ever sends to one.
pub const SENDS_PER_ADDRESS: u32 = 1000;
/// Messages one source may cause per window (the node's maximum); all workers share one
/// source, 127.0.0.1.
pub const SENDS_PER_SOURCE: u32 = 100_000;

/// How often the drain is checked (listing thousands of received files costs the CPU the
/// test server needs, so not too often).
const DRAIN_POLL: Duration = Duration::from_millis(100);
/// Deliveries read per page of the delivery log (the server's maximum).
const LOG_PAGE_SIZE: u32 = 200;
/// The delivery log's `kind` of the messages this phase sends.
const SIGN_IN_CODE_KIND: &str = "sign_in_code";

/// The node's settings that make it send through `smtp_port` on 127.0.0.1, in plain text,
/// polling every [`POLL_INTERVAL_MS`].
pub fn node_env(smtp_port: u16) -> Vec<(String, String)> {
    [
        ("GATEHOUSE_EMAIL_HOST", "127.0.0.1".to_owned()),
        ("GATEHOUSE_EMAIL_PORT", smtp_port.to_string()),
        ("GATEHOUSE_EMAIL_TLS", "none".to_owned()),
        (
            "GATEHOUSE_EMAIL_POLL_INTERVAL_MS",
            POLL_INTERVAL_MS.to_string(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// What the drain and the delivery log showed after the `sign_in_code` phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliverySummary {
    /// Messages expected: the phase's successful `SendSignInCode` calls.
    pub expected: u64,
    /// Messages the SMTP server had received when the drain ended.
    pub received: u64,
    /// `sign_in_code` deliveries in the log.
    pub logged: u64,
    /// Of those, accepted by the SMTP server (`sent`).
    pub sent: u64,
    /// Of those, given up on (`failed`).
    pub failed: u64,
    /// Of those, still waiting or being attempted (`pending`).
    pub pending: u64,
    /// Whether everything expected arrived and nothing was pending before [`DRAIN_LIMIT`].
    pub drained: bool,
    /// Seconds from the end of the timed part until the drain ended.
    pub drain_secs: f64,
    /// Messages accepted per second from the start of the timed part until the drain
    /// ended: the delivery rate the node and the SMTP server sustained together.
    pub sent_per_sec: f64,
    /// Median commit-to-acceptance time of the sent messages (`created_at` → `sent_at`), ms.
    pub send_p50_ms: Option<f64>,
    /// 99th percentile commit-to-acceptance time, ms.
    pub send_p99_ms: Option<f64>,
    /// Slowest commit-to-acceptance time, ms.
    pub send_max_ms: Option<f64>,
    /// Median SMTP conversation of the accepted attempts (`latency_ms`), ms.
    pub smtp_attempt_p50_ms: Option<f64>,
    /// 99th percentile SMTP conversation of the accepted attempts, ms.
    pub smtp_attempt_p99_ms: Option<f64>,
    /// The node's email poll interval during the phase, ms.
    pub poll_interval_ms: u64,
}

/// One delivery as this phase reads it from the log: times in Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTimes {
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// When the message was committed to the outbox.
    pub created_at_ms: Option<i64>,
    /// When the SMTP server accepted it.
    pub sent_at_ms: Option<i64>,
    /// How long the accepted attempt's SMTP conversation took.
    pub accepted_attempt_ms: Option<u64>,
}

impl DeliveryTimes {
    /// The times of a `sign_in_code` delivery; `None` for other kinds.
    pub fn of(delivery: &v1::EmailDelivery) -> Option<Self> {
        if delivery.kind != SIGN_IN_CODE_KIND {
            return None;
        }
        let unix_ms = |seconds: i64, nanos: i32| seconds * 1000 + i64::from(nanos) / 1_000_000;
        Some(DeliveryTimes {
            status: delivery.status.clone(),
            created_at_ms: delivery
                .created_at
                .as_ref()
                .map(|at| unix_ms(at.seconds, at.nanos)),
            sent_at_ms: delivery
                .sent_at
                .as_ref()
                .map(|at| unix_ms(at.seconds, at.nanos)),
            accepted_attempt_ms: delivery
                .attempts
                .iter()
                .rev()
                .find(|attempt| attempt.outcome == "sent")
                .map(|attempt| attempt.latency_ms),
        })
    }
}

/// Counts the deliveries by status and the latency percentiles of the sent ones; `expected`,
/// `received`, `drained` and `drain` come from the drain.
pub fn summarize_deliveries(
    deliveries: &[DeliveryTimes],
    expected: u64,
    received: u64,
    drained: bool,
    phase: Duration,
    drain: Duration,
) -> DeliverySummary {
    let count = |status: &str| {
        deliveries
            .iter()
            .filter(|delivery| delivery.status == status)
            .count() as u64
    };
    let sent: Vec<&DeliveryTimes> = deliveries
        .iter()
        .filter(|delivery| delivery.status == "sent")
        .collect();
    let mut send_ms: Vec<u64> = sent
        .iter()
        .filter_map(|delivery| {
            let elapsed = delivery.sent_at_ms? - delivery.created_at_ms?;
            u64::try_from(elapsed.max(0)).ok()
        })
        .collect();
    send_ms.sort_unstable();
    let mut attempt_ms: Vec<u64> = sent
        .iter()
        .filter_map(|delivery| delivery.accepted_attempt_ms)
        .collect();
    attempt_ms.sort_unstable();
    let as_ms = |value: Option<u64>| value.map(|ms| ms as f64);
    let seconds = (phase + drain).as_secs_f64();
    DeliverySummary {
        expected,
        received,
        logged: deliveries.len() as u64,
        sent: sent.len() as u64,
        failed: count("failed"),
        pending: count("pending"),
        drained,
        drain_secs: round3(drain.as_secs_f64()),
        sent_per_sec: if seconds > 0.0 {
            round3(sent.len() as f64 / seconds)
        } else {
            0.0
        },
        send_p50_ms: as_ms(percentile(&send_ms, 0.50)),
        send_p99_ms: as_ms(percentile(&send_ms, 0.99)),
        send_max_ms: as_ms(send_ms.last().copied()),
        smtp_attempt_p50_ms: as_ms(percentile(&attempt_ms, 0.50)),
        smtp_attempt_p99_ms: as_ms(percentile(&attempt_ms, 0.99)),
        poll_interval_ms: POLL_INTERVAL_MS,
    }
}

/// The phase's tenant: client-key connections, one per worker, and one server-key client.
#[derive(Debug)]
pub struct SignInCodeSetup {
    workload: Arc<Workload>,
    server: Client,
}

/// Creates the phase's tenant (trusting [`REDIRECT_URL`]'s host, with send limits that
/// never refuse) and opens `connections` client connections to it. Untimed.
pub async fn prepare_sign_in_code(
    endpoint: &str,
    operator_key: &str,
    connections: usize,
) -> Result<SignInCodeSetup, ChaosError> {
    let operator = Client::builder(endpoint)
        .credentials(Credentials::Operator {
            operator_key: operator_key.to_owned(),
        })
        .timeout(REQUEST_TIMEOUT)
        .build()
        .await
        .map_err(|error| ChaosError::api("connect as operator", error))?;
    let created = operator
        .create_tenant("gatehouse-load email", None)
        .await
        .map_err(|error| ChaosError::api("create the email tenant", error))?;
    let tenant_id = created
        .tenant
        .map(|tenant| tenant.tenant_id)
        .ok_or_else(|| ChaosError::Local("create tenant: reply has no tenant".to_owned()))?;
    operator
        .update_tenant_config(v1::UpdateTenantConfigRequest {
            tenant_id: tenant_id.clone(),
            trusted_domains: vec!["app.example.com".to_owned()],
            set_trusted_domains: true,
            email_sends_per_address: Some(SENDS_PER_ADDRESS),
            email_sends_per_source: Some(SENDS_PER_SOURCE),
            ..v1::UpdateTenantConfigRequest::default()
        })
        .await
        .map_err(|error| ChaosError::api("configure the email tenant", error))?;
    if created.secret_server_key.is_empty() {
        return Err(ChaosError::Local(
            "the email tenant was created without a secret server key".to_owned(),
        ));
    }
    let workload = Workload::connect(
        endpoint,
        &tenant_id,
        &created.publishable_client_key,
        connections,
    )
    .await?;
    workload.sign_up_as_server(&created.secret_server_key);
    let first = workload
        .connections()
        .first()
        .ok_or_else(|| ChaosError::Local("no connection to the email tenant".to_owned()))?;
    let server = first.with_credentials(Credentials::Server {
        secret_key: created.secret_server_key,
    });
    Ok(SignInCodeSetup { workload, server })
}

/// Runs the timed part (`SendSignInCode` to a new address each time), then waits for the
/// drain and reads the delivery log into the summary's `email_delivery`.
pub async fn run_sign_in_code(
    setup: &SignInCodeSetup,
    smtp: &SmtpServer,
    budget: Arc<Budget>,
    rate: Option<f64>,
) -> Result<PhaseSummary, ChaosError> {
    let next = Arc::new(AtomicU64::new(0));
    let connections = setup.workload.connections();
    // Each worker keeps its share of the rate: one send per `workers / rate` seconds.
    let period = rate.map(|rate| Duration::from_secs_f64(connections.len() as f64 / rate));
    let workers = connections
        .iter()
        .map(|client| SignInCodeWorker {
            client: client.clone(),
            next: Arc::clone(&next),
            pace: period.map(|period| {
                let mut pace = tokio::time::interval(period);
                pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                pace
            }),
        })
        .collect();
    let mut summary = run_workers(workers, budget).await;
    let drain_started = Instant::now();
    let phase = Duration::from_secs_f64(summary.elapsed_secs);
    let expected = summary.operations;
    let (deliveries, received, drained) = drain(setup, smtp, expected).await?;
    summary.email_delivery = Some(summarize_deliveries(
        &deliveries,
        expected,
        received,
        drained,
        phase,
        drain_started.elapsed(),
    ));
    Ok(summary)
}

/// Waits until the server has received `expected` messages and the log shows none pending,
/// or [`DRAIN_LIMIT`] passes; returns the log, the count received and whether it drained.
async fn drain(
    setup: &SignInCodeSetup,
    smtp: &SmtpServer,
    expected: u64,
) -> Result<(Vec<DeliveryTimes>, u64, bool), ChaosError> {
    let deadline = Instant::now() + DRAIN_LIMIT;
    let received = || {
        smtp.try_message_count()
            .map(|count| count as u64)
            .map_err(|error| ChaosError::Local(format!("count received messages: {error}")))
    };
    while received()? < expected && Instant::now() < deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    loop {
        // The outcome is recorded just after the server accepts: read until none is pending.
        let deliveries = delivery_log(&setup.server).await?;
        let pending = deliveries
            .iter()
            .any(|delivery| delivery.status == "pending");
        let count = received()?;
        if (!pending && count >= expected) || Instant::now() >= deadline {
            return Ok((deliveries, count, !pending && count >= expected));
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// Every `sign_in_code` delivery of the tenant, paging through the log.
async fn delivery_log(server: &Client) -> Result<Vec<DeliveryTimes>, ChaosError> {
    let mut deliveries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = server
            .list_email_deliveries(LOG_PAGE_SIZE, &page_token)
            .await
            .map_err(|error| ChaosError::api("list email deliveries", error))?;
        deliveries.extend(page.deliveries.iter().filter_map(DeliveryTimes::of));
        if page.next_page_token.is_empty() || page.deliveries.is_empty() {
            return Ok(deliveries);
        }
        page_token = page.next_page_token;
    }
}

struct SignInCodeWorker {
    client: Client,
    next: Arc<AtomicU64>,
    /// Paces the sends when a rate is set.
    pace: Option<tokio::time::Interval>,
}

impl Step for SignInCodeWorker {
    async fn step(&mut self) -> Result<(), String> {
        if let Some(pace) = &mut self.pace {
            pace.tick().await;
        }
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        self.client
            .send_sign_in_code(&format!("bench-{number}@example.com"), REDIRECT_URL)
            .await
            .map_err(|error| code(&error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(status: &str, created: i64, sent: Option<i64>) -> DeliveryTimes {
        DeliveryTimes {
            status: status.to_owned(),
            created_at_ms: Some(created),
            sent_at_ms: sent,
            accepted_attempt_ms: sent.map(|_| 3),
        }
    }

    #[test]
    fn send_latency_is_commit_to_acceptance_of_the_sent_messages_only() {
        let mut deliveries: Vec<DeliveryTimes> = (1..=100)
            .map(|ms| delivery("sent", 1_000_000, Some(1_000_000 + ms)))
            .collect();
        deliveries.push(delivery("pending", 1_000_000, None));
        deliveries.push(delivery("failed", 1_000_000, None));
        let summary = summarize_deliveries(
            &deliveries,
            101,
            100,
            false,
            Duration::from_millis(500),
            Duration::from_millis(1500),
        );
        assert_eq!(summary.logged, 102);
        assert_eq!((summary.sent, summary.failed, summary.pending), (100, 1, 1));
        assert_eq!(summary.send_p50_ms, Some(50.0));
        assert_eq!(summary.send_p99_ms, Some(99.0));
        assert_eq!(summary.send_max_ms, Some(100.0));
        assert_eq!(summary.smtp_attempt_p50_ms, Some(3.0));
        assert_eq!(summary.drain_secs, 1.5);
        assert_eq!(summary.sent_per_sec, 50.0);
        assert!(!summary.drained);
    }

    #[test]
    fn a_sent_message_without_times_or_with_a_clock_step_counts_but_adds_no_negative_latency() {
        let deliveries = [
            DeliveryTimes {
                status: "sent".to_owned(),
                created_at_ms: None,
                sent_at_ms: Some(5),
                accepted_attempt_ms: None,
            },
            delivery("sent", 10, Some(7)),
        ];
        let summary = summarize_deliveries(&deliveries, 2, 2, true, Duration::ZERO, Duration::ZERO);
        assert_eq!(summary.sent, 2);
        assert_eq!(summary.send_p50_ms, Some(0.0));
        assert_eq!(summary.send_p99_ms, Some(0.0));
        assert_eq!(summary.smtp_attempt_p50_ms, Some(3.0));
    }

    #[test]
    fn an_empty_log_has_no_latencies() {
        let summary = summarize_deliveries(&[], 0, 0, true, Duration::ZERO, Duration::ZERO);
        assert_eq!(summary.sent, 0);
        assert_eq!(summary.send_p50_ms, None);
        assert_eq!(summary.poll_interval_ms, POLL_INTERVAL_MS);
    }

    #[test]
    fn the_node_is_pointed_at_the_loopback_server_in_plain_text() {
        let env = node_env(2525);
        let value = |name: &str| {
            env.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(value("GATEHOUSE_EMAIL_HOST"), Some("127.0.0.1"));
        assert_eq!(value("GATEHOUSE_EMAIL_PORT"), Some("2525"));
        assert_eq!(value("GATEHOUSE_EMAIL_TLS"), Some("none"));
        assert_eq!(value("GATEHOUSE_EMAIL_POLL_INTERVAL_MS"), Some("20"));
    }
}

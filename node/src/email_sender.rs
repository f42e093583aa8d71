//! SMTP delivery of the domain's email with lettre: one pooled transport per node, built
//! from `[email]`, and the SMTP server's answer classified for the dispatcher's retries.

use std::path::PathBuf;
use std::time::Duration;

use gatehouse_actors::domain::email::{EmailSender, OutgoingEmail, SmtpOutcome};
use gatehouse_config::{EmailPasswordSource, EmailSection, EmailTls};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::{NodeError, NodeResult};

/// Sends the domain's messages to the SMTP server named in `[email]`.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `host:port`, for logs and `Debug` (never the credentials).
    server: String,
    tls: EmailTls,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("server", &self.server)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Builds the pooled transport from `[email]`, reading the password from the variable
    /// or file it names; connections are opened when the first message is sent.
    pub fn new(config: &EmailSection) -> NodeResult<SmtpSender> {
        let invalid = NodeError::Config;
        let tls = config.tls_mode().map_err(invalid)?;
        let port = config.port_number().map_err(invalid)?;
        let password = read_password(&config.password_source().map_err(invalid)?)?;
        let host = config.host.as_str();
        let transport_error = |source| NodeError::EmailTransport {
            host: host.to_owned(),
            source,
        };
        let mut builder = match tls {
            EmailTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            EmailTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(transport_error)?,
            EmailTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(transport_error)?
            }
        }
        .port(port)
        .timeout(Some(Duration::from_secs(u64::from(config.timeout_seconds))));
        if !config.hello_name.is_empty() {
            builder = builder.hello_name(ClientId::Domain(config.hello_name.clone()));
        }
        if let Some(password) = password {
            builder = builder.credentials(Credentials::new(config.username.clone(), password));
        }
        Ok(SmtpSender {
            transport: builder.build(),
            server: format!("{host}:{port}"),
            tls,
        })
    }
}

#[async_trait::async_trait]
impl EmailSender for SmtpSender {
    async fn send(&self, email: &OutgoingEmail) -> SmtpOutcome {
        let outcome = match build_message(email) {
            Ok(message) => match self.transport.send(message).await {
                Ok(_) => SmtpOutcome::Accepted,
                Err(error) => classify(&error),
            },
            Err(outcome) => outcome,
        };
        // Bodies, addresses and the server's text stay out of logs: they carry codes and
        // personal data.
        let result = match &outcome {
            SmtpOutcome::Accepted => "accepted",
            SmtpOutcome::Rejected { .. } => "rejected",
            SmtpOutcome::Deferred { .. } => "deferred",
        };
        tracing::debug!(message_id = %email.message_id, server = %self.server, result, "smtp attempt");
        outcome
    }
}

/// The MIME message for `email`: its headers as given, text then HTML as alternatives. A
/// message that cannot be built (an address lettre cannot parse) will never be deliverable.
fn build_message(email: &OutgoingEmail) -> Result<Message, SmtpOutcome> {
    let from = Mailbox::new(
        (!email.from_name.is_empty()).then(|| single_line(&email.from_name)),
        parse_address("from", &email.from_address)?,
    );
    let mut builder = Message::builder()
        .from(from)
        .to(Mailbox::new(None, parse_address("to", &email.to)?))
        .subject(single_line(&email.subject))
        .message_id(Some(message_id_header(&email.message_id)?));
    if !email.reply_to.is_empty() {
        builder = builder.reply_to(Mailbox::new(
            None,
            parse_address("reply-to", &email.reply_to)?,
        ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|error| undeliverable(format!("cannot build the message: {error}")))
}

/// lettre encodes header text, so a line break can never start a header; it is still
/// replaced, so that no client shows a subject or name broken over lines.
fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn parse_address(field: &str, text: &str) -> Result<Address, SmtpOutcome> {
    text.parse::<Address>()
        .map_err(|error| undeliverable(format!("invalid {field} address: {error}")))
}

/// `<id>` for the header; the id itself is printable ASCII without brackets or spaces, or
/// the header could not carry it unchanged.
fn message_id_header(message_id: &str) -> Result<String, SmtpOutcome> {
    let printable = message_id
        .bytes()
        .all(|byte| byte.is_ascii_graphic() && byte != b'<' && byte != b'>');
    if message_id.is_empty() || !printable {
        return Err(undeliverable("invalid message id".to_owned()));
    }
    Ok(format!("<{message_id}>"))
}

fn undeliverable(message: String) -> SmtpOutcome {
    SmtpOutcome::Rejected { code: 0, message }
}

/// 5xx is final; everything else (4xx, refused or dropped connections, timeouts, TLS
/// failures) may work on a later attempt.
fn classify(error: &lettre::transport::smtp::Error) -> SmtpOutcome {
    let code = error.status().map_or(0, u16::from);
    let message = error.to_string();
    if error.is_permanent() {
        SmtpOutcome::Rejected { code, message }
    } else {
        SmtpOutcome::Deferred { code, message }
    }
}

/// The SMTP password from where `[email]` says it is, read once at start.
fn read_password(source: &EmailPasswordSource) -> NodeResult<Option<String>> {
    match source {
        EmailPasswordSource::None => Ok(None),
        EmailPasswordSource::Env(variable) => {
            std::env::var(variable)
                .map(Some)
                .map_err(|source| NodeError::EmailPasswordEnv {
                    variable: variable.clone(),
                    source,
                })
        }
        EmailPasswordSource::File(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|source| NodeError::EmailPasswordFile {
                    path: PathBuf::from(path),
                    source,
                })?;
            let password = text
                .strip_suffix('\n')
                .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
                .unwrap_or(&text);
            Ok(Some(password.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests;

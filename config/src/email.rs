//! `[email]`: the SMTP server this node hands messages to, and how often and how hard it
//! does so.

use serde::{Deserialize, Serialize};

use crate::{ConfigError, invalid};

/// `[email]`: where outgoing email goes. An empty `host` turns sending off on this node:
/// messages wait in the outbox until a node with a host picks them up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSection {
    /// SMTP server name or address; empty means this node sends no email.
    pub host: String,
    /// SMTP server port (587 is submission with STARTTLS, 465 implicit TLS).
    pub port: u32,
    /// `none` (plain text, for a local relay), `starttls` (upgrade required) or `tls`
    /// (implicit TLS from the first byte).
    pub tls: String,
    /// SMTP AUTH user name; empty means no authentication.
    pub username: String,
    /// Name of the environment variable that holds the SMTP password.
    pub password_env: String,
    /// File that holds the SMTP password (a trailing newline is ignored).
    pub password_file: String,
    /// Name sent with EHLO; empty means the machine's host name.
    pub hello_name: String,
    /// Seconds one delivery attempt (connect, dialogue, DATA) may take.
    pub timeout_seconds: u32,
    /// Most SMTP attempts in flight on this node.
    pub attempt_concurrency: u32,
    /// Milliseconds between two looks for messages that are due.
    pub poll_interval_ms: u32,
}

impl Default for EmailSection {
    fn default() -> Self {
        EmailSection {
            host: String::new(),
            port: 587,
            tls: "starttls".to_owned(),
            username: String::new(),
            password_env: String::new(),
            password_file: String::new(),
            hello_name: String::new(),
            timeout_seconds: 30,
            attempt_concurrency: 16,
            poll_interval_ms: 200,
        }
    }
}

/// How the connection to the SMTP server is protected, validated from `email.tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTls {
    /// No encryption at all (a relay on the same host or network).
    None,
    /// Plain connection upgraded with STARTTLS; the server must offer it.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// Where the SMTP password comes from, validated from `email.password_env` and
/// `email.password_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailPasswordSource {
    /// No password is configured.
    None,
    /// The named environment variable.
    Env(String),
    /// The file at this path.
    File(String),
}

impl EmailSection {
    /// Whether this node sends email at all.
    pub fn enabled(&self) -> bool {
        !self.host.is_empty()
    }

    /// The validated `email.tls`.
    pub fn tls_mode(&self) -> Result<EmailTls, ConfigError> {
        match self.tls.as_str() {
            "none" => Ok(EmailTls::None),
            "starttls" => Ok(EmailTls::StartTls),
            "tls" => Ok(EmailTls::Tls),
            _ => Err(invalid("email.tls", "must be one of none, starttls, tls")),
        }
    }

    /// The validated `email.port`.
    pub fn port_number(&self) -> Result<u16, ConfigError> {
        u16::try_from(self.port)
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| invalid("email.port", "must be between 1 and 65535"))
    }

    /// Where the password is read from; at most one source may be set.
    pub fn password_source(&self) -> Result<EmailPasswordSource, ConfigError> {
        match (self.password_env.is_empty(), self.password_file.is_empty()) {
            (true, true) => Ok(EmailPasswordSource::None),
            (false, true) => Ok(EmailPasswordSource::Env(self.password_env.clone())),
            (true, false) => Ok(EmailPasswordSource::File(self.password_file.clone())),
            (false, false) => Err(invalid(
                "email.password_file",
                "cannot be set together with email.password_env; choose one",
            )),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.tls_mode()?;
        self.port_number()?;
        let password = self.password_source()?;
        if has_space_or_control(&self.host) {
            return Err(invalid(
                "email.host",
                "must be a host name or address without spaces",
            ));
        }
        if has_space_or_control(&self.hello_name) {
            return Err(invalid(
                "email.hello_name",
                "must be a host name without spaces",
            ));
        }
        if self.password_env.contains(['=', '\0']) {
            return Err(invalid(
                "email.password_env",
                "must be an environment variable name",
            ));
        }
        match password {
            EmailPasswordSource::None if !self.username.is_empty() => {
                return Err(invalid(
                    "email.username",
                    "needs a password from email.password_env or email.password_file",
                ));
            }
            EmailPasswordSource::Env(_) | EmailPasswordSource::File(_)
                if self.username.is_empty() =>
            {
                return Err(invalid(
                    "email.username",
                    "is required when a password is configured",
                ));
            }
            _ => {}
        }
        if !(1..=300).contains(&self.timeout_seconds) {
            return Err(invalid(
                "email.timeout_seconds",
                "must be between 1 and 300",
            ));
        }
        if !(1..=1024).contains(&self.attempt_concurrency) {
            return Err(invalid(
                "email.attempt_concurrency",
                "must be between 1 and 1024",
            ));
        }
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return Err(invalid(
                "email.poll_interval_ms",
                "must be between 10 and 60000",
            ));
        }
        Ok(())
    }
}

fn has_space_or_control(text: &str) -> bool {
    text.chars().any(|c| c.is_whitespace() || c.is_control())
}

//! The one error type of the sandbox.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use gatehouse_protocol::ApiError;

use crate::eventually::StillFailing;

/// Why the sandbox could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The `gatehouse` binary is not where the sandbox looked.
    #[error(
        "no gatehouse binary at {0}: run `cargo build -p gatehouse` first \
         (`cargo test --workspace` and `cargo test -p gatehouse -p gatehouse-cluster-tests` \
         build it) or set GATEHOUSE_BIN"
    )]
    BinaryMissing(PathBuf),
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the sandbox was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The shared PostgreSQL server could not be started.
    #[error("cannot start postgresql: {0}")]
    Postgres(String),
    /// A node exited before printing its ready line.
    #[error("node {node_id} exited before it was ready ({status}); end of its stderr:\n{stderr}")]
    ExitedEarly {
        /// The node.
        node_id: String,
        /// How it exited.
        status: String,
        /// The last lines it wrote on stderr.
        stderr: String,
    },
    /// A node printed no ready line in time.
    #[error("node {node_id} was not ready within {timeout:?}; end of its stderr:\n{stderr}")]
    NotReady {
        /// The node.
        node_id: String,
        /// How long the sandbox waited.
        timeout: Duration,
        /// The last lines it wrote on stderr.
        stderr: String,
    },
    /// The ready line did not have the expected fields.
    #[error("node {node_id} printed an unexpected ready line: {line}")]
    BadReadyLine {
        /// The node.
        node_id: String,
        /// The line as printed.
        line: String,
    },
    /// No operator key was written by any node.
    #[error("no operator key: node {0} wrote no operator.key and no earlier node did")]
    NoOperatorKey(String),
    /// The operation needs a running node.
    #[error("node {0} is not running")]
    NotRunning(String),
    /// The operation needs a stopped node.
    #[error("node {0} is already running")]
    AlreadyRunning(String),
    /// A node ignored SIGTERM for too long and was killed.
    #[error("node {node_id} did not exit within {timeout:?} of SIGTERM and was killed")]
    StopTimedOut {
        /// The node.
        node_id: String,
        /// How long the sandbox waited.
        timeout: Duration,
    },
    /// A node exited with a failure where a clean exit was expected.
    #[error("node {node_id} exited with {status}; end of its stderr:\n{stderr}")]
    UncleanExit {
        /// The node.
        node_id: String,
        /// How it exited.
        status: ExitStatus,
        /// The last lines it wrote on stderr.
        stderr: String,
    },
    /// A condition polled by [`crate::eventually`] never held.
    #[error(transparent)]
    StillFailing(#[from] StillFailing),
    /// A node answered a sandbox request with an error.
    #[error("node api: {0}")]
    Api(#[from] ApiError),
    /// The test SMTP server's interpreter cannot import `aiosmtpd`.
    #[error(
        "the test SMTP server needs aiosmtpd, which {} cannot import: run \
         `python3 -m venv .venv-test && .venv-test/bin/pip install -r \
         cluster-tests/smtp/requirements.txt` in the workspace root, or set \
         GATEHOUSE_TEST_PYTHON to an interpreter that has it",
        python.display()
    )]
    AiosmtpdMissing {
        /// The interpreter that was tried.
        python: PathBuf,
    },
    /// The test SMTP server did not start.
    #[error("the test SMTP server did not start: {reason}; end of its stderr:\n{stderr}")]
    SmtpServer {
        /// What went wrong.
        reason: String,
        /// The last lines it wrote on stderr.
        stderr: String,
    },
}

impl SandboxError {
    /// An [`SandboxError::Io`] with what the sandbox was doing.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
        let context = context.into();
        move |source| SandboxError::Io { context, source }
    }
}

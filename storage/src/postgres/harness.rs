//! A throwaway PostgreSQL server for tests: `initdb` in a temporary directory, started with
//! `pg_ctl` on a free 127.0.0.1 port (unix socket inside the directory), stopped and
//! removed on drop — or, if the process dies first, by a watchdog child that notices its
//! stdin pipe close. The storage conformance suite and the cluster tests use it.
//!
//! The server binaries are found in `$GATEHOUSE_POSTGRES_BIN_DIR`, then the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package), then `PATH`. `initdb`
//! refuses to run as root, so as root the server runs as the `postgres` user (created by
//! that package) through `runuser`. Durability is traded for speed (`fsync=off`).

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::StorageError;

/// Overrides where `initdb`, `pg_ctl` and `postgres` are looked for.
pub const BIN_DIR_ENV: &str = "GATEHOUSE_POSTGRES_BIN_DIR";
/// The superuser the cluster is initialised with; local connections trust it.
const SUPERUSER: &str = "postgres";
/// The OS user the server runs as when this process is root.
const SERVER_OS_USER: &str = "postgres";
/// Ports tried before giving up when another process takes the free port first.
const START_ATTEMPTS: usize = 3;

/// Stops the server and removes its directory once this process is gone (stdin closes).
/// Arguments: the directory, then the stop command.
const WATCHDOG: &str = r#"trap '' INT TERM HUP
read -r _ignored
dir="$1"; shift
"$@" >/dev/null 2>&1
rm -rf "$dir""#;

/// A running PostgreSQL server owned by this process.
#[derive(Debug)]
pub struct PostgresServer {
    /// `None` only while dropping.
    dir: Option<tempfile::TempDir>,
    bin_dir: PathBuf,
    run_as: Option<&'static str>,
    port: u16,
    watchdog: Option<Child>,
    databases: AtomicU64,
}

impl PostgresServer {
    /// Starts a fresh server; blocks for `initdb` and startup (a second or two).
    pub fn start() -> Result<PostgresServer, StorageError> {
        let bin_dir = find_bin_dir()?;
        let run_as = if running_as_root() {
            Some(SERVER_OS_USER)
        } else {
            None
        };
        // The server's OS user must reach the directory: /tmp is open to everyone, a root
        // TMPDIR may not be.
        let parent = match run_as {
            Some(_) => PathBuf::from("/tmp"),
            None => std::env::temp_dir(),
        };
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-pg-")
            .tempdir_in(parent)
            .map_err(|error| StorageError::backend("create postgresql directory", error))?;
        if let Some(user) = run_as {
            let (uid, gid) = os_user_ids(user)?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|error| {
                StorageError::backend(&format!("give the postgresql directory to {user}"), error)
            })?;
        }
        let mut server = PostgresServer {
            dir: Some(dir),
            bin_dir,
            run_as,
            port: 0,
            watchdog: None,
            databases: AtomicU64::new(0),
        };
        server.init()?;
        server.launch()?;
        server.watchdog = Some(server.spawn_watchdog()?);
        Ok(server)
    }

    /// A server shared by the whole process, started on first use and stopped by its
    /// watchdog when the process exits; give each test its own database on it.
    pub fn shared() -> Result<&'static PostgresServer, StorageError> {
        static SHARED: OnceLock<Result<PostgresServer, StorageError>> = OnceLock::new();
        SHARED
            .get_or_init(PostgresServer::start)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection URL of `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database named `gatehouse_<n>` and returns its URL.
    pub async fn create_database(&self) -> Result<String, StorageError> {
        let number = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("gatehouse_{number}");
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
                .await
                .map_err(|error| StorageError::backend("connect to the test server", error))?;
        let connection = tokio::spawn(connection);
        let created = client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|error| super::sql_error(&format!("create database {name}"), &error));
        drop(client);
        let _ = connection.await;
        created?;
        Ok(self.url(&name))
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("server.log")).unwrap_or_default()
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |dir| dir.path())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    /// A command running `program` from the server's bin directory as the server's OS user.
    fn command(&self, program: &str) -> Command {
        let program = self.bin_dir.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        command.stdin(Stdio::null());
        command
    }

    fn init(&self) -> Result<(), StorageError> {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output();
        check_output("initdb", output)
    }

    fn launch(&mut self) -> Result<(), StorageError> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            self.port = free_port()?;
            let options = format!(
                "-c listen_addresses=127.0.0.1 -c port={} -k {} -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
                 -c shared_buffers=64MB -c max_pred_locks_per_transaction=256",
                self.port,
                self.dir().display()
            );
            let output = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.dir().join("server.log"))
                .args(["-w", "-t", "60", "-s", "-o", &options, "start"])
                .output();
            match check_output("pg_ctl start", output) {
                Ok(()) => return Ok(()),
                Err(error) => last_error = Some(error),
            }
        }
        let log = self.log();
        Err(StorageError::Backend(format!(
            "{}; server log:\n{log}",
            last_error.map_or_else(String::new, |error| error.to_string())
        )))
    }

    fn spawn_watchdog(&self) -> Result<Child, StorageError> {
        let stop = self.command("pg_ctl");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("gatehouse-postgres-watchdog")
            .arg(self.dir())
            .arg(stop.get_program())
            .args(stop.get_args())
            .arg("-D")
            .arg(self.data_dir())
            .args(["stop", "-m", "immediate", "-w"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C meant for the tests must not skip the cleanup.
            .process_group(0);
        command
            .spawn()
            .map_err(|error| StorageError::backend("spawn postgresql watchdog", error))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let stopped = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["stop", "-m", "fast", "-w", "-t", "30"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !stopped.is_ok_and(|status| status.success()) {
            tracing::warn!(
                port = self.port,
                "test postgresql server did not stop cleanly"
            );
        }
        // Removing the directory last: the server must be gone before its files are.
        self.dir.take();
    }
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|metadata| metadata.uid() == 0)
}

/// The uid and gid of the OS user `user`.
fn os_user_ids(user: &str) -> Result<(u32, u32), StorageError> {
    let id = |flag: &str| -> Result<u32, StorageError> {
        let output = Command::new("id")
            .args([flag, user])
            .output()
            .map_err(|error| StorageError::backend("run id", error))?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                StorageError::Backend(format!(
                    "os user {user} not found: as root the test postgresql server runs as \
                     {user}, which the postgresql package creates (apt-get install postgresql)"
                ))
            })
    };
    Ok((id("-u")?, id("-g")?))
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
fn find_bin_dir() -> Result<PathBuf, StorageError> {
    let has_binaries = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        let dir = PathBuf::from(dir);
        if has_binaries(&dir) {
            return Ok(dir);
        }
        return Err(StorageError::Backend(format!(
            "{BIN_DIR_ENV}={} has no initdb and pg_ctl",
            dir.display()
        )));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_binaries(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    let from_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| has_binaries(dir)));
    from_path.ok_or_else(|| {
        StorageError::Backend(
            "postgresql server binaries (initdb, pg_ctl) not found in $GATEHOUSE_POSTGRES_BIN_DIR, \
             /usr/lib/postgresql/*/bin or PATH: install them with `apt-get install postgresql`"
                .to_owned(),
        )
    })
}

/// A TCP port nothing listens on right now.
fn free_port() -> Result<u16, StorageError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|error| StorageError::backend("find a free port", error))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| StorageError::backend("find a free port", error))
}

/// Turns a failed run of `what` into an error carrying its output.
fn check_output(what: &str, output: std::io::Result<Output>) -> Result<(), StorageError> {
    let output = output.map_err(|error| StorageError::backend(&format!("run {what}"), error))?;
    if output.status.success() {
        return Ok(());
    }
    Err(StorageError::Backend(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}

//! The store the nodes of a sandbox share.

use gatehouse_storage::postgres::harness::PostgresServer;

use crate::error::SandboxError;
use crate::sandbox::SandboxStorage;

/// The sandbox's storage, kept alive (a dedicated server keeps running) as long as it lives.
#[derive(Debug)]
pub(crate) struct SharedStore {
    postgres_url: Option<String>,
    // Dropped with the sandbox, which stops the server.
    _dedicated: Option<PostgresServer>,
}

impl SharedStore {
    /// Starts or connects what `storage` needs.
    pub(crate) async fn start(storage: &SandboxStorage) -> Result<SharedStore, SandboxError> {
        let postgres_error =
            |error: gatehouse_storage::StorageError| SandboxError::Postgres(error.to_string());
        match storage {
            SandboxStorage::Postgres => {
                // initdb and pg_ctl block for a second or two.
                let server = tokio::task::spawn_blocking(PostgresServer::shared)
                    .await
                    .map_err(|error| SandboxError::Postgres(error.to_string()))?
                    .map_err(postgres_error)?;
                let url = server.create_database().await.map_err(postgres_error)?;
                Ok(SharedStore {
                    postgres_url: Some(url),
                    _dedicated: None,
                })
            }
            SandboxStorage::DedicatedPostgres => {
                let server = tokio::task::spawn_blocking(PostgresServer::start)
                    .await
                    .map_err(|error| SandboxError::Postgres(error.to_string()))?
                    .map_err(postgres_error)?;
                let url = server.create_database().await.map_err(postgres_error)?;
                Ok(SharedStore {
                    postgres_url: Some(url),
                    _dedicated: Some(server),
                })
            }
            SandboxStorage::PostgresUrl(url) => Ok(SharedStore {
                postgres_url: Some(url.clone()),
                _dedicated: None,
            }),
            SandboxStorage::Embedded => Ok(SharedStore {
                postgres_url: None,
                _dedicated: None,
            }),
        }
    }

    /// The `GATEHOUSE_STORAGE_*` settings every node gets.
    pub(crate) fn node_env(&self) -> Vec<(String, String)> {
        match &self.postgres_url {
            Some(url) => vec![
                (
                    "GATEHOUSE_STORAGE_BACKEND".to_owned(),
                    "postgres".to_owned(),
                ),
                ("GATEHOUSE_STORAGE_POSTGRES_URL".to_owned(), url.clone()),
            ],
            None => vec![(
                "GATEHOUSE_STORAGE_BACKEND".to_owned(),
                "embedded".to_owned(),
            )],
        }
    }

    /// The database URL, when the nodes share PostgreSQL.
    pub(crate) fn postgres_url(&self) -> Option<&str> {
        self.postgres_url.as_deref()
    }
}

//! The PostgreSQL schema and every statement the backend runs.

use deadpool_postgres::Object;

use super::sql_error;
use crate::error::StorageError;

/// Oldest server accepted: `pg_current_snapshot`, `pg_visible_in_snapshot` and `xid8` are 13+.
const MIN_SERVER_VERSION: i32 = 130_000;

/// Serializes schema creation between nodes opening the same database at once
/// (`CREATE ... IF NOT EXISTS` alone races on the catalog's unique indexes).
const SCHEMA_LOCK: i64 = 0x6761_7465_6b76; // "gatekv"

/// Creates the tables on first open; a no-op afterwards.
///
/// `gatehouse_kv` holds the data: bytea compares bytewise (memcmp, then length), which is
/// exactly the order of FDB keys. `gatehouse_write_log` is the conflict resolver's memory:
/// every committing transaction records the key ranges it wrote with its transaction id,
/// and a committing reader looks there for writes its snapshot did not see.
const CREATE_SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(SCHEMA_LOCK);
CREATE TABLE IF NOT EXISTS gatehouse_kv (
    key bytea PRIMARY KEY,
    value bytea NOT NULL
);
DO $$ BEGIN
    CREATE TYPE gatehouse_key_range AS RANGE (subtype = bytea);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
CREATE TABLE IF NOT EXISTS gatehouse_write_log (
    writer xid8 NOT NULL,
    keys gatehouse_key_range NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS gatehouse_write_log_keys ON gatehouse_write_log USING gist (keys);
CREATE INDEX IF NOT EXISTS gatehouse_write_log_committed_at ON gatehouse_write_log (committed_at);
COMMIT;
";

/// Starts a Gatehouse transaction: a read-only REPEATABLE READ snapshot taken right now
/// (PostgreSQL takes it at the first statement, not at BEGIN), its id, and the server clock.
pub(crate) const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
     SELECT pg_current_snapshot()::text, extract(epoch FROM now())::float8::text";

/// Ends the snapshot and opens the SERIALIZABLE transaction that validates and writes.
/// Sequential scans are off so the write log is read through its GiST index, whose
/// page-level predicate locks are far narrower than a whole-table lock.
pub(crate) const BEGIN_COMMIT: &str = "COMMIT; BEGIN ISOLATION LEVEL SERIALIZABLE; \
     SET LOCAL enable_seqscan = off";

/// One key's committed value.
pub(crate) const GET: &str = "SELECT value FROM gatehouse_kv WHERE key = $1";

/// Committed pairs of `[$1, $2)` outside the transaction's cleared ranges (`$3`, `$4`),
/// at most `$5` (NULL: all), ascending.
pub(crate) const RANGE_FORWARD: &str = "SELECT key, value FROM gatehouse_kv
    WHERE key >= $1 AND key < $2 AND NOT EXISTS (
        SELECT 1 FROM unnest($3::bytea[], $4::bytea[]) AS cleared(b, e)
        WHERE key >= cleared.b AND key < cleared.e)
    ORDER BY key LIMIT $5";

/// [`RANGE_FORWARD`], descending.
pub(crate) const RANGE_REVERSE: &str = "SELECT key, value FROM gatehouse_kv
    WHERE key >= $1 AND key < $2 AND NOT EXISTS (
        SELECT 1 FROM unnest($3::bytea[], $4::bytea[]) AS cleared(b, e)
        WHERE key >= cleared.b AND key < cleared.e)
    ORDER BY key DESC LIMIT $5";

/// Whether the snapshot (`$3`, taken at server time `$4`) is older than `$5` seconds, and
/// whether a commit it did not see wrote into one of the read ranges (`$1`, `$2`).
pub(crate) const VALIDATE: &str = "SELECT
    extract(epoch FROM clock_timestamp()) - $4::float8 > $5::float8,
    EXISTS (
        SELECT 1 FROM unnest($1::bytea[], $2::bytea[]) AS r(b, e)
        JOIN gatehouse_write_log w ON w.keys && gatehouse_key_range(r.b, r.e)
        WHERE NOT pg_visible_in_snapshot(w.writer, $3::text::pg_snapshot))";

/// Removes every key in the ranges (`$1`, `$2`).
pub(crate) const CLEAR_RANGES: &str = "DELETE FROM gatehouse_kv k
    USING unnest($1::bytea[], $2::bytea[]) AS r(b, e)
    WHERE k.key >= r.b AND k.key < r.e";

/// Removes the keys `$1`.
pub(crate) const CLEAR_KEYS: &str = "DELETE FROM gatehouse_kv WHERE key = ANY($1::bytea[])";

/// Locks and reads the current values of the keys `$1` that atomic adds apply to.
pub(crate) const LOCK_ADDENDS: &str =
    "SELECT key, value FROM gatehouse_kv WHERE key = ANY($1::bytea[]) FOR UPDATE";

/// Writes the pairs (`$1`, `$2`).
pub(crate) const UPSERT: &str = "INSERT INTO gatehouse_kv (key, value)
    SELECT * FROM unnest($1::bytea[], $2::bytea[])
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";

/// Records the write conflict ranges (`$1`, `$2`; a NULL end is unbounded) of this commit.
pub(crate) const LOG_WRITES: &str = "INSERT INTO gatehouse_write_log (writer, keys)
    SELECT pg_current_xact_id(), gatehouse_key_range(r.b, r.e)
    FROM unnest($1::bytea[], $2::bytea[]) AS r(b, e)";

/// Forgets write log entries older than `$1` seconds.
pub(crate) const PRUNE_WRITE_LOG: &str = "DELETE FROM gatehouse_write_log
    WHERE committed_at < clock_timestamp() - make_interval(secs => $1::float8)";

/// Checks the server version and creates the schema if missing.
pub(crate) async fn ensure(client: &Object) -> Result<(), StorageError> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|error| sql_error("read server version", &error))?;
    let version: i32 = row.get(0);
    if version < MIN_SERVER_VERSION {
        return Err(StorageError::Backend(format!(
            "postgresql {version} is too old: the postgres backend needs 13 or newer"
        )));
    }
    let create = CREATE_SCHEMA.replace("SCHEMA_LOCK", &SCHEMA_LOCK.to_string());
    if let Err(error) = client.batch_execute(&create).await {
        // Leave the connection usable for the pool whatever failed.
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(sql_error("create schema", &error));
    }
    Ok(())
}

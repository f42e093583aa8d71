//! The storage conformance suite on every backend that runs here, plus embedded-only
//! durability tests and postgres-only tests. One binary, so the suite compiles once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod durability;
#[cfg(feature = "fdb")]
mod fdb;
mod postgres;

use gatehouse_storage::{Database, conformance_tests};

conformance_tests!(memory, async { Database::memory() });

conformance_tests!(embedded, async {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_embedded(dir.path()).unwrap();
    (db, dir)
});

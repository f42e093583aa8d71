//! Unit tests of the audit ledger over the memory store.

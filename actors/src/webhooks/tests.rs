//! Unit tests of webhooks over the memory store.

//! Unit tests of upstream sign-in.

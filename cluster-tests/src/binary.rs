//! Where the kit finds the `gatehouse` binary it runs.
//!
//! In order: the path given to the builder, then `GATEHOUSE_BIN`, then `gatehouse` beside
//! the running executable (test executables live in `target/<profile>/deps`, so its parent
//! is tried), then `target/debug/gatehouse` under the workspace root. The node's own e2e
//! tests pass `env!("CARGO_BIN_EXE_gatehouse")`, which cargo always builds for them.
//!
//! Cargo cannot depend on a binary-only package, so `cargo test -p gatehouse-cluster-tests`
//! alone does not build the node; `cargo test --workspace` and `cargo test -p gatehouse -p
//! gatehouse-cluster-tests` do (testing a package builds its binaries before any test runs,
//! into the same `target/<profile>` that holds the test executables), as does `cargo build
//! -p gatehouse`.

use std::path::{Path, PathBuf};

use crate::error::SandboxError;

/// The `gatehouse` binary to run: `explicit`, else the lookup described in this module.
pub fn locate_binary(explicit: Option<PathBuf>) -> Result<PathBuf, SandboxError> {
    let explicit = explicit.or_else(|| std::env::var_os("GATEHOUSE_BIN").map(PathBuf::from));
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(SandboxError::BinaryMissing(path))
        };
    }
    let workspace_build = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("debug")
        .join("gatehouse");
    beside_executable()
        .into_iter()
        .chain([workspace_build.clone()])
        .find(|path| path.is_file())
        .ok_or(SandboxError::BinaryMissing(workspace_build))
}

/// `gatehouse` in the running executable's build directory (out of `deps` for tests).
fn beside_executable() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let dir = if dir.ends_with("deps") {
        dir.parent()?
    } else {
        dir
    };
    Some(dir.join("gatehouse"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_binary_that_does_not_exist_is_reported() {
        let missing = PathBuf::from("/nonexistent/gatehouse");
        let error = locate_binary(Some(missing.clone())).err();
        assert!(matches!(error, Some(SandboxError::BinaryMissing(path)) if path == missing));
    }

    #[test]
    fn a_test_executable_looks_in_its_profile_directory() {
        let beside = beside_executable().unwrap_or_default();
        assert!(!beside.starts_with("deps"), "{}", beside.display());
        assert!(!beside.parent().is_some_and(|dir| dir.ends_with("deps")));
    }
}

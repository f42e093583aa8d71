//! The hosted pages in a real headless Chromium: `node/tests/browser/pages.mjs`
//! (playwright-core driving `/usr/bin/chromium`) against a real node. It signs up, out and
//! in, checks the account page, the theme toggle, the keyboard, phone widths and JavaScript
//! off, takes screenshots into `<target>/screenshots/`, and fails on any console error,
//! a Content-Security-Policy violation included.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::testkit::{PASSWORD, TestNode, unique_email};

use super::form_browser::base;

/// The system's Chromium; the test is skipped (and says so) without it.
pub(super) const CHROMIUM: &str = "/usr/bin/chromium";

/// `node/tests/browser`: the script, its package files and its `node_modules`.
pub(super) fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `<target>/screenshots`, beside the `debug` directory of the binary under test (so under
/// `CARGO_TARGET_DIR` when one is set).
pub(super) fn screenshot_dir() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_gatehouse"));
    binary
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("screenshots")
}

/// `GATEHOUSE_TEST_NODE`, else `node`.
pub(super) fn node_binary() -> PathBuf {
    std::env::var_os("GATEHOUSE_TEST_NODE").map_or_else(|| PathBuf::from("node"), PathBuf::from)
}

#[tokio::test]
async fn the_pages_work_in_headless_chromium_without_csp_violations() {
    if !Path::new(CHROMIUM).exists() {
        println!(
            "SKIPPED the_pages_work_in_headless_chromium_without_csp_violations: {CHROMIUM} is \
             not installed (apt-get install chromium)"
        );
        return;
    }
    let scripts = script_dir();
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix node/tests/browser`"
    );
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme Rockets").await;
    let screenshots = screenshot_dir();
    let email = unique_email("ada");
    let run = tokio::process::Command::new(node_binary())
        .arg(scripts.join("pages.mjs"))
        .current_dir(&scripts)
        .env(
            "GATEHOUSE_PAGES_URL",
            format!("{}{}", node.http_url(), base(&tenant)),
        )
        .env("GATEHOUSE_SCREENSHOTS", &screenshots)
        .env("GATEHOUSE_EMAIL", &email)
        .env("GATEHOUSE_PASSWORD", PASSWORD)
        .env("GATEHOUSE_TENANT_NAME", "Acme Rockets")
        .env("GATEHOUSE_CHROMIUM", CHROMIUM)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser run finishes within 3 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}"
    );
    for name in [
        "sign-up-light-desktop",
        "account-light-desktop",
        "sign-in-dark-desktop",
        "account-dark-desktop",
        "sign-in-light-phone",
        "sign-in-dark-phone",
        "account-light-phone",
        "account-dark-phone",
    ] {
        let path = screenshots.join(format!("{name}.png"));
        let size = std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
        assert!(size > 1000, "{} is missing or empty", path.display());
    }
    // The browser's user is a user of the tenant, and its two sign-outs (after the sign-up,
    // and with JavaScript off) revoked two sessions in the domain.
    let signed_in = node
        .client(&tenant)
        .await
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let server = node.server(&tenant).await;
    let all = server
        .list_sessions(&signed_in.user_id, true)
        .await
        .unwrap();
    let live = server
        .list_sessions(&signed_in.user_id, false)
        .await
        .unwrap();
    assert_eq!(all.len() - live.len(), 2, "{all:?}");
}

//! The sign-in method pages in a real headless Chromium: `node/tests/browser/methods.mjs`
//! walks sign-in by emailed code (with JavaScript on and off), the second-factor page (a
//! wrong code, then a recovery code) and the forgot / reset password forms against a real node and SMTP server, takes light and
//! dark, desktop and 375 px screenshots into `<target>/screenshots/`, and fails on any
//! console error. The codes reach the script through files this test writes as the
//! messages arrive.

use std::time::Duration;

use gatehouse_cluster_tests::SmtpServer;
use gatehouse_cluster_tests::totp::{secret_from_otpauth, totp_sha1};
use gatehouse_protocol::sdk::SecondFactor;

use super::chromium::{CHROMIUM, node_binary, screenshot_dir, script_dir};
use super::form_browser::base;
use super::methods::pages_email_tenant;
use crate::mail::{code_of, node_with_smtp};
use crate::testkit::{PASSWORD, unique_email};

#[tokio::test]
async fn the_code_sign_in_and_second_factor_pages_work_in_headless_chromium() {
    if !std::path::Path::new(CHROMIUM).exists() {
        println!("SKIPPED: {CHROMIUM} is not installed (apt-get install chromium)");
        return;
    }
    let scripts = script_dir();
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix node/tests/browser`"
    );
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = pages_email_tenant(&node, "Acme Rockets", Default::default()).await;
    let client = node.client(&tenant).await;
    let code_email = unique_email("ada");
    client
        .sign_up_with_password(&code_email, PASSWORD)
        .await
        .unwrap();
    let mfa_email = unique_email("grace");
    let signed_up = client
        .sign_up_with_password(&mfa_email, PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);
    let secret = secret_from_otpauth(&user.enroll_totp().await.unwrap().otpauth_uri).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let recovery_codes = user
        .confirm_totp(&totp_sha1(&secret, now, 6, 30))
        .await
        .unwrap();

    let screenshots = screenshot_dir();
    let mail_dir = std::env::temp_dir().join(format!("gatehouse-methods-{}", tenant.id));
    std::fs::create_dir_all(&mail_dir).unwrap();
    let run = tokio::process::Command::new(node_binary())
        .arg(scripts.join("methods.mjs"))
        .current_dir(&scripts)
        .env(
            "GATEHOUSE_PAGES_URL",
            format!("{}{}", node.http_url(), base(&tenant)),
        )
        .env("GATEHOUSE_SCREENSHOTS", &screenshots)
        .env("GATEHOUSE_MAIL_DIR", &mail_dir)
        .env("GATEHOUSE_CODE_EMAIL", &code_email)
        .env("GATEHOUSE_MFA_EMAIL", &mfa_email)
        .env("GATEHOUSE_PASSWORD", PASSWORD)
        .env("GATEHOUSE_RECOVERY_CODE", &recovery_codes[0])
        .env("GATEHOUSE_CHROMIUM", CHROMIUM)
        .kill_on_drop(true)
        .output();
    // The n-th code mailed to the code user goes to `<mail_dir>/<n>.txt`.
    let relay = async {
        let mut written = 0;
        loop {
            let mine: Vec<_> = smtp
                .messages()
                .into_iter()
                .filter(|message| {
                    message
                        .envelope_recipients
                        .iter()
                        .any(|to| to.eq_ignore_ascii_case(&code_email))
                })
                .collect();
            for message in &mine[written..] {
                let path = mail_dir.join(format!("{written}.txt"));
                std::fs::write(&path, code_of(message)).unwrap();
                written += 1;
            }
            // (The code user gets no other mail: no factor, no new-sign-in notices.)
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let output = tokio::select! {
        output = tokio::time::timeout(Duration::from_secs(180), run) => output,
        () = relay => unreachable!("the relay runs until the script ends"),
    }
    .expect("the browser run finishes within 3 minutes")
    .expect("node runs");
    let _ = std::fs::remove_dir_all(&mail_dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}"
    );
    for name in [
        "code-email-light-desktop",
        "code-enter-light-desktop",
        "mfa-light-desktop",
        "mfa-error-light-desktop",
        "mfa-recovery-light-desktop",
        "code-email-dark-desktop",
        "mfa-dark-desktop",
        "code-enter-light-phone",
        "code-enter-dark-phone",
        "mfa-light-phone",
        "mfa-dark-phone",
        "forgot-light-desktop",
        "reset-light-desktop",
        "reset-dark-phone",
    ] {
        let path = screenshots.join(format!("{name}.png"));
        let size = std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
        assert!(size > 1000, "{} is missing or empty", path.display());
    }
    // The recovery code the browser used is spent.
    let signed_in = client.sign_in_with_password(&mfa_email, PASSWORD).await;
    let refused = signed_in.unwrap_err();
    let ticket = refused.mfa_ticket().expect("a ticket");
    let reused = client
        .complete_mfa(ticket, SecondFactor::RecoveryCode(&recovery_codes[0]))
        .await;
    assert!(reused.is_err(), "the browser spent the recovery code");
}

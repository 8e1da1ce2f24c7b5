//! The HTML report in a real browser: headless Chromium renders it to a PNG, which
//! must exist and not be blank. CI installs Chromium (scripts/test.sh), so there a
//! missing browser is a failure; elsewhere the test says loudly that it skipped.

mod common;

use common::loadmux;
use std::process::Command;

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| std::path::Path::new(p).exists())
}

#[test]
fn headless_chromium_renders_the_html_report() {
    let Some(browser) = chromium() else {
        common::prereq::missing("chromium", "scripts/test.sh installs it");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let png = dir.path().join("report.png");
    let out = loadmux().args(["report", "tests/data/report-small.json", "--html"]).arg(&html).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let profile = dir.path().join("profile");
    let status = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args([
            "--window-size=960,2600",
            &format!("--screenshot={}", png.display()),
            &format!("file://{}", html.display()),
        ])
        .output()
        .unwrap();
    assert!(png.exists(), "no screenshot: {}", String::from_utf8_lossy(&status.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (960, 2600));
    // A blank page of this size compresses to a few kilobytes; text and charts do not.
    assert!(bytes.len() > 40_000, "the screenshot looks blank: {} bytes", bytes.len());
}

//! Headless Chromium (Debian's `chromium`) for the tests of web pages: the DOM after the page's
//! scripts ran, and screenshots kept under `tests/artifacts/`.

use std::path::PathBuf;
use std::process::Command;

fn chromium() -> Command {
    let bin = std::env::var("NEXUS_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let mut c = Command::new(bin);
    // Root in CI containers needs --no-sandbox; virtual time lets the page's fetches finish.
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=15000",
        "--window-size=1280,900",
    ]);
    c
}

/// The page's DOM once its scripts settled.
pub fn dump_dom(url: &str) -> String {
    let out = chromium()
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium (install Debian's chromium package; ./x setup does)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Saves a screenshot of the page as `tests/artifacts/<name>` and returns its path.
pub fn screenshot(url: &str, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts folder");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let out = chromium()
        .arg(format!("--screenshot={}", path.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success() && path.exists(),
        "chromium made no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// `v` (18 decimals) as the page prints it: integer part, then up to `digits` decimals without
/// trailing zeros.
pub fn decimal(v: u128, digits: usize) -> String {
    let one = 10u128.pow(18);
    let frac = format!("{:018}", v % one);
    let frac = frac[..digits].trim_end_matches('0');
    if frac.is_empty() {
        format!("{}", v / one)
    } else {
        format!("{}.{frac}", v / one)
    }
}

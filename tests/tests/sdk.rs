//! ICON's Python SDK, unmodified, drives a running node: wallets, transfers, waits, balances,
//! blocks by height and hash, `icx_call` on the IRC-2 SCORE, `call` transactions, monitors.
//! The SDK's own transaction hashes must equal the node's. ICON's JavaScript SDK (icon-sdk-js
//! from npm, which posts with `Content-Type: text/plain`) does the same from Node.js.

use nexus_tests::{python, repo_root, TestNode, NID};
use std::process::Command;

#[test]
fn icon_python_sdk_drives_the_node() {
    let node = TestNode::start();
    let out = tempfile::tempdir().expect("tempdir");
    let output = Command::new(python())
        .arg(repo_root().join("tests/sdk/sdk_client.py"))
        .env("NEXUS_URL", &node.base)
        .env("NEXUS_CHANNEL", "public")
        .env("NEXUS_NID", format!("{NID:#x}"))
        .env("NEXUS_TOKEN", node.init.token.to_string())
        .env("NEXUS_KEYSTORE", &node.init.funded_keystore)
        .env("NEXUS_PASSWORD", &node.init.funded_password)
        .env("NEXUS_OUT", out.path())
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the SDK script failed; node log:\n{}",
        node.log()
    );
    assert!(stdout.contains(" passed, 0 failed"), "no summary line");
    assert!(!stdout.contains("FAIL"));

    // A keystore written by the SDK's KeyWallet.store loads here.
    let addr =
        std::fs::read_to_string(out.path().join("sdk_wallet.address")).expect("address file");
    let key = nexus::keystore::load(&out.path().join("sdk_wallet.json"), "Sdk-pa55!")
        .expect("SDK keystore");
    assert_eq!(key.address().to_string(), addr.trim());
}

/// Where `./x setup` installed `icon-sdk-js` (`NEXUS_NODE_MODULES`, or the default cache).
fn node_modules() -> std::path::PathBuf {
    let p = std::env::var("NEXUS_NODE_MODULES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/nexus/js/node_modules")
        });
    assert!(
        p.join("icon-sdk-js").exists(),
        "{} lacks icon-sdk-js: run `./x setup` (or set NEXUS_NODE_MODULES)",
        p.display()
    );
    p
}

#[test]
fn icon_javascript_sdk_drives_the_node() {
    let node = TestNode::start();
    let output = Command::new("node")
        .arg(repo_root().join("tests/sdk/sdk_client.js"))
        .env("NODE_PATH", node_modules())
        .env("NEXUS_URL", &node.base)
        .env("NEXUS_CHANNEL", "public")
        .env("NEXUS_NID", format!("{NID:#x}"))
        .env("NEXUS_TOKEN", node.init.token.to_string())
        .env("NEXUS_KEYSTORE", &node.init.funded_keystore)
        .env("NEXUS_PASSWORD", &node.init.funded_password)
        .output()
        .expect("run node (Node.js)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the JS SDK script failed; node log:\n{}",
        node.log()
    );
    assert!(
        stdout.contains("10 passed, 0 failed"),
        "not every check ran"
    );
    assert!(!stdout.contains("FAIL"));
}

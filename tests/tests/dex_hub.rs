//! The DEX end to end with real processes: four Nexus validators (the public channel holds the
//! converter SCORE and a BMC; `notary-nexus` notarizes its messages, `notary-eth` Ethereum's),
//! chains A and B, anvil with the BMC, verifier and the DEX's Ether reserve, and one portal.
//! Trades go through `nexus dex`, as a trader would send them:
//! - ETH -> ICX: the Ether leaves the trader on Ethereum, the quoted ICX arrives at their hx
//!   account, the reserve keeps the Ether;
//! - ICX -> ETH: the ICX leaves the trader on Nexus, the quoted Ether arrives at their 0x
//!   account;
//! - a trade below its minimum is refunded in full, both ways;
//! - after each step the reserves on both chains match the converter's view;
//! - ICON's Python SDK quotes and trades the same way (`tests/sdk/dex_client.py`);
//! - the page at `/dex` shows the converter's reserves and trades in headless Chromium (a
//!   screenshot is kept in `tests/artifacts/dex-page.png`).

// Every unwrap here is an assertion about a real chain's answer; a failure is the test failing.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address as EthAddress, U256};
use alloy::providers::Provider;
use nexus::client::RpcClient;
use nexus::commands::dex;
use nexus_proto::value::parse_u128;
use nexus_proto::Address;
use nexus_tests::eth::USER_KEY;
use nexus_tests::hub::{tail, Hub, ICX};
use serde_json::Value;
use std::time::{Duration, Instant};

const ETHER: u128 = 1_000_000_000_000_000_000;

async fn wait_for<F, Fut>(hub: &Hub, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not after 120 s; portal log:\n{}",
            tail(&hub.portal_log(0), 40)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn int(v: &Value) -> u128 {
    parse_u128("answer", v.as_str().unwrap_or("")).unwrap()
}

/// Runs `nexus dex <args>`; returns its JSON output, or its error text.
fn cli(args: &[&str], env: &[(&str, &str)]) -> Result<Value, String> {
    let out = std::process::Command::new(nexus_tests::nexus_bin())
        .arg("dex")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout))))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

struct Book {
    icx: u128,
    eth: u128,
    deposits: u128,
    in_flight: u128,
}

async fn book(rpc: &RpcClient) -> Book {
    let r = dex::reserves(rpc).await.unwrap();
    Book {
        icx: int(&r["ICX"]),
        eth: int(&r["ETH"]),
        deposits: int(&r["ethDeposits"]),
        in_flight: int(&r["ethInFlight"]),
    }
}

/// The Ether the reserve contract owns equals the converter's ETH reserve plus the Ether
/// credited to providers, once nothing is in flight; the converter's ICX is its balance.
async fn check_books(rpc: &RpcClient, eth_rpc: &str, reserve: &str) {
    let b = book(rpc).await;
    assert_eq!(b.in_flight, 0);
    let (owned, held) = dex::eth_reserve(eth_rpc, reserve).await.unwrap();
    assert_eq!(held, 0, "no trade waits on Ethereum");
    assert_eq!(
        owned,
        b.eth + b.deposits,
        "Ethereum's reserve = the converter's view"
    );
    let score_icx =
        nexus::commands::wallet::balance(rpc, &nexus_dex::score::CONVERTER_ADDRESS.to_string())
            .await
            .unwrap();
    assert_eq!(score_icx, b.icx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eth_and_icx_trade_both_ways_at_the_quoted_amounts_and_refund_below_the_minimum() {
    let hub = Hub::start_with(true).await;
    let dir = hub.nexus.dir.path().to_path_buf();
    let nexus = hub.layout.nexus.clone().expect("Nexus as an endpoint");
    let rpc = RpcClient::new(nexus.url());
    let contracts = nexus::commands::hub_eth::contracts(&dir).unwrap();
    let reserve = contracts.dex_reserve.clone().unwrap();
    let anvil = hub.anvil.as_ref().unwrap();
    let eth_rpc = anvil.url.clone();
    let url = nexus.url();

    // The pool: 100 ETH deposited on Ethereum, added with 10,000 ICX.
    if let Err(e) = dex::seed(&dir, &hub.layout, 10_000 * ICX, 100 * ETHER).await {
        panic!(
            "seeding: {e:#}\nportal log:\n{}",
            tail(&hub.portal_log(0), 60)
        );
    }
    let b = book(&rpc).await;
    assert_eq!((b.icx, b.eth), (10_000 * ICX, 100 * ETHER));
    // The converter's answer to the deposit reaches Ethereum through notary-nexus.
    wait_for(&hub, "the reserve keeping the deposit", || async {
        dex::eth_reserve(&eth_rpc, &reserve).await.unwrap() == (100 * ETHER, 0)
    })
    .await;
    check_books(&rpc, &eth_rpc, &reserve).await;

    // ETH -> ICX: 1 Ether from the trader's Ethereum account, ICX to a fresh hx account.
    let provider = anvil.provider(USER_KEY);
    let trader_eth = alloy::signers::local::PrivateKeySigner::from_slice(
        &hex::decode(USER_KEY.trim_start_matches("0x")).unwrap(),
    )
    .unwrap()
    .address();
    let hx = Address::eoa([0x5a; 20]);
    let q = int(&dex::quote(&rpc, "ETH", ETHER).await.unwrap()["amount"]);
    let eth_before = provider.get_balance(trader_eth).await.unwrap();
    let eth_env = [("NEXUS_ETH_KEY", USER_KEY)];
    let out = cli(
        &[
            "swap",
            "--from",
            "ETH",
            "--amount",
            "1",
            "--to",
            &hx.to_string(),
            "--eth-rpc",
            &eth_rpc,
            "--reserve",
            &reserve,
            "--rpc",
            &url,
        ],
        &eth_env,
    )
    .unwrap();
    assert_eq!(int(&out["minReturn"]), dex::min_from_quote(q, 100));
    let after_send = provider.get_balance(trader_eth).await.unwrap();
    assert!(
        after_send <= eth_before - U256::from(ETHER),
        "the Ether left the trader"
    );
    wait_for(&hub, "the ICX of the Ether trade", || async {
        nexus::commands::wallet::balance(&rpc, &hx.to_string())
            .await
            .unwrap()
            > 0
    })
    .await;
    assert_eq!(
        nexus::commands::wallet::balance(&rpc, &hx.to_string())
            .await
            .unwrap(),
        q,
        "the quoted ICX, to the loop"
    );
    wait_for(&hub, "the reserve keeping the Ether", || async {
        dex::eth_reserve(&eth_rpc, &reserve).await.unwrap() == (101 * ETHER, 0)
    })
    .await;
    check_books(&rpc, &eth_rpc, &reserve).await;

    // ICX -> ETH: 50 ICX from the funded account, Ether to a fresh 0x account.
    let god = hub.funded_key();
    let receiver = EthAddress::from([0x3c; 20]);
    let q = int(&dex::quote(&rpc, "ICX", 50 * ICX).await.unwrap()["amount"]);
    let icx_before = nexus::commands::wallet::balance(&rpc, &god.address().to_string())
        .await
        .unwrap();
    let ks = hub.layout.admin_keystore.display().to_string();
    let pw = hub.layout.admin_password.clone();
    let out = cli(
        &[
            "swap",
            "--from",
            "ICX",
            "--amount",
            "50",
            "--to",
            &receiver.to_string(),
            "--keystore",
            &ks,
            "--password",
            &pw,
            "--rpc",
            &url,
        ],
        &[],
    )
    .unwrap();
    assert_eq!(int(&out["ethOut"]), q);
    let icx_after = nexus::commands::wallet::balance(&rpc, &god.address().to_string())
        .await
        .unwrap();
    assert!(
        icx_after <= icx_before - 50 * ICX,
        "the ICX left the trader"
    );
    wait_for(&hub, "the Ether of the ICX trade", || async {
        provider.get_balance(receiver).await.unwrap() > U256::ZERO
    })
    .await;
    assert_eq!(provider.get_balance(receiver).await.unwrap(), U256::from(q));
    wait_for(&hub, "the payout settled on Nexus", || async {
        book(&rpc).await.in_flight == 0
    })
    .await;
    check_books(&rpc, &eth_rpc, &reserve).await;

    // ETH -> ICX below its minimum: the Ether comes back in full, no ICX moves.
    let q = int(&dex::quote(&rpc, "ETH", ETHER).await.unwrap()["amount"]);
    let hx_before = nexus::commands::wallet::balance(&rpc, &hx.to_string())
        .await
        .unwrap();
    let before = provider.get_balance(trader_eth).await.unwrap();
    let out = cli(
        &[
            "swap",
            "--from",
            "ETH",
            "--amount",
            "1",
            "--to",
            &hx.to_string(),
            "--min-return",
            &format!("{:#x}", q + 1),
            "--eth-rpc",
            &eth_rpc,
            "--reserve",
            &reserve,
            "--rpc",
            &url,
        ],
        &eth_env,
    )
    .unwrap();
    let tx: alloy::primitives::B256 = out["txHash"].as_str().unwrap().parse().unwrap();
    let receipt = provider.get_transaction_receipt(tx).await.unwrap().unwrap();
    let gas = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    wait_for(&hub, "the refund of the Ether trade", || async {
        dex::eth_reserve(&eth_rpc, &reserve).await.unwrap().1 == 0
    })
    .await;
    assert_eq!(
        provider.get_balance(trader_eth).await.unwrap(),
        before - gas,
        "refunded in full (only gas spent)"
    );
    assert_eq!(
        nexus::commands::wallet::balance(&rpc, &hx.to_string())
            .await
            .unwrap(),
        hx_before
    );
    check_books(&rpc, &eth_rpc, &reserve).await;

    // ICX -> ETH below its minimum: refused on Nexus, the ICX never leaves.
    let q = int(&dex::quote(&rpc, "ICX", 50 * ICX).await.unwrap()["amount"]);
    let before = book(&rpc).await;
    let err = cli(
        &[
            "swap",
            "--from",
            "ICX",
            "--amount",
            "50",
            "--to",
            &receiver.to_string(),
            "--min-return",
            &format!("{:#x}", q + 1),
            "--keystore",
            &ks,
            "--password",
            &pw,
            "--rpc",
            &url,
        ],
        &[],
    )
    .unwrap_err();
    assert!(err.contains("below the minimum"), "{err}");
    let after = book(&rpc).await;
    assert_eq!((after.icx, after.eth), (before.icx, before.eth));
    check_books(&rpc, &eth_rpc, &reserve).await;

    // The same through ICON's Python SDK: quotes, a trade, a trade below its minimum.
    let sdk_receiver = EthAddress::from([0x4d; 20]);
    let output = std::process::Command::new(nexus_tests::python())
        .arg(nexus_tests::repo_root().join("tests/sdk/dex_client.py"))
        .env("NEXUS_CHANNEL_URL", &url)
        .env("NEXUS_NID", format!("{:#x}", nexus.nid))
        .env("NEXUS_KEYSTORE", &hub.layout.admin_keystore)
        .env("NEXUS_PASSWORD", &hub.layout.admin_password)
        .env("NEXUS_ETH_TO", sdk_receiver.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the SDK's DEX checks failed");
    assert!(stdout.contains("4 passed, 0 failed"), "not every check ran");
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let eth_out = int(&last["ethOut"]);
    assert!(eth_out > 0);
    wait_for(&hub, "the Ether of the SDK's trade", || async {
        provider.get_balance(sdk_receiver).await.unwrap() > U256::ZERO
    })
    .await;
    assert_eq!(
        provider.get_balance(sdk_receiver).await.unwrap(),
        U256::from(eth_out)
    );
    wait_for(&hub, "the SDK's payout settled on Nexus", || async {
        book(&rpc).await.in_flight == 0
    })
    .await;
    check_books(&rpc, &eth_rpc, &reserve).await;

    // The page a trader opens shows the converter's reserves and the trades, in a real browser.
    let page = format!("http://{}/dex", hub.layout.nexus_rpc);
    let dom = nexus_tests::browser::dump_dom(&page);
    assert!(
        dom.contains("data-loaded=\"yes\""),
        "the page did not load the converter:\n{dom}"
    );
    let b = book(&rpc).await;
    for (id, v) in [("icx-reserve", b.icx), ("eth-reserve", b.eth)] {
        let shown = format!("id=\"{id}\">{}", nexus_tests::browser::decimal(v, 6));
        assert!(dom.contains(&shown), "{id}: expected {shown} in\n{dom}");
    }
    assert_eq!(
        dom.matches("class=\"trade\"").count(),
        3,
        "three trades went through (CLI both ways, SDK)"
    );
    let shot = nexus_tests::browser::screenshot(&page, "dex-page.png");
    println!("screenshot of the DEX page: {}", shot.display());
}

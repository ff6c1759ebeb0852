//! Ethereum in tests: a real anvil (Foundry's dev node, installed from npm by `./x setup`) on a
//! free port, the contracts of `contracts/src` compiled by solc-js, deployment, and alloy
//! bindings of the contracts' ABIs.

use alloy::network::TransactionBuilder;
use alloy::primitives::Address as EthAddress;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The chain id the tests' anvil runs with (network `0x539.eth`).
pub const CHAIN_ID: u64 = 1337;
/// Anvil's first dev account (its well-known test key), which deploys and relays.
pub const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// Anvil's third dev account, a user in the tests.
pub const USER_KEY: &str = nexus::commands::hub_eth::USER_KEY;

alloy::sol! {
    #[sol(rpc, all_derives)]
    interface BMC {
        function network() external view returns (string);
        function txSeq() external view returns (uint256);
        function setVerifier(address v) external;
        function addService(string svc, address handler) external;
        function handleRelayMessage(bytes relay) external;
        event Message(string next, uint256 indexed seq, bytes msg);
        event BTPEvent(string src, int256 nsn, string next, string what);
        error NotOwner(address caller);
        error VerifierSet();
        error NotService(string svc, address caller);
        error WrongDestination(string expected, string got);
        error WrongSource(string expected, string got);
    }

    #[sol(rpc, all_derives)]
    interface NexusVerifier {
        function addSource(string src, address[] set) external;
        function context(string src) external view returns (address[] set, uint64 height, uint256 rxSeq);
        function verify(bytes relay) external returns (string src, bytes[] msgs);
        function decisionHash(string src, uint64 height, bytes32 blockHash, bytes32 messagesRoot, address[] nextSet) external pure returns (bytes32);
        function leafHash(bytes32 next, uint256 seq, bytes message) external pure returns (bytes32);
        event SetRotated(string src, uint64 height, address[] set);
        error NotBmc(address caller);
        error NotOwner(address caller);
        error UnknownSource(string src);
        error SourceExists(string src);
        error BadSet(string why);
        error OldDecision(uint64 height, uint64 last);
        error TooFewSignatures(uint256 valid, uint256 setSize);
        error BadSignature(uint256 index);
        error NotInSet(address signer);
        error DuplicateSigner(address signer);
        error BadPath(uint256 seq);
        error Replayed(uint256 seq, uint256 last);
        error Gap(uint256 expected, uint256 got);
    }

    #[sol(rpc, all_derives)]
    interface TokenService {
        function network() external view returns (string);
        function nativeToken() external view returns (string);
        function lockedFor(bytes32 net) external view returns (uint256);
        function wrapped(bytes32 token) external view returns (address);
        function pendingOf(uint256 sn) external view returns (address from, string token, uint256 amount);
        function transferNative(string to) external payable returns (uint256);
        function transferWrapped(string token, uint256 amount, string to) external returns (uint256);
        event TransferStart(address indexed from, string to, uint256 indexed sn, uint256 value);
        event TransferEnd(address indexed from, uint256 indexed sn, int256 code, string message);
    }

    #[sol(rpc, all_derives)]
    interface DexReserve {
        function reserve() external view returns (uint256);
        function held() external view returns (uint256);
        function swap(string to, uint256 minReturn) external payable returns (uint256);
        function deposit(string to) external payable returns (uint256);
        function pending(uint256 sn) external view returns (address from, uint256 amount);
        event SwapStarted(address indexed from, string to, uint256 indexed sn, uint256 amount, uint256 minReturn);
        event SwapEnded(address indexed from, uint256 indexed sn, int256 code, string message);
        event PaidOut(address indexed to, uint256 amount);
    }

    #[sol(rpc, all_derives)]
    interface WrappedToken {
        function totalSupply() external view returns (uint256);
        function balanceOf(address who) external view returns (uint256);
        function transfer(address to, uint256 value) external returns (bool);
    }

    #[sol(rpc, all_derives)]
    interface TestService {
        function receivedCount() external view returns (uint256);
        function received(uint256 i) external view returns (bytes32);
        function lastErrorCode() external view returns (int256);
        function lastErrorMessage() external view returns (string);
        function send(string to, int256 sn, bytes payload) external;
    }
}

/// Where `./x setup` installed the npm packages (`NEXUS_NODE_MODULES`, or the default cache).
pub fn node_modules() -> PathBuf {
    let p = std::env::var("NEXUS_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/nexus/js/node_modules")
        });
    assert!(
        p.join(".bin/anvil").exists() && p.join("solc").exists(),
        "{} lacks anvil or solc: run `./x setup` (or set NEXUS_NODE_MODULES)",
        p.display()
    );
    p
}

/// A running anvil, killed on drop.
pub struct Anvil {
    child: Child,
    /// Its JSON-RPC URL.
    pub url: String,
}

impl Anvil {
    /// Starts anvil on a free port (mining on every transaction) and waits until it answers.
    pub fn start() -> Self {
        Self::start_at(crate::free_ports(1)[0], 0)
    }

    /// Starts anvil on `port`, mining a block every `block_time_s` seconds (0: on every
    /// transaction), and waits until it answers.
    pub fn start_at(port: u16, block_time_s: u64) -> Self {
        if block_time_s > 0 {
            Self::start_with(port, &["--block-time", &block_time_s.to_string()])
        } else {
            Self::start_with(port, &[])
        }
    }

    /// Starts anvil on `port` with `args` added (`--hardfork berlin`, `--no-mining`, ...) and
    /// waits until it answers.
    pub fn start_with(port: u16, args: &[&str]) -> Self {
        let mut cmd = Command::new(nexus::commands::hub_eth::anvil_binary(&node_modules()));
        cmd.args(args);
        let child = cmd
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--chain-id",
                &CHAIN_ID.to_string(),
                "--slots-in-an-epoch",
                "1",
            ])
            .arg("--silent")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start anvil");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "anvil did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A provider that signs with `key` (hex secret).
    pub fn provider(&self, key: &str) -> DynProvider {
        let signer: PrivateKeySigner = key.parse().expect("a secret key");
        ProviderBuilder::new()
            .wallet(signer)
            .connect_http(self.url.parse().expect("url"))
            .erased()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The compiled contracts (`{"contracts": {name: {abi, bytecode}}}`), compiled once per test
/// process by `contracts/build.js` with solc-js.
pub fn compiled() -> &'static Value {
    static OUT: OnceLock<Value> = OnceLock::new();
    OUT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("contracts.json");
        let status = Command::new("node")
            .arg(crate::repo_root().join("contracts/build.js"))
            .arg(&out)
            .env("NODE_PATH", node_modules())
            .status()
            .expect("run node");
        assert!(status.success(), "contracts/build.js failed");
        serde_json::from_slice(&std::fs::read(&out).expect("compiler output")).expect("JSON")
    })
}

/// The creation bytecode of a compiled contract.
pub fn bytecode(name: &str) -> Vec<u8> {
    let hex_code = compiled()["contracts"][name]["bytecode"]
        .as_str()
        .unwrap_or_else(|| panic!("no contract {name} in the compiler output"));
    hex::decode(hex_code.trim_start_matches("0x")).expect("hex bytecode")
}

/// Deploys `name` with ABI-encoded constructor `args` and returns its address.
pub async fn deploy(provider: &DynProvider, name: &str, args: &[u8]) -> EthAddress {
    let code = [bytecode(name), args.to_vec()].concat();
    let tx = TransactionRequest::default().with_deploy_code(code);
    let receipt = provider
        .send_transaction(tx)
        .await
        .expect("send deployment")
        .get_receipt()
        .await
        .expect("deployment receipt");
    assert!(receipt.status(), "deploying {name} reverted");
    receipt
        .contract_address
        .unwrap_or_else(|| panic!("{name}: no contract address"))
}

/// A notary decision of `src` at `height` over `msgs` (seq, BTP message) for `next`, and every
/// message with its path (what Nexus notaries sign, built as `btp_getDecision` builds it).
pub fn decide(
    src: &str,
    height: u64,
    next: &str,
    msgs: &[(u128, Vec<u8>)],
    next_set: Vec<[u8; 20]>,
) -> (
    nexus_btp::decision::Decision,
    Vec<nexus_btp::decision::RelayItem>,
) {
    use nexus_btp::decision::{leaf_hash, Decision, MessageTree, RelayItem};
    let tree = MessageTree::new(msgs.iter().map(|(s, m)| leaf_hash(next, *s, m)).collect())
        .expect("a small tree");
    let items = msgs
        .iter()
        .enumerate()
        .map(|(i, (seq, msg))| RelayItem {
            seq: *seq,
            msg: msg.clone(),
            path: tree.path(i).expect("a leaf"),
        })
        .collect();
    let d = Decision {
        src: src.into(),
        height,
        block_hash: nexus_proto::Hash32([height as u8; 32]),
        messages_root: tree.root(),
        next_set,
    };
    (d, items)
}

/// The relay of `d` signed by `signers`, ABI-encoded for `handleRelayMessage`.
pub fn relay(
    d: &nexus_btp::decision::Decision,
    signers: &[&nexus_proto::KeyPair],
    items: &[nexus_btp::decision::RelayItem],
) -> alloy::primitives::Bytes {
    let sigs: Vec<[u8; 65]> = signers.iter().map(|k| d.sign(k)).collect();
    nexus_btp::decision::encode_relay(d, &sigs, items).into()
}

/// The Ethereum address of a hex secret key.
pub fn address_of(key: &str) -> EthAddress {
    key.parse::<PrivateKeySigner>()
        .expect("a secret key")
        .address()
}

/// Calls one of anvil's own methods (`evm_mine`, `evm_setAutomine`, `anvil_dropTransaction`).
pub async fn anvil_call(p: &DynProvider, method: &'static str, params: Value) -> Value {
    p.raw_request::<Value, Value>(method.into(), params)
        .await
        .expect("anvil answers its own methods")
}

/// A pending transaction in anvil's pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Pooled {
    /// Its hash.
    pub hash: String,
    /// Its sender, lowercase.
    pub from: String,
    /// Its receiver, lowercase.
    pub to: String,
    /// Its nonce.
    pub nonce: u64,
    /// Its type (`0x0` legacy, `0x2` EIP-1559).
    pub kind: String,
    /// `maxFeePerGas`, or `gasPrice` for a legacy transaction.
    pub fee: u128,
}

/// Every pending transaction in anvil's pool (`txpool_content`).
pub async fn pooled(p: &DynProvider) -> Vec<Pooled> {
    let content = anvil_call(p, "txpool_content", serde_json::json!([])).await;
    let num = |v: &Value| {
        u128::from_str_radix(v.as_str().unwrap_or_default().trim_start_matches("0x"), 16)
            .expect("a hex quantity")
    };
    let mut out = Vec::new();
    for (from, by_nonce) in content["pending"].as_object().into_iter().flatten() {
        for tx in by_nonce.as_object().into_iter().flat_map(|m| m.values()) {
            let fee = if tx["type"] == "0x0" {
                &tx["gasPrice"]
            } else {
                &tx["maxFeePerGas"]
            };
            out.push(Pooled {
                hash: tx["hash"].as_str().unwrap_or_default().to_string(),
                from: from.to_lowercase(),
                to: tx["to"].as_str().unwrap_or_default().to_lowercase(),
                nonce: num(&tx["nonce"]) as u64,
                kind: tx["type"].as_str().unwrap_or_default().to_string(),
                fee: num(fee),
            });
        }
    }
    out
}

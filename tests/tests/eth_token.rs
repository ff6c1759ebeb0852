//! The Solidity `token` service on a real anvil: Ether leaves locked and comes home unlocked,
//! other networks' coins arrive as ERC-20s and go home burned, a refused transfer is refunded,
//! and every bad request is refused with nothing moved. Messages come in as relays signed by a
//! notary set, exactly as the portal delivers them.

// Every unwrap here is an assertion about a real chain's answer; a failure is the test failing.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{keccak256 as k256, Address as EthAddress, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::{SolEvent, SolValue};
use nexus_btp::decision::eth_address;
use nexus_btp::token::TransferMessage;
use nexus_proto::btp::{BtpMessage, ErrorMessage};
use nexus_proto::KeyPair;
use nexus_tests::eth::{
    decide, deploy, relay, Anvil, NexusVerifier, TokenService, WrappedToken, BMC, DEV_KEY, USER_KEY,
};

const HERE: &str = "0x539.eth";
const A: &str = "0x101.loop";
const ETH: u128 = 1_000_000_000_000_000_000;
const NATIVE: &str = "btp-0x539.eth-ETH";

struct Setup {
    _anvil: Anvil,
    provider: DynProvider,
    user: DynProvider,
    user_addr: EthAddress,
    bmc: BMC::BMCInstance<DynProvider>,
    ts: TokenService::TokenServiceInstance<DynProvider>,
    notaries: Vec<KeyPair>,
    height: u64,
    seq: u128,
    nsn: i128,
}

async fn setup() -> Setup {
    let anvil = Anvil::start();
    let provider = anvil.provider(DEV_KEY);
    let bmc_addr = deploy(&provider, "BMC", &(HERE.to_string(),).abi_encode_params()).await;
    let bmv_addr = deploy(
        &provider,
        "NexusVerifier",
        &(bmc_addr, HERE.to_string()).abi_encode_params(),
    )
    .await;
    let ts_addr = deploy(
        &provider,
        "TokenService",
        &(bmc_addr, HERE.to_string()).abi_encode_params(),
    )
    .await;
    let bmc = BMC::new(bmc_addr, provider.clone());
    let bmv = NexusVerifier::new(bmv_addr, provider.clone());
    assert!(bmc
        .setVerifier(bmv_addr)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
        .status());
    assert!(bmc
        .addService("token".into(), ts_addr)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
        .status());
    let notaries: Vec<KeyPair> = (0..4).map(|_| KeyPair::generate()).collect();
    let set: Vec<EthAddress> = notaries.iter().map(|k| eth_address(k).into()).collect();
    assert!(bmv
        .addSource(A.into(), set)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
        .status());
    let user = anvil.provider(USER_KEY);
    let user_addr = alloy::signers::local::PrivateKeySigner::from_slice(
        &hex::decode(USER_KEY.trim_start_matches("0x")).unwrap(),
    )
    .unwrap()
    .address();
    Setup {
        ts: TokenService::new(ts_addr, provider.clone()),
        _anvil: anvil,
        provider,
        user,
        user_addr,
        bmc,
        notaries,
        height: 10,
        seq: 0,
        nsn: 100,
    }
}

fn transfer(to: &str, token: &str, amount: u128) -> Vec<u8> {
    alloy_rlp_encode(&TransferMessage {
        from: "hx".to_string() + &"ab".repeat(20),
        to: to.into(),
        token: token.into(),
        amount,
    })
}

fn alloy_rlp_encode(m: &TransferMessage) -> Vec<u8> {
    let mut out = Vec::new();
    alloy_rlp::Encodable::encode(m, &mut out);
    out
}

impl Setup {
    /// Delivers BTP messages from A (already encoded payloads with their sn) in one relay.
    async fn deliver(&mut self, msgs: Vec<(i128, Vec<u8>)>) -> TransactionReceipt {
        let mut list = Vec::new();
        for (sn, payload) in msgs {
            self.seq += 1;
            self.nsn += 1;
            let m = BtpMessage {
                src: A.into(),
                dst: HERE.into(),
                svc: "token".into(),
                sn,
                msg: payload,
                nsn: if sn < 0 { -self.nsn } else { self.nsn },
            };
            list.push((self.seq, m.encode()));
        }
        self.height += 1;
        let (d, items) = decide(A, self.height, HERE, &list, vec![]);
        let signers: Vec<&KeyPair> = self.notaries.iter().take(3).collect();
        let r = self
            .bmc
            .handleRelayMessage(relay(&d, &signers, &items))
            .gas(5_000_000)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status(), "relay reverted");
        r
    }

    async fn reply(&mut self, sn: u64, code: i128) -> TransactionReceipt {
        let e = ErrorMessage {
            code,
            message: if code == 0 {
                String::new()
            } else {
                "refused on A".into()
            },
        }
        .encode();
        self.deliver(vec![(-(sn as i128), e)]).await
    }

    async fn balance(&self, a: EthAddress) -> U256 {
        self.provider.get_balance(a).await.unwrap()
    }

    async fn locked(&self) -> U256 {
        self.ts.lockedFor(k256(A.as_bytes())).call().await.unwrap()
    }

    async fn send_native(&self, to: &str, value: u128) -> Result<TransactionReceipt, String> {
        let ts = TokenService::new(*self.ts.address(), self.user.clone());
        let call = ts.transferNative(to.into()).value(U256::from(value));
        match call.send().await {
            Ok(p) => Ok(p.get_receipt().await.unwrap()),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn sent(r: &TransactionReceipt) -> Vec<BtpMessage> {
    r.inner
        .logs()
        .iter()
        .filter_map(|l| BMC::Message::decode_log_data(l.data()).ok())
        .map(|m| BtpMessage::decode(&m.msg).unwrap())
        .collect()
}

fn ended(r: &TransactionReceipt) -> Vec<(U256, i128)> {
    r.inner
        .logs()
        .iter()
        .filter_map(|l| TokenService::TransferEnd::decode_log_data(l.data()).ok())
        .map(|e| (e.sn, i128::try_from(e.code).unwrap()))
        .collect()
}

#[tokio::test]
async fn ether_leaves_locked_and_is_settled_by_the_reply_or_refunded() {
    let mut s = setup().await;
    let bob = format!("{A}/hx{}", "cd".repeat(20));
    let r = s.send_native(&bob, 2 * ETH).await.unwrap();
    assert!(r.status());
    let m = sent(&r);
    assert_eq!(
        (
            m[0].src.as_str(),
            m[0].dst.as_str(),
            m[0].svc.as_str(),
            m[0].sn
        ),
        (HERE, A, "token", 1)
    );
    let t: TransferMessage = alloy_rlp::Decodable::decode(&mut m[0].msg.as_slice()).unwrap();
    assert_eq!(
        (t.to.as_str(), t.token.as_str(), t.amount),
        (&bob[A.len() + 1..], NATIVE, 2 * ETH)
    );
    assert_eq!(t.from, format!("{:#x}", s.user_addr));
    assert_eq!(s.locked().await, U256::from(2 * ETH));
    assert_eq!(s.balance(*s.ts.address()).await, U256::from(2 * ETH));
    // Delivered on A: settled, nothing moves.
    let r = s.reply(1, 0).await;
    assert_eq!(ended(&r), vec![(U256::from(1), 0)]);
    assert_eq!(s.locked().await, U256::from(2 * ETH));

    // A second transfer is refused on A: the Ether comes back to the user.
    let r = s.send_native(&bob, ETH).await.unwrap();
    let before = s.balance(s.user_addr).await;
    let r2 = s.reply(2, 4).await;
    assert_eq!(ended(&r2), vec![(U256::from(2), 4)]);
    assert_eq!(s.balance(s.user_addr).await, before + U256::from(ETH));
    assert_eq!(s.locked().await, U256::from(2 * ETH));
    // A reply settles once: the same reply again changes nothing.
    let again = s.reply(2, 4).await;
    assert!(ended(&again).is_empty());
    assert_eq!(s.balance(s.user_addr).await, before + U256::from(ETH));
    assert!(r.status());
}

#[tokio::test]
async fn ether_comes_home_only_up_to_what_was_sent_to_that_network() {
    let mut s = setup().await;
    s.send_native(&format!("{A}/hx{}", "cd".repeat(20)), 3 * ETH)
        .await
        .unwrap();
    s.reply(1, 0).await;
    let carol = EthAddress::from([0xca; 20]);
    let r = s
        .deliver(vec![(7, transfer(&format!("{carol:#x}"), NATIVE, ETH))])
        .await;
    assert_eq!(s.balance(carol).await, U256::from(ETH));
    assert_eq!(s.locked().await, U256::from(2 * ETH));
    let reply = sent(&r);
    assert_eq!(
        (
            reply[0].sn,
            ErrorMessage::decode(&reply[0].msg).unwrap().code
        ),
        (-7, 0)
    );
    // More than is locked for A: refused with an error reply, nothing moves.
    let r = s
        .deliver(vec![(8, transfer(&format!("{carol:#x}"), NATIVE, 5 * ETH))])
        .await;
    let reply = sent(&r);
    let e = ErrorMessage::decode(&reply[0].msg).unwrap();
    assert_eq!((reply[0].sn, e.code), (-8, 4));
    assert!(
        e.message.contains("more Ether than was sent"),
        "{}",
        e.message
    );
    assert_eq!(s.balance(carol).await, U256::from(ETH));
    assert_eq!(s.locked().await, U256::from(2 * ETH));
}

#[tokio::test]
async fn coins_of_other_networks_arrive_as_erc20_and_go_home_burned() {
    let mut s = setup().await;
    let icx = "btp-0x101.loop-ICX";
    s.deliver(vec![(
        3,
        transfer(&format!("{:#x}", s.user_addr), icx, 5 * ETH),
    )])
    .await;
    let erc20 = s.ts.wrapped(k256(icx.as_bytes())).call().await.unwrap();
    assert_ne!(erc20, EthAddress::ZERO);
    let w = WrappedToken::new(erc20, s.provider.clone());
    assert_eq!(
        w.balanceOf(s.user_addr).call().await.unwrap(),
        U256::from(5 * ETH)
    );
    // A coin claimed by a network that is not its home: refused.
    let r = s
        .deliver(vec![(
            4,
            transfer(&format!("{:#x}", s.user_addr), "btp-0x102.loop-ICX", ETH),
        )])
        .await;
    assert_eq!(ErrorMessage::decode(&sent(&r)[0].msg).unwrap().code, 4);
    // Home: 2 burned and sent to A.
    let ts = TokenService::new(*s.ts.address(), s.user.clone());
    let bob = format!("{A}/hx{}", "cd".repeat(20));
    let r = ts
        .transferWrapped(icx.into(), U256::from(2 * ETH), bob.clone())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
    let t: TransferMessage = alloy_rlp::Decodable::decode(&mut sent(&r)[0].msg.as_slice()).unwrap();
    assert_eq!((t.token.as_str(), t.amount), (icx, 2 * ETH));
    assert_eq!(w.totalSupply().call().await.unwrap(), U256::from(3 * ETH));
    // Refused on A: minted back.
    s.reply(1, 4).await;
    assert_eq!(
        w.balanceOf(s.user_addr).call().await.unwrap(),
        U256::from(5 * ETH)
    );
    // To another network than its home, or more than held: refused at once.
    for (token, amount, to) in [
        (icx, ETH, "0x102.loop/hx00"),
        (icx, 50 * ETH, bob.as_str()),
        ("btp-0x102.loop-ICX", ETH, "0x102.loop/hx00"),
    ] {
        let err = ts
            .transferWrapped(token.into(), U256::from(amount), to.into())
            .call()
            .await;
        assert!(err.is_err(), "{token} {amount} {to}");
    }
    assert_eq!(w.totalSupply().call().await.unwrap(), U256::from(5 * ETH));
}

#[tokio::test]
async fn bad_requests_are_refused_and_move_nothing() {
    let mut s = setup().await;
    for (to, value) in [
        (format!("{A}/hx00"), 0),
        ("no-slash".to_string(), ETH),
        (format!("{A}/"), ETH),
        ("/hx00".to_string(), ETH),
    ] {
        assert!(s.send_native(&to, value).await.is_err(), "{to} {value}");
    }
    assert_eq!(s.balance(*s.ts.address()).await, U256::ZERO);
    // Incoming: a recipient that is not an address, amount 0, a payload that does not decode.
    let r = s
        .deliver(vec![
            (1, transfer("hxnotanaddress", NATIVE, 1)),
            (
                2,
                transfer(&format!("{:#x}", EthAddress::ZERO), "btp-0x101.loop-ICX", 0),
            ),
            (3, b"garbage".to_vec()),
        ])
        .await;
    let codes: Vec<i128> = sent(&r)
        .iter()
        .map(|m| ErrorMessage::decode(&m.msg).unwrap().code)
        .collect();
    assert_eq!(codes, vec![4, 4, 4]);
}

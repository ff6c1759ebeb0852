//! The DEX's ETH reserve contract on a real anvil, messages from the converter delivered as
//! relays signed by a notary set (as the portal delivers them): a swap holds the Ether until
//! the converter's reply (kept on success, refunded otherwise, in full); a payout never exceeds
//! the reserve; only the converter's network pays out; bad requests are refused.

// Every unwrap here is an assertion about a real chain's answer; a failure is the test failing.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address as EthAddress, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::SolValue;
use alloy_rlp::Encodable;
use nexus_btp::decision::eth_address;
use nexus_proto::btp::{BtpMessage, ErrorMessage};
use nexus_proto::KeyPair;
use nexus_tests::eth::{
    decide, deploy, relay, Anvil, DexReserve, NexusVerifier, BMC, DEV_KEY, USER_KEY,
};

const HERE: &str = "0x539.eth";
const NEXUS: &str = "0x3.nexus";
const ETH: u128 = 1_000_000_000_000_000_000;

struct Setup {
    _anvil: Anvil,
    provider: DynProvider,
    user: DynProvider,
    user_addr: EthAddress,
    bmc: BMC::BMCInstance<DynProvider>,
    reserve: DexReserve::DexReserveInstance<DynProvider>,
    notaries: Vec<KeyPair>,
    height: u64,
    seq: std::collections::HashMap<String, u128>,
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
    let res_addr = deploy(
        &provider,
        "DexReserve",
        &(bmc_addr, NEXUS.to_string()).abi_encode_params(),
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
        .addService("dex".into(), res_addr)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
        .status());
    let notaries: Vec<KeyPair> = (0..4).map(|_| KeyPair::generate()).collect();
    let set: Vec<EthAddress> = notaries.iter().map(|k| eth_address(k).into()).collect();
    for src in [NEXUS, "0x101.loop"] {
        assert!(bmv
            .addSource(src.into(), set.clone())
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap()
            .status());
    }
    let user = anvil.provider(USER_KEY);
    let user_addr = alloy::signers::local::PrivateKeySigner::from_slice(
        &hex::decode(USER_KEY.trim_start_matches("0x")).unwrap(),
    )
    .unwrap()
    .address();
    Setup {
        reserve: DexReserve::new(res_addr, provider.clone()),
        _anvil: anvil,
        provider,
        user,
        user_addr,
        bmc,
        notaries,
        height: 10,
        seq: Default::default(),
    }
}

fn rlp_list(items: &[&dyn Encodable]) -> Vec<u8> {
    let mut out = Vec::new();
    alloy_rlp::Header {
        list: true,
        payload_length: items.iter().map(|i| i.length()).sum(),
    }
    .encode(&mut out);
    for i in items {
        i.encode(&mut out);
    }
    out
}

fn pay(to: EthAddress, amount: u128) -> Vec<u8> {
    rlp_list(&[&"pay", &format!("{to:#x}"), &amount])
}

impl Setup {
    async fn deliver(&mut self, src: &str, sn: i128, payload: Vec<u8>) -> TransactionReceipt {
        let seq = {
            let e = self.seq.entry(src.to_string()).or_default();
            *e += 1;
            *e
        };
        self.height += 1;
        let m = BtpMessage {
            src: src.into(),
            dst: HERE.into(),
            svc: "dex".into(),
            sn,
            msg: payload,
            nsn: seq as i128,
        };
        let (d, items) = decide(src, self.height, HERE, &[(seq, m.encode())], vec![]);
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
        assert!(r.status());
        r
    }

    async fn reply(&mut self, sn: u64, code: i128) -> TransactionReceipt {
        let e = ErrorMessage {
            code,
            message: if code == 0 {
                String::new()
            } else {
                "minReturn missed".into()
            },
        }
        .encode();
        self.deliver(NEXUS, -(sn as i128), e).await
    }

    async fn swap(&self, to: &str, value: u128, min: u128) -> Result<TransactionReceipt, String> {
        let r = DexReserve::new(*self.reserve.address(), self.user.clone());
        match r
            .swap(to.into(), U256::from(min))
            .value(U256::from(value))
            .send()
            .await
        {
            Ok(p) => Ok(p.get_receipt().await.unwrap()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn balance(&self, a: EthAddress) -> U256 {
        self.provider.get_balance(a).await.unwrap()
    }

    async fn book(&self) -> (U256, U256) {
        (
            self.reserve.reserve().call().await.unwrap(),
            self.reserve.held().call().await.unwrap(),
        )
    }
}

fn sent(r: &TransactionReceipt) -> Vec<BtpMessage> {
    r.inner
        .logs()
        .iter()
        .filter_map(|l| {
            alloy::sol_types::SolEvent::decode_log_data(l.data())
                .ok()
                .map(|m: BMC::Message| m)
        })
        .map(|m| BtpMessage::decode(&m.msg).unwrap())
        .collect()
}

fn reply_code(r: &TransactionReceipt) -> i128 {
    ErrorMessage::decode(&sent(r)[0].msg).unwrap().code
}

const BOB: &str = "hxcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

#[tokio::test]
async fn a_swap_holds_the_ether_until_the_converter_answers() {
    let mut s = setup().await;
    let r = s.swap(BOB, 2 * ETH, 12_345).await.unwrap();
    let m = &sent(&r)[0];
    assert_eq!((m.dst.as_str(), m.svc.as_str(), m.sn), (NEXUS, "dex", 1));
    let items: Vec<alloy_rlp::Bytes> = alloy_rlp::Decodable::decode(&mut m.msg.as_slice()).unwrap();
    assert_eq!(items[0].as_ref(), b"swap");
    assert_eq!(items[1].as_ref(), format!("{:#x}", s.user_addr).as_bytes());
    assert_eq!(items[2].as_ref(), BOB.as_bytes());
    assert_eq!(s.book().await, (U256::ZERO, U256::from(2 * ETH)));
    // Converted: the Ether joins the reserve.
    s.reply(1, 0).await;
    assert_eq!(s.book().await, (U256::from(2 * ETH), U256::ZERO));
    // The next swap misses its minReturn on Nexus: refunded in full.
    s.swap(BOB, ETH, 1).await.unwrap();
    let before = s.balance(s.user_addr).await;
    s.reply(2, 4).await;
    assert_eq!(s.balance(s.user_addr).await, before + U256::from(ETH));
    assert_eq!(s.book().await, (U256::from(2 * ETH), U256::ZERO));
    // A second reply to the same swap changes nothing.
    s.reply(2, 0).await;
    assert_eq!(s.book().await, (U256::from(2 * ETH), U256::ZERO));
}

#[tokio::test]
async fn payouts_come_only_from_the_converter_and_never_exceed_the_reserve() {
    let mut s = setup().await;
    let fund = s
        .reserve
        .deposit(BOB.to_string())
        .value(U256::from(3 * ETH))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(fund.status());
    let m = &sent(&fund)[0];
    let items: Vec<alloy_rlp::Bytes> = alloy_rlp::Decodable::decode(&mut m.msg.as_slice()).unwrap();
    assert_eq!(items[0].as_ref(), b"deposit");
    assert_eq!(items[2].as_ref(), BOB.as_bytes());
    // Held until the converter credits it.
    assert_eq!(s.book().await, (U256::ZERO, U256::from(3 * ETH)));
    s.reply(1, 0).await;
    assert_eq!(s.book().await, (U256::from(3 * ETH), U256::ZERO));
    let carol = EthAddress::from([0xca; 20]);
    let r = s.deliver(NEXUS, 7, pay(carol, ETH)).await;
    assert_eq!(reply_code(&r), 0);
    assert_eq!(s.balance(carol).await, U256::from(ETH));
    // More than the reserve: refused (the converter refunds on its side), nothing moves.
    let r = s.deliver(NEXUS, 8, pay(carol, 5 * ETH)).await;
    assert_eq!(reply_code(&r), 4);
    // From another network than the converter's: refused.
    let r = s.deliver("0x101.loop", 9, pay(carol, ETH)).await;
    assert_eq!(reply_code(&r), 4);
    // Malformed: not a payout, a bad recipient, zero.
    for bad in [
        rlp_list(&[&"steal", &"0x00", &1u64]),
        rlp_list(&[&"pay", &"hxabc", &1u64]),
        pay(carol, 0),
    ] {
        let r = s.deliver(NEXUS, 10, bad).await;
        assert_eq!(reply_code(&r), 4);
    }
    assert_eq!(s.balance(carol).await, U256::from(ETH));
    assert_eq!(s.book().await, (U256::from(2 * ETH), U256::ZERO));
}

#[tokio::test]
async fn bad_swaps_and_deposits_are_refused() {
    let s = setup().await;
    assert!(s.swap(BOB, 0, 0).await.is_err(), "zero Ether");
    assert!(
        s.swap("0xcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd", ETH, 0)
            .await
            .is_err(),
        "not an hx address"
    );
    assert!(s.swap("hx12", ETH, 0).await.is_err(), "short");
    assert!(
        s.reserve
            .deposit("0xcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd".into())
            .value(U256::from(ETH))
            .send()
            .await
            .is_err(),
        "a deposit for an account that is not hx"
    );
    assert!(
        s.reserve.deposit(BOB.into()).send().await.is_err(),
        "a deposit of nothing"
    );
    assert_eq!(s.book().await, (U256::ZERO, U256::ZERO));
    assert_eq!(s.balance(*s.reserve.address()).await, U256::ZERO);
}

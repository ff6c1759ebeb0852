//! The converter SCORE behind a real BMC (`nexus-btp`'s testkit: in-memory state, a notary
//! channel whose validators sign what the reserve on Ethereum sent): one test per rule of
//! trading, liquidity, refunds and refusals.

use super::*;
use nexus_btp::bmc::Bmc;
use nexus_btp::event::{MessageEvent, MESSAGE_SIG};
use nexus_btp::testkit::{Remote, World};
use nexus_btp::{BMC_ADDRESS, NOTARY_ADDRESS};
use nexus_proto::btp::{BtpMessage, ErrorMessage};
use nexus_proto::receipt::EventLog;
use nexus_proto::value::parse_u128;
use std::sync::Arc;

const NEXUS: &str = "0x1.nexus";
const ETH: &str = "0x539.eth";
const ICX: u128 = 1_000_000_000_000_000_000;
const WEI: u128 = 1_000_000_000_000_000_000;
const TRADER_ETH: &str = "0x00000000000000000000000000000000000000aa";

fn dex_address() -> Address {
    Address::contract([0xde; 20])
}

struct Hub {
    world: World,
    bmc: Arc<Bmc>,
    dex: Arc<ConverterScore>,
    notary: Remote,
    owner: Address,
    /// The reserve's serial numbers and link sequence.
    eth_sn: i128,
    seq: u128,
}

impl Hub {
    /// A converter with 50/50 weights and a 0.3% fee, 1,000 ICX against 10 ETH of liquidity
    /// from the owner.
    fn new() -> Self {
        let mut h = Self::empty();
        let owner = h.owner;
        h.deliver(Inbound::Deposit {
            from: TRADER_ETH.into(),
            to: owner.to_string(),
            amount: 10 * WEI,
        })
        .unwrap();
        h.world.fund(&owner, 10_000 * ICX);
        h.call(
            owner,
            1_000 * ICX,
            "addLiquidity",
            json!({"_eth": format_int(10 * WEI)}),
        )
        .unwrap();
        h
    }

    fn empty() -> Self {
        let owner = Address::eoa([0x0e; 20]);
        let bmc = Arc::new(Bmc {
            network: NEXUS.into(),
            admin: Some(owner),
            services: [(SERVICE.to_string(), dex_address())].into(),
        });
        let dex = Arc::new(ConverterScore {
            owner: Some(owner),
            bmc: BMC_ADDRESS,
            reserve_network: ETH.into(),
            icx_weight: 500_000,
            eth_weight: 500_000,
            initial_fee_ppm: 3_000,
        });
        let mut world = World::default();
        world.register(BMC_ADDRESS, bmc.clone());
        world.register(dex_address(), dex.clone());
        let notary = Remote::new(0x1539, "notary-eth");
        let mut h = Hub {
            world,
            bmc,
            dex,
            notary,
            owner,
            eth_sn: 0,
            seq: 0,
        };
        // Install writes the fee; the BMC learns the route to Ethereum.
        h.call(owner, 0, "setFee", json!({"_fee": "0xbb8"}))
            .unwrap();
        let mut p = h.notary.setup_params(NOTARY_ADDRESS);
        p.insert("_src".into(), json!(ETH));
        let bmc = h.bmc.clone();
        h.world
            .call(
                &*bmc,
                BMC_ADDRESS,
                owner,
                0,
                "addVerifier",
                Value::Object(p),
            )
            .unwrap();
        h
    }

    fn call(
        &mut self,
        from: Address,
        value: u128,
        method: &str,
        p: Value,
    ) -> Result<(Value, Vec<EventLog>), ScoreError> {
        let dex = self.dex.clone();
        self.world
            .call(&*dex, dex_address(), from, value, method, p)
    }

    fn query(&mut self, method: &str, p: Value) -> Value {
        let dex = self.dex.clone();
        self.world.query(&*dex, dex_address(), method, p)
    }

    fn int(&mut self, method: &str, p: Value, field: Option<&str>) -> u128 {
        let v = self.query(method, p);
        let s = match field {
            Some(f) => v[f].clone(),
            None => v,
        };
        parse_u128("answer", s.as_str().unwrap()).unwrap()
    }

    /// Relays one notarized message from the reserve; returns the BMC's events.
    fn relay(&mut self, msg: BtpMessage) -> Result<Vec<EventLog>, ScoreError> {
        self.seq += 1;
        let ev = EventLog {
            score_address: NOTARY_ADDRESS,
            indexed: vec![MESSAGE_SIG.into(), NEXUS.into(), format_int(self.seq)],
            data: vec![format_bytes(&msg.encode())],
        };
        let (u, p) = self.notary.block(vec![ev], &[0, 1, 2]);
        let bmc = self.bmc.clone();
        self.world
            .call(
                &*bmc,
                BMC_ADDRESS,
                Address::eoa([0x77; 20]),
                0,
                "handleRelayMessage",
                json!({"_src": ETH, "_updates": [u], "_proofs": p}),
            )
            .map(|(_, e)| e)
    }

    /// The reserve sends `m` (a request with the next serial number).
    fn deliver(&mut self, m: Inbound) -> Result<Vec<EventLog>, ScoreError> {
        self.eth_sn += 1;
        self.relay(BtpMessage {
            src: ETH.into(),
            dst: NEXUS.into(),
            svc: SERVICE.into(),
            sn: self.eth_sn,
            msg: m.encode(),
            nsn: self.eth_sn,
        })
    }

    /// Ethereum answers the converter's payout `sn` with `code`.
    fn reply(&mut self, sn: u128, code: i128) -> Vec<EventLog> {
        self.relay(BtpMessage {
            src: ETH.into(),
            dst: NEXUS.into(),
            svc: SERVICE.into(),
            sn: -(sn as i128),
            msg: ErrorMessage {
                code,
                message: if code == 0 { "" } else { "refused" }.into(),
            }
            .encode(),
            nsn: -1,
        })
        .unwrap()
    }

    /// The ICX reserve always equals what the SCORE holds.
    fn check_icx(&mut self) {
        let held = self.world.balance(&dex_address());
        assert_eq!(self.int("getReserves", json!({}), Some("ICX")), held);
    }

    fn reserves(&mut self) -> (u128, u128) {
        (
            self.int("getReserves", json!({}), Some("ICX")),
            self.int("getReserves", json!({}), Some("ETH")),
        )
    }
}

/// Messages the BMC sent out, decoded.
fn sent(events: &[EventLog]) -> Vec<BtpMessage> {
    events
        .iter()
        .filter(|e| e.score_address == BMC_ADDRESS && e.indexed[0] == MESSAGE_SIG)
        .map(|e| BtpMessage::decode(&MessageEvent::parse(e).unwrap().msg).unwrap())
        .collect()
}

fn quote(h: &mut Hub, from: &str, amount: u128) -> u128 {
    h.int(
        "getReturn",
        json!({"_from": from, "_amount": format_int(amount)}),
        Some("amount"),
    )
}

#[test]
fn ether_buys_the_quoted_icx_and_the_reserve_is_told_to_keep_it() {
    let mut h = Hub::new();
    let hx = Address::eoa([0x42; 20]);
    let q = quote(&mut h, "ETH", WEI);
    let before = h.reserves();
    let events = h
        .deliver(Inbound::Swap {
            from: TRADER_ETH.into(),
            to: hx.to_string(),
            amount: WEI,
            min_return: q,
        })
        .unwrap();
    assert_eq!(h.world.balance(&hx), q);
    assert_eq!(h.reserves(), (before.0 - q, before.1 + WEI));
    let replies = sent(&events);
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].sn, replies[0].dst.as_str()), (-2, ETH));
    assert_eq!(ErrorMessage::decode(&replies[0].msg).unwrap().code, 0);
    assert!(events.iter().any(|e| e.indexed[0] == CONVERSION_SIG));
    h.check_icx();
}

#[test]
fn ether_below_min_return_changes_nothing_and_is_answered_with_an_error() {
    let mut h = Hub::new();
    let hx = Address::eoa([0x42; 20]);
    let q = quote(&mut h, "ETH", WEI);
    let before = h.reserves();
    let events = h
        .deliver(Inbound::Swap {
            from: TRADER_ETH.into(),
            to: hx.to_string(),
            amount: WEI,
            min_return: q + 1,
        })
        .unwrap();
    assert_eq!(h.world.balance(&hx), 0);
    assert_eq!(h.reserves(), before);
    let reply = ErrorMessage::decode(&sent(&events)[0].msg).unwrap();
    assert_ne!(reply.code, 0);
    assert!(reply.message.contains("below the minimum"), "{reply:?}");
}

#[test]
fn icx_sells_for_the_quoted_ether_paid_by_the_reserve() {
    let mut h = Hub::new();
    let trader = Address::eoa([0x43; 20]);
    h.world.fund(&trader, 100 * ICX);
    let q = quote(&mut h, "ICX", 10 * ICX);
    let before = h.reserves();
    let (r, events) = h
        .call(
            trader,
            10 * ICX,
            "convert",
            json!({"_to": TRADER_ETH, "_minReturn": format_int(q)}),
        )
        .unwrap();
    assert_eq!(r["amount"], format_int(q));
    assert_eq!(h.world.balance(&trader), 90 * ICX);
    assert_eq!(h.reserves(), (before.0 + 10 * ICX, before.1 - q));
    let out = sent(&events);
    assert_eq!(
        (out.len(), out[0].dst.as_str(), out[0].svc.as_str()),
        (1, ETH, SERVICE)
    );
    assert_eq!(out[0].msg, wire::pay(TRADER_ETH, q));
    assert_eq!(h.int("getReserves", json!({}), Some("ethInFlight")), q);
    // Ethereum paid: the payout is settled.
    h.reply(1, 0);
    assert_eq!(h.int("getReserves", json!({}), Some("ethInFlight")), 0);
    assert_eq!(h.world.balance(&trader), 90 * ICX);
    h.check_icx();
}

#[test]
fn a_payout_ethereum_refuses_undoes_the_trade() {
    let mut h = Hub::new();
    let trader = Address::eoa([0x43; 20]);
    h.world.fund(&trader, 100 * ICX);
    let before = h.reserves();
    h.call(
        trader,
        10 * ICX,
        "convert",
        json!({"_to": TRADER_ETH, "_minReturn": "0x0"}),
    )
    .unwrap();
    let events = h.reply(1, 4);
    assert!(events.iter().any(|e| e.indexed[0] == PAYOUT_ENDED_SIG));
    assert_eq!(h.world.balance(&trader), 100 * ICX, "refunded in full");
    assert_eq!(h.reserves(), before);
    // A second answer to the same payout changes nothing.
    h.reply(1, 4);
    assert_eq!(h.world.balance(&trader), 100 * ICX);
    h.check_icx();
}

#[test]
fn icx_below_min_return_fails_and_keeps_nothing() {
    let mut h = Hub::new();
    let trader = Address::eoa([0x43; 20]);
    h.world.fund(&trader, 100 * ICX);
    let q = quote(&mut h, "ICX", 10 * ICX);
    let before = h.reserves();
    let e = h
        .call(
            trader,
            10 * ICX,
            "convert",
            json!({"_to": TRADER_ETH, "_minReturn": format_int(q + 1)}),
        )
        .unwrap_err();
    assert!(e.message.contains("below the minimum"), "{e}");
    assert_eq!(h.world.balance(&trader), 100 * ICX);
    assert_eq!(h.reserves(), before);
}

#[test]
fn liquidity_goes_in_and_out_in_proportion() {
    let mut h = Hub::new();
    let lp = Address::eoa([0x44; 20]);
    h.world.fund(&lp, 1_000 * ICX);
    h.deliver(Inbound::Deposit {
        from: TRADER_ETH.into(),
        to: lp.to_string(),
        amount: 2 * WEI,
    })
    .unwrap();
    assert_eq!(
        h.int("depositOf", json!({"_owner": lp.to_string()}), None),
        2 * WEI
    );
    // 300 ICX offered with 2 ETH: the pool is 100 ICX per ETH, so 200 ICX are taken.
    let (r, _) = h
        .call(
            lp,
            300 * ICX,
            "addLiquidity",
            json!({"_eth": format_int(2 * WEI)}),
        )
        .unwrap();
    assert_eq!(r["icx"], format_int(200 * ICX));
    assert_eq!(h.world.balance(&lp), 800 * ICX, "the extra ICX comes back");
    let tokens = h.int("balanceOf", json!({"_owner": lp.to_string()}), None);
    assert_eq!(tokens, 200 * ICX);
    assert_eq!(h.int("totalSupply", json!({}), None), 1_200 * ICX);
    let (r, events) = h
        .call(
            lp,
            0,
            "removeLiquidity",
            json!({"_amount": format_int(tokens), "_ethTo": TRADER_ETH}),
        )
        .unwrap();
    assert_eq!(r["icx"], format_int(200 * ICX));
    assert_eq!(h.world.balance(&lp), 1_000 * ICX);
    assert_eq!(sent(&events)[0].msg, wire::pay(TRADER_ETH, 2 * WEI));
    // Ethereum cannot pay: the Ether becomes the provider's credit again.
    h.reply(1, 4);
    assert_eq!(
        h.int("depositOf", json!({"_owner": lp.to_string()}), None),
        2 * WEI
    );
    let (r, events) = h
        .call(
            lp,
            0,
            "withdrawDeposit",
            json!({"_amount": format_int(2 * WEI), "_to": TRADER_ETH}),
        )
        .unwrap();
    assert_eq!(r["sn"], "0x2");
    assert_eq!(sent(&events)[0].msg, wire::pay(TRADER_ETH, 2 * WEI));
    assert_eq!(
        h.int("depositOf", json!({"_owner": lp.to_string()}), None),
        0
    );
    h.check_icx();
}

#[test]
fn zero_negative_and_oversized_amounts_are_refused() {
    let mut h = Hub::new();
    let trader = Address::eoa([0x43; 20]);
    h.world.fund(&trader, 100 * ICX);
    for amount in [
        "0x0",
        "-0x1",
        "0x1000000000000000000000000000000000",
        "12",
        "0x",
    ] {
        let dex = h.dex.clone();
        let r = h.world.call(
            &*dex,
            dex_address(),
            trader,
            0,
            "getReturn",
            json!({"_from": "ICX", "_amount": amount}),
        );
        assert!(r.is_err(), "{amount}");
    }
    let e = h
        .call(
            trader,
            0,
            "convert",
            json!({"_to": TRADER_ETH, "_minReturn": "0x0"}),
        )
        .unwrap_err();
    assert!(e.message.contains("expected more than 0"), "{e}");
    // The largest amount the formula can take errs instead of overflowing.
    let dex = h.dex.clone();
    let e = h
        .world
        .call(
            &*dex,
            dex_address(),
            trader,
            0,
            "getReturn",
            json!({"_from": "ETH", "_amount": format_int(u128::MAX)}),
        )
        .map(|(v, _)| v);
    if let Ok(v) = e {
        // Or a return below the whole reserve.
        let got = parse_u128("amount", v["amount"].as_str().unwrap()).unwrap();
        assert!(got < 1_000 * ICX);
    }
    assert_eq!(h.world.balance(&trader), 100 * ICX);
}

#[test]
fn unknown_tokens_and_other_networks_are_refused() {
    let mut h = Hub::new();
    let dex = h.dex.clone();
    let e = h
        .world
        .call(
            &*dex,
            dex_address(),
            h.owner,
            0,
            "getReturn",
            json!({"_from": "BTC", "_amount": "0x1"}),
        )
        .unwrap_err();
    assert!(e.message.contains("unknown token \"BTC\""), "{e}");
    // Ether claimed by another network is not Ether of the reserve.
    let bmc = BMC_ADDRESS;
    let e = h
        .call(
            bmc,
            0,
            "handleBTPMessage",
            json!({"_from": "0x101.loop", "_svc": "dex", "_sn": "0x1",
                   "_msg": format_bytes(&Inbound::Swap { from: TRADER_ETH.into(),
                        to: h.owner.to_string(), amount: WEI, min_return: 0 }.encode())}),
        )
        .unwrap_err();
    assert!(e.message.contains("unknown token"), "{e}");
}

#[test]
fn only_the_bmc_delivers_messages_and_replies() {
    let mut h = Hub::new();
    let thief = Address::eoa([0x66; 20]);
    let msg = Inbound::Swap {
        from: TRADER_ETH.into(),
        to: thief.to_string(),
        amount: WEI,
        min_return: 0,
    };
    let e = h
        .call(
            thief,
            0,
            "handleBTPMessage",
            json!({"_from": ETH, "_svc": "dex", "_sn": "0x1", "_msg": format_bytes(&msg.encode())}),
        )
        .unwrap_err();
    assert!(e.message.contains("only the BMC"), "{e}");
    let e = h
        .call(
            thief,
            0,
            "handleBTPError",
            json!({"_src": ETH, "_svc": "dex", "_sn": "0x1", "_code": "0x4", "_msg": ""}),
        )
        .unwrap_err();
    assert!(e.message.contains("only the BMC"), "{e}");
    assert_eq!(h.world.balance(&thief), 0);
}

#[test]
fn a_swap_against_an_empty_reserve_is_refused_and_refunded() {
    let mut h = Hub::empty();
    let hx = Address::eoa([0x42; 20]);
    let events = h
        .deliver(Inbound::Swap {
            from: TRADER_ETH.into(),
            to: hx.to_string(),
            amount: WEI,
            min_return: 0,
        })
        .unwrap();
    let reply = ErrorMessage::decode(&sent(&events)[0].msg).unwrap();
    assert!(reply.message.contains("empty"), "{reply:?}");
    let trader = Address::eoa([0x43; 20]);
    h.world.fund(&trader, ICX);
    let e = h
        .call(
            trader,
            ICX,
            "convert",
            json!({"_to": TRADER_ETH, "_minReturn": "0x0"}),
        )
        .unwrap_err();
    assert!(e.message.contains("empty"), "{e}");
    assert_eq!(h.world.balance(&trader), ICX);
}

#[test]
fn the_fee_is_the_owners_and_bounded() {
    let mut h = Hub::new();
    let e = h
        .call(
            h.owner,
            0,
            "setFee",
            json!({"_fee": format_int(u128::from(MAX_FEE_PPM) + 1)}),
        )
        .unwrap_err();
    assert!(e.message.contains("above the maximum"), "{e}");
    let e = h
        .call(Address::eoa([9; 20]), 0, "setFee", json!({"_fee": "0x0"}))
        .unwrap_err();
    assert!(e.message.contains("only the owner"), "{e}");
    assert_eq!(h.int("getFee", json!({}), Some("fee")), 3_000);
    let q_fee = quote(&mut h, "ICX", ICX);
    h.call(h.owner, 0, "setFee", json!({"_fee": "0x0"}))
        .unwrap();
    assert!(quote(&mut h, "ICX", ICX) > q_fee);
}

#[test]
fn trades_are_listed_newest_first_and_bounded() {
    let mut h = Hub::new();
    let trader = Address::eoa([0x43; 20]);
    h.world.fund(&trader, 1_000 * ICX);
    for i in 1..=40u128 {
        h.call(
            trader,
            i * ICX / 10,
            "convert",
            json!({"_to": TRADER_ETH, "_minReturn": "0x0"}),
        )
        .unwrap();
    }
    let trades = h.query("getTrades", json!({}));
    let trades = trades.as_array().unwrap();
    assert_eq!(trades.len(), store::KEEP_TRADES as usize);
    assert_eq!(trades[0]["amount"], format_int(4 * ICX));
    assert_eq!(trades[0]["fromToken"], "ICX");
    h.check_icx();
}

#[test]
fn the_price_moves_with_trades() {
    let mut h = Hub::new();
    let p0 = h.int("getPrice", json!({}), Some("icxInWei"));
    assert_eq!(p0, WEI / 100, "1,000 ICX against 10 ETH at equal weights");
    let hx = Address::eoa([0x42; 20]);
    h.deliver(Inbound::Swap {
        from: TRADER_ETH.into(),
        to: hx.to_string(),
        amount: WEI,
        min_return: 0,
    })
    .unwrap();
    assert!(
        h.int("getPrice", json!({}), Some("icxInWei")) > p0,
        "buying ICX raises its price"
    );
}

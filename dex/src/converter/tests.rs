//! One test per rule of the converter's book, and its invariants over generated operations.

use super::*;

const E18: u128 = 1_000_000_000_000_000_000;

fn pool() -> Converter {
    let mut c = Converter::new(500_000, 500_000, 3_000).unwrap();
    // 1,000,000 ICX against 100 ETH: 1 ICX = 0.0001 ETH.
    c.add_liquidity(1_000_000 * E18, 100 * E18).unwrap();
    c
}

#[test]
fn bad_weights_and_fees_are_refused() {
    assert!(matches!(
        Converter::new(0, 1, 0),
        Err(DexError::Weight { .. })
    ));
    assert!(matches!(
        Converter::new(1, MAX_WEIGHT + 1, 0),
        Err(DexError::Weight { .. })
    ));
    assert!(matches!(
        Converter::new(1, 1, MAX_FEE_PPM + 1),
        Err(DexError::Fee { .. })
    ));
}

#[test]
fn the_price_follows_reserves_and_weights() {
    let c = pool();
    assert_eq!(c.price_icx_in_eth().unwrap(), E18 / 10_000);
    assert!(
        Converter::new(1, 1, 0).unwrap().price_icx_in_eth().is_err(),
        "empty reserves"
    );
}

#[test]
fn a_quote_is_what_convert_pays_and_buying_icx_raises_its_price() {
    let mut c = pool();
    let q = c.quote(Reserve::Eth, E18).unwrap();
    // Constant product at equal weights: 1e6 ICX * 1 / 101, less 0.3% twice.
    let gross = 1_000_000 * E18 / 101;
    assert_eq!(q.amount + q.fee, gross);
    assert_eq!(q.amount, apply_fee(gross, 3_000, 2).unwrap());
    let before = c.price_icx_in_eth().unwrap();
    assert_eq!(c.convert(Reserve::Eth, E18, q.amount).unwrap(), q);
    assert_eq!((c.eth, c.icx), (101 * E18, 1_000_000 * E18 - q.amount));
    assert!(c.price_icx_in_eth().unwrap() > before);
}

#[test]
fn a_return_below_the_minimum_is_refused_and_changes_nothing() {
    let mut c = pool();
    let q = c.quote(Reserve::Icx, 1_000 * E18).unwrap();
    let before = c.clone();
    assert_eq!(
        c.convert(Reserve::Icx, 1_000 * E18, q.amount + 1),
        Err(DexError::BelowMinReturn {
            got: q.amount,
            min: q.amount + 1
        })
    );
    assert_eq!(c, before);
}

#[test]
fn zero_amounts_and_empty_reserves_are_refused() {
    let mut c = pool();
    assert_eq!(c.quote(Reserve::Icx, 0), Err(DexError::Zero("amount")));
    let mut empty = Converter::new(500_000, 500_000, 0).unwrap();
    assert!(matches!(
        empty.convert(Reserve::Icx, E18, 0),
        Err(DexError::Empty(_))
    ));
    assert!(matches!(c.add_liquidity(0, 1), Err(DexError::Zero(_))));
    assert!(matches!(c.remove_liquidity(0), Err(DexError::Zero(_))));
    assert!(matches!(
        c.remove_liquidity(c.supply + 1),
        Err(DexError::MoreThanSupply { .. })
    ));
}

#[test]
fn amounts_that_would_overflow_are_refused() {
    let mut c = pool();
    let before = c.clone();
    assert!(c.convert(Reserve::Icx, u128::MAX, 0).is_err());
    assert!(c.add_liquidity(u128::MAX, u128::MAX).is_err());
    assert_eq!(c, before);
}

#[test]
fn liquidity_goes_in_and_out_in_proportion_and_never_pays_more() {
    let mut c = pool();
    let (minted, icx_in, eth_in) = c.add_liquidity(10_000 * E18, 5 * E18).unwrap();
    // 10,000 ICX is 1% of the ICX reserve; 5 ETH would be 5%: 1% is taken of each.
    assert_eq!(minted, 10_000 * E18);
    assert_eq!((icx_in, eth_in), (10_000 * E18, E18));
    let (icx_out, eth_out) = c.remove_liquidity(minted).unwrap();
    assert!(icx_out <= icx_in && eth_out <= eth_in);
    assert!(icx_in - icx_out <= 1 && eth_in - eth_out <= 1);
}

#[test]
fn every_operation_keeps_the_book_consistent_and_it_empties_exactly() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut c = Converter::new(300_000, 700_000, 2_500).unwrap();
    c.add_liquidity(500_000 * E18, 300 * E18).unwrap();
    let (mut icx_in, mut eth_in, mut icx_out, mut eth_out) = (c.icx, c.eth, 0u128, 0u128);
    let mut tokens = c.supply;
    for _ in 0..3_000 {
        let amount = u128::from(next() % 1_000) * E18 / 100 + 1;
        match next() % 4 {
            0 => {
                if let Ok(q) = c.convert(Reserve::Icx, amount, 0) {
                    icx_in += amount;
                    eth_out += q.amount;
                }
            }
            1 => {
                if let Ok(q) = c.convert(Reserve::Eth, amount / 1_000, 0) {
                    eth_in += amount / 1_000;
                    icx_out += q.amount;
                }
            }
            2 => {
                if let Ok((m, i, e)) = c.add_liquidity(amount, amount) {
                    icx_in += i;
                    eth_in += e;
                    tokens += m;
                }
            }
            _ => {
                let t = (tokens / 1_000).min(c.supply);
                if let Ok((i, e)) = c.remove_liquidity(t) {
                    icx_out += i;
                    eth_out += e;
                    tokens -= t;
                }
            }
        }
        // The book holds exactly what went in less what came out.
        assert_eq!(c.icx, icx_in - icx_out);
        assert_eq!(c.eth, eth_in - eth_out);
        assert_eq!(c.supply, tokens);
    }
    // Everyone withdraws: the book empties exactly, nothing is left owed or created.
    let (i, e) = c.remove_liquidity(c.supply).unwrap();
    assert_eq!((c.icx, c.eth, c.supply), (0, 0, 0));
    assert_eq!((icx_out + i, eth_out + e), (icx_in, eth_in));
}

//! One test per rule of each formula, properties over generated inputs, and the reference
//! vectors of `dex/tests/vectors.json` (the fixed-point algorithm written again in Python's
//! integers, and the exact value).

use super::*;

const E18: u128 = 1_000_000_000_000_000_000;

#[test]
fn a_zero_amount_returns_zero() {
    assert_eq!(purchase_return(1000, 1000, 500_000, 0), Ok(0));
    assert_eq!(sale_return(1000, 1000, 500_000, 0), Ok(0));
    assert_eq!(cross_reserve_return(1000, 500_000, 1000, 250_000, 0), Ok(0));
}

#[test]
fn empty_reserves_and_supplies_are_refused() {
    assert!(matches!(
        purchase_return(0, 1, 1, 1),
        Err(DexError::Empty(_))
    ));
    assert!(matches!(
        purchase_return(1, 0, 1, 1),
        Err(DexError::Empty(_))
    ));
    assert!(matches!(sale_return(0, 1, 1, 0), Err(DexError::Empty(_))));
    assert!(matches!(sale_return(1, 0, 1, 0), Err(DexError::Empty(_))));
    assert!(matches!(
        cross_reserve_return(0, 1, 1, 1, 1),
        Err(DexError::Empty(_))
    ));
    assert!(matches!(
        cross_reserve_return(1, 1, 0, 1, 1),
        Err(DexError::Empty(_))
    ));
}

#[test]
fn weights_outside_one_to_a_million_ppm_are_refused() {
    for w in [0, MAX_WEIGHT + 1, u32::MAX] {
        assert!(matches!(
            purchase_return(1, 1, w, 1),
            Err(DexError::Weight { .. })
        ));
        assert!(matches!(
            sale_return(1, 1, w, 1),
            Err(DexError::Weight { .. })
        ));
        assert!(matches!(
            cross_reserve_return(1, w, 1, 1, 1),
            Err(DexError::Weight { .. })
        ));
        assert!(matches!(
            cross_reserve_return(1, 1, 1, w, 1),
            Err(DexError::Weight { .. })
        ));
    }
}

#[test]
fn at_full_weight_purchase_and_sale_are_proportional() {
    assert_eq!(purchase_return(1000, 2000, MAX_WEIGHT, 500), Ok(250));
    assert_eq!(sale_return(1000, 2000, MAX_WEIGHT, 250), Ok(500));
}

#[test]
fn selling_more_than_the_supply_is_refused_and_all_of_it_returns_the_reserve() {
    assert_eq!(
        sale_return(100, 7, 300_000, 101),
        Err(DexError::MoreThanSupply {
            amount: 101,
            supply: 100
        })
    );
    assert_eq!(sale_return(100, 7, 300_000, 100), Ok(7));
}

#[test]
fn equal_weights_convert_as_constant_product() {
    // target * amount / (source + amount)
    assert_eq!(
        cross_reserve_return(1000, 400_000, 5000, 400_000, 250),
        Ok(1000)
    );
}

#[test]
fn a_half_weight_purchase_matches_the_square_root() {
    // supply * (sqrt(1 + 3) - 1) = supply exactly, minus the rounding down.
    let r = purchase_return(E18, E18, 500_000, 3 * E18).unwrap();
    assert!(r <= E18 && E18 - r < 1_000, "{r}");
}

#[test]
fn fees_are_taken_per_step_and_bounded() {
    assert_eq!(apply_fee(1_000_000, 0, 1), Ok(1_000_000));
    assert_eq!(apply_fee(1_000_000, 3_000, 1), Ok(997_000));
    assert_eq!(apply_fee(1_000_000, 3_000, 2), Ok(994_009));
    assert_eq!(
        apply_fee(u128::MAX, MAX_FEE_PPM, 2).map(|v| v < u128::MAX),
        Ok(true)
    );
    assert_eq!(
        apply_fee(1, MAX_FEE_PPM + 1, 1),
        Err(DexError::Fee {
            got: MAX_FEE_PPM + 1,
            max: MAX_FEE_PPM
        })
    );
    assert!(apply_fee(1, 0, 5).is_err());
}

#[test]
fn extreme_inputs_are_answered_or_refused_never_a_panic() {
    let xs = [
        1u128,
        2,
        1_000,
        E18,
        u128::MAX / 2,
        u128::MAX - 1,
        u128::MAX,
    ];
    let ws = [1u32, 2, 500_000, 999_999, MAX_WEIGHT];
    for &a in &xs {
        for &b in &xs {
            for &c in &xs {
                for &w in &ws {
                    let _ = purchase_return(a, b, w, c);
                    let _ = sale_return(a, b, w, c.min(a));
                    for &w2 in &ws {
                        let _ = cross_reserve_return(a, w, b, w2, c);
                    }
                }
            }
        }
    }
}

/// Deterministic pseudo-random numbers for the properties.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn amount(&mut self) -> u128 {
        let digits = 1 + self.next() % 30;
        (u128::from(self.next()) << 64 | u128::from(self.next())) % 10u128.pow(digits as u32) + 1
    }
    fn weight(&mut self) -> u32 {
        1 + (self.next() % u64::from(MAX_WEIGHT)) as u32
    }
}

#[test]
fn returns_grow_with_the_amount() {
    let mut r = Rng(7);
    for _ in 0..2_000 {
        let (s, b, w, a) = (r.amount(), r.amount(), r.weight(), r.amount());
        let more = a + r.amount();
        if let (Ok(x), Ok(y)) = (purchase_return(s, b, w, a), purchase_return(s, b, w, more)) {
            assert!(x <= y, "purchase {s} {b} {w}: {a} -> {x}, {more} -> {y}");
        }
        let (sa, sm) = (a.min(s), more.min(s));
        if let (Ok(x), Ok(y)) = (sale_return(s, b, w, sa), sale_return(s, b, w, sm)) {
            assert!(x <= y, "sale {s} {b} {w}: {sa} -> {x}, {sm} -> {y}");
        }
        let w2 = r.weight();
        if let (Ok(x), Ok(y)) = (
            cross_reserve_return(s, w, b, w2, a),
            cross_reserve_return(s, w, b, w2, more),
        ) {
            assert!(x <= y, "cross {s} {w} {b} {w2}: {a} -> {x}, {more} -> {y}");
        }
    }
}

#[test]
fn a_round_trip_never_returns_more_than_was_put_in() {
    let mut r = Rng(11);
    for _ in 0..2_000 {
        let (s, b, w, a) = (r.amount(), r.amount(), r.weight(), r.amount());
        // Buy pool tokens with `a`, sell them back against the grown reserve and supply.
        if let Ok(tokens) = purchase_return(s, b, w, a) {
            if let Ok(back) = sale_return(s + tokens, b + a, w, tokens) {
                assert!(back <= a, "purchase/sale {s} {b} {w}: put {a}, got {back}");
            }
        }
        // Convert `a` from one reserve to the other and straight back.
        let (t, w2) = (r.amount(), r.weight());
        if let Ok(out) = cross_reserve_return(b, w, t, w2, a) {
            if let Ok(back) = cross_reserve_return(t - out, w2, b + a, w, out) {
                assert!(back <= a, "cross {b} {w} {t} {w2}: put {a}, got {back}");
            }
        }
    }
}

#[test]
fn returns_equal_the_fixed_point_reference_and_never_exceed_the_exact_value() {
    let text = include_str!("../../tests/vectors.json");
    let vectors: Vec<serde_json::Value> = serde_json::from_str(text).expect("vectors");
    assert!(vectors.len() >= 10_000);
    let n = |v: &serde_json::Value, k: &str| -> u128 { v[k].as_str().expect(k).parse().expect(k) };
    let w = |v: &serde_json::Value, k: &str| -> u32 { v[k].as_u64().expect(k) as u32 };
    let (mut equal, mut worst) = (0usize, 0u128);
    for v in &vectors {
        let got = match v["kind"].as_str() {
            Some("purchase") => purchase_return(
                n(v, "supply"),
                n(v, "reserve"),
                w(v, "weight"),
                n(v, "amount"),
            ),
            Some("sale") => sale_return(
                n(v, "supply"),
                n(v, "reserve"),
                w(v, "weight"),
                n(v, "amount"),
            ),
            _ => cross_reserve_return(
                n(v, "source"),
                w(v, "source_weight"),
                n(v, "target"),
                w(v, "target_weight"),
                n(v, "amount"),
            ),
        }
        .unwrap_or_else(|e| panic!("{v}: {e}"));
        // Equal to the fixed-point algorithm written again in Python's integers.
        assert_eq!(
            got,
            n(v, "fixed"),
            "{v}: not the reference's fixed-point result"
        );
        let exact = n(v, "exact");
        assert!(got <= exact, "{v}: {got} above the exact {exact}");
        let gap = exact - got;
        // The logarithm carries 127 fractional bits: a relative error near 2^-120 at most.
        assert!(
            gap <= 1 + (exact >> 118),
            "{v}: {got} is {gap} below the exact {exact}"
        );
        worst = worst.max(gap);
        if gap == 0 {
            equal += 1;
        }
    }
    eprintln!(
        "{equal} of {} equal to the exact floor; largest gap {worst}",
        vectors.len()
    );
    assert!(
        equal * 100 >= vectors.len() * 99,
        "only {equal} equal to the exact floor"
    );
}

//! The fixed-point power of Bancor's formula: `(baseN / baseD) ^ (expN / expD)` for a base of
//! at least 1, as `e^(ln(base) * exp)`:
//! - `ln` as in Bancor's `generalLog`: the integer part of `log2` and 127 squarings for the
//!   fraction (127 fractional bits), times `ln 2` rounded down;
//! - `exp` of the argument halved `k` times until it is below 1, by its Maclaurin series, then
//!   squared `k` times, with 160 fractional bits. Bancor's `generalExp` runs the series on the
//!   whole argument at a precision chosen to avoid overflow, which truncates the series badly
//!   near its limit (returns several percent low for arguments near 28); halving keeps every
//!   result within a unit or two of the exact value, up to `e^60`.
//!
//! Every step truncates, so the result never exceeds the true power, and every return computed
//! from it is rounded in the reserve's favour. The result has 127 fractional bits.

use crate::DexError;
use alloy_primitives::{U256, U512};

/// Most fractional bits.
pub const MAX_PRECISION: u8 = 127;

fn one() -> U256 {
    U256::from(1u8)
}

fn fixed_1() -> U256 {
    one() << MAX_PRECISION as usize
}

/// `floor(ln(2) * 2^127)`: below `ln 2`, so logarithms round down.
fn ln2() -> U256 {
    U256::from(0x58b90bfbe8e7bcd5e4f1d9cc01f97b57u128)
}

/// Fractional bits of the exponential.
const EXP_BITS: usize = 160;
/// The largest exponent accepted, `e^MAX_EXP_ARG` (about 1.1e26).
pub const MAX_EXP_ARG: u64 = 60;

/// `e^(x / 2^127) * 2^127`, truncated, for `x <= MAX_EXP_ARG * 2^127`.
fn exp(x: U256) -> U256 {
    let k = x.bit_len().saturating_sub(MAX_PRECISION as usize);
    let z = (U512::from(x) << (EXP_BITS - MAX_PRECISION as usize)) >> k;
    let unit = U512::from(1u8) << EXP_BITS;
    let mut term = unit;
    let mut sum = unit;
    let mut n = 1u32;
    while !term.is_zero() {
        term = ((term * z) >> EXP_BITS) / U512::from(n);
        sum += term;
        n += 1;
    }
    for _ in 0..k {
        sum = (sum * sum) >> EXP_BITS;
    }
    U256::from(sum >> (EXP_BITS - MAX_PRECISION as usize))
}

/// `ln(x / 2^127) * 2^127`, truncated, for `x >= 2^127`.
fn general_log(mut x: U256) -> U256 {
    let f1 = fixed_1();
    let f2 = f1 << 1;
    let mut res = U256::ZERO;
    if x >= f2 {
        let count = (x / f1).bit_len() - 1;
        x >>= count;
        res = U256::from(count) * f1;
    }
    if x > f1 {
        for i in (1..=MAX_PRECISION as usize).rev() {
            x = (x * x) / f1;
            if x >= f2 {
                x >>= 1;
                res += one() << (i - 1);
            }
        }
    }
    // res < 2^136 and ln 2 < 2^127: the product needs more than 256 bits.
    let wide = (U512::from(res) * U512::from(ln2())) >> MAX_PRECISION as usize;
    U256::from(wide)
}

/// `(base_n / base_d) ^ (exp_n / exp_d)` as `(result, precision)`: the power is
/// `result / 2^precision` (precision 127), never above the true value. The base must be at
/// least 1, `base_n` below 2^129, and the power at most `e^60`.
pub fn power(base_n: U256, base_d: U256, exp_n: u32, exp_d: u32) -> Result<(U256, u8), DexError> {
    if base_n >= one() << 129 {
        return Err(DexError::Overflow("power base"));
    }
    if base_d.is_zero() || exp_d == 0 || base_n < base_d {
        return Err(DexError::Empty("power base or exponent"));
    }
    let base = base_n * fixed_1() / base_d;
    let log = general_log(base);
    let arg = log
        .checked_mul(U256::from(exp_n))
        .ok_or(DexError::Overflow("power"))?
        / U256::from(exp_d);
    if arg > U256::from(MAX_EXP_ARG) << MAX_PRECISION as usize {
        return Err(DexError::Overflow("power"));
    }
    Ok((exp(arg), MAX_PRECISION))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(r: (U256, u8)) -> f64 {
        let (v, p) = r;
        let top = v >> (p as usize).saturating_sub(60);
        f64::from(top) / 2f64.powi(60.min(p as i32))
    }

    #[test]
    fn exp_is_exact_at_zero_and_close_to_e() {
        assert_eq!(exp(U256::ZERO), fixed_1());
        let e = exp(fixed_1());
        // e * 2^127 = 462491687963515367653735...; compare the top 60 bits.
        let got = f64::from(e >> 67) / 2f64.powi(60);
        assert!((got - std::f64::consts::E).abs() < 1e-15 && got <= std::f64::consts::E);
    }

    #[test]
    fn powers_are_close_to_the_true_value_and_never_above() {
        for (bn, bd, en, ed) in [
            (3u64, 2u64, 1u32, 2u32),
            (2, 1, 1, 1),
            (10, 1, 3, 7),
            (1001, 1000, 999, 1),
            (5, 4, 1_000_000, 100_000),
            (89_611, 1, 544_159, 976_819),
        ] {
            let r = power(U256::from(bn), U256::from(bd), en, ed).unwrap();
            let exact = (bn as f64 / bd as f64).powf(en as f64 / ed as f64);
            let got = approx(r);
            assert!(
                got <= exact * (1.0 + 1e-12),
                "{bn}/{bd}^{en}/{ed}: {got} > {exact}"
            );
            assert!(
                (exact - got) / exact < 1e-12,
                "{bn}/{bd}^{en}/{ed}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn base_one_is_one() {
        let (r, p) = power(U256::from(7u8), U256::from(7u8), 3, 5).unwrap();
        assert_eq!(r, one() << p as usize);
    }

    #[test]
    fn a_base_below_one_or_too_large_is_refused() {
        assert!(power(U256::from(1u8), U256::from(2u8), 1, 1).is_err());
        assert!(power(one() << 129, U256::from(1u8), 1, 1).is_err());
        assert!(power(U256::from(2u8), U256::ZERO, 1, 1).is_err());
        assert!(power(U256::from(2u8), U256::from(1u8), 1, 0).is_err());
        // e^(ln(2^128) * 10^6) has no precision left: refused, not wrapped.
        assert!(power((one() << 128) + one(), U256::from(1u8), 1_000_000, 1).is_err());
    }
}

//! Bancor's returns (weights in ppm, `MAX_WEIGHT = 1,000,000`), each rounded down:
//! - purchase (reserve in, pool tokens out): `supply * ((1 + amount / reserve) ^ (w / 1e6) - 1)`;
//! - sale (pool tokens in, reserve out): `reserve * (1 - (1 - amount / supply) ^ (1e6 / w))`;
//! - cross-reserve (one reserve in, the other out):
//!   `target * (1 - (source / (source + amount)) ^ (w_source / w_target))`;
//! - a conversion fee in ppm taken from the return (`apply_fee`), once per conversion step.
//!
//! Amounts are the smallest units (loop, wei) in 128 bits; intermediates are 512 bits wide, so
//! nothing overflows before the result is checked to fit.

use crate::power::power;
use crate::DexError;
use alloy_primitives::{U256, U512};

/// 100% as a weight, in ppm.
pub const MAX_WEIGHT: u32 = 1_000_000;
/// The largest conversion fee a converter accepts, in ppm (10%).
pub const MAX_FEE_PPM: u32 = 100_000;

fn weight(what: &'static str, w: u32) -> Result<(), DexError> {
    if w == 0 || w > MAX_WEIGHT {
        return Err(DexError::Weight { what, got: w });
    }
    Ok(())
}

fn wide(v: u128) -> U512 {
    U512::from(v)
}

fn narrow(what: &'static str, v: U512) -> Result<u128, DexError> {
    u128::try_from(v).map_err(|_| DexError::Overflow(what))
}

fn to512(v: U256) -> U512 {
    U512::from(v)
}

/// Pool tokens returned for depositing `amount` into a reserve of `reserve` with weight `w`,
/// given `supply` pool tokens.
pub fn purchase_return(
    supply: u128,
    reserve: u128,
    w: u32,
    amount: u128,
) -> Result<u128, DexError> {
    if supply == 0 {
        return Err(DexError::Empty("the pool token supply"));
    }
    if reserve == 0 {
        return Err(DexError::Empty("the reserve"));
    }
    weight("reserve weight", w)?;
    if amount == 0 {
        return Ok(0);
    }
    if w == MAX_WEIGHT {
        return narrow("purchase", wide(supply) * wide(amount) / wide(reserve));
    }
    let base_n = U256::from(amount) + U256::from(reserve);
    let (result, precision) = power(base_n, U256::from(reserve), w, MAX_WEIGHT)?;
    let temp = (wide(supply) * to512(result)) >> precision as usize;
    narrow("purchase", temp - wide(supply))
}

/// Reserve returned for selling `amount` of `supply` pool tokens, from a reserve of `reserve`
/// with weight `w`.
pub fn sale_return(supply: u128, reserve: u128, w: u32, amount: u128) -> Result<u128, DexError> {
    if supply == 0 {
        return Err(DexError::Empty("the pool token supply"));
    }
    if reserve == 0 {
        return Err(DexError::Empty("the reserve"));
    }
    weight("reserve weight", w)?;
    if amount > supply {
        return Err(DexError::MoreThanSupply { amount, supply });
    }
    if amount == 0 {
        return Ok(0);
    }
    if amount == supply {
        return Ok(reserve);
    }
    if w == MAX_WEIGHT {
        return narrow("sale", wide(reserve) * wide(amount) / wide(supply));
    }
    let base_d = U256::from(supply - amount);
    let (result, precision) = power(U256::from(supply), base_d, MAX_WEIGHT, w)?;
    let r = to512(result);
    let temp1 = wide(reserve) * r;
    let temp2 = wide(reserve) << precision as usize;
    narrow("sale", (temp1 - temp2) / r)
}

/// Target reserve returned for `amount` of the source reserve (balances and weights of both).
pub fn cross_reserve_return(
    source: u128,
    source_weight: u32,
    target: u128,
    target_weight: u32,
    amount: u128,
) -> Result<u128, DexError> {
    if source == 0 {
        return Err(DexError::Empty("the source reserve"));
    }
    if target == 0 {
        return Err(DexError::Empty("the target reserve"));
    }
    weight("source weight", source_weight)?;
    weight("target weight", target_weight)?;
    if amount == 0 {
        return Ok(0);
    }
    if source_weight == target_weight {
        return narrow(
            "conversion",
            wide(target) * wide(amount) / (wide(source) + wide(amount)),
        );
    }
    let base_n = U256::from(source) + U256::from(amount);
    let (result, precision) = power(base_n, U256::from(source), source_weight, target_weight)?;
    let r = to512(result);
    let temp1 = wide(target) * r;
    let temp2 = wide(target) << precision as usize;
    narrow("conversion", (temp1 - temp2) / r)
}

/// `amount` less a fee of `fee_ppm`, taken `steps` times (a conversion between two reserves
/// through the pool token is two steps, as in Bancor's converter), rounded down.
pub fn apply_fee(amount: u128, fee_ppm: u32, steps: u32) -> Result<u128, DexError> {
    if steps > 4 {
        return Err(DexError::Overflow("fee steps"));
    }
    if fee_ppm > MAX_FEE_PPM {
        return Err(DexError::Fee {
            got: fee_ppm,
            max: MAX_FEE_PPM,
        });
    }
    let keep = U512::from(MAX_WEIGHT - fee_ppm).pow(U512::from(steps));
    let whole = U512::from(MAX_WEIGHT).pow(U512::from(steps));
    narrow("fee", wide(amount) * keep / whole)
}

#[cfg(test)]
mod tests;

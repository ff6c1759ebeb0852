//! The converter's book as pure code: two reserves (ICX on Nexus, ETH mirrored from the
//! Ethereum reserve) with connector weights, a conversion fee, and a pool token for liquidity
//! providers. The SCORE wraps it (storage, events, BTP); every operation here checks all its
//! inputs first and changes nothing when it refuses.
//!
//! - `quote` / `convert`: one reserve in, the other out, by the cross-reserve formula, less the
//!   fee taken twice (in and out of the pool token, as Bancor's converter does between two
//!   reserves); refused below `min_return` or when it would empty the target reserve.
//! - `add_liquidity`: both reserves in proportion to what they hold; pool tokens out in the same
//!   proportion of the supply, rounded down (the first deposit sets the supply to the ICX
//!   amount).
//! - `remove_liquidity`: pool tokens in; both reserves out in proportion, rounded down.

use crate::formula::{apply_fee, cross_reserve_return, MAX_FEE_PPM, MAX_WEIGHT};
use crate::DexError;
use alloy_primitives::U512;

/// Which reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// ICX, held by the SCORE.
    Icx,
    /// ETH, held by the reserve contract on Ethereum.
    Eth,
}

/// The converter's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converter {
    /// ICX reserve (loop).
    pub icx: u128,
    /// ETH reserve (wei).
    pub eth: u128,
    /// ICX connector weight (ppm).
    pub icx_weight: u32,
    /// ETH connector weight (ppm).
    pub eth_weight: u32,
    /// Conversion fee (ppm, at most [`MAX_FEE_PPM`]).
    pub fee_ppm: u32,
    /// Pool tokens in existence.
    pub supply: u128,
}

/// A quote: what comes out and what the fee kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// Paid out.
    pub amount: u128,
    /// Kept by the fee (stays in the target reserve).
    pub fee: u128,
}

fn mul_div(a: u128, b: u128, c: u128) -> Result<u128, DexError> {
    if c == 0 {
        return Err(DexError::Empty("the pool token supply"));
    }
    u128::try_from(U512::from(a) * U512::from(b) / U512::from(c))
        .map_err(|_| DexError::Overflow("liquidity"))
}

impl Converter {
    /// A converter with the given weights and fee, no reserves yet.
    pub fn new(icx_weight: u32, eth_weight: u32, fee_ppm: u32) -> Result<Self, DexError> {
        for (what, w) in [("ICX weight", icx_weight), ("ETH weight", eth_weight)] {
            if w == 0 || w > MAX_WEIGHT {
                return Err(DexError::Weight { what, got: w });
            }
        }
        if fee_ppm > MAX_FEE_PPM {
            return Err(DexError::Fee {
                got: fee_ppm,
                max: MAX_FEE_PPM,
            });
        }
        Ok(Converter {
            icx: 0,
            eth: 0,
            icx_weight,
            eth_weight,
            fee_ppm,
            supply: 0,
        })
    }

    fn sides(&self, from: Reserve) -> (u128, u32, u128, u32) {
        match from {
            Reserve::Icx => (self.icx, self.icx_weight, self.eth, self.eth_weight),
            Reserve::Eth => (self.eth, self.eth_weight, self.icx, self.icx_weight),
        }
    }

    /// What converting `amount` from `from` pays out of the other reserve.
    pub fn quote(&self, from: Reserve, amount: u128) -> Result<Quote, DexError> {
        if amount == 0 {
            return Err(DexError::Zero("amount"));
        }
        let (src, sw, tgt, tw) = self.sides(from);
        let gross = cross_reserve_return(src, sw, tgt, tw, amount)?;
        let net = apply_fee(gross, self.fee_ppm, 2)?;
        Ok(Quote {
            amount: net,
            fee: gross - net,
        })
    }

    /// Converts `amount` from `from`; refused below `min_return`. Returns the payout.
    pub fn convert(
        &mut self,
        from: Reserve,
        amount: u128,
        min_return: u128,
    ) -> Result<Quote, DexError> {
        let q = self.quote(from, amount)?;
        if q.amount < min_return {
            return Err(DexError::BelowMinReturn {
                got: q.amount,
                min: min_return,
            });
        }
        if q.amount == 0 {
            return Err(DexError::Zero("return"));
        }
        let (src, _, tgt, _) = self.sides(from);
        let new_src = src
            .checked_add(amount)
            .ok_or(DexError::Overflow("reserve"))?;
        let new_tgt = tgt - q.amount;
        match from {
            Reserve::Icx => (self.icx, self.eth) = (new_src, new_tgt),
            Reserve::Eth => (self.eth, self.icx) = (new_src, new_tgt),
        }
        Ok(q)
    }

    /// Adds up to `icx` and `eth` as liquidity in the reserves' proportion; returns the pool
    /// tokens minted and the (ICX, ETH) taken, each at most what was offered (the rest goes
    /// back to the provider). The reserves' worth per pool token never falls.
    pub fn add_liquidity(&mut self, icx: u128, eth: u128) -> Result<(u128, u128, u128), DexError> {
        if icx == 0 || eth == 0 {
            return Err(DexError::Zero("liquidity"));
        }
        if self.supply == 0 {
            self.icx = icx;
            self.eth = eth;
            self.supply = icx;
            return Ok((icx, icx, eth));
        }
        let minted = mul_div(icx, self.supply, self.icx)?.min(mul_div(eth, self.supply, self.eth)?);
        if minted == 0 {
            return Err(DexError::Zero("pool tokens for that deposit"));
        }
        // minted <= offered * supply / reserve, so what it is worth, rounded up in the pool's
        // favour, is at most what was offered.
        let take = |reserve: u128| -> Result<u128, DexError> {
            let floor = mul_div(minted, reserve, self.supply)?;
            let exact = U512::from(floor) * U512::from(self.supply)
                == U512::from(minted) * U512::from(reserve);
            Ok(if exact { floor } else { floor + 1 })
        };
        let (icx_in, eth_in) = (take(self.icx)?, take(self.eth)?);
        let new_icx = self
            .icx
            .checked_add(icx_in)
            .ok_or(DexError::Overflow("reserve"))?;
        let new_eth = self
            .eth
            .checked_add(eth_in)
            .ok_or(DexError::Overflow("reserve"))?;
        let new_supply = self
            .supply
            .checked_add(minted)
            .ok_or(DexError::Overflow("supply"))?;
        (self.icx, self.eth, self.supply) = (new_icx, new_eth, new_supply);
        Ok((minted, icx_in, eth_in))
    }

    /// Burns `tokens` pool tokens; returns the (ICX, ETH) paid out.
    pub fn remove_liquidity(&mut self, tokens: u128) -> Result<(u128, u128), DexError> {
        if tokens == 0 {
            return Err(DexError::Zero("pool tokens"));
        }
        if tokens > self.supply {
            return Err(DexError::MoreThanSupply {
                amount: tokens,
                supply: self.supply,
            });
        }
        let icx = mul_div(tokens, self.icx, self.supply)?;
        let eth = mul_div(tokens, self.eth, self.supply)?;
        self.icx -= icx;
        self.eth -= eth;
        self.supply -= tokens;
        Ok((icx, eth))
    }

    /// The price of one ICX in wei, `(eth / w_eth) / (icx / w_icx)`, scaled by 10^18.
    pub fn price_icx_in_eth(&self) -> Result<u128, DexError> {
        if self.icx == 0 || self.eth == 0 {
            return Err(DexError::Empty("a reserve"));
        }
        let num = U512::from(self.eth) * U512::from(self.icx_weight) * U512::from(10u128.pow(18));
        let den = U512::from(self.icx) * U512::from(self.eth_weight);
        u128::try_from(num / den).map_err(|_| DexError::Overflow("price"))
    }
}

#[cfg(test)]
mod tests;

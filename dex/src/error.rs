//! Why a formula refused its input.

/// A refused input (the converter turns it into a typed SCORE error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DexError {
    /// A reserve or the supply is zero.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// A weight is outside 1..=1,000,000 ppm.
    #[error("{what}: expected a weight of 1..=1000000 ppm, got {got}")]
    Weight {
        /// Which weight.
        what: &'static str,
        /// The value.
        got: u32,
    },
    /// A fee above the maximum.
    #[error("fee of {got} ppm above the maximum of {max}")]
    Fee {
        /// The value.
        got: u32,
        /// The maximum.
        max: u32,
    },
    /// More sold than exists.
    #[error("selling {amount} of a supply of {supply}")]
    MoreThanSupply {
        /// The amount.
        amount: u128,
        /// The supply.
        supply: u128,
    },
    /// An amount that must be positive is zero.
    #[error("{0}: expected more than 0")]
    Zero(&'static str),
    /// The return is below what the trader accepts.
    #[error("the return {got} is below the minimum {min}")]
    BelowMinReturn {
        /// What the conversion would pay.
        got: u128,
        /// The trader's minimum.
        min: u128,
    },
    /// The inputs are too large for the fixed-point power (or the result for 128 bits).
    #[error("{0}: the numbers are too large")]
    Overflow(&'static str),
}

//! The DEX as pure code (no IO): Bancor's formulas (what a converter returns for a purchase, a
//! sale or a conversion between two reserves, always rounded in the reserve's favour) and the
//! converter SCORE ([`score::ConverterScore`]) that the node installs on its public channel.

pub mod converter;
mod error;
pub mod formula;
mod power;
pub mod score;

pub use converter::{Converter, Quote, Reserve};
pub use error::DexError;
pub use formula::{
    apply_fee, cross_reserve_return, purchase_return, sale_return, MAX_FEE_PPM, MAX_WEIGHT,
};
pub use power::{power, MAX_EXP_ARG, MAX_PRECISION};

/// The DEX's web page (reserves, price, price curve, recent trades, a swap form that quotes and
/// prints the command to sign), served by the node at `/dex`; `__CONVERTER__` stands for the
/// converter's address.
pub const WEB_PAGE: &str = include_str!("../web/index.html");

/// The page with the converter's address filled in.
pub fn web_page() -> String {
    WEB_PAGE.replace("__CONVERTER__", &score::CONVERTER_ADDRESS.to_string())
}

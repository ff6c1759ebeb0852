//! Consensus wiring: the driver that connects an LFT core to a chain, the multi-validator
//! engine (LFT over libp2p) and the single-validator engine.

pub mod driver;
pub mod eth_check;
pub mod lft_engine;
pub mod solo;

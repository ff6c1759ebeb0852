//! What a client of Nexus needs without the node: the JSON-RPC v3 client ([`rpc`]) and ICON
//! keystores ([`keystore`]). No RocksDB, no libp2p: wallets, benchmarks, tests and portals
//! link it.

#[cfg(feature = "eth")]
pub mod eth_transport;
pub mod keystore;
pub mod rpc;

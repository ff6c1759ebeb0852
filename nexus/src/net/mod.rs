//! Peer-to-peer networking: libp2p gossip per channel and the block-sync protocol.

pub mod block_sync;
pub mod p2p;
pub mod request_pacer;

//! Peer-to-peer transport of a channel's validators: libp2p over TCP with Noise and Yamux,
//! identify, and gossipsub topics per channel and message kind (`nexus/<nid>/<channel>/
//! consensus` and `.../txs`).
//!
//! Channels are permissioned: a connection from a peer that is not in the configured peer list
//! is closed at once, and gossip whose signed origin is not in the list is dropped. An operator
//! can also cut peers off while the node runs: peer ids listed in the deny file (one per line,
//! reread every 300 ms) are disconnected, not dialed and not heard. Every
//! message is size-bounded (gossipsub's `max_transmit_size`); consensus messages are decoded by
//! the bounded codec of `nexus-lft` and carry validator signatures of their own.

use crate::error::NodeError;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, identity, noise, tcp, yamux, Multiaddr, PeerId};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

/// Largest gossip message (a proposal carries a block).
pub const MAX_GOSSIP_BYTES: usize = 16 * 1024 * 1024;

/// What travels on which topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// LFT messages.
    Consensus,
    /// Transactions (JSON params), so that any validator's pool feeds every leader.
    Txs,
}

/// A message from a permitted peer.
#[derive(Debug)]
pub struct Inbound {
    /// Its topic.
    pub topic: Topic,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Sends gossip through the network task.
#[derive(Clone)]
pub struct P2pHandle {
    tx: mpsc::UnboundedSender<(Topic, Vec<u8>)>,
    /// This node's peer id.
    pub peer_id: PeerId,
}

impl P2pHandle {
    /// Publishes on a topic (dropped silently if the network task has stopped).
    pub fn publish(&self, topic: Topic, data: Vec<u8>) {
        let _ = self.tx.send((topic, data));
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
}

/// Reads the node's ed25519 identity (32 secret bytes, hex), creating it if absent.
pub fn load_or_create_identity(path: &Path) -> Result<identity::Keypair, NodeError> {
    let bad = |e: String| NodeError::Config(format!("p2p key {}: {e}", path.display()));
    if path.exists() {
        let text = std::fs::read_to_string(path)?;
        let mut bytes = hex::decode(text.trim()).map_err(|e| bad(e.to_string()))?;
        return identity::Keypair::ed25519_from_bytes(&mut bytes).map_err(|e| bad(e.to_string()));
    }
    let kp = identity::Keypair::generate_ed25519();
    let secret = kp
        .clone()
        .try_into_ed25519()
        .map_err(|e| bad(e.to_string()))?
        .secret();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, hex::encode(secret.as_ref()))?;
    Ok(kp)
}

/// The peer id in a `/ip4/.../tcp/.../p2p/<id>` address.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// Starts the network task: listens on `listen`, keeps dialing `peers` (each with its
/// `/p2p/<id>`), and returns the handle for publishing and the stream of permitted gossip.
pub fn start(
    key: identity::Keypair,
    listen: &str,
    peers: &[String],
    deny_file: Option<std::path::PathBuf>,
    nid: u64,
    channel: &str,
) -> Result<(P2pHandle, mpsc::UnboundedReceiver<Inbound>), NodeError> {
    let cfg_err = |e: String| NodeError::Config(format!("p2p: {e}"));
    let listen: Multiaddr = listen
        .parse()
        .map_err(|e| cfg_err(format!("listen address {listen:?}: {e}")))?;
    let peers: Vec<Multiaddr> = peers
        .iter()
        .map(|p| {
            p.parse::<Multiaddr>()
                .map_err(|e| cfg_err(format!("peer address {p:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let allowed: HashSet<PeerId> = peers
        .iter()
        .map(|a| {
            peer_of(a).ok_or_else(|| cfg_err(format!("peer address {a} lacks /p2p/<peer id>")))
        })
        .collect::<Result<_, _>>()?;
    let local = key.public().to_peer_id();
    let gossip_cfg = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(500))
        .validation_mode(ValidationMode::Strict)
        .max_transmit_size(MAX_GOSSIP_BYTES)
        .build()
        .map_err(|e| cfg_err(e.to_string()))?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| cfg_err(e.to_string()))?
        .with_behaviour(|key| {
            let mut gossipsub =
                gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_cfg)?;
            for p in &allowed {
                gossipsub.add_explicit_peer(p);
            }
            let identify = identify::Behaviour::new(identify::Config::new(
                "/nexus/1.0.0".into(),
                key.public(),
            ));
            Ok(Behaviour {
                gossipsub,
                identify,
            })
        })
        .map_err(|e| cfg_err(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    let consensus = IdentTopic::new(format!("nexus/{nid}/{channel}/consensus"));
    let txs = IdentTopic::new(format!("nexus/{nid}/{channel}/txs"));
    for t in [&consensus, &txs] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(t)
            .map_err(|e| cfg_err(e.to_string()))?;
    }
    swarm
        .listen_on(listen)
        .map_err(|e| cfg_err(e.to_string()))?;

    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<(Topic, Vec<u8>)>();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (consensus_hash, txs_hash) = (consensus.hash(), txs.hash());
    tokio::spawn(async move {
        let mut redial = tokio::time::interval(Duration::from_millis(300));
        let mut denied: HashSet<PeerId> = HashSet::new();
        loop {
            tokio::select! {
                cmd = out_rx.recv() => {
                    let Some((topic, data)) = cmd else { break };
                    let t = match topic { Topic::Consensus => consensus.clone(), Topic::Txs => txs.clone() };
                    if let Err(e) = swarm.behaviour_mut().gossipsub.publish(t, data) {
                        tracing::debug!(%e, "publish");
                    }
                }
                _ = redial.tick() => {
                    if let Some(path) = &deny_file {
                        let now: HashSet<PeerId> = std::fs::read_to_string(path)
                            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
                            .unwrap_or_default();
                        for p in now.difference(&denied) {
                            tracing::warn!(peer = %p, "peer denied by the deny file");
                            let _ = swarm.disconnect_peer_id(*p);
                        }
                        denied = now;
                    }
                    for a in &peers {
                        if let Some(p) = peer_of(a) {
                            if p != local && !denied.contains(&p) && !swarm.is_connected(&p) {
                                let _ = swarm.dial(a.clone());
                            }
                        }
                    }
                }
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if denied.contains(&peer_id) => {
                        let _ = swarm.disconnect_peer_id(peer_id);
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if !allowed.contains(&peer_id) => {
                        tracing::warn!(%peer_id, "closing a connection from a peer outside the channel");
                        let _ = swarm.disconnect_peer_id(peer_id);
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { message, .. })) => {
                        let permitted = message.source.is_some_and(|s| allowed.contains(&s) && !denied.contains(&s));
                        let topic = if message.topic == consensus_hash { Some(Topic::Consensus) } else if message.topic == txs_hash { Some(Topic::Txs) } else { None };
                        if let (true, Some(topic)) = (permitted, topic) {
                            if in_tx.send(Inbound { topic, data: message.data }).is_err() {
                                break;
                            }
                        }
                    }
                    SwarmEvent::NewListenAddr { address, .. } => tracing::info!(%address, peer = %local, "p2p listening"),
                    _ => {}
                },
            }
        }
    });
    Ok((
        P2pHandle {
            tx: out_tx,
            peer_id: local,
        },
        in_rx,
    ))
}

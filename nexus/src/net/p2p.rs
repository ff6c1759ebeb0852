//! Peer-to-peer transport of a channel's validators: libp2p over TCP with Noise and Yamux,
//! identify, and gossipsub topics per channel and message kind (`nexus/<nid>/<channel>/
//! consensus` and `.../txs`).
//!
//! Channels are permissioned: a connection from a peer that is not in the configured peer list
//! is closed at once, and gossip from a peer not in the list is dropped. An operator
//! can also cut peers off while the node runs: peer ids listed in the deny file (one per line,
//! reread every 300 ms) are disconnected, not dialed and not heard. Every
//! message is size-bounded (gossipsub's `max_transmit_size`); consensus messages are decoded by
//! the bounded codec of `nexus-lft` and carry validator signatures of their own.
//!
//! Nobody needs a key to open a TCP connection, and each accepted one is a file descriptor:
//! at most [`MAX_PENDING_INCOMING`] connections are kept in their handshake at once and
//! [`MAX_CONNECTIONS_PER_PEER`] per peer once established; past that a new one is closed at
//! once (libp2p's `connection_limits`).
//!
//! The peers of a channel form a full mesh (each dials every listed peer), so gossip goes
//! straight from its author to each peer and is never forwarded: messages carry no libp2p
//! signature (the Noise connection already names the sender, and consensus messages and
//! transactions carry their own signatures) and their claimed author is ignored; each is
//! reported `Ignore` to gossipsub at once so it is neither forwarded nor advertised, and the
//! connection's peer is the one that answers for it. One copy per message and peer, and no
//! ed25519 signing or checking per message.
//!
//! Block sync does not use gossip: a validator missing a block asks its connected channel
//! peers over the request-response protocol of [`crate::net::block_sync`], and each answers to it
//! alone. Gossip on the consensus topic carries proposals, votes, nil votes and timeouts only.

use crate::error::NodeError;
use crate::net::block_sync::{BlockCodec, BlockRequest};
use crate::net::request_pacer::RequestPacer;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{connection_limits, identify, identity, noise, tcp, yamux, Multiaddr, PeerId};
use nexus_proto::Hash32;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

/// An error with its causes (libp2p's transport errors print nothing of their own).
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        let text = c.to_string();
        if !text.is_empty() {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        next = c.source();
    }
    if out.is_empty() {
        format!("{e:?}")
    } else {
        out
    }
}

/// Largest gossip message (a proposal carries a block).
pub const MAX_GOSSIP_BYTES: usize = 16 * 1024 * 1024;

/// What travels on which topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// LFT messages.
    Consensus,
    /// Transactions (JSON params), so that any validator's pool feeds every leader.
    Txs,
    /// A peer asks for a block (`data` is its 32-byte hash; answer with
    /// [`P2pHandle::respond`] and the inbound `reply`).
    BlockRequest,
    /// A peer answered our block request (`data` is an encoded consensus message).
    BlockResponse,
}

/// A message from a permitted peer.
#[derive(Debug)]
pub struct Inbound {
    /// Its topic.
    pub topic: Topic,
    /// The bytes.
    pub data: Vec<u8>,
    /// The peer that sent it (gossip is never forwarded: its author).
    pub source: Option<PeerId>,
    /// For a block request: the id to answer with.
    pub reply: Option<u64>,
}

enum Command {
    Publish(usize, Topic, Vec<u8>),
    Penalize(PeerId),
    Request(usize, Hash32),
    Respond(u64, Vec<u8>),
    RequestRate(u32),
}

/// Block requests from peers waiting for this node's answer; more are refused at once.
pub const MAX_PENDING_BLOCK_REQUESTS: usize = 256;
/// Connected peers one block request goes to.
pub const BLOCK_REQUEST_FANOUT: usize = 4;
/// Block requests this node sends each peer per second, at most: under half the rate past
/// which a peer counts requests against the asker (the LFT runtime's
/// `BLOCK_REQUESTS_PER_SEC`), so that no second of the peer's own count can pass it.
pub const OUT_BLOCK_REQUESTS_PER_SEC: u32 = 100;

/// Invalid messages a peer may send before it is cut off for [`BAN_TIME`].
pub const MAX_PENALTIES: u32 = 10;
/// How long a peer that sent too many invalid messages stays cut off.
pub const BAN_TIME: Duration = Duration::from_secs(600);

/// Sends gossip through the network task.
#[derive(Clone)]
pub struct P2pHandle {
    tx: mpsc::UnboundedSender<Command>,
    channel: usize,
    /// This node's peer id.
    pub peer_id: PeerId,
}

impl P2pHandle {
    /// Publishes on a topic (dropped silently if the network task has stopped).
    pub fn publish(&self, topic: Topic, data: Vec<u8>) {
        let _ = self.tx.send(Command::Publish(self.channel, topic, data));
    }

    /// Counts an invalid message against `peer`; past [`MAX_PENALTIES`] it is cut off for
    /// [`BAN_TIME`].
    pub fn penalize(&self, peer: PeerId) {
        let _ = self.tx.send(Command::Penalize(peer));
    }

    /// Asks up to [`BLOCK_REQUEST_FANOUT`] connected peers of the channel for a block's
    /// proposal; answers arrive as [`Topic::BlockResponse`].
    pub fn request_block(&self, hash: Hash32) {
        let _ = self.tx.send(Command::Request(self.channel, hash));
    }

    /// Sets how many block requests per second this node sends each peer, at most (by default
    /// [`OUT_BLOCK_REQUESTS_PER_SEC`]; tests of peers' limits raise it).
    pub fn set_block_request_rate(&self, per_sec: u32) {
        let _ = self.tx.send(Command::RequestRate(per_sec));
    }

    /// Answers the block request `reply` (empty: not held here, or refused).
    pub fn respond(&self, reply: u64, data: Vec<u8>) {
        let _ = self.tx.send(Command::Respond(reply, data));
    }
}

/// Connections in their handshake at once (a TCP connection is a file descriptor from the
/// moment it is accepted, and nobody needs a key to open one); past it, a new one is closed
/// at once.
pub const MAX_PENDING_INCOMING: u32 = 64;
/// Connections kept with one peer (a simultaneous dial from both sides makes two).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;

/// Incoming connections kept at once: each listed peer's, and room for the unlisted ones that
/// are closed as soon as their handshake names them.
fn max_established_incoming(listed: usize) -> u32 {
    let listed = u32::try_from(listed).unwrap_or(u32::MAX);
    listed
        .saturating_mul(MAX_CONNECTIONS_PER_PEER)
        .saturating_add(MAX_PENDING_INCOMING)
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    blocks: request_response::Behaviour<BlockCodec>,
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
    crate::keystore::write_private(path, hex::encode(secret.as_ref()).as_bytes())?;
    Ok(kp)
}

/// The peer id in a `/ip4/.../tcp/.../p2p/<id>` address.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// One channel's share of the network: its gossip topics and the peers allowed in it.
#[derive(Debug, Clone)]
pub struct ChannelPeers {
    /// Network id.
    pub nid: u64,
    /// Channel name.
    pub channel: String,
    /// The channel's other validators and readers: `/ip4/<ip>/tcp/<port>/p2p/<peer id>`.
    pub peers: Vec<String>,
}

struct ChannelNet {
    nid: u64,
    consensus: IdentTopic,
    txs: IdentTopic,
    allowed: HashSet<PeerId>,
    inbound: mpsc::UnboundedSender<Inbound>,
}

/// Starts the network task for one channel (see [`start_channels`]).
pub fn start(
    key: identity::Keypair,
    listen: &str,
    peers: &[String],
    deny_file: Option<std::path::PathBuf>,
    nid: u64,
    channel: &str,
) -> Result<(P2pHandle, mpsc::UnboundedReceiver<Inbound>), NodeError> {
    let ch = ChannelPeers {
        nid,
        channel: channel.to_string(),
        peers: peers.to_vec(),
    };
    let mut v = start_channels(key, listen, deny_file, &[ch])?;
    v.pop()
        .ok_or_else(|| NodeError::Config("p2p: no channel".into()))
}

/// Starts one network task for several channels: listens on `listen`, keeps dialing every
/// channel's peers, and returns per channel the handle for publishing and the stream of gossip
/// from that channel's permitted peers. A connection is kept if the peer belongs to any of the
/// channels; gossip on a channel's topics is heard only from that channel's peers.
pub fn start_channels(
    key: identity::Keypair,
    listen: &str,
    deny_file: Option<std::path::PathBuf>,
    channels: &[ChannelPeers],
) -> Result<Vec<(P2pHandle, mpsc::UnboundedReceiver<Inbound>)>, NodeError> {
    let cfg_err = |e: String| NodeError::Config(format!("p2p: {e}"));
    let listen: Multiaddr = listen
        .parse()
        .map_err(|e| cfg_err(format!("listen address {listen:?}: {e}")))?;
    let mut dial: Vec<Multiaddr> = Vec::new();
    let mut nets = Vec::new();
    let mut receivers = Vec::new();
    for ch in channels {
        let mut allowed = HashSet::new();
        for p in &ch.peers {
            let a: Multiaddr = p
                .parse()
                .map_err(|e| cfg_err(format!("peer address {p:?}: {e}")))?;
            let id = peer_of(&a)
                .ok_or_else(|| cfg_err(format!("peer address {a} lacks /p2p/<peer id>")))?;
            allowed.insert(id);
            if !dial.contains(&a) {
                dial.push(a);
            }
        }
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        nets.push(ChannelNet {
            nid: ch.nid,
            consensus: IdentTopic::new(format!("nexus/{}/{}/consensus", ch.nid, ch.channel)),
            txs: IdentTopic::new(format!("nexus/{}/{}/txs", ch.nid, ch.channel)),
            allowed,
            inbound: in_tx,
        });
        receivers.push(in_rx);
    }
    let any_allowed: HashSet<PeerId> = nets
        .iter()
        .flat_map(|n| n.allowed.iter().copied())
        .collect();
    let local = key.public().to_peer_id();
    // Message ids hash the whole message with this process's random keys: a peer cannot make
    // an honest message look like a duplicate, and a resend (a new sequence number) is new.
    let id_keys = std::collections::hash_map::RandomState::new();
    let gossip_cfg = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(500))
        .validation_mode(ValidationMode::Permissive)
        .validate_messages()
        .message_id_fn(move |m: &gossipsub::Message| {
            use std::hash::{BuildHasher, Hash, Hasher};
            let mut h = id_keys.build_hasher();
            m.topic.hash(&mut h);
            m.source.hash(&mut h);
            m.sequence_number.hash(&mut h);
            m.data.hash(&mut h);
            gossipsub::MessageId::from(h.finish().to_be_bytes().to_vec())
        })
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
                gossipsub::Behaviour::new(MessageAuthenticity::Author(local), gossip_cfg)?;
            for p in &any_allowed {
                gossipsub.add_explicit_peer(p);
            }
            let identify = identify::Behaviour::new(identify::Config::new(
                "/nexus/1.0.0".into(),
                key.public(),
            ));
            let blocks = request_response::Behaviour::new(
                [(crate::net::block_sync::PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(10))
                    .with_max_concurrent_streams(64),
            );
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
                .with_max_established_incoming(Some(max_established_incoming(any_allowed.len())))
                .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER));
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                gossipsub,
                identify,
                blocks,
            })
        })
        .map_err(|e| cfg_err(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    for n in &nets {
        for t in [&n.consensus, &n.txs] {
            swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(t)
                .map_err(|e| cfg_err(e.to_string()))?;
        }
    }
    swarm
        .listen_on(listen.clone())
        .map_err(|e| cfg_err(format!("listening on {listen}: {}", causes(&e))))?;

    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Command>();
    tokio::spawn(async move {
        let mut redial = tokio::time::interval(Duration::from_millis(300));
        let mut denied: HashSet<PeerId> = HashSet::new();
        let mut penalties: HashMap<PeerId, u32> = Default::default();
        let mut banned: HashMap<PeerId, tokio::time::Instant> = Default::default();
        let mut replies: HashMap<u64, ResponseChannel<Vec<u8>>> = HashMap::new();
        let mut next_reply = 0u64;
        let mut asked: HashMap<request_response::OutboundRequestId, usize> = HashMap::new();
        let mut pacer: RequestPacer<PeerId, (usize, Hash32)> =
            RequestPacer::new(OUT_BLOCK_REQUESTS_PER_SEC);
        let mut pace = tokio::time::interval(Duration::from_millis(50));
        // Sends a block request to peers with budget left, or keeps it until one has.
        let request = |swarm: &mut libp2p::Swarm<Behaviour>,
                       denied: &HashSet<PeerId>,
                       pacer: &mut RequestPacer<PeerId, (usize, Hash32)>,
                       asked: &mut HashMap<request_response::OutboundRequestId, usize>,
                       ch: usize,
                       hash: Hash32| {
            let Some(n) = nets.get(ch) else { return };
            let req = BlockRequest { nid: n.nid, hash };
            let candidates: Vec<PeerId> = n
                .allowed
                .iter()
                .filter(|p| swarm.is_connected(p) && !denied.contains(p))
                .copied()
                .collect();
            if candidates.is_empty() {
                return;
            }
            let peers = pacer.pick(std::time::Instant::now(), &candidates, BLOCK_REQUEST_FANOUT);
            if peers.is_empty() {
                pacer.wait((ch, hash));
            }
            for p in peers {
                let id = swarm.behaviour_mut().blocks.send_request(&p, req);
                asked.insert(id, ch);
            }
        };
        loop {
            tokio::select! {
                cmd = out_rx.recv() => match cmd {
                    None => break,
                    Some(Command::Publish(ch, topic, data)) => {
                        let Some(n) = nets.get(ch) else { continue };
                        let t = match topic {
                            Topic::Consensus => n.consensus.clone(),
                            Topic::Txs => n.txs.clone(),
                            Topic::BlockRequest | Topic::BlockResponse => continue,
                        };
                        if let Err(e) = swarm.behaviour_mut().gossipsub.publish(t, data) {
                            tracing::debug!(%e, "publish");
                        }
                    }
                    Some(Command::Request(ch, hash)) => {
                        request(&mut swarm, &denied, &mut pacer, &mut asked, ch, hash);
                    }
                    Some(Command::RequestRate(per_sec)) => pacer.set_rate(per_sec),
                    Some(Command::Respond(id, data)) => {
                        if let Some(ch) = replies.remove(&id) {
                            let _ = swarm.behaviour_mut().blocks.send_response(ch, data);
                        }
                    }
                    Some(Command::Penalize(peer)) => {
                        let count = penalties.entry(peer).or_default();
                        *count += 1;
                        if *count >= MAX_PENALTIES {
                            tracing::warn!(%peer, "peer sent too many invalid messages; cut off");
                            penalties.remove(&peer);
                            banned.insert(peer, tokio::time::Instant::now() + BAN_TIME);
                            denied.insert(peer);
                            let _ = swarm.disconnect_peer_id(peer);
                        }
                    }
                },
                _ = pace.tick() => {
                    for (ch, hash) in pacer.take_waiting() {
                        request(&mut swarm, &denied, &mut pacer, &mut asked, ch, hash);
                    }
                }
                _ = redial.tick() => {
                    if let Some(path) = &deny_file {
                        let now: HashSet<PeerId> = std::fs::read_to_string(path)
                            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
                            .unwrap_or_default();
                        for p in now.difference(&denied) {
                            if !banned.contains_key(p) {
                                tracing::warn!(peer = %p, "peer denied by the deny file");
                                let _ = swarm.disconnect_peer_id(*p);
                            }
                        }
                        denied = now;
                    }
                    let t = tokio::time::Instant::now();
                    banned.retain(|_, until| *until > t);
                    denied.extend(banned.keys().copied());
                    for a in &dial {
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
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if !any_allowed.contains(&peer_id) => {
                        tracing::warn!(%peer_id, "closing a connection from a peer outside the channel");
                        let _ = swarm.disconnect_peer_id(peer_id);
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message })) => {
                        // Never forwarded (see the module's notes): the mesh is full.
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            gossipsub::MessageAcceptance::Ignore,
                        );
                        let found = nets.iter().find_map(|n| {
                            if message.topic == n.consensus.hash() {
                                Some((n, Topic::Consensus))
                            } else if message.topic == n.txs.hash() {
                                Some((n, Topic::Txs))
                            } else {
                                None
                            }
                        });
                        if let Some((n, topic)) = found {
                            let from = propagation_source;
                            if n.allowed.contains(&from) && !denied.contains(&from) {
                                let _ = n.inbound.send(Inbound { topic, data: message.data, source: Some(from), reply: None });
                            }
                        }
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Blocks(request_response::Event::Message { peer, message, .. })) => {
                        let permitted = |n: &ChannelNet| n.allowed.contains(&peer) && !denied.contains(&peer);
                        match message {
                            request_response::Message::Request { request, channel, .. } => {
                                let net = nets.iter().find(|n| n.nid == request.nid && permitted(n));
                                match net {
                                    Some(n) if replies.len() < MAX_PENDING_BLOCK_REQUESTS => {
                                        next_reply += 1;
                                        replies.insert(next_reply, channel);
                                        let _ = n.inbound.send(Inbound {
                                            topic: Topic::BlockRequest,
                                            data: request.hash.0.to_vec(),
                                            source: Some(peer),
                                            reply: Some(next_reply),
                                        });
                                    }
                                    // Unknown channel, a peer outside it, or too many waiting:
                                    // dropping the channel refuses the request.
                                    _ => drop(channel),
                                }
                            }
                            request_response::Message::Response { request_id, response } => {
                                let Some(ch) = asked.remove(&request_id) else { continue };
                                if response.is_empty() {
                                    continue;
                                }
                                if let Some(n) = nets.get(ch).filter(|n| permitted(n)) {
                                    let _ = n.inbound.send(Inbound {
                                        topic: Topic::BlockResponse,
                                        data: response,
                                        source: Some(peer),
                                        reply: None,
                                    });
                                }
                            }
                        }
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Blocks(request_response::Event::OutboundFailure { request_id, error, peer, .. })) => {
                        tracing::debug!(%peer, %error, "block request failed");
                        asked.remove(&request_id);
                    }
                    SwarmEvent::NewListenAddr { address, .. } => tracing::info!(%address, peer = %local, "p2p listening"),
                    _ => {}
                },
            }
        }
    });
    Ok(receivers
        .into_iter()
        .enumerate()
        .map(|(i, rx)| {
            (
                P2pHandle {
                    tx: out_tx.clone(),
                    channel: i,
                    peer_id: local,
                },
                rx,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listen_error_says_why() {
        let e: libp2p::TransportError<std::io::Error> = libp2p::TransportError::Other(
            std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use"),
        );
        let text = causes(&e);
        assert!(text.contains("Address already in use"), "{text:?}");
    }

    /// Collects what arrives on `rx` within `ms` milliseconds.
    async fn drain(rx: &mut mpsc::UnboundedReceiver<Inbound>, ms: u64) -> Vec<Inbound> {
        let mut got = Vec::new();
        let until = tokio::time::Instant::now() + Duration::from_millis(ms);
        while let Ok(Some(m)) = tokio::time::timeout_at(until, rx.recv()).await {
            got.push(m);
        }
        got
    }

    /// A line A - B - C (A does not take C as a peer): gossip reaches the sender's own
    /// peers once per publish, names the connection's peer as its sender, and is never
    /// forwarded; the same bytes published again arrive again (consensus resends on timeouts).
    #[tokio::test]
    async fn gossip_goes_to_direct_peers_only_once_per_publish() {
        let keys: Vec<identity::Keypair> = (0..3)
            .map(|_| identity::Keypair::generate_ed25519())
            .collect();
        let ids: Vec<PeerId> = keys.iter().map(|k| k.public().to_peer_id()).collect();
        let ports = crate::commands::bench::free_ports(3).expect("ports");
        let addr = |i: usize| format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", ports[i], ids[i]);
        // C would hear A, but A does not take C's connection: only B could bring A's gossip.
        let peers = [
            vec![addr(1)],
            vec![addr(0), addr(2)],
            vec![addr(1), addr(0)],
        ];
        let mut nodes = Vec::new();
        for (i, k) in keys.into_iter().enumerate() {
            let listen = format!("/ip4/127.0.0.1/tcp/{}", ports[i]);
            nodes.push(start(k, &listen, &peers[i], None, 1, "public").expect("start"));
        }
        // Until the topics are known both ways, publishes may find no peer.
        let start = std::time::Instant::now();
        loop {
            assert!(start.elapsed().as_secs() < 20, "A and B never connected");
            nodes[0].0.publish(Topic::Consensus, b"hello".to_vec());
            nodes[1].0.publish(Topic::Consensus, b"hello".to_vec());
            let a = drain(&mut nodes[0].1, 100).await;
            let b = drain(&mut nodes[1].1, 100).await;
            if !a.is_empty() && !b.is_empty() {
                break;
            }
        }
        loop {
            nodes[2].0.publish(Topic::Consensus, b"hello".to_vec());
            if !drain(&mut nodes[1].1, 100).await.is_empty() {
                break;
            }
            assert!(start.elapsed().as_secs() < 20, "B and C never connected");
        }
        drain(&mut nodes[0].1, 300).await;
        drain(&mut nodes[2].1, 300).await;

        nodes[0].0.publish(Topic::Consensus, b"from A".to_vec());
        nodes[0].0.publish(Topic::Consensus, b"from A".to_vec());
        let at_b = drain(&mut nodes[1].1, 500).await;
        assert_eq!(at_b.len(), 2, "each publish arrives once");
        assert!(at_b
            .iter()
            .all(|m| m.data == b"from A" && m.source == Some(ids[0])));
        assert!(
            drain(&mut nodes[2].1, 500).await.is_empty(),
            "B does not forward A's gossip to C"
        );
        nodes[1].0.publish(Topic::Txs, b"from B".to_vec());
        for i in [0, 2] {
            let got = drain(&mut nodes[i].1, 500).await;
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].source, Some(ids[1]));
            assert!(matches!(got[0].topic, Topic::Txs));
        }
    }
}

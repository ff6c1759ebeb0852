//! Wire encoding of consensus messages: `RLP[kind, body]`, every length and count bounded.
//!
//! | kind | body |
//! |---|---|
//! | 1 | proposal `[block, payload, justify, [tc?], proposer, signature]` |
//! | 2 | vote `[round, height, block, voter, signature]` |
//! | 3 | nil `[round, height, high_qc, voter, signature]` |
//! | 4 | timeout certificate `[round, height, [[voter, height, high_qc_round, signature]...]]` |
//! | 5 | block request `[hash]` |
//! | 6 | block response: a proposal body |
//!
//! A block is `[hash, parent, height, round]`; a QC `[round, height, block, [[voter, signature]...]]`.

use crate::types::{BlockRef, Message, Nil, Proposal, Qc, Tc, Vote};
use alloy_rlp::{Bytes, Decodable, Encodable, RlpDecodable, RlpEncodable};
use nexus_proto::{decode_list_at_most, list_done, open_list, Hash32, ProtoError};

/// Largest encoded message (a proposal carries a whole block: at most
/// `nexus_proto::block::MAX_PAYLOAD_BYTES` and its certificates), below gossip's 16 MiB.
pub const MAX_MESSAGE_BYTES: usize = 15 * 1024 * 1024;
/// Most signatures in one certificate.
pub const MAX_SIGNATURES: usize = 1024;
/// Longest signature.
pub const MAX_SIGNATURE_BYTES: usize = 128;

#[derive(RlpEncodable, RlpDecodable)]
struct WireBlock {
    hash: Hash32,
    parent: Hash32,
    height: u64,
    round: u64,
}

#[derive(RlpEncodable, RlpDecodable)]
struct WireSig {
    voter: u32,
    signature: Bytes,
}

#[derive(RlpEncodable)]
struct WireQc {
    round: u64,
    height: u64,
    block: Hash32,
    votes: Vec<WireSig>,
}

/// Refusals of certificates past [`MAX_SIGNATURES`], met while decoding (a test checks that the
/// number agrees).
const TOO_MANY_VOTES: &str = "a certificate holds more than 1024 votes";
const TOO_MANY_NILS: &str = "a timeout certificate holds more than 1024 nil votes";

// Certificates are decoded by hand so that a list of tiny signatures (3 bytes each on the wire,
// 40 in memory) stops at the first one past the bound instead of being counted afterwards.
impl Decodable for WireQc {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let mut f = open_list(buf)?;
        let qc = WireQc {
            round: u64::decode(&mut f)?,
            height: u64::decode(&mut f)?,
            block: Hash32::decode(&mut f)?,
            votes: decode_list_at_most(&mut f, MAX_SIGNATURES, TOO_MANY_VOTES)?,
        };
        list_done(f)?;
        Ok(qc)
    }
}

#[derive(RlpEncodable, RlpDecodable)]
struct WireNilSig {
    voter: u32,
    height: u64,
    high_qc_round: u64,
    signature: Bytes,
}

#[derive(RlpEncodable)]
struct WireTc {
    round: u64,
    height: u64,
    nils: Vec<WireNilSig>,
    high_qc: WireQc,
}

impl Decodable for WireTc {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let mut f = open_list(buf)?;
        let tc = WireTc {
            round: u64::decode(&mut f)?,
            height: u64::decode(&mut f)?,
            nils: decode_list_at_most(&mut f, MAX_SIGNATURES, TOO_MANY_NILS)?,
            high_qc: WireQc::decode(&mut f)?,
        };
        list_done(f)?;
        Ok(tc)
    }
}

#[derive(RlpEncodable, RlpDecodable)]
struct WireProposal {
    block: WireBlock,
    payload: Bytes,
    justify: WireQc,
    tc: Vec<WireTc>,
    seal: Vec<WireQc>,
    proposer: u32,
    signature: Bytes,
}

#[derive(RlpEncodable, RlpDecodable)]
struct WireSync {
    high_qc: WireQc,
    seal: Vec<WireQc>,
}

#[derive(RlpEncodable, RlpDecodable)]
struct WireVote {
    round: u64,
    height: u64,
    block: Hash32,
    voter: u32,
    signature: Bytes,
}

#[derive(RlpEncodable, RlpDecodable)]
struct WireNil {
    round: u64,
    height: u64,
    high_qc: WireQc,
    voter: u32,
    signature: Bytes,
}

fn block_to(b: &BlockRef) -> WireBlock {
    WireBlock {
        hash: b.hash,
        parent: b.parent,
        height: b.height,
        round: b.round,
    }
}

fn block_from(w: WireBlock) -> BlockRef {
    BlockRef {
        hash: w.hash,
        parent: w.parent,
        height: w.height,
        round: w.round,
    }
}

fn sig(b: Bytes) -> Result<Vec<u8>, ProtoError> {
    if b.len() > MAX_SIGNATURE_BYTES {
        return Err(ProtoError::TooLarge {
            what: "signature",
            size: b.len(),
            limit: MAX_SIGNATURE_BYTES,
        });
    }
    Ok(b.to_vec())
}

fn count(what: &'static str, n: usize) -> Result<(), ProtoError> {
    if n > MAX_SIGNATURES {
        return Err(ProtoError::TooLarge {
            what,
            size: n,
            limit: MAX_SIGNATURES,
        });
    }
    Ok(())
}

fn qc_to(q: &Qc) -> WireQc {
    WireQc {
        round: q.round,
        height: q.height,
        block: q.block,
        votes: q
            .votes
            .iter()
            .map(|(i, s)| WireSig {
                voter: *i,
                signature: s.clone().into(),
            })
            .collect(),
    }
}

fn qc_from(w: WireQc) -> Result<Qc, ProtoError> {
    count("QC votes", w.votes.len())?;
    Ok(Qc {
        round: w.round,
        height: w.height,
        block: w.block,
        votes: w
            .votes
            .into_iter()
            .map(|v| Ok((v.voter, sig(v.signature)?)))
            .collect::<Result<_, ProtoError>>()?,
    })
}

fn tc_to(t: &Tc) -> WireTc {
    WireTc {
        round: t.round,
        height: t.height,
        nils: t
            .nils
            .iter()
            .map(|(i, h, r, s)| WireNilSig {
                voter: *i,
                height: *h,
                high_qc_round: *r,
                signature: s.clone().into(),
            })
            .collect(),
        high_qc: qc_to(&t.high_qc),
    }
}

fn tc_from(w: WireTc) -> Result<Tc, ProtoError> {
    count("TC nil votes", w.nils.len())?;
    Ok(Tc {
        round: w.round,
        height: w.height,
        nils: w
            .nils
            .into_iter()
            .map(|n| Ok((n.voter, n.height, n.high_qc_round, sig(n.signature)?)))
            .collect::<Result<_, ProtoError>>()?,
        high_qc: qc_from(w.high_qc)?,
    })
}

fn proposal_to(p: &Proposal) -> WireProposal {
    WireProposal {
        block: block_to(&p.block),
        payload: p.payload.clone().into(),
        justify: qc_to(&p.justify),
        tc: p.tc.iter().map(tc_to).collect(),
        seal: p.seal.iter().map(qc_to).collect(),
        proposer: p.proposer,
        signature: p.signature.clone().into(),
    }
}

fn proposal_from(w: WireProposal) -> Result<Proposal, ProtoError> {
    if w.tc.len() > 1 {
        return Err(ProtoError::invalid(
            "proposal",
            "at most one timeout certificate",
            w.tc.len().to_string(),
        ));
    }
    if w.seal.len() > 1 {
        return Err(ProtoError::invalid(
            "proposal",
            "at most one seal QC",
            w.seal.len().to_string(),
        ));
    }
    Ok(Proposal {
        block: block_from(w.block),
        payload: w.payload.to_vec(),
        justify: qc_from(w.justify)?,
        tc: w.tc.into_iter().next().map(tc_from).transpose()?,
        seal: w.seal.into_iter().next().map(qc_from).transpose()?,
        proposer: w.proposer,
        signature: sig(w.signature)?,
    })
}

fn frame(kind: u8, body: &dyn Encodable) -> Vec<u8> {
    let payload_length = kind.length() + body.length();
    let mut out = Vec::with_capacity(payload_length + 8);
    alloy_rlp::Header {
        list: true,
        payload_length,
    }
    .encode(&mut out);
    kind.encode(&mut out);
    body.encode(&mut out);
    out
}

/// Encodes a message.
pub fn encode(m: &Message) -> Vec<u8> {
    match m {
        Message::Proposal(p) => frame(1, &proposal_to(p)),
        Message::Vote(v) => frame(
            2,
            &WireVote {
                round: v.round,
                height: v.height,
                block: v.block,
                voter: v.voter,
                signature: v.signature.clone().into(),
            },
        ),
        Message::Nil(n) => frame(
            3,
            &WireNil {
                round: n.round,
                height: n.height,
                high_qc: qc_to(&n.high_qc),
                voter: n.voter,
                signature: n.signature.clone().into(),
            },
        ),
        Message::Timeout(t) => frame(4, &tc_to(t)),
        Message::BlockRequest(h) => frame(5, h),
        Message::BlockResponse(p) => frame(6, &proposal_to(p)),
        Message::Sync { high_qc, seal } => frame(
            7,
            &WireSync {
                high_qc: qc_to(high_qc),
                seal: seal.iter().map(qc_to).collect(),
            },
        ),
    }
}

fn rlp<T: Decodable>(buf: &mut &[u8]) -> Result<T, ProtoError> {
    T::decode(buf).map_err(|e| ProtoError::Rlp {
        what: "consensus message",
        reason: e.to_string(),
    })
}

/// Decodes a message, bounding every size and count.
pub fn decode(bytes: &[u8]) -> Result<Message, ProtoError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtoError::TooLarge {
            what: "consensus message",
            size: bytes.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    let mut buf = bytes;
    let h = alloy_rlp::Header::decode(&mut buf).map_err(|e| ProtoError::Rlp {
        what: "consensus message",
        reason: e.to_string(),
    })?;
    if !h.list || h.payload_length != buf.len() {
        return Err(ProtoError::Rlp {
            what: "consensus message",
            reason: "expected one list spanning the message".into(),
        });
    }
    let kind: u8 = rlp(&mut buf)?;
    let m = match kind {
        1 => Message::Proposal(proposal_from(rlp(&mut buf)?)?),
        2 => {
            let v: WireVote = rlp(&mut buf)?;
            Message::Vote(Vote {
                round: v.round,
                height: v.height,
                block: v.block,
                voter: v.voter,
                signature: sig(v.signature)?,
            })
        }
        3 => {
            let n: WireNil = rlp(&mut buf)?;
            Message::Nil(Nil {
                round: n.round,
                height: n.height,
                high_qc: qc_from(n.high_qc)?,
                voter: n.voter,
                signature: sig(n.signature)?,
            })
        }
        4 => Message::Timeout(tc_from(rlp(&mut buf)?)?),
        5 => Message::BlockRequest(rlp(&mut buf)?),
        6 => Message::BlockResponse(proposal_from(rlp(&mut buf)?)?),
        7 => {
            let w: WireSync = rlp(&mut buf)?;
            if w.seal.len() > 1 {
                return Err(ProtoError::Rlp {
                    what: "consensus message",
                    reason: "more than one seal QC".into(),
                });
            }
            Message::Sync {
                high_qc: qc_from(w.high_qc)?,
                seal: w.seal.into_iter().next().map(qc_from).transpose()?,
            }
        }
        other => {
            return Err(ProtoError::invalid(
                "consensus message kind",
                "1..=6",
                other.to_string(),
            ))
        }
    };
    if !buf.is_empty() {
        return Err(ProtoError::Rlp {
            what: "consensus message",
            reason: format!("{} trailing bytes", buf.len()),
        });
    }
    Ok(m)
}

#[derive(RlpEncodable, RlpDecodable)]
struct WireSafety {
    last_voted_round: u64,
    high_qc: Vec<WireQc>,
    last_tc: Vec<WireTc>,
    last_proposed_round: u64,
}

/// Encodes the safety state for the runtime to store before it sends a vote.
pub fn encode_safety(s: &crate::SafetyState) -> Vec<u8> {
    alloy_rlp::encode(WireSafety {
        last_voted_round: s.last_voted_round,
        high_qc: s.high_qc.iter().map(qc_to).collect(),
        last_tc: s.last_tc.iter().map(tc_to).collect(),
        last_proposed_round: s.last_proposed_round,
    })
}

/// Decodes a stored safety state.
pub fn decode_safety(bytes: &[u8]) -> Result<crate::SafetyState, ProtoError> {
    let mut buf = bytes;
    let w: WireSafety = rlp(&mut buf)?;
    if !buf.is_empty() || w.high_qc.len() > 1 || w.last_tc.len() > 1 {
        return Err(ProtoError::Rlp {
            what: "safety state",
            reason: "malformed".into(),
        });
    }
    Ok(crate::SafetyState {
        last_voted_round: w.last_voted_round,
        high_qc: w.high_qc.into_iter().next().map(qc_from).transpose()?,
        last_tc: w.last_tc.into_iter().next().map(tc_from).transpose()?,
        last_proposed_round: w.last_proposed_round,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qc() -> Qc {
        Qc {
            round: 4,
            height: 3,
            block: Hash32([3; 32]),
            votes: vec![(0, vec![1; 65]), (2, vec![2; 65])],
        }
    }

    fn samples() -> Vec<Message> {
        let tc = Tc {
            round: 5,
            height: 4,
            nils: vec![(1, 4, 4, vec![5; 65]), (3, 3, 2, vec![6; 65])],
            high_qc: qc(),
        };
        let p = Proposal {
            block: BlockRef {
                hash: Hash32([7; 32]),
                parent: Hash32([3; 32]),
                height: 4,
                round: 6,
            },
            payload: b"block bytes".to_vec(),
            justify: qc(),
            tc: Some(tc.clone()),
            seal: Some(qc()),
            proposer: 2,
            signature: vec![8; 65],
        };
        vec![
            Message::Proposal(p.clone()),
            Message::Vote(Vote {
                round: 6,
                height: 4,
                block: Hash32([7; 32]),
                voter: 1,
                signature: vec![9; 65],
            }),
            Message::Nil(Nil {
                round: 6,
                height: 4,
                high_qc: qc(),
                voter: 3,
                signature: vec![4; 65],
            }),
            Message::Timeout(tc),
            Message::BlockRequest(Hash32([1; 32])),
            Message::BlockResponse(Proposal { tc: None, ..p }),
            Message::Sync {
                high_qc: qc(),
                seal: Some(qc()),
            },
        ]
    }

    #[test]
    fn every_kind_round_trips_and_garbage_is_refused() {
        for m in samples() {
            let enc = encode(&m);
            assert_eq!(decode(&enc).unwrap(), m);
            assert!(decode(&enc[..enc.len() - 1]).is_err());
            let mut longer = enc.clone();
            longer.push(0);
            assert!(decode(&longer).is_err());
        }
        assert!(decode(&[]).is_err());
        assert!(decode(&[0xc2, 0x07, 0x80]).is_err(), "unknown kind");
    }

    #[test]
    fn certificates_stop_at_the_signature_past_the_bound() {
        assert!(TOO_MANY_VOTES.contains(&MAX_SIGNATURES.to_string()));
        assert!(TOO_MANY_NILS.contains(&MAX_SIGNATURES.to_string()));
        let full = Qc {
            votes: (0..MAX_SIGNATURES as u32)
                .map(|i| (i, vec![1; 65]))
                .collect(),
            ..qc()
        };
        let sync = |high_qc: Qc| Message::Sync {
            high_qc,
            seal: None,
        };
        assert_eq!(
            decode(&encode(&sync(full.clone()))).unwrap(),
            sync(full.clone())
        );
        let mut over = full;
        over.votes.push((9, vec![1; 65]));
        let e = decode(&encode(&sync(over.clone())))
            .unwrap_err()
            .to_string();
        assert!(e.contains(TOO_MANY_VOTES), "{e}");
        let tc = Tc {
            round: 5,
            height: 4,
            nils: (0..=MAX_SIGNATURES as u32)
                .map(|i| (i, 4, 4, vec![5; 65]))
                .collect(),
            high_qc: qc(),
        };
        let e = decode(&encode(&Message::Timeout(tc)))
            .unwrap_err()
            .to_string();
        assert!(e.contains(TOO_MANY_NILS), "{e}");
    }

    #[test]
    fn safety_state_round_trips() {
        let s = crate::SafetyState {
            last_voted_round: 9,
            high_qc: Some(qc()),
            last_tc: None,
            last_proposed_round: 8,
        };
        assert_eq!(decode_safety(&encode_safety(&s)).unwrap(), s);
        assert_eq!(
            decode_safety(&encode_safety(&crate::SafetyState::default())).unwrap(),
            crate::SafetyState::default()
        );
        assert!(decode_safety(&[0xc0]).is_err());
    }

    #[test]
    fn mutated_messages_never_panic() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let seeds: Vec<Vec<u8>> = samples().iter().map(encode).collect();
        for i in 0..20_000usize {
            let mut b = seeds[i % seeds.len()].clone();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = (x as usize) % b.len();
            match i % 3 {
                0 => b[pos] ^= 1 << (x % 8),
                1 => b.truncate(pos),
                _ => b[pos] = (x >> 8) as u8,
            }
            if let Ok(m) = decode(&b) {
                assert_eq!(decode(&encode(&m)).unwrap(), m);
            }
        }
    }
}

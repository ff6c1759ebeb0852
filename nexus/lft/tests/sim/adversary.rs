//! Byzantine behaviours: what a misbehaving validator sends instead of (or besides) what its
//! honest core asks for.

use super::{sign_as, Byz, Sim, CH, N, NID};
use nexus_lft::{
    nil_digest, proposal_digest, vote_digest, BlockRef, Message, Nil, Proposal, Qc, Tc, Vote,
};
use nexus_proto::hash::sha3_256;

impl Sim {
    pub(crate) fn byz_broadcast(&mut self, i: usize, byz: Option<Byz>, msg: Message) {
        match (byz, &msg) {
            (Some(Byz::Withholder), Message::Vote(_) | Message::Nil(_)) => {}
            (Some(Byz::Equivocator), Message::Proposal(p)) => {
                // Two different blocks for the same round, one to each half.
                let mut other = p.clone();
                other.payload.extend_from_slice(b"-twin");
                other.block.hash = self.hash_of(
                    &other.block.parent,
                    other.block.height,
                    other.block.round,
                    &other.payload,
                );
                other.signature = sign_as(
                    &self.keys,
                    &self.addrs[i],
                    &proposal_digest(NID, CH, &other.block),
                );
                for to in 0..N {
                    let m = if to % 2 == 0 {
                        msg.clone()
                    } else {
                        Message::Proposal(other.clone())
                    };
                    self.send(i, to, m);
                }
                // And votes for both.
                for b in [p.block, other.block] {
                    let sig = sign_as(
                        &self.keys,
                        &self.addrs[i],
                        &vote_digest(NID, CH, b.height, b.round, &b.hash),
                    );
                    self.broadcast(
                        i,
                        &Message::Vote(Vote {
                            round: b.round,
                            height: b.height,
                            block: b.hash,
                            voter: i as u32,
                            signature: sig,
                        }),
                    );
                }
            }
            (Some(Byz::Forger), _) => {
                self.broadcast(i, &msg);
                // Votes and nils in the names of the others, with made-up signatures, and a
                // proposal carrying a forged QC.
                for v in 0..N as u32 {
                    let junk: Vec<u8> = (0..32).map(|_| self.rng.next() as u8).collect();
                    let fake_block = sha3_256(&[&junk]);
                    let r = self.nodes[i].core.as_ref().map(|c| c.round()).unwrap_or(1);
                    let h = self.nodes[i]
                        .core
                        .as_ref()
                        .map(|c| c.high_qc().height + 1)
                        .unwrap_or(1);
                    self.broadcast(
                        i,
                        &Message::Vote(Vote {
                            round: r,
                            height: h,
                            block: fake_block,
                            voter: v,
                            signature: junk.clone(),
                        }),
                    );
                    let forged_qc = Qc {
                        round: r,
                        height: h,
                        block: fake_block,
                        votes: (0..3).map(|k| (k, junk.clone())).collect(),
                    };
                    self.broadcast(
                        i,
                        &Message::Nil(Nil {
                            round: r,
                            height: h,
                            high_qc: forged_qc.clone(),
                            voter: v,
                            signature: junk.clone(),
                        }),
                    );
                    if v == 0 {
                        let b = BlockRef {
                            hash: sha3_256(&[&fake_block.0]),
                            parent: fake_block,
                            height: h + 1,
                            round: r + 1,
                        };
                        let sig =
                            sign_as(&self.keys, &self.addrs[i], &proposal_digest(NID, CH, &b));
                        self.broadcast(
                            i,
                            &Message::Proposal(Proposal {
                                block: b,
                                payload: vec![],
                                justify: forged_qc,
                                tc: None,
                                seal: None,
                                proposer: i as u32,
                                signature: sig,
                            }),
                        );
                    }
                }
            }
            (Some(Byz::SelectiveVoter), Message::Vote(_) | Message::Nil(_))
            | (Some(Byz::SelectiveRelay), Message::Proposal(_) | Message::Timeout(_)) => {
                for to in 0..self.nodes.len() {
                    if self.rng.chance(50) {
                        self.send(i, to, msg.clone());
                    }
                }
            }
            (Some(Byz::Reproposer), Message::Proposal(p)) => {
                let fresh = p.clone();
                match self.last_seen.clone() {
                    Some(old) if old.block.round < fresh.block.round => {
                        // The same block (hash, payload, parent, justify) as a proposal of this
                        // round, with this round's TC.
                        let mut again = old;
                        again.block.round = fresh.block.round;
                        again.tc = fresh.tc.clone();
                        again.proposer = fresh.proposer;
                        again.signature = sign_as(
                            &self.keys,
                            &self.addrs[i],
                            &proposal_digest(NID, CH, &again.block),
                        );
                        self.broadcast(i, &Message::Proposal(again));
                    }
                    _ => self.broadcast(i, &msg),
                }
            }
            (Some(Byz::Inflater), Message::Nil(n)) => {
                self.broadcast(i, &msg);
                self.inflate(i, n.clone());
            }
            (Some(Byz::PastForger), Message::Nil(n)) => {
                self.broadcast(i, &msg);
                self.forge_past(i, n.clone());
            }
            _ => self.broadcast(i, &msg),
        }
    }

    /// What the Byzantine node `i` learns from a message delivered to it.
    pub(crate) fn observe(&mut self, i: usize, msg: &Message) {
        match (self.nodes[i].byz, msg) {
            (Some(Byz::Reproposer), Message::Proposal(p)) => self.last_seen = Some(p.clone()),
            (Some(Byz::Inflater), Message::Nil(n)) => {
                let seen = self.seen_nils.entry(n.round).or_default();
                if !seen.iter().any(|m| m.voter == n.voter) {
                    seen.push(n.clone());
                }
                while self.seen_nils.len() > 8 {
                    self.seen_nils.pop_first();
                }
            }
            _ => {}
        }
    }

    /// A TC of the honest nil votes of `own.round` and a nil of `i` claiming a huge high-QC
    /// round, carrying `i`'s real high QC: every honest node must refuse it.
    fn inflate(&mut self, i: usize, own: Nil) {
        let honest: Vec<Nil> = self
            .seen_nils
            .get(&own.round)
            .map(|v| v.iter().filter(|n| n.voter != own.voter).cloned().collect())
            .unwrap_or_default();
        let huge = own.round + 1_000_000;
        let sig = sign_as(
            &self.keys,
            &self.addrs[i],
            &nil_digest(NID, CH, own.height, own.round, huge),
        );
        let mut nils: Vec<(u32, u64, u64, Vec<u8>)> = honest
            .iter()
            .map(|n| (n.voter, n.height, n.high_qc.round, n.signature.clone()))
            .collect();
        nils.push((own.voter, own.height, huge, sig));
        nils.sort_by_key(|n| n.0);
        nils.dedup_by_key(|n| n.0);
        let tc = Tc {
            round: own.round,
            height: own.height,
            nils,
            high_qc: own.high_qc,
        };
        self.broadcast(i, &Message::Timeout(tc));
    }

    /// With the keys of the set that left (everyone in the schedule's first set but the current
    /// members), forges a QC for a sibling of a block of their time with a huge round, and a TC
    /// of their nil votes for the current round; sends both (the QC inside its own nil vote).
    fn forge_past(&mut self, i: usize, own: Nil) {
        let old = self.schedule.at(0).members.clone();
        let current = self.schedule.at(own.height).members.clone();
        let leavers: Vec<usize> = (0..old.len())
            .filter(|k| !current.contains(&old[*k]))
            .collect();
        if leavers.len() * 3 <= old.len() * 2 {
            return; // not a quorum of the old set
        }
        let past_height = 1 + self.rng.below(3);
        let sibling = sha3_256(&[b"forged", &past_height.to_be_bytes()]);
        let huge = own.round + 1_000_000;
        let digest = vote_digest(NID, CH, past_height, huge, &sibling);
        let forged = Qc {
            round: huge,
            height: past_height,
            block: sibling,
            votes: leavers
                .iter()
                .map(|k| (*k as u32, sign_as(&self.keys, &old[*k], &digest)))
                .collect(),
        };
        let nil_sig = sign_as(
            &self.keys,
            &self.addrs[i],
            &nil_digest(NID, CH, own.height, own.round, huge),
        );
        self.broadcast(
            i,
            &Message::Nil(Nil {
                high_qc: forged.clone(),
                signature: nil_sig,
                ..own.clone()
            }),
        );
        let tc = Tc {
            round: own.round,
            height: past_height,
            nils: leavers
                .iter()
                .map(|k| {
                    let d = nil_digest(NID, CH, past_height, own.round, forged.round);
                    (
                        *k as u32,
                        past_height,
                        forged.round,
                        sign_as(&self.keys, &old[*k], &d),
                    )
                })
                .collect(),
            high_qc: forged,
        };
        self.broadcast(i, &Message::Timeout(tc));
    }
}

//! Native SCOREs: smart contracts written in Rust and installed at genesis, behind one trait.
//!
//! The interface ([`NativeScore`], [`CallContext`], [`ScoreError`], parameter helpers) lives in
//! the `nexus-score` crate, so SCOREs outside the node (the DEX, the BTP services) implement it
//! without depending on the node; the node's own SCOREs are here.

pub mod chain_score;
pub mod irc2;

pub use nexus_score::{
    expect_params, param_address, param_bytes, param_int, CallContext, NativeScore, ScoreError,
    ScoreRegistry,
};

use crate::execution::steps::StepCosts;
use crate::ledger::genesis::ParsedGenesis;
use nexus_proto::Address;
use std::sync::Arc;

/// The SCOREs a channel starts with: the chain SCORE at `cx000...`, one IRC-2 token per
/// genesis entry, the BMC or the notary SCORE when the genesis gives the channel a BTP role,
/// and the DEX's converter (a service of the BMC) when it asks for one. The node installs them when it opens a channel.
pub fn genesis_scores(genesis: &ParsedGenesis) -> ScoreRegistry {
    let mut scores = ScoreRegistry::default();
    for t in &genesis.tokens {
        let token = irc2::Irc2Token {
            name: t.name.clone(),
            symbol: t.symbol.clone(),
            decimals: t.decimals,
            owner: t.owner,
            supply: t.supply,
        };
        scores.insert(t.address, Arc::new(token));
    }
    if let Some(b) = &genesis.btp {
        if b.notary {
            scores.insert(
                nexus_btp::NOTARY_ADDRESS,
                Arc::new(nexus_notary::NotaryScore {
                    admin: genesis.admin,
                }),
            );
        } else {
            let mut services = std::collections::BTreeMap::new();
            if let Some(dex) = &genesis.dex {
                let at = nexus_dex::score::CONVERTER_ADDRESS;
                services.insert(nexus_dex::score::SERVICE.to_string(), at);
                scores.insert(at, Arc::new(dex.clone()));
            }
            scores.insert(
                nexus_btp::BMC_ADDRESS,
                Arc::new(nexus_btp::bmc::Bmc {
                    network: b.network.clone(),
                    admin: genesis.admin,
                    services,
                }),
            );
        }
    }
    scores.insert(
        Address::SYSTEM,
        Arc::new(chain_score::ChainScore {
            admin: genesis.admin,
            step_price: genesis.step_price,
            costs: StepCosts::default(),
        }),
    );
    scores
}

//! Genesis: the network id, channel, funded accounts, validators, fee settings and the native
//! SCOREs installed at height 0. Stored as JSON with ICON value shapes (`0x` integers).

use crate::error::NodeError;
use nexus_proto::{value, Address};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The genesis file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Network id (`nid` of every transaction), T_INT.
    pub nid: String,
    /// Channel name (RPC path `/api/v3/<channel>`).
    pub channel: String,
    /// Genesis time in microseconds, T_INT.
    pub timestamp: String,
    /// Funded accounts.
    pub accounts: Vec<GenesisAccount>,
    /// Validators of the channel, in order.
    pub validators: Vec<String>,
    /// Account that receives transaction fees.
    pub treasury: String,
    /// Price of one step in loop, T_INT.
    pub step_price: String,
    /// IRC-2 tokens installed at genesis.
    #[serde(default)]
    pub tokens: Vec<GenesisToken>,
    /// Free text recorded in the genesis block.
    #[serde(default)]
    pub message: String,
    /// Account allowed to change the validator set (through the chain SCORE), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// BTP role of the channel, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub btp: Option<GenesisBtp>,
    /// Generated accounts (for benchmarks of a large state), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic_accounts: Option<SyntheticAccounts>,
    /// The DEX's converter SCORE on this channel, if any (beside the channel's BMC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dex: Option<GenesisDex>,
}

/// The DEX's converter SCORE (installed at [`nexus_dex::score::CONVERTER_ADDRESS`], owned by
/// the genesis admin, registered with the BMC as service `dex`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisDex {
    /// The BTP network of the Ether reserve contract (`0x539.eth`).
    pub reserve_network: String,
    /// ICX connector weight in ppm, T_INT.
    pub icx_weight: String,
    /// ETH connector weight in ppm, T_INT.
    pub eth_weight: String,
    /// Conversion fee in ppm at the start, T_INT (the owner may change it up to the maximum).
    pub fee: String,
}

/// `count` accounts whose addresses are derived from their index (see [`synthetic_address`]),
/// each holding `balance`: a state of millions of accounts without a genesis file of gigabytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticAccounts {
    /// How many, T_INT (at most [`MAX_SYNTHETIC_ACCOUNTS`]).
    pub count: String,
    /// Balance of each in loop, T_INT.
    pub balance: String,
}

/// Most generated accounts a genesis may ask for.
pub const MAX_SYNTHETIC_ACCOUNTS: u64 = 100_000_000;

/// The address of generated account `i`: `hx` + the first 20 bytes of
/// SHA3-256("nexus synthetic account" || i as 8 bytes big-endian).
pub fn synthetic_address(i: u64) -> Address {
    let h = nexus_proto::hash::sha3_256(&[b"nexus synthetic account", &i.to_be_bytes()]);
    let mut body = [0u8; 20];
    body.copy_from_slice(&h.0[..20]);
    Address::eoa(body)
}

/// The BTP role of a channel: a chain with a BMC (community chains), or a Nexus notary channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisBtp {
    /// This chain's BTP network address (`0x3.loop`); for a notary channel, the network whose
    /// messages it notarizes.
    pub network: String,
    /// True for a notary channel (installs the notary SCORE instead of the BMC).
    #[serde(default)]
    pub notary: bool,
}

/// A funded account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Label.
    pub name: String,
    /// `hx` address.
    pub address: String,
    /// Balance in loop, T_INT.
    pub balance: String,
}

/// An IRC-2 token SCORE installed at genesis.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisToken {
    /// `cx` address of the SCORE.
    pub address: String,
    /// Token name.
    pub name: String,
    /// Token symbol.
    pub symbol: String,
    /// Decimals, T_INT.
    pub decimals: String,
    /// Holder of the initial supply.
    pub owner: String,
    /// Initial supply in the smallest unit, T_INT.
    pub initial_supply: String,
}

/// Genesis with every value decoded and checked.
#[derive(Debug, Clone)]
pub struct ParsedGenesis {
    /// Network id.
    pub nid: u64,
    /// Channel name.
    pub channel: String,
    /// Genesis time (us).
    pub timestamp: u64,
    /// Funded accounts.
    pub accounts: Vec<(Address, u128)>,
    /// Validators.
    pub validators: Vec<Address>,
    /// Fee receiver.
    pub treasury: Address,
    /// Step price in loop.
    pub step_price: u128,
    /// Tokens: address, name, symbol, decimals, owner, supply.
    pub tokens: Vec<ParsedToken>,
    /// Who may change validators (and configure BTP).
    pub admin: Option<Address>,
    /// BTP role, checked.
    pub btp: Option<GenesisBtp>,
    /// Generated accounts: how many, and the balance of each.
    pub synthetic: Option<(u64, u128)>,
    /// The DEX's converter, checked.
    pub dex: Option<nexus_dex::score::ConverterScore>,
    /// The source, as stored in the genesis block.
    pub source: Genesis,
}

/// A decoded token entry.
#[derive(Debug, Clone)]
pub struct ParsedToken {
    /// SCORE address.
    pub address: Address,
    /// Name.
    pub name: String,
    /// Symbol.
    pub symbol: String,
    /// Decimals.
    pub decimals: u8,
    /// Initial holder.
    pub owner: Address,
    /// Initial supply.
    pub supply: u128,
}

fn cfg<T>(r: Result<T, nexus_proto::ProtoError>) -> Result<T, NodeError> {
    r.map_err(|e| NodeError::Config(format!("genesis: {e}")))
}

/// Channel names: lowercase letters, digits and `-`, 1..=32 characters.
pub fn check_channel_name(name: &str) -> Result<(), NodeError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NodeError::Config(format!(
            "channel name {name:?}: expected 1..=32 characters of a-z, 0-9 and -"
        )))
    }
}

impl Genesis {
    /// Reads and checks a genesis file.
    pub fn load(path: &Path) -> Result<ParsedGenesis, NodeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| NodeError::Config(format!("cannot read {}: {e}", path.display())))?;
        let g: Genesis = serde_json::from_str(&text)
            .map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
        g.parse()
    }

    /// Decodes and checks every value.
    pub fn parse(self) -> Result<ParsedGenesis, NodeError> {
        check_channel_name(&self.channel)?;
        let mut accounts = Vec::new();
        let mut total: u128 = 0;
        for a in &self.accounts {
            let addr = cfg(Address::parse("genesis account", &a.address))?;
            let bal = cfg(value::parse_u128("genesis balance", &a.balance))?;
            total = total
                .checked_add(bal)
                .ok_or_else(|| NodeError::Config("genesis balances overflow 2^128".into()))?;
            accounts.push((addr, bal));
        }
        let synthetic = match &self.synthetic_accounts {
            None => None,
            Some(s) => {
                let count = cfg(value::parse_u64("synthetic_accounts.count", &s.count))?;
                if count > MAX_SYNTHETIC_ACCOUNTS {
                    return Err(NodeError::Config(format!(
                        "genesis synthetic_accounts.count: at most {MAX_SYNTHETIC_ACCOUNTS}, got {count}"
                    )));
                }
                let balance = cfg(value::parse_u128("synthetic_accounts.balance", &s.balance))?;
                balance
                    .checked_mul(u128::from(count))
                    .and_then(|s| s.checked_add(total))
                    .ok_or_else(|| NodeError::Config("genesis balances overflow 2^128".into()))?;
                Some((count, balance))
            }
        };
        let validators = self
            .validators
            .iter()
            .map(|v| cfg(Address::parse("validator", v)))
            .collect::<Result<Vec<_>, _>>()?;
        if validators.is_empty() {
            return Err(NodeError::Config(
                "genesis: at least one validator is required".into(),
            ));
        }
        if validators.len() > nexus_proto::block::MAX_VALIDATORS {
            return Err(NodeError::Config(format!(
                "genesis: at most {} validators, got {}",
                nexus_proto::block::MAX_VALIDATORS,
                validators.len()
            )));
        }
        for (i, v) in validators.iter().enumerate() {
            if v.is_contract() || validators[..i].contains(v) {
                return Err(NodeError::Config(format!(
                    "genesis validator {v}: expected distinct hx addresses (a validator listed twice would vote twice)"
                )));
            }
        }
        let tokens = self
            .tokens
            .iter()
            .map(|t| {
                let address = cfg(Address::parse("token address", &t.address))?;
                if !address.is_contract() || address == Address::SYSTEM {
                    return Err(NodeError::Config(format!(
                        "token address {address}: expected a cx address other than cx00..00"
                    )));
                }
                let decimals = cfg(value::parse_u64("decimals", &t.decimals))?;
                Ok(ParsedToken {
                    address,
                    name: t.name.clone(),
                    symbol: t.symbol.clone(),
                    decimals: u8::try_from(decimals)
                        .map_err(|_| NodeError::Config("decimals above 255".into()))?,
                    owner: cfg(Address::parse("token owner", &t.owner))?,
                    supply: cfg(value::parse_u128("initial_supply", &t.initial_supply))?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(b) = &self.btp {
            nexus_btp::check_network("genesis btp.network", &b.network)
                .map_err(|e| NodeError::Config(format!("genesis: {e}")))?;
            if self.admin.is_none() {
                return Err(NodeError::Config(
                    "genesis: a btp section needs an admin (who registers verifiers)".into(),
                ));
            }
        }
        let admin = self
            .admin
            .as_deref()
            .map(|a| cfg(Address::parse("admin", a)))
            .transpose()?;
        let dex = self
            .dex
            .as_ref()
            .map(|d| parse_dex(d, self.btp.as_ref(), admin))
            .transpose()?;
        Ok(ParsedGenesis {
            nid: cfg(value::parse_u64("nid", &self.nid))?,
            channel: self.channel.clone(),
            timestamp: cfg(value::parse_u64("timestamp", &self.timestamp))?,
            accounts,
            validators,
            treasury: cfg(Address::parse("treasury", &self.treasury))?,
            step_price: cfg(value::parse_u128("step_price", &self.step_price))?,
            tokens,
            admin,
            btp: self.btp.clone(),
            synthetic,
            dex,
            source: self,
        })
    }
}

/// Checks the DEX section: a channel with a BMC, an owner, a reserve network, weights and a
/// fee the formula accepts.
fn parse_dex(
    d: &GenesisDex,
    btp: Option<&GenesisBtp>,
    admin: Option<Address>,
) -> Result<nexus_dex::score::ConverterScore, NodeError> {
    let cfg = |e: nexus_proto::ProtoError| NodeError::Config(format!("genesis dex: {e}"));
    if btp.is_none_or(|b| b.notary) {
        return Err(NodeError::Config(
            "genesis dex: the converter needs the channel's BMC (a btp section that is not a notary's)"
                .into(),
        ));
    }
    let owner = admin.ok_or_else(|| {
        NodeError::Config("genesis dex: the converter needs an admin (its owner)".into())
    })?;
    nexus_btp::check_network("genesis dex.reserve_network", &d.reserve_network)
        .map_err(|e| NodeError::Config(format!("genesis: {e}")))?;
    let ppm = |field: &str, v: &str| -> Result<u32, NodeError> {
        let n = value::parse_u64(field, v).map_err(cfg)?;
        u32::try_from(n)
            .map_err(|_| NodeError::Config(format!("genesis dex.{field}: expected ppm, got {n}")))
    };
    let score = nexus_dex::score::ConverterScore {
        owner: Some(owner),
        bmc: nexus_btp::BMC_ADDRESS,
        reserve_network: d.reserve_network.clone(),
        icx_weight: ppm("icx_weight", &d.icx_weight)?,
        eth_weight: ppm("eth_weight", &d.eth_weight)?,
        initial_fee_ppm: ppm("fee", &d.fee)?,
    };
    nexus_dex::Converter::new(score.icx_weight, score.eth_weight, score.initial_fee_ppm)
        .map_err(|e| NodeError::Config(format!("genesis dex: {e}")))?;
    Ok(score)
}

impl ParsedGenesis {
    /// Sum of the genesis balances (ICX is never minted or burnt afterwards).
    pub fn total_supply(&self) -> u128 {
        let (count, each) = self.synthetic.unwrap_or((0, 0));
        self.accounts.iter().map(|(_, b)| *b).sum::<u128>() + each * u128::from(count)
    }
}

#[cfg(test)]
mod dex_tests {
    use super::*;

    fn dex(fee: &str, w: &str, net: &str) -> GenesisDex {
        GenesisDex {
            reserve_network: net.into(),
            icx_weight: w.into(),
            eth_weight: "0x7a120".into(),
            fee: fee.into(),
        }
    }

    fn bmc() -> GenesisBtp {
        GenesisBtp {
            network: "0x1.nexus".into(),
            notary: false,
        }
    }

    #[test]
    fn a_converter_needs_a_bmc_and_an_owner() {
        let owner = Some(Address::eoa([1; 20]));
        let d = dex("0xbb8", "0x7a120", "0x539.eth");
        let notary = GenesisBtp {
            notary: true,
            ..bmc()
        };
        for (btp, admin) in [(None, owner), (Some(&notary), owner), (Some(&bmc()), None)] {
            assert!(parse_dex(&d, btp, admin).is_err());
        }
        let s = parse_dex(&d, Some(&bmc()), owner).unwrap();
        assert_eq!((s.icx_weight, s.initial_fee_ppm), (500_000, 3_000));
    }

    #[test]
    fn weights_fees_and_networks_outside_the_rules_are_refused() {
        let owner = Some(Address::eoa([1; 20]));
        for (fee, w, net, says) in [
            ("0x186a1", "0x7a120", "0x539.eth", "above the maximum"),
            ("0xbb8", "0x0", "0x539.eth", "weight"),
            ("0xbb8", "0xf4241", "0x539.eth", "weight"),
            ("0xbb8", "0x100000000", "0x539.eth", "expected ppm"),
            ("0xbb8", "0x7a120", "ethereum", "network address"),
            ("1", "0x7a120", "0x539.eth", "fee"),
        ] {
            let e = parse_dex(&dex(fee, w, net), Some(&bmc()), owner)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{fee} {w} {net}: {e}");
        }
    }
}

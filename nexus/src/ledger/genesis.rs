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
        Ok(ParsedGenesis {
            nid: cfg(value::parse_u64("nid", &self.nid))?,
            channel: self.channel.clone(),
            timestamp: cfg(value::parse_u64("timestamp", &self.timestamp))?,
            accounts,
            validators,
            treasury: cfg(Address::parse("treasury", &self.treasury))?,
            step_price: cfg(value::parse_u128("step_price", &self.step_price))?,
            tokens,
            admin: self
                .admin
                .as_deref()
                .map(|a| cfg(Address::parse("admin", a)))
                .transpose()?,
            btp: self.btp.clone(),
            synthetic,
            source: self,
        })
    }
}

impl ParsedGenesis {
    /// Sum of the genesis balances (ICX is never minted or burnt afterwards).
    pub fn total_supply(&self) -> u128 {
        let (count, each) = self.synthetic.unwrap_or((0, 0));
        self.accounts.iter().map(|(_, b)| *b).sum::<u128>() + each * u128::from(count)
    }
}

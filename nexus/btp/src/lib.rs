//! The BTP SCOREs of every chain: the message center ([`bmc::Bmc`]) that sends and receives
//! BTP messages, its verifiers of Nexus notary proofs ([`stored_client`]), and the services it
//! dispatches to ([`token`], [`cert`]). Pure SCORE code over `nexus-score`: no IO, no node.

pub mod bmc;
pub mod cert;
pub mod decision;
mod error;
pub mod event;
pub mod stored_client;
pub mod stored_eth_client;
pub mod token;

pub use error::BtpError;

use nexus_proto::Address;

/// Where the BMC lives on every chain that runs it.
pub const BMC_ADDRESS: Address = Address::contract(addr_body(0xb7c1));
/// Where the notary SCORE lives on every notary channel.
pub const NOTARY_ADDRESS: Address = Address::contract(addr_body(0xb7c0));

const fn addr_body(tail: u16) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[18] = (tail >> 8) as u8;
    b[19] = tail as u8;
    b
}

/// Longest BTP network address (`0x3.loop`) accepted.
pub const MAX_NETWORK_BYTES: usize = 64;

/// Checks a BTP network address: `0x<hex nid>.<type>` with a lowercase type of letters and
/// digits (`0x1.nexus`, `0x3.loop`, `0x539.eth`).
pub fn check_network(field: &str, net: &str) -> Result<(), BtpError> {
    let bad = || BtpError::BadAddress {
        field: field.to_string(),
        expected: "a network address 0x<hex>.<type>, such as 0x3.loop".into(),
        got: net.chars().take(80).collect(),
    };
    if net.len() > MAX_NETWORK_BYTES {
        return Err(bad());
    }
    let (nid, ty) = net.split_once('.').ok_or_else(bad)?;
    let digits = nid.strip_prefix("0x").ok_or_else(bad)?;
    let ok_nid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit());
    let ok_ty = !ty.is_empty()
        && ty
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok_nid && ok_ty {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Splits a BTP address `<network>/<account>` (`0x4.loop/hx...`), checking the network part.
pub fn split_btp_address<'a>(field: &str, s: &'a str) -> Result<(&'a str, &'a str), BtpError> {
    let (net, account) = s.split_once('/').ok_or_else(|| BtpError::BadAddress {
        field: field.to_string(),
        expected: "<network>/<account>, such as 0x4.loop/hx...".into(),
        got: s.chars().take(80).collect(),
    })?;
    check_network(field, net)?;
    if account.is_empty() || account.len() > 128 {
        return Err(BtpError::BadAddress {
            field: field.to_string(),
            expected: "an account of 1..=128 bytes after the network".into(),
            got: s.chars().take(80).collect(),
        });
    }
    Ok((net, account))
}

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

#[cfg(test)]
mod tests;

//! RLP encodings of the basic types: hashes as 32-byte strings, addresses as 21-byte strings.

use crate::{Address, Hash32};
use alloy_rlp::{Decodable, Encodable, Error};

impl Encodable for Hash32 {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        self.0.encode(out)
    }
    fn length(&self) -> usize {
        self.0.length()
    }
}

impl Decodable for Hash32 {
    fn decode(buf: &mut &[u8]) -> Result<Self, Error> {
        Ok(Hash32(<[u8; 32]>::decode(buf)?))
    }
}

impl Encodable for Address {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        self.to_bytes().encode(out)
    }
    fn length(&self) -> usize {
        22
    }
}

impl Decodable for Address {
    fn decode(buf: &mut &[u8]) -> Result<Self, Error> {
        let raw = <[u8; 21]>::decode(buf)?;
        Address::from_bytes(&raw).map_err(|_| Error::Custom("address prefix must be 0 or 1"))
    }
}

/// Decodes exactly one `T` from `bytes`, rejecting trailing data.
pub(crate) fn decode_exact<T: Decodable>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, crate::ProtoError> {
    let mut buf = bytes;
    let v = T::decode(&mut buf).map_err(|e| crate::ProtoError::rlp(what, e))?;
    if !buf.is_empty() {
        return Err(crate::ProtoError::Rlp {
            what,
            reason: format!("{} trailing bytes", buf.len()),
        });
    }
    Ok(v)
}

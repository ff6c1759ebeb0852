//! RLP encodings of the basic types: hashes as 32-byte strings, addresses as 21-byte strings.

use crate::{Address, Hash32};
use alloy_rlp::{Decodable, Encodable, Error, Header};

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

/// Decodes an RLP list of at most `max` items, refusing with `too_many` at the first item past
/// it. One byte on the wire can be tens of bytes in memory (a one-byte string becomes a
/// `Bytes` and a heap block), so a list decoded whole and counted afterwards lets a 14-MiB
/// message of tiny items take a gigabyte before it is refused.
pub fn decode_list_at_most<T: Decodable>(
    buf: &mut &[u8],
    max: usize,
    too_many: &'static str,
) -> Result<Vec<T>, Error> {
    let mut items = Header::decode_bytes(buf, true)?;
    let mut out = Vec::new();
    while !items.is_empty() {
        if out.len() == max {
            return Err(Error::Custom(too_many));
        }
        out.push(T::decode(&mut items)?);
    }
    Ok(out)
}

/// The fields of the RLP list that starts `buf`, which then moves past it (for decoders written
/// by hand, with [`list_done`] once every field is read).
pub fn open_list<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], Error> {
    Header::decode_bytes(buf, true)
}

/// Refuses fields left over in a list opened with [`open_list`].
pub fn list_done(fields: &[u8]) -> Result<(), Error> {
    if fields.is_empty() {
        Ok(())
    } else {
        Err(Error::Custom("unexpected fields at the end of a list"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_of(n: usize) -> Vec<u8> {
        alloy_rlp::encode(vec![7u8; n])
    }

    #[test]
    fn a_list_of_at_most_the_bound_decodes() {
        for n in [0, 1, 5] {
            let bytes = list_of(n);
            let mut buf = bytes.as_slice();
            let v: Vec<u8> = decode_list_at_most(&mut buf, 5, "too many").unwrap();
            assert_eq!(v, vec![7u8; n]);
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn one_item_past_the_bound_is_refused_with_the_callers_words() {
        let bytes = list_of(6);
        let mut buf = bytes.as_slice();
        let e = decode_list_at_most::<u8>(&mut buf, 5, "more than 5 sevens").unwrap_err();
        assert_eq!(e, Error::Custom("more than 5 sevens"));
    }

    #[test]
    fn a_string_or_a_truncated_list_is_not_a_list() {
        let s = alloy_rlp::encode(b"abc".as_slice());
        assert_eq!(
            decode_list_at_most::<u8>(&mut s.as_slice(), 5, "x").unwrap_err(),
            Error::UnexpectedString
        );
        let l = list_of(3);
        assert_eq!(
            decode_list_at_most::<u8>(&mut &l[..l.len() - 1], 5, "x").unwrap_err(),
            Error::InputTooShort
        );
    }

    #[test]
    fn the_rest_of_the_input_stays_for_the_next_field() {
        let mut bytes = list_of(2);
        bytes.extend_from_slice(&[0x05]);
        let mut buf = bytes.as_slice();
        let _: Vec<u8> = decode_list_at_most(&mut buf, 2, "x").unwrap();
        assert_eq!(buf, &[0x05]);
    }
}

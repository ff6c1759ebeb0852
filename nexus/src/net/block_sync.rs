//! The block-sync protocol (`/nexus/block/1`): a validator asks one peer for the proposal of a
//! block and only that peer answers, only to it (libp2p request-response; never gossip).
//!
//! A request is 40 bytes: the channel's nid (8, big-endian) and the block hash (32). A response
//! is the encoded `BlockResponse` consensus message, or nothing when the peer does not hold the
//! block or refuses (rate limit). Both are read with a hard byte bound.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use nexus_proto::Hash32;
use std::io;

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/nexus/block/1");

/// Bytes of a request.
pub const REQUEST_BYTES: usize = 40;

/// Largest response (a consensus message).
pub const MAX_RESPONSE_BYTES: usize = crate::net::p2p::MAX_GOSSIP_BYTES;

/// A request for the proposal of `hash` on the channel with network id `nid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRequest {
    /// The channel's nid.
    pub nid: u64,
    /// The block.
    pub hash: Hash32,
}

impl BlockRequest {
    /// The 40 bytes on the wire.
    pub fn encode(&self) -> [u8; REQUEST_BYTES] {
        let mut out = [0u8; REQUEST_BYTES];
        out[..8].copy_from_slice(&self.nid.to_be_bytes());
        out[8..].copy_from_slice(&self.hash.0);
        out
    }

    /// Decodes exactly [`REQUEST_BYTES`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != REQUEST_BYTES {
            return Err(format!(
                "block request: expected {REQUEST_BYTES} bytes, got {}",
                bytes.len()
            ));
        }
        let mut nid = [0u8; 8];
        nid.copy_from_slice(&bytes[..8]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[8..]);
        Ok(BlockRequest {
            nid: u64::from_be_bytes(nid),
            hash: Hash32(hash),
        })
    }
}

/// Reads at most `limit` bytes; more is an error (the stream is not drained).
async fn read_bounded<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(limit as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("block sync: more than {limit} bytes"),
        ));
    }
    Ok(buf)
}

/// The request-response codec of [`PROTOCOL`].
#[derive(Debug, Clone, Default)]
pub struct BlockCodec;

#[async_trait::async_trait]
impl libp2p::request_response::Codec for BlockCodec {
    type Protocol = StreamProtocol;
    type Request = BlockRequest;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<BlockRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_bounded(io, REQUEST_BYTES).await?;
        BlockRequest::decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_bounded(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: BlockRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req.encode()).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if res.len() > MAX_RESPONSE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "block sync: response too large",
            ));
        }
        io.write_all(&res).await?;
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::request_response::Codec;

    #[test]
    fn request_round_trip_and_exact_length() {
        let r = BlockRequest {
            nid: u64::MAX,
            hash: Hash32([7; 32]),
        };
        assert_eq!(BlockRequest::decode(&r.encode()).unwrap(), r);
        assert!(BlockRequest::decode(&r.encode()[..39]).is_err());
        let mut long = r.encode().to_vec();
        long.push(0);
        assert!(BlockRequest::decode(&long).is_err());
    }

    #[test]
    fn reads_are_bounded() {
        futures::executor::block_on(async {
            let mut c = BlockCodec;
            let too_long = vec![1u8; REQUEST_BYTES + 1];
            assert!(c
                .read_request(&PROTOCOL, &mut futures::io::Cursor::new(too_long))
                .await
                .is_err());
            let huge = vec![0u8; MAX_RESPONSE_BYTES + 1];
            assert!(c
                .read_response(&PROTOCOL, &mut futures::io::Cursor::new(huge))
                .await
                .is_err());
            let ok = vec![5u8; 1000];
            assert_eq!(
                c.read_response(&PROTOCOL, &mut futures::io::Cursor::new(ok.clone()))
                    .await
                    .unwrap(),
                ok
            );
        });
    }
}

//! An Ethereum JSON-RPC transport for alloy over [`RpcClient`]: the same [`Limits`] (a whole
//! answer within the timeout, at most so many bytes of it) for Ethereum endpoints as for ICON
//! ones. alloy's own HTTP transport reads an answer whole, without a bound on its size, and
//! reqwest waits without a timeout unless one is set.

use crate::rpc::{Limits, RpcClient};
use alloy::rpc::json_rpc::{RequestPacket, ResponsePacket};
use alloy::transports::{TransportError, TransportErrorKind, TransportFut};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The transport: clone it freely (clones share one connection pool).
#[derive(Clone)]
pub struct BoundedHttp {
    rpc: Arc<RpcClient>,
}

impl BoundedHttp {
    /// A transport to `url` whose calls keep to `limits`.
    pub fn new(url: &str, limits: Limits) -> Self {
        BoundedHttp {
            rpc: Arc::new(RpcClient::with_limits(url, limits)),
        }
    }

    /// An alloy RPC client on this transport, for `ProviderBuilder::connect_client`.
    pub fn client(url: &str, limits: Limits) -> alloy::rpc::client::RpcClient {
        let local = url.contains("://127.0.0.1") || url.contains("://localhost");
        alloy::rpc::client::RpcClient::new(Self::new(url, limits), local)
    }
}

impl tower05::Service<RequestPacket> for BoundedHttp {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        let rpc = self.rpc.clone();
        Box::pin(async move {
            let body = serde_json::to_vec(&req).map_err(TransportError::ser_err)?;
            let (status, bytes) = rpc
                .post_raw(rpc.url(), body, &[])
                .await
                .map_err(TransportErrorKind::custom)?;
            let text = || crate::rpc::quoted(&String::from_utf8_lossy(&bytes));
            if !(200..300).contains(&status) {
                return Err(TransportErrorKind::http_error(status, text()));
            }
            serde_json::from_slice(&bytes).map_err(|e| TransportError::deser_err(e, text()))
        })
    }
}

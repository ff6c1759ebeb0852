//! A notary validator's own check of Ethereum headers: on a notary channel whose source is an
//! Ethereum chain, the validator asks its own Ethereum node for the hash of every header a
//! relay carries, and refuses (does not admit, does not vote for) a transaction or proposal
//! whose header is not on that node's chain. The notary SCORE's light client checks that the
//! headers link up; this check ties them to the real chain, since on a dev chain nothing in a
//! header proves it was produced by the chain's consensus.

use nexus_btp::NOTARY_ADDRESS;
use nexus_client::rpc::{Limits, RpcClient};
use nexus_light_clients::ethereum::{EthHeader, EthUpdate, MAX_UPDATE_BYTES};
use nexus_proto::value::parse_bytes;
use nexus_proto::{Hash32, SignedTransaction, TxData};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Hashes confirmed by the endpoint that are remembered.
const KNOWN_LIMIT: usize = 8192;
/// Longest wait for the endpoint per check: for all its headers together, so a slow endpoint
/// costs a check (which consensus waits for) at most this long, however many headers it has.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of one answer read from the endpoint (a block without its transactions is a
/// few KB).
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// Most relayed headers one check asks the endpoint about (a transaction or a block carrying
/// more is refused: a relay would otherwise make every validator query its node without bound).
pub const MAX_CHECKED_HEADERS: usize = 1024;

/// The check, with the validator's Ethereum endpoint.
pub struct EthEndpointCheck {
    url: String,
    known: Mutex<HashMap<u64, Hash32>>,
}

/// The (number, hash) of every header in the relay transactions among `txs` (undecodable
/// updates are left to the notary SCORE, which refuses them).
pub fn relayed_headers(txs: &[Arc<SignedTransaction>]) -> Vec<(u64, Hash32)> {
    let mut out = Vec::new();
    for st in txs {
        let TxData::Call { method, params } = &st.tx.data else {
            continue;
        };
        if st.tx.to != NOTARY_ADDRESS || method != "relay" {
            continue;
        }
        let Some(updates) = params.get("_updates").and_then(|u| u.as_array()) else {
            continue;
        };
        for u in updates.iter().filter_map(|u| u.as_str()) {
            let Ok(raw) = parse_bytes("_updates", u, 2 * MAX_UPDATE_BYTES) else {
                continue;
            };
            let Ok(update) = EthUpdate::decode(&raw) else {
                continue;
            };
            out.extend(
                update
                    .headers
                    .iter()
                    .filter_map(|h| EthHeader::decode(h).ok())
                    .map(|h| (h.number, h.hash)),
            );
        }
    }
    out
}

impl EthEndpointCheck {
    /// A check against the Ethereum JSON-RPC endpoint at `url`.
    pub fn new(url: &str) -> Self {
        EthEndpointCheck {
            url: url.to_string(),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses when a header relayed by `txs` is not the endpoint's block at its number.
    pub fn check(&self, txs: &[Arc<SignedTransaction>]) -> Result<(), String> {
        let wanted: Vec<(u64, Hash32)> = {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            let mut w: Vec<(u64, Hash32)> = relayed_headers(txs)
                .into_iter()
                .filter(|(n, h)| known.get(n) != Some(h))
                .collect();
            w.sort();
            w.dedup();
            w
        };
        if wanted.is_empty() {
            return Ok(());
        }
        if wanted.len() > MAX_CHECKED_HEADERS {
            return Err(format!(
                "{} new Ethereum headers to check, at most {MAX_CHECKED_HEADERS} per transaction or block",
                wanted.len()
            ));
        }
        let url = self.url.clone();
        let ask = wanted.clone();
        // Its own thread and runtime: this runs inside consensus and RPC handlers, sync code
        // on any kind of runtime, and must not stall their threads' other work.
        let answers = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let rpc = RpcClient::with_limits(
                    &url,
                    Limits {
                        timeout: TIMEOUT,
                        max_response_bytes: MAX_ANSWER_BYTES,
                    },
                );
                let all = async {
                    let mut out = Vec::with_capacity(ask.len());
                    for (n, _) in &ask {
                        let v = rpc
                            .call(
                                "eth_getBlockByNumber",
                                serde_json::json!([format!("{n:#x}"), false]),
                            )
                            .await
                            .map_err(|e| format!("{url}: {e}"))?;
                        out.push(
                            v["hash"]
                                .as_str()
                                .and_then(|h| Hash32::parse("hash", h).ok()),
                        );
                    }
                    Ok::<_, String>(out)
                };
                tokio::time::timeout(TIMEOUT, all).await.map_err(|_| {
                    format!(
                        "{url} did not answer for {} headers within {TIMEOUT:?}",
                        ask.len()
                    )
                })?
            })
        })
        .join()
        .map_err(|_| "the Ethereum endpoint check panicked".to_string())??;
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() > KNOWN_LIMIT {
            known.clear();
        }
        for ((n, h), theirs) in wanted.into_iter().zip(answers) {
            match theirs {
                Some(t) if t == h => {
                    known.insert(n, h);
                }
                Some(t) => {
                    return Err(format!(
                        "Ethereum header {n} ({h}) is not on this validator's chain: its block {n} is {t}"
                    ))
                }
                None => {
                    return Err(format!(
                        "Ethereum header {n} ({h}): this validator's node has no block {n}"
                    ))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_proto::value::format_bytes;
    use nexus_proto::{Address, KeyPair, Transaction};
    use serde_json::json;

    fn header(n: u64) -> Vec<u8> {
        nexus_light_clients::testkit::eth_header(
            n,
            nexus_proto::Hash32::ZERO,
            nexus_proto::Hash32::ZERO,
        )
    }

    fn relay_tx(to: Address, method: &str, headers: usize) -> Arc<SignedTransaction> {
        relay_tx_from(to, method, 1, headers)
    }

    fn relay_tx_from(
        to: Address,
        method: &str,
        first: u64,
        headers: usize,
    ) -> Arc<SignedTransaction> {
        let update = EthUpdate {
            headers: (0..headers as u64).map(|n| header(first + n)).collect(),
        };
        let params = json!({"_updates": [format_bytes(&update.encode())], "_proofs": []});
        let tx = Transaction {
            from: KeyPair::generate().address(),
            to,
            value: 0,
            step_limit: 1,
            timestamp: 1,
            nid: 1,
            nonce: None,
            data: TxData::Call {
                method: method.into(),
                params: params.as_object().cloned().unwrap_or_default(),
            },
        };
        Arc::new(tx.sign(&KeyPair::generate()).expect("sign"))
    }

    #[test]
    fn only_relays_to_the_notary_score_are_read() {
        assert_eq!(
            relayed_headers(&[relay_tx(NOTARY_ADDRESS, "relay", 3)]).len(),
            3
        );
        assert!(relayed_headers(&[relay_tx(nexus_btp::BMC_ADDRESS, "relay", 3)]).is_empty());
        assert!(relayed_headers(&[relay_tx(NOTARY_ADDRESS, "getStatus", 3)]).is_empty());
    }

    #[test]
    fn without_headers_nothing_is_asked() {
        // An endpoint that does not exist: never contacted.
        let c = EthEndpointCheck::new("http://127.0.0.1:1");
        assert!(c
            .check(&[relay_tx(nexus_btp::BMC_ADDRESS, "relay", 3)])
            .is_ok());
    }

    #[test]
    fn an_unreachable_endpoint_refuses() {
        let c = EthEndpointCheck::new("http://127.0.0.1:1");
        assert!(c.check(&[relay_tx(NOTARY_ADDRESS, "relay", 1)]).is_err());
    }

    /// An Ethereum endpoint that answers every call, after `delay`, with a block of hash zero.
    fn slow_endpoint(delay: Duration) -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", l.local_addr().expect("address"));
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut s = s;
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = s.read(&mut chunk) {
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + len {
                            continue;
                        }
                        buf.drain(..end + 4 + len);
                        std::thread::sleep(delay);
                        let body = format!(
                            r#"{{"jsonrpc":"2.0","id":1,"result":{{"hash":"0x{}"}}}}"#,
                            "00".repeat(32)
                        );
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if s.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        url
    }

    #[test]
    fn a_slow_endpoint_costs_a_check_at_most_the_timeout_in_all() {
        // 20 headers at 400 ms each would take 8 s; the check gives up at 5 s in all.
        let c = EthEndpointCheck::new(&slow_endpoint(Duration::from_millis(400)));
        let e = c
            .check(&[relay_tx(NOTARY_ADDRESS, "relay", 20)])
            .expect_err("refused");
        assert!(e.contains("did not answer for 20 headers within 5s"), "{e}");
    }

    #[test]
    fn too_many_headers_are_refused_before_any_request() {
        let c = EthEndpointCheck::new("http://127.0.0.1:1");
        let txs: Vec<_> = (0..5)
            .map(|i| relay_tx_from(NOTARY_ADDRESS, "relay", 1 + 250 * i, 250))
            .collect();
        assert_eq!(relayed_headers(&txs).len(), 1250);
        let e = c.check(&txs).expect_err("too many");
        assert!(e.contains("at most"), "{e}");
    }
}

//! Transactions the portal pays for on Ethereum, seen through to a receipt. Each is sent with
//! its nonce and EIP-1559 fees set; one that has no receipt within `receipt_timeout_ms` (the
//! node dropped it, or the base fee rose past its fee cap) is sent again with the same nonce
//! and both fees raised by `fee_bump_percent`, never past `max_fee_per_gas_gwei`. Whichever of
//! the sends is mined gives the receipt, so a message goes out at most once per nonce. Each send
//! is signed here and its hash kept before the node sees it, so a send the node refuses as one
//! it already holds (made by a pass before a restart) still gives the receipt when mined. The
//! nonce is looked at on every poll, so one taken by another transaction ends the wait at once.

use crate::metrics::Metrics;
use crate::PortalError;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address as EthAddress, TxHash};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use std::time::{Duration, Instant};

/// Sends of one nonce before the transaction is given up as an error of the pass (the next
/// pass finds it pending and goes on from there).
pub const MAX_SENDS: u32 = 6;

const GWEI: u128 = 1_000_000_000;

/// Both EIP-1559 fees of one send, in wei per gas (on a chain without EIP-1559, both are its
/// legacy `gasPrice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    /// `maxFeePerGas`.
    pub max_fee: u128,
    /// `maxPriorityFeePerGas`.
    pub priority: u128,
}

/// How fees start and rise.
#[derive(Debug, Clone, Copy)]
pub struct FeePolicy {
    /// Each new send raises both fees by this many percent.
    pub bump_percent: u64,
    /// The highest `maxFeePerGas`.
    pub max_fee: u128,
}

impl FeePolicy {
    /// From a link's `fee_bump_percent` and `max_fee_per_gas_gwei`.
    pub fn new(bump_percent: u64, max_fee_per_gas_gwei: u64) -> Self {
        FeePolicy {
            bump_percent,
            max_fee: u128::from(max_fee_per_gas_gwei).saturating_mul(GWEI),
        }
    }

    fn capped(&self, f: Fees) -> Fees {
        let max_fee = f.max_fee.min(self.max_fee);
        Fees {
            max_fee,
            priority: f.priority.min(max_fee),
        }
    }

    /// The first send's fees: the node's estimate, under the cap.
    pub fn first(&self, estimate: Fees) -> Fees {
        self.capped(estimate)
    }

    /// The fees of the send after one at `last`: each raised by the bump (at least 1 wei) and
    /// no lower than the node's current estimate, under the cap.
    pub fn next(&self, last: Fees, estimate: Fees) -> Fees {
        let raise = |x: u128| {
            x.saturating_add((x.saturating_mul(u128::from(self.bump_percent)) / 100).max(1))
        };
        self.capped(Fees {
            max_fee: raise(last.max_fee).max(estimate.max_fee),
            priority: raise(last.priority).max(estimate.priority),
        })
    }
}

/// Whether a node's refusal of a send leaves the nonce's earlier sends to be waited for: the
/// same transaction is already in its pool, one of them was mined, or the node wants a larger
/// raise for a replacement (the next send makes one).
fn refusal_to_wait_out(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "already known",
        "already imported",
        "nonce too low",
        "underpriced",
    ]
    .iter()
    .any(|k| m.contains(k))
}

/// Sends transactions from the relayer's account on one Ethereum node.
pub struct EthSender<'a> {
    /// The node, with the relayer's key.
    pub provider: &'a DynProvider,
    /// The relayer's address.
    pub relayer: EthAddress,
    /// The relayer's key, which signs each send.
    pub wallet: &'a EthereumWallet,
    /// The node's URL, for errors.
    pub url: &'a str,
    /// The link's name, for logs and metrics.
    pub link: &'a str,
    /// How fees start and rise.
    pub fees: FeePolicy,
    /// How long each send may wait for a receipt.
    pub receipt_timeout: Duration,
    /// How often receipts are asked for.
    pub poll: Duration,
    /// The portal's metrics.
    pub metrics: &'a Metrics,
}

impl EthSender<'_> {
    fn err(&self, what: impl std::fmt::Display) -> PortalError {
        PortalError::Eth {
            endpoint: self.url.to_string(),
            what: what.to_string(),
        }
    }

    /// The node's fee estimate, and whether the chain prices gas the legacy way (no base fee).
    async fn estimate(&self) -> Result<(Fees, bool), PortalError> {
        match self.provider.estimate_eip1559_fees().await {
            Ok(e) => Ok((
                Fees {
                    max_fee: e.max_fee_per_gas,
                    priority: e.max_priority_fee_per_gas,
                },
                false,
            )),
            Err(alloy::transports::RpcError::UnsupportedFeature(_)) => {
                let price = self
                    .provider
                    .get_gas_price()
                    .await
                    .map_err(|e| self.err(e))?;
                Ok((
                    Fees {
                        max_fee: price,
                        priority: price,
                    },
                    true,
                ))
            }
            Err(e) => Err(self.err(e)),
        }
    }

    async fn receipt_of(&self, sent: &[TxHash]) -> Result<Option<TransactionReceipt>, PortalError> {
        for h in sent {
            if let Some(r) = self
                .provider
                .get_transaction_receipt(*h)
                .await
                .map_err(|e| self.err(e))?
            {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// The nonce the relayer's next mined transaction takes.
    pub async fn next_nonce(&self) -> Result<u64, PortalError> {
        self.provider
            .get_transaction_count(self.relayer)
            .latest()
            .await
            .map_err(|e| self.err(e))
    }

    /// Sends `tx` (its gas limit set) with the relayer's next nonce and waits for the receipt
    /// of one of its sends; `what` names it in logs and errors.
    pub async fn confirm(
        &self,
        tx: TransactionRequest,
        what: &str,
    ) -> Result<TransactionReceipt, PortalError> {
        let nonce = self.next_nonce().await?;
        let chain_id = self
            .provider
            .get_chain_id()
            .await
            .map_err(|e| self.err(e))?;
        let tx = tx
            .with_from(self.relayer)
            .with_nonce(nonce)
            .with_chain_id(chain_id);
        let started = Instant::now();
        let mut sent: Vec<TxHash> = Vec::new();
        let (estimate, legacy) = self.estimate().await?;
        let mut fees = self.fees.first(estimate);
        if fees.max_fee == self.fees.max_fee {
            tracing::warn!(link = %self.link, nonce, "fees on {} are at or above max_fee_per_gas_gwei; {what} is sent at that cap", self.url);
        }
        for send in 0..MAX_SENDS {
            if send > 0 {
                fees = self.fees.next(fees, self.estimate().await?.0);
            }
            let req = if legacy {
                tx.clone().with_gas_price(fees.max_fee)
            } else {
                tx.clone()
                    .with_max_fee_per_gas(fees.max_fee)
                    .with_max_priority_fee_per_gas(fees.priority)
            };
            let signed = req
                .build(self.wallet)
                .await
                .map_err(|e| self.err(format!("{what} (nonce {nonce}): signing: {e}")))?;
            let hash = *signed.tx_hash();
            // Kept before sending: the node may hold this very transaction already.
            if !sent.contains(&hash) {
                sent.push(hash);
            }
            match self.provider.send_tx_envelope(signed).await {
                Ok(_) => {
                    if send > 0 {
                        self.metrics.sent_again(self.link);
                        tracing::warn!(link = %self.link, nonce, %hash, max_fee_gwei = fees.max_fee as f64 / 1e9, "{what}: no receipt after {} ms; sent again with raised fees", self.receipt_timeout.as_millis());
                    }
                }
                Err(e) if refusal_to_wait_out(&e.to_string()) => {
                    tracing::debug!(link = %self.link, nonce, %hash, error = %e, "{what}: a send was refused; waiting for the earlier ones");
                }
                Err(e) => return Err(self.err(format!("{what} (nonce {nonce}): {e}"))),
            }
            let deadline = Instant::now() + self.receipt_timeout;
            loop {
                // Only a mined transaction moves the nonce: one look a poll, and the receipts
                // are asked for once it moved (a send of ours, or someone else's).
                if self.next_nonce().await? > nonce {
                    if let Some(r) = self.receipt_of(&sent).await? {
                        return Ok(r);
                    }
                    return Err(self.err(format!(
                        "{what}: nonce {nonce} of {} went to a transaction other than these sends (an earlier one of this relayer, or another process using its key); the next pass reads what was delivered",
                        self.relayer
                    )));
                }
                if Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(self.poll).await;
            }
        }
        Err(self.err(format!(
            "{what}: no receipt after {MAX_SENDS} sends over {} s (nonce {nonce}, last maxFeePerGas {} gwei, max_fee_per_gas_gwei {})",
            started.elapsed().as_secs(),
            fees.max_fee / GWEI,
            self.fees.max_fee / GWEI
        )))
    }

    /// Replaces the relayer's oldest pending transaction (`nonce`) with an empty transfer to
    /// itself, so the link can go on after a portal restarted while one was stuck; what it
    /// carried is sent again by the next pass, which reads what was delivered first.
    pub async fn cancel(&self, nonce: u64) -> Result<(), PortalError> {
        tracing::warn!(link = %self.link, nonce, "a transaction of the relayer has been pending for over {} ms; replacing it with an empty one", self.receipt_timeout.as_millis());
        let tx = TransactionRequest::default()
            .with_to(self.relayer)
            .with_gas_limit(21_000);
        match self
            .confirm(tx, "the replacement of a stuck transaction")
            .await
        {
            Ok(_) => Ok(()),
            // The stuck one was mined after all: the nonce is settled either way.
            Err(_) if self.next_nonce().await? > nonce => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: FeePolicy = FeePolicy {
        bump_percent: 20,
        max_fee: 100 * GWEI,
    };

    fn gwei(max: u128, prio: u128) -> Fees {
        Fees {
            max_fee: max * GWEI,
            priority: prio * GWEI,
        }
    }

    #[test]
    fn the_first_send_takes_the_estimate_under_the_cap() {
        assert_eq!(POLICY.first(gwei(30, 2)), gwei(30, 2));
        assert_eq!(POLICY.first(gwei(300, 2)), gwei(100, 2));
        assert_eq!(
            POLICY.first(gwei(300, 200)),
            gwei(100, 100),
            "priority under the cap"
        );
    }

    #[test]
    fn each_new_send_raises_both_fees_by_the_bump() {
        let next = POLICY.next(gwei(30, 2), gwei(30, 2));
        assert_eq!(next.max_fee, 36 * GWEI);
        assert_eq!(next.priority, 2 * GWEI + 2 * GWEI / 5);
        let next = POLICY.next(gwei(30, 2), gwei(1, 1));
        assert_eq!(next.max_fee, 36 * GWEI);
        assert_eq!(next.priority, 2 * GWEI + 2 * GWEI / 5);
    }

    #[test]
    fn a_new_send_follows_an_estimate_that_rose_past_the_bump() {
        assert_eq!(POLICY.next(gwei(30, 2), gwei(80, 5)), gwei(80, 5));
    }

    #[test]
    fn fees_never_pass_the_cap() {
        assert_eq!(POLICY.next(gwei(90, 2), gwei(1, 1)).max_fee, 100 * GWEI);
        assert_eq!(POLICY.next(gwei(100, 2), gwei(500, 1)).max_fee, 100 * GWEI);
        let top = POLICY.next(gwei(100, 100), gwei(1, 1));
        assert_eq!(
            top,
            gwei(100, 100),
            "at the cap a send is made again as it was"
        );
    }

    #[test]
    fn tiny_fees_still_rise() {
        let f = POLICY.next(
            Fees {
                max_fee: 1,
                priority: 0,
            },
            Fees {
                max_fee: 0,
                priority: 0,
            },
        );
        assert_eq!(
            f,
            Fees {
                max_fee: 2,
                priority: 1
            }
        );
    }

    #[test]
    fn refusals_that_leave_earlier_sends_to_wait_for() {
        for m in [
            "server returned an error response: error code -32000: already known",
            "nonce too low: next nonce 5, tx nonce 4",
            "replacement transaction underpriced",
            "Transaction already imported",
        ] {
            assert!(refusal_to_wait_out(m), "{m}");
        }
        for m in [
            "insufficient funds for gas * price + value",
            "execution reverted",
        ] {
            assert!(!refusal_to_wait_out(m), "{m}");
        }
    }
}

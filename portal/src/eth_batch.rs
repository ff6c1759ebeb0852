//! What one relay of an Ethereum link carries, under the transaction's byte budget: the next
//! headers (at most half the budget) and the proofs of messages that those headers confirm, in
//! order, while they fit (a first proof always goes, alone if need be). When proofs are left
//! over, the headers stop where the last proof sent is confirmed, so the light client's head
//! never runs ahead of the messages still to prove, and the next scan starts at the block of the
//! first proof left (already delivered messages there are skipped by sequence).

/// A relay's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Headers `head + 1 ..= headers_to` go (none when `headers_to == head`).
    pub headers_to: u64,
    /// The first `proofs` proofs go.
    pub proofs: usize,
    /// Where the next scan for messages starts.
    pub next_scan: u64,
}

/// Plans a relay. `header_bytes[i]` is the size of header `head + 1 + i` (up to `upto`);
/// `proofs` are (block, bytes) in order, all of blocks at most `upto - confirmations`.
pub fn plan(
    head: u64,
    upto: u64,
    confirmations: u64,
    header_bytes: &[usize],
    proofs: &[(u64, usize)],
    budget: usize,
) -> Plan {
    // Headers: at most half the budget (at least one when any is due).
    let mut headers_to = head;
    let mut used = 0usize;
    for b in header_bytes {
        if headers_to > head && used + b > budget / 2 {
            break;
        }
        used += b;
        headers_to += 1;
    }
    let headers_to = headers_to.min(upto);
    // Proofs: only of blocks the relayed headers confirm, while they fit.
    let confirmed_to = headers_to.saturating_sub(confirmations);
    let mut taken = 0usize;
    for (block, b) in proofs {
        if *block > confirmed_to || (taken > 0 && used + b > budget) {
            break;
        }
        used += b;
        taken += 1;
    }
    if taken == proofs.len() {
        // Everything proved: scan on from what these headers confirm.
        return Plan {
            headers_to,
            proofs: taken,
            next_scan: confirmed_to + 1,
        };
    }
    // Proofs left: headers only as far as the last proof sent needs.
    let needed = match taken {
        0 => headers_to,
        n => (proofs[n - 1].0 + confirmations).max(head),
    };
    Plan {
        headers_to: headers_to.min(needed),
        proofs: taken,
        next_scan: proofs[taken].0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_fits_in_one_relay() {
        let p = plan(10, 20, 2, &[500; 10], &[(12, 1000), (15, 1000)], 160_000);
        assert_eq!(
            p,
            Plan {
                headers_to: 20,
                proofs: 2,
                next_scan: 19
            }
        );
    }

    #[test]
    fn proofs_beyond_the_budget_wait_and_the_headers_stop_where_the_last_sent_is_confirmed() {
        // Nine proofs of 60 KB in blocks 12..=14: two fit beside the headers.
        let proofs: Vec<(u64, usize)> = (0..9).map(|i| (12 + i / 3, 60_000)).collect();
        let p = plan(10, 40, 2, &[600; 30], &proofs, 160_000);
        assert_eq!(p.proofs, 2);
        assert_eq!(p.headers_to, 14, "block 12 needs two confirmations");
        assert_eq!(p.next_scan, 12, "the rest of block 12 is scanned again");
    }

    #[test]
    fn a_proof_larger_than_the_budget_still_goes_alone() {
        let p = plan(
            10,
            12,
            2,
            &[600; 2],
            &[(10, 130_000), (10, 130_000)],
            160_000,
        );
        assert_eq!((p.proofs, p.next_scan), (1, 10));
    }

    #[test]
    fn headers_take_at_most_half_the_budget_and_proofs_wait_for_them() {
        let p = plan(0, 256, 2, &[4096; 256], &[(200, 100)], 160_000);
        assert_eq!(p.headers_to, 19, "19 headers of 4 KiB in 80 KB");
        assert_eq!(p.proofs, 0, "block 200 is not confirmed yet");
        assert_eq!(p.next_scan, 200);
    }

    #[test]
    fn no_headers_are_due_when_the_head_already_confirms() {
        let p = plan(20, 20, 2, &[], &[(15, 100)], 160_000);
        assert_eq!(
            p,
            Plan {
                headers_to: 20,
                proofs: 1,
                next_scan: 19
            }
        );
    }
}

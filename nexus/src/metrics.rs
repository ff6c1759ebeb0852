//! Prometheus metrics served at `/metrics`. Labels are bounded: channel names come from genesis,
//! RPC method labels from the fixed list of served methods.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::{
    counter::Counter, family::Family, gauge::Gauge, histogram::Histogram,
};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    channel: String,
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    height: Family<ChannelLabel, Gauge>,
    txs: Family<ChannelLabel, Counter>,
    mempool: Family<ChannelLabel, Gauge>,
    rpc_latency: Family<MethodLabel, Histogram>,
    stage_wall: Family<StageLabel, Counter<f64, AtomicU64>>,
    stage_cpu: Family<StageLabel, Counter<f64, AtomicU64>>,
    stage_items: Family<StageLabel, Counter>,
    finality: Family<ChannelLabel, Histogram>,
    round_timeouts: Family<ChannelLabel, Counter>,
    backpressure: Family<ChannelLabel, Counter>,
}

/// Upper bounds (seconds) of the block finality histogram's buckets: fine below 100 ms, where
/// the goals are.
pub const FINALITY_BUCKETS: [f64; 20] = [
    0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.040, 0.050, 0.060, 0.080,
    0.100, 0.150, 0.200, 0.300, 0.500, 1.0, 2.0,
];

/// CPU time the calling thread has used (zero where the clock is not available).
pub fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Wall and thread CPU time of one stage of work, recorded with [`Metrics::stage`]. A stage
/// must run on one thread without awaiting (its CPU is the thread's).
pub struct StageTimer {
    wall: Instant,
    cpu: Duration,
}

impl StageTimer {
    /// Starts timing.
    pub fn start() -> Self {
        StageTimer {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }

    /// Records the stage: `items` transactions (or blocks) handled.
    pub fn stop(self, metrics: &Metrics, channel: &str, stage: &'static str, items: u64) {
        metrics.stage(
            channel,
            stage,
            items,
            self.wall.elapsed(),
            thread_cpu().saturating_sub(self.cpu),
        );
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("nexus");
        let height = Family::<ChannelLabel, Gauge>::default();
        let txs = Family::<ChannelLabel, Counter>::default();
        let mempool = Family::<ChannelLabel, Gauge>::default();
        let rpc_latency = Family::<MethodLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(
                [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0].into_iter(),
            )
        });
        registry.register(
            "block_height",
            "Height of the last committed block",
            height.clone(),
        );
        registry.register("transactions", "Transactions committed", txs.clone());
        registry.register(
            "mempool_size",
            "Transactions waiting in the pool",
            mempool.clone(),
        );
        registry.register(
            "rpc_latency_seconds",
            "JSON-RPC handling time by method",
            rpc_latency.clone(),
        );
        let stage_wall = Family::<StageLabel, Counter<f64, AtomicU64>>::default();
        let stage_cpu = Family::<StageLabel, Counter<f64, AtomicU64>>::default();
        let stage_items = Family::<StageLabel, Counter>::default();
        registry.register(
            "stage_wall_seconds",
            "Wall time per stage of a transaction's way (admission_rpc, admission_gossip, build, check, commit)",
            stage_wall.clone(),
        );
        registry.register(
            "stage_cpu_seconds",
            "Thread CPU time per stage",
            stage_cpu.clone(),
        );
        registry.register(
            "stage_items",
            "Transactions handled per stage",
            stage_items.clone(),
        );
        let finality = Family::<ChannelLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(FINALITY_BUCKETS.into_iter())
        });
        registry.register(
            "block_finality_seconds",
            "Time from this validator first holding a block (built or received) to its commit",
            finality.clone(),
        );
        let round_timeouts = Family::<ChannelLabel, Counter>::default();
        registry.register(
            "round_timeouts",
            "Rounds this validator gave up on (its round timer fired before a QC or TC moved it on)",
            round_timeouts.clone(),
        );
        let backpressure = Family::<ChannelLabel, Counter>::default();
        registry.register(
            "admission_waits",
            "RPC transactions that waited for room because the node was behind (mempool.backlog_ms)",
            backpressure.clone(),
        );
        Metrics {
            registry,
            finality,
            round_timeouts,
            backpressure,
            height,
            txs,
            mempool,
            rpc_latency,
            stage_wall,
            stage_cpu,
            stage_items,
        }
    }
}

impl Metrics {
    /// Records a committed block.
    pub fn block_committed(&self, channel: &str, height: u64, txs: u64, pending: usize) {
        let l = ChannelLabel {
            channel: channel.to_string(),
        };
        self.height.get_or_create(&l).set(height as i64);
        self.txs.get_or_create(&l).inc_by(txs);
        self.mempool.get_or_create(&l).set(pending as i64);
    }

    /// Records the pool size.
    pub fn mempool_size(&self, channel: &str, pending: usize) {
        self.mempool
            .get_or_create(&ChannelLabel {
                channel: channel.to_string(),
            })
            .set(pending as i64);
    }

    /// Records one RPC call.
    pub fn rpc_call(&self, method: &'static str, took: Duration) {
        self.rpc_latency
            .get_or_create(&MethodLabel { method })
            .observe(took.as_secs_f64());
    }

    /// Records how long a block took from first seen to final on this validator.
    pub fn block_final(&self, channel: &str, took: Duration) {
        self.finality
            .get_or_create(&ChannelLabel {
                channel: channel.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a round this validator gave up on.
    pub fn round_timeout(&self, channel: &str) {
        self.round_timeouts
            .get_or_create(&ChannelLabel {
                channel: channel.to_string(),
            })
            .inc();
    }

    /// Records an RPC transaction that had to wait for room.
    pub fn admission_waited(&self, channel: &str) {
        self.backpressure
            .get_or_create(&ChannelLabel {
                channel: channel.to_string(),
            })
            .inc();
    }

    /// Records one run of a stage.
    pub fn stage(
        &self,
        channel: &str,
        stage: &'static str,
        items: u64,
        wall: Duration,
        cpu: Duration,
    ) {
        let l = StageLabel {
            channel: channel.to_string(),
            stage,
        };
        self.stage_wall.get_or_create(&l).inc_by(wall.as_secs_f64());
        self.stage_cpu.get_or_create(&l).inc_by(cpu.as_secs_f64());
        self.stage_items.get_or_create(&l).inc_by(items);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

//! RocksDB storage, one set of column families per channel (`<channel>/<kind>`).
//!
//! Every block is committed in one atomic, synced write batch (block, indexes, transactions,
//! receipts, state changes and the head pointer together), so a crash at any point leaves either
//! the whole block or none of it.

use crate::error::NodeError;
use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};
use std::path::Path;
use std::sync::Arc;

/// The kinds of column family each channel has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// height (8 bytes BE) -> block RLP.
    Blocks,
    /// block hash -> height.
    BlockHashes,
    /// tx hash -> location (height 8 BE, index 4 BE, block hash 32), 0, receipt length (4 BE)
    /// and RLP, tx JSON (written before receipts moved in: location, then the JSON).
    Txs,
    /// tx hash -> receipt RLP, for transactions committed before receipts moved into `Txs`.
    Receipts,
    /// state key -> value.
    State,
    /// hash -> bytes (headers, vote sets, validator lists) for `icx_getDataByHash`.
    Data,
    /// node bookkeeping (head height, last votes, genesis).
    Meta,
    /// state tree node key (borsh) -> node (borsh).
    TreeNodes,
    /// key hash (32) + tree version (8 BE) -> 1 + value, or 0 for a deletion.
    TreeValues,
    /// tree version (8 BE) -> the nodes and values that version made stale.
    TreeStale,
}

const KINDS: [(Kind, &str); 10] = [
    (Kind::Blocks, "blocks"),
    (Kind::BlockHashes, "block_hashes"),
    (Kind::Txs, "txs"),
    (Kind::Receipts, "receipts"),
    (Kind::State, "state"),
    (Kind::Data, "data"),
    (Kind::Meta, "meta"),
    (Kind::TreeNodes, "tree_nodes"),
    (Kind::TreeValues, "tree_values"),
    (Kind::TreeStale, "tree_stale"),
];

fn cf_name(channel: &str, kind: Kind) -> String {
    let suffix = KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, s)| *s)
        .unwrap_or("meta");
    format!("{channel}/{suffix}")
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The node's database.
pub struct Storage {
    db: Arc<DB>,
    cache: rocksdb::Cache,
    guard: Arc<DiskGuard>,
}

/// Longest time between two looks at the disk's free space while writes go on.
const DISK_CHECK_EVERY_MS: u64 = 200;

/// Refuses writes once the disk holding the database has less free space than a reserve
/// (`state.min_free_disk_mb`), so the node stops with an error that says so before RocksDB runs
/// out of space in the middle of a write (Debian's librocksdb then aborts the process on an
/// assertion). It looks at most every [`DISK_CHECK_EVERY_MS`].
pub struct DiskGuard {
    path: std::path::PathBuf,
    min_free: u64,
    started: std::time::Instant,
    /// Milliseconds after `started` of the last look that found room (0: none yet).
    room_at_ms: std::sync::atomic::AtomicU64,
}

impl DiskGuard {
    fn new(path: &Path, min_free: u64) -> Self {
        DiskGuard {
            path: path.to_path_buf(),
            min_free,
            started: std::time::Instant::now(),
            room_at_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Bytes free to unprivileged writers on the disk holding the database.
    pub fn free_bytes(&self) -> Result<u64, NodeError> {
        let s = nix::sys::statvfs::statvfs(&self.path)
            .map_err(|e| NodeError::Io(std::io::Error::from(e)))?;
        Ok((s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64))
    }

    /// An error when the reserve is not free (looked at again only after a while with room).
    pub fn check(&self) -> Result<(), NodeError> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.min_free == 0 {
            return Ok(());
        }
        let now = (self.started.elapsed().as_millis() as u64).max(1);
        let last = self.room_at_ms.load(Relaxed);
        if last != 0 && now.saturating_sub(last) < DISK_CHECK_EVERY_MS {
            return Ok(());
        }
        let free = self.free_bytes()?;
        if free < self.min_free {
            return Err(NodeError::DiskFull {
                path: self.path.display().to_string(),
                free_mib: free >> 20,
                min_mib: self.min_free >> 20,
            });
        }
        self.room_at_ms.store(now, Relaxed);
        Ok(())
    }
}

/// Column family options: Bloom filters in table files and in the memtable, so a lookup of a
/// key that is not there (a new transaction's hash, on every admission and block check) rarely
/// reads a block or walks the memtable; one block cache shared by all of them (the state tree's
/// upper nodes are read for every block). Files written without filters stay readable.
fn cf_options(name: &str, cache: &rocksdb::Cache) -> Options {
    let mut o = Options::default();
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_block_cache(cache);
    if name.ends_with("/tree_nodes") {
        // Nodes are hashes (nothing to compress) read by point lookups on every block.
        o.set_compression_type(rocksdb::DBCompressionType::None);
        table.set_data_block_index_type(rocksdb::DataBlockIndexType::BinaryAndHash);
    }
    if name.ends_with("/tree_values") {
        // Keys are a key hash and a version: pruning seeks each key hash's old versions, and
        // Bloom filters of the 32-byte prefix let those seeks skip files without it.
        o.set_prefix_extractor(rocksdb::SliceTransform::create_fixed_prefix(32));
    }
    if name.ends_with("/state") || name.ends_with("/txs") {
        // Keys spread over the whole key space (addresses, transaction hashes): each merge of
        // level 0 into level 1 rewrites all of level 1 (some 250 MB of state at 10 million
        // accounts, 7 s of CPU), however little level 0 holds. Merging 12 files instead of
        // 4 rewrites it a third as often; a read checks a few more Bloom filters.
        o.set_level_zero_file_num_compaction_trigger(L0_MERGE_FILES);
        o.set_level_zero_slowdown_writes_trigger(L0_MERGE_FILES * 2);
        o.set_level_zero_stop_writes_trigger(L0_MERGE_FILES * 3);
    }
    o.set_block_based_table_factory(&table);
    o.set_arena_block_size(ARENA_BLOCK_BYTES);
    o.set_memtable_whole_key_filtering(true);
    o.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
    o
}

/// Level-0 files merged at once in column families of randomly spread keys.
const L0_MERGE_FILES: i32 = 12;
/// Memtable arena blocks: under the allocator's threshold for memory of their own
/// ([`crate::OVERSIZE_ALLOCATION_BYTES`]), so a new memtable reuses freed memory instead of
/// faulting in fresh pages (RocksDB's default is an eighth of the memtable, 8 MiB, which glibc,
/// the allocator before jemalloc, mapped anew for every memtable).
const ARENA_BLOCK_BYTES: usize = 512 << 10;
/// The memtable's Bloom filter as a share of its 64 MiB: 0.98 MiB (some 9 bits per entry of
/// 100 bytes), under the same threshold. Every new memtable zeroes its filter, and at 0.1 (6.4
/// MiB, mapped anew each time by glibc) that was a quarter of a node's page faults.
const MEMTABLE_BLOOM_RATIO: f64 = 0.015;
/// Memory for the shared block cache.
const BLOCK_CACHE_BYTES: usize = 256 << 20;
/// The block cache while a generated genesis is written ([`ChannelStore::small_block_cache`]).
const GENESIS_BLOCK_CACHE_BYTES: usize = 32 << 20;
/// Memtables of all column families together; past it the largest is flushed.
const WRITE_BUFFERS_BYTES: usize = 128 << 20;
/// Write-ahead log kept before the column families it holds are flushed (bounds what a
/// restart replays).
const WAL_BYTES: u64 = 128 << 20;

/// How the database reads its files.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadMode {
    /// Table files are read through memory maps (`[state] mmap_reads`).
    pub mmap: bool,
}

impl Storage {
    /// Opens (or creates) the database with column families for `channels`.
    pub fn open(path: &Path, channels: &[String]) -> Result<Self, NodeError> {
        Self::open_with(path, channels, ReadMode::default())
    }

    /// [`Storage::open`], reading files as `mode` says.
    pub fn open_with(path: &Path, channels: &[String], mode: ReadMode) -> Result<Self, NodeError> {
        let mut opts = Options::default();
        opts.set_allow_mmap_reads(mode.mmap);
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_db_write_buffer_size(WRITE_BUFFERS_BYTES);
        opts.set_max_total_wal_size(WAL_BYTES);
        let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut names: Vec<String> = DB::list_cf(&opts, path).unwrap_or_default();
        for ch in channels {
            for (k, _) in KINDS {
                let n = cf_name(ch, k);
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        let cfs = names
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(n, cf_options(n, &cache)));
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        Ok(Storage {
            db: Arc::new(db),
            cache,
            guard: Arc::new(DiskGuard::new(path, 0)),
        })
    }

    /// Keeps `bytes` free on the disk holding the database: an error now if they are not, and
    /// every later write is refused once they are not (0: no reserve).
    pub fn with_min_free(mut self, bytes: u64) -> Result<Self, NodeError> {
        let guard = DiskGuard::new(&self.guard.path, bytes);
        guard.check()?;
        self.guard = Arc::new(guard);
        Ok(self)
    }

    /// The store of one channel.
    pub fn channel(&self, channel: &str) -> ChannelStore {
        ChannelStore {
            db: self.db.clone(),
            cache: self.cache.clone(),
            guard: self.guard.clone(),
            names: KINDS.map(|(k, _)| cf_name(channel, k)),
        }
    }
}

/// Reads and batched writes of one channel.
#[derive(Clone)]
pub struct ChannelStore {
    db: Arc<DB>,
    cache: rocksdb::Cache,
    guard: Arc<DiskGuard>,
    names: [String; KINDS.len()],
}

fn index(kind: Kind) -> usize {
    KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(6)
}

impl ChannelStore {
    fn cf(&self, kind: Kind) -> Result<&rocksdb::ColumnFamily, NodeError> {
        let name = &self.names[index(kind)];
        self.db.cf_handle(name).ok_or(NodeError::Corrupt {
            what: "column family",
            reason: format!("{name} is missing"),
        })
    }

    /// Reads one value.
    pub fn get(&self, kind: Kind, key: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.db.get_cf(self.cf(kind)?, key)?)
    }

    /// Reads one value without keeping the blocks read in the block cache (for entries read
    /// once in a long while, whose blocks would only push out hotter ones).
    pub fn get_uncached(&self, kind: Kind, key: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
        let mut ro = rocksdb::ReadOptions::default();
        ro.fill_cache(false);
        Ok(self.db.get_cf_opt(self.cf(kind)?, key, &ro)?)
    }

    /// Reads many values at once (one RocksDB multi-get), in the order of `keys`, which must be
    /// sorted ascending.
    pub fn multi_get<K: AsRef<[u8]>>(
        &self,
        kind: Kind,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Vec<u8>>>, NodeError> {
        self.db
            .batched_multi_get_cf(self.cf(kind)?, keys, true)
            .into_iter()
            .map(|r| Ok(r?.map(|v| v.to_vec())))
            .collect()
    }

    /// The last entry whose key is at most `key` and starts with `prefix`.
    pub fn last_at_or_before(
        &self,
        kind: Kind,
        key: &[u8],
        prefix: &[u8],
    ) -> Result<Option<Entry>, NodeError> {
        let mut it = self.db.raw_iterator_cf(self.cf(kind)?);
        it.seek_for_prev(key);
        if let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k.starts_with(prefix) {
                return Ok(Some((k.to_vec(), v.to_vec())));
            }
        }
        it.status()?;
        Ok(None)
    }

    /// Visits entries in key order from `start` while `f` returns true.
    pub fn scan_from(
        &self,
        kind: Kind,
        start: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), NodeError> {
        for item in self.db.iterator_cf(
            self.cf(kind)?,
            IteratorMode::From(start, Direction::Forward),
        ) {
            let (k, v) = item?;
            if !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    /// Visits the keys of each range `[start, end)` with one iterator; a range's keys share
    /// the column family's prefix (where it has one), so its seek may skip files by their
    /// prefix filters.
    pub fn scan_ranges(
        &self,
        kind: Kind,
        ranges: &[(Vec<u8>, Vec<u8>)],
        mut f: impl FnMut(&[u8]),
    ) -> Result<(), NodeError> {
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_prefix_same_as_start(true);
        let mut it = self.db.raw_iterator_cf_opt(self.cf(kind)?, ro);
        for (start, end) in ranges {
            it.seek(start);
            while let Some(k) = it.key() {
                if k >= &end[..] {
                    break;
                }
                f(k);
                it.next();
            }
            it.status()?;
        }
        Ok(())
    }

    /// Rewrites a column family's files into sorted, non-overlapping ones (after a bulk load).
    pub fn compact(&self, kind: Kind) -> Result<(), NodeError> {
        self.db
            .compact_range_cf(self.cf(kind)?, None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }

    /// Holds the block cache (shared by every channel) at a small size until the returned
    /// guard drops. For writing a generated genesis of millions of accounts: each chunk's tree
    /// update reads the nodes it then replaces, so caching their blocks only fills memory (a
    /// node generating 2 million accounts peaked at 1,038 MiB with the full cache and at 815
    /// with this one, in the same time).
    pub fn small_block_cache(&self) -> SmallBlockCache {
        let mut cache = self.cache.clone();
        cache.set_capacity(GENESIS_BLOCK_CACHE_BYTES);
        SmallBlockCache { cache }
    }

    /// Bytes the block cache holds now (for tests).
    #[cfg(test)]
    pub fn block_cache_usage(&self) -> usize {
        self.cache.get_usage()
    }

    /// Starts a write batch.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            store: self,
            batch: WriteBatch::default(),
            error: None,
        }
    }
}

/// Restores the block cache's full size when dropped ([`ChannelStore::small_block_cache`]).
pub struct SmallBlockCache {
    cache: rocksdb::Cache,
}

impl Drop for SmallBlockCache {
    fn drop(&mut self) {
        self.cache.set_capacity(BLOCK_CACHE_BYTES);
    }
}

/// A write batch of one channel, applied atomically by [`Batch::commit`].
pub struct Batch<'a> {
    store: &'a ChannelStore,
    batch: WriteBatch,
    error: Option<NodeError>,
}

impl Batch<'_> {
    /// Adds a put.
    pub fn put(&mut self, kind: Kind, key: &[u8], value: &[u8]) {
        match self.store.cf(kind) {
            Ok(cf) => self.batch.put_cf(cf, key, value),
            Err(e) => self.error = Some(e),
        }
    }

    /// Bytes the batch holds so far (keys, values and RocksDB's framing).
    pub fn bytes(&self) -> usize {
        self.batch.size_in_bytes()
    }

    /// Adds a delete.
    pub fn delete(&mut self, kind: Kind, key: &[u8]) {
        match self.store.cf(kind) {
            Ok(cf) => self.batch.delete_cf(cf, key),
            Err(e) => self.error = Some(e),
        }
    }

    /// Writes everything atomically without waiting for the disk (for data that can be rebuilt
    /// or lost in a crash, such as caches).
    pub fn commit_relaxed(self) -> Result<(), NodeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.store.guard.check()?;
        self.store.db.write(self.batch)?;
        Ok(())
    }

    /// Writes everything atomically and waits for the write-ahead log to reach the disk.
    pub fn commit(self) -> Result<(), NodeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.store.guard.check()?;
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.store.db.write_opt(self.batch, &wo)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_refused_below_the_free_space_reserve() {
        let chans = ["public".to_string()];
        let dir = tempfile::tempdir().unwrap();
        let err = Storage::open(dir.path(), &chans)
            .unwrap()
            .with_min_free(u64::MAX)
            .err()
            .expect("no disk has 16 EiB free");
        assert!(matches!(err, NodeError::DiskFull { .. }), "{err}");
        assert!(err.to_string().contains("min_free_disk_mb"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), &chans)
            .unwrap()
            .with_min_free(1)
            .unwrap();
        let c = s.channel("public");
        let mut b = c.batch();
        b.put(Kind::Meta, b"a", b"1");
        b.commit().unwrap();
        // The same store once the reserve is out of reach: nothing more is written.
        let full = Storage {
            guard: Arc::new(DiskGuard::new(dir.path(), u64::MAX)),
            ..s
        };
        let c = full.channel("public");
        for relaxed in [false, true] {
            let mut b = c.batch();
            b.put(Kind::Meta, b"b", b"2");
            let r = if relaxed {
                b.commit_relaxed()
            } else {
                b.commit()
            };
            assert!(matches!(r, Err(NodeError::DiskFull { .. })), "{r:?}");
        }
        assert_eq!(c.get(Kind::Meta, b"b").unwrap(), None);
        assert_eq!(c.get(Kind::Meta, b"a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn channels_are_separate_and_batches_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let chans = vec!["public".to_string(), "notary-eth".to_string()];
        {
            let s = Storage::open(dir.path(), &chans).unwrap();
            let a = s.channel("public");
            let mut b = a.batch();
            b.put(Kind::State, b"k", b"v1");
            b.put(Kind::Meta, b"head", b"1");
            b.commit().unwrap();
            assert_eq!(
                s.channel("notary-eth").get(Kind::State, b"k").unwrap(),
                None
            );
        }
        let s = Storage::open(dir.path(), &chans[..1]).unwrap();
        assert_eq!(
            s.channel("public").get(Kind::State, b"k").unwrap(),
            Some(b"v1".to_vec())
        );
    }

    #[test]
    fn a_folder_reads_the_same_through_memory_maps() {
        let dir = tempfile::tempdir().unwrap();
        let chans = vec!["public".to_string()];
        let keys: Vec<[u8; 8]> = (0u64..2_000).map(|i| (i * 7919).to_be_bytes()).collect();
        {
            let s = Storage::open(dir.path(), &chans).unwrap();
            let a = s.channel("public");
            let mut b = a.batch();
            for k in &keys {
                b.put(Kind::TreeNodes, k, &[k.as_slice(), b"node"].concat());
            }
            b.commit().unwrap();
            // Into table files, where the mapped reads happen.
            a.compact(Kind::TreeNodes).unwrap();
        }
        let mode = ReadMode { mmap: true };
        let s = Storage::open_with(dir.path(), &chans, mode).unwrap();
        let a = s.channel("public");
        let mut sorted = keys.clone();
        sorted.sort();
        let all = a.multi_get(Kind::TreeNodes, &sorted).unwrap();
        for (k, v) in sorted.iter().zip(&all) {
            assert_eq!(
                v.as_deref(),
                Some([k.as_slice(), b"node"].concat().as_slice())
            );
            assert_eq!(a.get(Kind::TreeNodes, k).unwrap(), v.clone());
        }
        assert_eq!(a.get(Kind::TreeNodes, b"absent").unwrap(), None);
        let before = a
            .last_at_or_before(Kind::TreeNodes, &(7919u64 * 5 + 1).to_be_bytes(), &[0])
            .unwrap();
        assert_eq!(
            before.map(|(k, _)| k),
            Some((7919u64 * 5).to_be_bytes().to_vec())
        );
        let options = recorded_db_option(dir.path(), "allow_mmap_reads");
        assert_eq!(options.as_deref(), Some("true"));
    }

    #[test]
    fn the_block_cache_stays_small_while_asked_and_grows_after() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), &["public".to_string()]).unwrap();
        let a = s.channel("public");
        // 48 MB in table files, more than the small cache holds.
        let value = vec![7u8; 4096];
        let keys: Vec<[u8; 8]> = (0u64..12_000).map(u64::to_be_bytes).collect();
        for chunk in keys.chunks(1_000) {
            let mut b = a.batch();
            for k in chunk {
                b.put(Kind::Blocks, k, &value);
            }
            b.commit_relaxed().unwrap();
        }
        a.compact(Kind::Blocks).unwrap();
        let read_all = || {
            for k in &keys {
                assert_eq!(a.get(Kind::Blocks, k).unwrap().map(|v| v.len()), Some(4096));
            }
        };
        {
            let _small = a.small_block_cache();
            read_all();
            let used = a.block_cache_usage();
            assert!(
                used <= GENESIS_BLOCK_CACHE_BYTES + (1 << 20),
                "{used} bytes cached while held small"
            );
        }
        read_all();
        let used = a.block_cache_usage();
        assert!(
            used > 40 << 20,
            "only {used} bytes cached after the guard dropped"
        );
    }

    #[test]
    fn uncached_reads_leave_the_block_cache_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), &["public".to_string()]).unwrap();
        let a = s.channel("public");
        // 8 MB in table files.
        let value = vec![7u8; 4096];
        let keys: Vec<[u8; 8]> = (0u64..2_000).map(u64::to_be_bytes).collect();
        let mut b = a.batch();
        for k in &keys {
            b.put(Kind::TreeNodes, k, &value);
        }
        b.commit_relaxed().unwrap();
        a.compact(Kind::TreeNodes).unwrap();
        let before = a.block_cache_usage();
        for k in &keys {
            assert_eq!(
                a.get_uncached(Kind::TreeNodes, k).unwrap(),
                Some(value.clone())
            );
        }
        assert_eq!(a.get_uncached(Kind::TreeNodes, b"absent").unwrap(), None);
        let after = a.block_cache_usage();
        assert!(
            after < before + (1 << 20),
            "uncached reads grew the cache from {before} to {after} bytes"
        );
        for k in &keys {
            assert_eq!(a.get(Kind::TreeNodes, k).unwrap(), Some(value.clone()));
        }
        let cached = a.block_cache_usage();
        assert!(
            cached > after + (6 << 20),
            "cached reads grew the cache from {after} to only {cached} bytes"
        );
    }

    /// A database-wide option RocksDB recorded in its latest OPTIONS file.
    fn recorded_db_option(dir: &Path, name: &str) -> Option<String> {
        let text = latest_options(dir)?;
        let section = text.split("[DBOptions]").nth(1)?.split("\n[").next()?;
        section.lines().find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{name}="))
                .map(str::to_string)
        })
    }

    fn latest_options(dir: &Path) -> Option<String> {
        let latest = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.starts_with("OPTIONS-"))
            .max_by_key(|n| n[8..].parse::<u64>().unwrap_or(0))?;
        Some(std::fs::read_to_string(dir.join(latest)).unwrap())
    }

    /// An option RocksDB recorded for one column family (in its latest OPTIONS file).
    fn recorded_option(dir: &Path, cf: &str, name: &str) -> Option<String> {
        let text = latest_options(dir)?;
        let section = text
            .split("[CFOptions \"")
            .find(|s| s.starts_with(&format!("{cf}\"")))?;
        let section = section.split("\n[").next()?;
        section.lines().find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{name}="))
                .map(str::to_string)
        })
    }

    #[test]
    fn randomly_keyed_families_merge_more_level_0_files_at_once() {
        let dir = tempfile::tempdir().unwrap();
        drop(Storage::open(dir.path(), &["public".to_string()]).unwrap());
        let trigger = |cf: &str| {
            recorded_option(dir.path(), cf, "level0_file_num_compaction_trigger")
                .unwrap_or_else(|| panic!("no compaction trigger recorded for {cf}"))
        };
        let twelve = L0_MERGE_FILES.to_string();
        assert_eq!(trigger("public/state"), twelve);
        assert_eq!(trigger("public/txs"), twelve);
        // Writes would stop well after merges start, never before.
        let stop = recorded_option(dir.path(), "public/state", "level0_stop_writes_trigger");
        assert_eq!(stop, Some((L0_MERGE_FILES * 3).to_string()));
        // The others keep RocksDB's default.
        assert_eq!(trigger("public/tree_nodes"), "4");
        assert_eq!(trigger("public/blocks"), "4");
    }

    #[test]
    fn memtable_allocations_come_from_the_heap() {
        let dir = tempfile::tempdir().unwrap();
        drop(Storage::open(dir.path(), &["public".to_string()]).unwrap());
        let limit = crate::OVERSIZE_ALLOCATION_BYTES as f64;
        for (_, kind) in KINDS {
            let cf = format!("public/{kind}");
            let number = |name: &str| -> f64 {
                recorded_option(dir.path(), &cf, name)
                    .unwrap_or_else(|| panic!("no {name} recorded for {cf}"))
                    .parse()
                    .unwrap_or_else(|e| panic!("{name} of {cf}: {e}"))
            };
            let arena = number("arena_block_size");
            let bloom = number("memtable_prefix_bloom_size_ratio") * number("write_buffer_size");
            assert!(
                arena > 0.0 && arena < limit,
                "{cf}: arena blocks of {arena} bytes"
            );
            assert!(
                bloom > 0.0 && bloom < limit,
                "{cf}: a memtable filter of {bloom} bytes"
            );
        }
    }

    #[test]
    fn ranges_and_multi_gets_see_exactly_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), &["public".to_string()]).unwrap();
        let a = s.channel("public");
        let key = |p: u8, v: u64| {
            let mut k = vec![p; 32];
            k.extend_from_slice(&v.to_be_bytes());
            k
        };
        let mut b = a.batch();
        for p in [1u8, 2, 3] {
            for v in 0..5 {
                b.put(Kind::TreeValues, &key(p, v), b"x");
            }
        }
        b.commit().unwrap();
        // Versions below 3 of prefix 1 and below 1 of prefix 3; prefix 2 untouched.
        let mut seen = Vec::new();
        a.scan_ranges(
            Kind::TreeValues,
            &[(key(1, 0), key(1, 3)), (key(3, 0), key(3, 1))],
            |k| seen.push(k.to_vec()),
        )
        .unwrap();
        assert_eq!(seen, vec![key(1, 0), key(1, 1), key(1, 2), key(3, 0)]);
        let got = a
            .multi_get(Kind::TreeValues, &[key(1, 4), key(2, 9), key(3, 0)])
            .unwrap();
        assert_eq!(got, vec![Some(b"x".to_vec()), None, Some(b"x".to_vec())]);
    }
}

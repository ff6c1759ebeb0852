//! Recently read values of a channel's committed state, kept in memory in front of RocksDB.
//!
//! Every transaction reads its sender's balance at admission and again when a block executes
//! it, and the same accounts (a busy sender, a popular recipient, a SCORE's storage) are read
//! block after block. A read from RocksDB walks the memtable's skip list and, for a key not
//! there, the Bloom filters of each table file; here it is one hash lookup.
//!
//! The cache holds what the committed state holds: a commit, once its batch is on disk, gives
//! every cached key it wrote the new value ([`StateCache::committed`]), and a value read from
//! RocksDB is only kept if no commit finished while it was read ([`StateCache::fill`] takes the
//! generation [`StateCache::get`] returned), so a read that raced a commit cannot put back the
//! value the commit replaced.

use nexus_score::state::Writes;
use std::collections::HashMap;
use std::sync::Mutex;

/// Entries past which the cache is emptied and refilled.
const MAX_ENTRIES: usize = 65_536;
/// Keys and values longer than this are read from RocksDB every time.
const MAX_BYTES: usize = 256;

/// A lookup's outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum Cached {
    /// The committed value (`None`: the key is absent).
    Hit(Option<Vec<u8>>),
    /// Not cached; pass the generation to [`StateCache::fill`] with what RocksDB answers.
    Miss(u64),
}

#[derive(Default)]
struct Inner {
    /// Commits finished since the cache was made.
    generation: u64,
    values: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

/// The cache of one channel's committed state.
#[derive(Default)]
pub struct StateCache {
    inner: Mutex<Inner>,
}

impl StateCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value of `key`, or the generation to fill it at.
    pub fn get(&self, key: &[u8]) -> Cached {
        let inner = self.lock();
        match inner.values.get(key) {
            Some(v) => Cached::Hit(v.clone()),
            None => Cached::Miss(inner.generation),
        }
    }

    /// Keeps `value`, read from RocksDB after [`StateCache::get`] answered `Miss(generation)`,
    /// unless a commit has finished since.
    pub fn fill(&self, key: &[u8], value: &Option<Vec<u8>>, generation: u64) {
        if key.len() > MAX_BYTES || value.as_ref().is_some_and(|v| v.len() > MAX_BYTES) {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.values.len() >= MAX_ENTRIES {
            inner.values.clear();
        }
        inner.values.insert(key.to_vec(), value.clone());
    }

    /// After a commit's batch is on disk: the cached keys it wrote take their new values.
    pub fn committed(&self, writes: &Writes) {
        let mut inner = self.lock();
        for (k, v) in writes {
            if let Some(slot) = inner.values.get_mut(k.as_slice()) {
                if v.as_ref().is_some_and(|v| v.len() > MAX_BYTES) {
                    inner.values.remove(k.as_slice());
                } else {
                    slot.clone_from(v);
                }
            }
        }
        inner.generation += 1;
    }

    /// Entries held (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().values.len()
    }

    /// True when nothing is cached (for tests).
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(kvs: &[(&[u8], Option<&[u8]>)]) -> Writes {
        kvs.iter()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect()
    }

    fn fill(c: &StateCache, key: &[u8], value: Option<&[u8]>) {
        let Cached::Miss(g) = c.get(key) else {
            panic!("{key:?} was cached already");
        };
        c.fill(key, &value.map(<[u8]>::to_vec), g);
    }

    #[test]
    fn a_filled_value_and_a_filled_absence_are_hits() {
        let c = StateCache::default();
        assert_eq!(c.get(b"a"), Cached::Miss(0));
        fill(&c, b"a", Some(b"1"));
        fill(&c, b"b", None);
        assert_eq!(c.get(b"a"), Cached::Hit(Some(b"1".to_vec())));
        assert_eq!(c.get(b"b"), Cached::Hit(None));
    }

    #[test]
    fn a_commit_gives_cached_keys_their_new_values_and_leaves_others_out() {
        let c = StateCache::default();
        fill(&c, b"a", Some(b"1"));
        fill(&c, b"b", None);
        fill(&c, b"gone", Some(b"x"));
        c.committed(&writes(&[
            (b"a", Some(b"2")),
            (b"b", Some(b"3")),
            (b"gone", None),
            (b"new", Some(b"4")),
        ]));
        assert_eq!(c.get(b"a"), Cached::Hit(Some(b"2".to_vec())));
        assert_eq!(c.get(b"b"), Cached::Hit(Some(b"3".to_vec())));
        assert_eq!(c.get(b"gone"), Cached::Hit(None));
        assert_eq!(
            c.get(b"new"),
            Cached::Miss(1),
            "a key only written is read when asked"
        );
    }

    #[test]
    fn a_read_that_raced_a_commit_is_not_kept() {
        let c = StateCache::default();
        let Cached::Miss(g) = c.get(b"a") else {
            panic!("empty cache hit");
        };
        // RocksDB answered the value from before the commit; the commit then finished.
        c.committed(&writes(&[(b"a", Some(b"new"))]));
        c.fill(b"a", &Some(b"old".to_vec()), g);
        assert_eq!(c.get(b"a"), Cached::Miss(1));
    }

    #[test]
    fn long_keys_and_values_are_not_kept_and_a_long_new_value_drops_its_key() {
        let c = StateCache::default();
        let long = vec![7u8; MAX_BYTES + 1];
        fill(&c, &long, Some(b"1"));
        fill(&c, b"k", Some(&long));
        assert!(c.is_empty());
        fill(&c, b"k2", Some(b"short"));
        c.committed(&writes(&[(b"k2", Some(&long))]));
        assert!(matches!(c.get(b"k2"), Cached::Miss(_)));
    }

    #[test]
    fn a_full_cache_is_emptied_before_it_grows_past_its_bound() {
        let c = StateCache::default();
        for i in 0..MAX_ENTRIES as u32 {
            fill(&c, &i.to_be_bytes(), Some(b"v"));
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        fill(&c, b"one more", Some(b"v"));
        assert_eq!(c.len(), 1);
    }
}

//! The plugins a runtime keeps loaded, by digest. Bounded: a chain that uploads version after
//! version must not grow the operator without limit. The least recently used plugin goes
//! first; pinned ones (the bundled renderers, `--plugin` files) never go. A plugin that is
//! evicted but still in use stays alive where it is used (it is reference-counted); only the
//! runtime forgets it, and loads it again if it is asked for again.

use std::collections::HashMap;

#[derive(Debug)]
pub(crate) struct LoadedSet<T> {
    capacity: usize,
    clock: u64,
    entries: HashMap<String, Entry<T>>,
}

#[derive(Debug)]
struct Entry<T> {
    value: T,
    last_used: u64,
    pinned: bool,
}

impl<T: Clone> LoadedSet<T> {
    /// Keeps at most `capacity` unpinned entries.
    pub(crate) fn new(capacity: usize) -> Self {
        LoadedSet {
            capacity,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    /// The entry for `digest`, marked as just used.
    pub(crate) fn get(&mut self, digest: &str) -> Option<T> {
        self.clock += 1;
        let entry = self.entries.get_mut(digest)?;
        entry.last_used = self.clock;
        Some(entry.value.clone())
    }

    /// Adds `value` under `digest` unless an entry is there already (then that one wins, as
    /// when two threads compiled the same bytes), evicting the least recently used unpinned
    /// entries beyond the capacity. Returns the entry kept.
    pub(crate) fn insert(&mut self, digest: &str, value: T) -> T {
        if let Some(existing) = self.get(digest) {
            return existing;
        }
        self.entries.insert(
            digest.to_string(),
            Entry {
                value: value.clone(),
                last_used: self.clock,
                pinned: false,
            },
        );
        while self.entries.values().filter(|e| !e.pinned).count() > self.capacity {
            let oldest = self
                .entries
                .iter()
                .filter(|(_, e)| !e.pinned)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
                .expect("more unpinned entries than the capacity");
            self.entries.remove(&oldest);
        }
        value
    }

    /// Keeps `digest` loaded for good.
    pub(crate) fn pin(&mut self, digest: &str) {
        if let Some(entry) = self.entries.get_mut(digest) {
            entry.pinned = true;
        }
    }

    /// Every entry, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.values().map(|e| &e.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_unpinned_plugin_is_forgotten_first() {
        let mut set = LoadedSet::new(2);
        set.insert("bundled", 0);
        set.pin("bundled");
        set.insert("a", 1);
        set.insert("b", 2);
        assert_eq!(set.get("a"), Some(1)); // b is now the least recently used
        set.insert("c", 3);
        assert_eq!(set.get("b"), None);
        assert_eq!(set.get("a"), Some(1));
        assert_eq!(set.get("c"), Some(3));
        assert_eq!(set.get("bundled"), Some(0), "pinned entries never go");
    }

    #[test]
    fn inserting_a_digest_twice_keeps_the_first() {
        let mut set = LoadedSet::new(4);
        assert_eq!(set.insert("a", 1), 1);
        assert_eq!(set.insert("a", 2), 1);
        assert_eq!(set.values().count(), 1);
    }
}

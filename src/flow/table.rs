//! A shard's private connection table: connections live in a slab (a `Vec`,
//! whose untouched tail costs no memory), found through a hash index of slot
//! numbers. The index stores 4 bytes per connection instead of a copy of the
//! key, which keeps a tracked connection within the memory budget.

use super::conn::Conn;
use crate::addr::FlowKey;
use hashbrown::HashTable;

#[derive(Clone, Copy, Debug)]
pub struct Flow<K> {
    pub key: K,
    /// Bumped whenever the slot is reused or the 4-tuple starts a new
    /// connection, so stale timer entries can be recognised.
    pub generation: u32,
    pub vacant: bool,
    /// A linger timer entry is queued for this connection.
    pub linger_armed: bool,
    pub first_ts: u64,
    pub last_ts: u64,
    pub conn: Conn,
}

pub struct Table<K> {
    slots: Vec<Flow<K>>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

impl<K: FlowKey> Default for Table<K> {
    fn default() -> Self {
        Table { slots: Vec::new(), free: Vec::new(), index: HashTable::new() }
    }
}

impl<K: FlowKey> Table<K> {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    #[inline]
    pub fn find(&self, key: &K, hash: u64) -> Option<u32> {
        self.index.find(hash, |&i| self.slots[i as usize].key == *key).copied()
    }

    pub fn insert(&mut self, key: K, hash: u64, ts: u64, conn: Conn) -> u32 {
        let slot = match self.free.pop() {
            Some(i) => {
                let f = &mut self.slots[i as usize];
                *f = Flow {
                    key,
                    generation: f.generation.wrapping_add(1),
                    vacant: false,
                    linger_armed: false,
                    first_ts: ts,
                    last_ts: ts,
                    conn,
                };
                i
            }
            None => {
                self.slots.push(Flow {
                    key,
                    generation: 0,
                    vacant: false,
                    linger_armed: false,
                    first_ts: ts,
                    last_ts: ts,
                    conn,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(hash, slot, |&i| slots[i as usize].key.hash64());
        slot
    }

    pub fn remove(&mut self, slot: u32) {
        let f = &mut self.slots[slot as usize];
        if f.vacant {
            return;
        }
        f.vacant = true;
        let key = f.key;
        let slots = &self.slots;
        if let Ok(e) = self.index.find_entry(key.hash64(), |&i| slots[i as usize].key == key && i == slot) {
            e.remove();
        }
        self.free.push(slot);
    }

    #[inline]
    pub fn get(&self, slot: u32) -> Option<&Flow<K>> {
        self.slots.get(slot as usize).filter(|f| !f.vacant)
    }

    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Flow<K>> {
        self.slots.get_mut(slot as usize).filter(|f| !f.vacant)
    }

    /// Live connections with their slots.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Flow<K>)> {
        self.slots.iter().enumerate().filter(|(_, f)| !f.vacant).map(|(i, f)| (i as u32, f))
    }

    /// Bytes held, for the memory report: slab, index and free list.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Flow<K>>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.free.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Key4;

    fn key(port: u16) -> Key4 {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[10, 0, 0, 1]);
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[10, 0, 0, 2]);
        Key4::canonical(&a, &b, port, 80).0
    }

    #[test]
    fn insert_find_remove_reuse() {
        let mut t: Table<Key4> = Table::default();
        let k1 = key(1000);
        let s1 = t.insert(k1, k1.hash64(), 5, Conn::default());
        assert_eq!(t.find(&k1, k1.hash64()), Some(s1));
        t.remove(s1);
        assert_eq!(t.find(&k1, k1.hash64()), None);
        assert!(t.get(s1).is_none());
        let k2 = key(1001);
        let s2 = t.insert(k2, k2.hash64(), 6, Conn::default());
        assert_eq!(s2, s1, "freed slot is reused");
        assert_eq!(t.get(s2).unwrap().generation, 1);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn flow_entry_fits_the_memory_budget() {
        assert!(std::mem::size_of::<Flow<Key4>>() <= 160, "{}", std::mem::size_of::<Flow<Key4>>());
        assert!(std::mem::size_of::<Flow<crate::addr::Key6>>() <= 192);
    }
}

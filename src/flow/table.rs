//! A shard's private connection table: connections live in a slab of
//! fixed-size chunks, found through a hash index of slot numbers. The index
//! stores 8 bytes per bucket instead of a copy of the key, which keeps a
//! tracked connection within the memory budget.

use super::conn::Conn;
use super::index::{Index, prefetch};
use super::slab::Slab;
use crate::addr::FlowKey;
use crate::analysis::netstat::MibFlow;

/// One tracked connection: its state machine and the netstat analyzer's
/// counts, which every packet updates (other analyzers keep theirs beside the
/// table). An IPv4 entry is aligned to and fills exactly 128 bytes (the key
/// type picks the alignment), so a lookup touches two known cache lines.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Flow<K: FlowKey> {
    _align: [K::Align; 0],
    pub key: K,
    pub vacant: bool,
    /// A linger timer entry is queued for this connection.
    pub linger_armed: bool,
    pub last_ts: u64,
    pub conn: Conn,
    pub mib: MibFlow,
}

pub struct Table<K: FlowKey> {
    slots: Slab<Flow<K>>,
    /// Per slot and side, bumped whenever that side's timed state changes
    /// (and when the slot is reused): a queued timer entry is live only if it
    /// carries the current epoch. Kept apart from the slab, dense, so a stale
    /// entry is recognised without touching its connection.
    epochs: Vec<[u16; 2]>,
    free: Vec<u32>,
    index: Index,
}

impl<K: FlowKey> Default for Table<K> {
    fn default() -> Self {
        Table { slots: Slab::default(), epochs: Vec::new(), free: Vec::new(), index: Index::default() }
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
        self.index.find(hash, |i| self.slots.get(i as usize).is_some_and(|f| f.key == *key))
    }

    /// Starts loading what a lookup of `hash` will touch first.
    #[inline]
    pub fn prefetch_bucket(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Starts loading the connection `hash` most likely names.
    #[inline]
    pub fn prefetch_flow(&self, hash: u64) {
        if let Some(slot) = self.index.peek(hash) {
            self.prefetch_slot(slot);
            self.prefetch_epoch(slot);
        }
    }

    /// Starts loading connection `slot`, all of its cache lines.
    #[inline]
    pub fn prefetch_slot(&self, slot: u32) {
        if let Some(f) = self.slots.get(slot as usize) {
            let p = f as *const Flow<K> as *const u8;
            for off in (0..std::mem::size_of::<Flow<K>>()).step_by(64) {
                // SAFETY: `off` stays inside the flow the reference points to.
                prefetch(unsafe { &*p.add(off) });
            }
        }
    }

    /// Starts loading the index bucket of the connection in `slot` (which
    /// reads the connection's key: best when it is already on its way).
    #[inline]
    pub fn prefetch_index_of(&self, slot: u32) {
        if let Some(f) = self.get(slot) {
            self.index.prefetch(f.key.hash64());
        }
    }

    pub fn insert(&mut self, key: K, hash: u64, ts: u64, conn: Conn) -> u32 {
        let flow =
            Flow { _align: [], key, vacant: false, linger_armed: false, last_ts: ts, conn, mib: MibFlow::default() };
        let slot = match self.free.pop() {
            Some(i) => {
                *self.slots.get_mut(i as usize).expect("freed slot exists") = flow;
                i
            }
            None => {
                self.epochs.push([0, 0]);
                self.slots.push(flow) as u32
            }
        };
        self.index.insert(hash, slot);
        slot
    }

    pub fn remove(&mut self, slot: u32) {
        let Some(f) = self.slots.get_mut(slot as usize) else { return };
        if f.vacant {
            return;
        }
        f.vacant = true;
        let hash = f.key.hash64();
        self.index.remove(hash, slot);
        // Its queued timer entries now fail the epoch check without a lookup.
        self.bump(slot, 0);
        self.bump(slot, 1);
        self.free.push(slot);
    }

    /// The current timer epoch of `slot`'s `side`.
    #[inline]
    pub fn epoch(&self, slot: u32, side: usize) -> u16 {
        self.epochs.get(slot as usize).map_or(u16::MAX, |e| e[side])
    }

    /// Invalidates the queued timer entries of `slot`'s `side`; returns the new epoch.
    #[inline]
    pub fn bump(&mut self, slot: u32, side: usize) -> u16 {
        let e = &mut self.epochs[slot as usize][side];
        *e = e.wrapping_add(1);
        *e
    }

    /// Starts loading the epoch of `slot`.
    #[inline]
    pub fn prefetch_epoch(&self, slot: u32) {
        if let Some(e) = self.epochs.get(slot as usize) {
            prefetch(e);
        }
    }

    #[inline]
    pub fn get(&self, slot: u32) -> Option<&Flow<K>> {
        self.slots.get(slot as usize).filter(|f| !f.vacant)
    }

    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Flow<K>> {
        self.slots.get_mut(slot as usize).filter(|f| !f.vacant)
    }

    /// Slots allocated, live or free: slot numbers run below this.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Live connections with their slots.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Flow<K>)> {
        self.slots.iter().filter(|(_, f)| !f.vacant).map(|(i, f)| (i as u32, f))
    }

    /// Hands every live connection to `f` while giving the table's memory
    /// back: the index first, then the slab a chunk at a time.
    pub fn consume(mut self, mut f: impl FnMut(&Flow<K>)) {
        self.index = Index::default();
        self.free = Vec::new();
        self.epochs = Vec::new();
        while let Some(chunk) = self.slots.pop_chunk() {
            chunk.iter().filter(|fl| !fl.vacant).for_each(&mut f);
        }
    }

    /// Bytes held, for the memory report: slab, index and free list.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity_bytes() + self.index.capacity() * std::mem::size_of::<u64>() + self.free.capacity() * 4
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
        assert_eq!(t.epoch(s2, 0), 1, "reuse invalidates the old occupant's timers");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn flow_entry_fits_the_memory_budget() {
        assert_eq!(std::mem::size_of::<Flow<Key4>>(), 128);
        assert_eq!(std::mem::align_of::<Flow<Key4>>(), 64);
        assert_eq!(std::mem::size_of::<Flow<crate::addr::Key6>>(), 136);
    }
}

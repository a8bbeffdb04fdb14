//! The hash index of a shard table: open addressing with linear probing over
//! 8-byte buckets holding a slot number and 32 bits of the key's hash.
//!
//! Written here rather than taken from a general map because the hot path
//! needs two things a map does not give: the bucket address of a key before
//! looking it up (so a batch can prefetch it), and a tag comparison that
//! almost never touches the connection itself on a mismatch. The hash bits
//! also place the bucket, so growing never needs to re-read the keys.

/// Bucket layout: high 32 bits the hash tag, low 32 bits slot + 1 (0 = empty).
#[derive(Default)]
pub struct Index {
    buckets: Vec<u64>,
    len: usize,
}

const MIN_BUCKETS: usize = 64;
/// Indexes with fewer buckets than this are kept at most half full.
const SPARSE_UNTIL: usize = 1 << 18;

#[inline]
fn tag(hash: u64) -> u64 {
    (hash as u32 as u64) << 32
}

impl Index {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.buckets.len()
    }

    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        hash as u32 as usize & self.mask()
    }

    /// Hints the CPU to fetch the bucket where `hash` starts probing.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if !self.buckets.is_empty() {
            prefetch(&self.buckets[self.home(hash)]);
        }
    }

    /// The slot whose tag matches `hash` and for which `eq` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let (t, mask) = (tag(hash), self.mask());
        let mut i = self.home(hash);
        loop {
            let b = self.buckets[i];
            if b == 0 {
                return None;
            }
            if b & !0xffff_ffff == t && eq((b as u32) - 1) {
                return Some((b as u32) - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// The first slot whose tag matches `hash`, without checking its key:
    /// good enough to prefetch, and it touches nothing but the index.
    #[inline]
    pub fn peek(&self, hash: u64) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// Adds `slot` under `hash` (the caller knows the key is absent).
    pub fn insert(&mut self, hash: u64, slot: u32) {
        // A lookup that misses (every SYN of a flood) and a removal both walk
        // to the end of a probe run, and with linear probing runs lengthen
        // fast with the load: a few buckets at 1/2 full, eight and more at
        // 3/4. Small indexes (up to 2 MiB, 128k connections) grow at half
        // full; big ones at 3/4, where memory per connection counts more
        // than a few probes in a table that misses the cache anyway.
        let full = if self.buckets.len() < SPARSE_UNTIL { self.buckets.len() / 2 } else { self.buckets.len() / 4 * 3 };
        if self.len + 1 > full {
            self.grow();
        }
        self.place(tag(hash) | (slot as u64 + 1));
        self.len += 1;
    }

    fn place(&mut self, b: u64) {
        let mask = self.mask();
        let mut i = (b >> 32) as usize & mask;
        while self.buckets[i] != 0 {
            i = (i + 1) & mask;
        }
        self.buckets[i] = b;
    }

    fn grow(&mut self) {
        let n = (self.buckets.len() * 2).max(MIN_BUCKETS);
        let old = std::mem::replace(&mut self.buckets, vec![0; n]);
        huge_pages(&self.buckets);
        for b in old.into_iter().filter(|&b| b != 0) {
            self.place(b);
        }
    }

    /// Removes `slot` (stored under `hash`), closing the gap by shifting later
    /// entries of the probe run back (no tombstones, so lookups stay short).
    pub fn remove(&mut self, hash: u64, slot: u32) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let mask = self.mask();
        let want = tag(hash) | (slot as u64 + 1);
        let mut i = self.home(hash);
        loop {
            match self.buckets[i] {
                0 => return false,
                b if b == want => break,
                _ => i = (i + 1) & mask,
            }
        }
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let b = self.buckets[j];
            if b == 0 {
                break;
            }
            let k = (b >> 32) as usize & mask;
            // Move b into the hole unless its home lies cyclically in (i, j].
            let home_in_gap = if i <= j { i < k && k <= j } else { i < k || k <= j };
            if !home_in_gap {
                self.buckets[i] = b;
                i = j;
            }
        }
        self.buckets[i] = 0;
        self.len -= 1;
        true
    }
}

/// Asks the kernel to back a big array with huge pages where it can
/// (transparent huge pages in `madvise` mode, Linux): random lookups over it
/// then miss the TLB far less, and software prefetches (which a TLB miss may
/// drop) reach memory.
fn huge_pages<T>(v: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let (start, len) = (v.as_ptr() as usize, std::mem::size_of_val(v));
        let aligned = start.next_multiple_of(HUGE);
        let end = (start + len) / HUGE * HUGE;
        if end > aligned {
            // SAFETY: advice on pages of a live allocation; it changes no contents.
            unsafe { libc::madvise(aligned as *mut libc::c_void, end - aligned, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// Asks the CPU to start loading the cache line holding `r`.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: prefetching is a hint with no architectural effect; the pointer comes from a reference.
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(r as *const T as *const i8)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::mix64;

    #[test]
    fn insert_find_remove_keeps_every_other_entry_reachable() {
        let mut ix = Index::default();
        let n = 5000u32;
        for s in 0..n {
            ix.insert(mix64(s as u64 % 700), s); // many shared hashes: long probe runs
        }
        for s in (0..n).step_by(3) {
            assert!(ix.remove(mix64(s as u64 % 700), s));
        }
        for s in 0..n {
            let found = ix.find(mix64(s as u64 % 700), |x| x == s);
            assert_eq!(found.is_some(), s % 3 != 0, "slot {s}");
        }
        assert_eq!(ix.len(), (n - n.div_ceil(3)) as usize);
        assert!(!ix.remove(mix64(1), 999_999));
    }
}

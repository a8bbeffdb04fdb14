//! Storage for a shard's connections: fixed-size chunks that never move.
//!
//! A single growing `Vec` would copy itself on every doubling (for a
//! cache-line-aligned element type the allocator cannot grow in place), so for
//! a moment the table would need up to twice its memory. Chunks are allocated
//! once, filled, and given back one by one when the table is consumed.

const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;

pub struct Slab<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { chunks: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `v`; returns its index.
    pub fn push(&mut self, v: T) -> usize {
        if self.len == self.chunks.len() * CHUNK {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut().expect("a chunk with room").push(v);
        self.len += 1;
        self.len - 1
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> CHUNK_BITS).and_then(|c| c.get(i & (CHUNK - 1)))
    }

    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks.get_mut(i >> CHUNK_BITS).and_then(|c| c.get_mut(i & (CHUNK - 1)))
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.chunks.iter().flatten().enumerate()
    }

    /// Removes and returns the last chunk (for consuming the slab while freeing it).
    pub fn pop_chunk(&mut self) -> Option<Vec<T>> {
        let c = self.chunks.pop()?;
        self.len -= c.len();
        Some(c)
    }

    /// Bytes allocated for elements.
    pub fn capacity_bytes(&self) -> usize {
        self.chunks.len() * CHUNK * std::mem::size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_stay_valid_across_chunks() {
        let mut s = Slab::default();
        for i in 0..(CHUNK * 2 + 7) {
            assert_eq!(s.push(i as u64), i);
        }
        assert_eq!(s.get(CHUNK + 3), Some(&(CHUNK as u64 + 3)));
        *s.get_mut(5).unwrap() = 99;
        assert_eq!(s.iter().nth(5), Some((5, &99)));
        assert_eq!(s.pop_chunk().map(|c| c.len()), Some(7));
        assert_eq!(s.len(), CHUNK * 2);
        assert!(s.get(CHUNK * 2).is_none());
    }
}

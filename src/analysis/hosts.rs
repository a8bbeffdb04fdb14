//! Per-address counters of connections no longer tracked, within a bound.
//!
//! Without `--host`, every address that ever took part in TCP would keep an
//! entry: a flood of spoofed SYNs from five million sources would keep five
//! million. [`HostCounters`] holds at most `cap` addresses and, when full,
//! keeps the most active ones: each entry sits in a bag by the bit length of
//! its segment count (its *level*: 1 segment is level 1, 2–3 level 2, ...),
//! and a newcomer displaces an entry of the lowest non-empty level only if
//! its own level is higher; otherwise the newcomer is the one not kept.
//! Either way one entry is lost and counted. Everything is O(1): a bag is a
//! vector with swap-removal, and a bit mask says which bags hold entries.
//!
//! So the heavy hitters stay exact: an address with 2^k segments is only
//! displaced once `cap` addresses of level k or more exist. `--host`
//! addresses are never displaced (only they are kept then, with no bound).

use crate::addr::AddrHash;
use crate::report::TcpCounters;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// An address as a map key, hashed as one word: `IpAddr`'s own `Hash` feeds
/// the hasher its variant, a length and the bytes (three rounds of mixing),
/// and this map is looked up for every connection retired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastAddr(pub IpAddr);

impl Hash for FastAddr {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self.0 {
            IpAddr::V4(a) => h.write_u64(u32::from(a) as u64),
            IpAddr::V6(a) => {
                let b = u128::from(a);
                // Never equal to an IPv4 key's word for the addresses seen in practice; a
                // collision would only cost a probe, since keys are compared whole.
                h.write_u64((b as u64) ^ ((b >> 64) as u64).rotate_left(32) ^ 1 << 63);
            }
        }
    }
}

/// Bags by level: segment counts of 0 up to 2^64 - 1 have levels 0 to 64.
const LEVELS: usize = 65;

#[derive(Debug)]
struct Entry {
    addr: IpAddr,
    level: u8,
    /// Position in its level's bag.
    pos: u32,
    c: TcpCounters,
}

/// The bounded map of retired counters (see the module's doc).
#[derive(Debug)]
pub struct HostCounters {
    /// Most entries kept; `usize::MAX` for no bound.
    cap: usize,
    index: HashMap<FastAddr, u32, AddrHash>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    bags: Vec<Vec<u32>>,
    /// Bit `l` set: bag `l` is not empty.
    nonempty: u128,
    /// Entries lost to the bound (displaced, or not taken in).
    pub dropped: u64,
}

/// What an entry weighs: the segments its address sent and received.
fn weight(c: &TcpCounters) -> u64 {
    c.segments_received.saturating_add(c.segments_sent)
}

fn level_of(w: u64) -> u8 {
    (64 - w.leading_zeros()) as u8
}

impl HostCounters {
    pub fn new(cap: usize) -> HostCounters {
        HostCounters {
            cap: cap.max(1),
            index: HashMap::default(),
            entries: Vec::new(),
            free: Vec::new(),
            bags: (0..LEVELS).map(|_| Vec::new()).collect(),
            nonempty: 0,
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn get(&self, ip: &IpAddr) -> Option<&TcpCounters> {
        self.index.get(&FastAddr(*ip)).map(|&i| &self.entries[i as usize].c)
    }

    /// Every address kept, with its counters.
    pub fn iter(&self) -> impl Iterator<Item = (&IpAddr, &TcpCounters)> {
        self.index.iter().map(|(a, &i)| (&a.0, &self.entries[i as usize].c))
    }

    /// Adds `c` to the counters of `ip`, taking it in if it is among the most
    /// active (one entry is lost when full: counted in `dropped`).
    pub fn add(&mut self, ip: IpAddr, c: &TcpCounters) {
        if let Some(&i) = self.index.get(&FastAddr(ip)) {
            let e = &mut self.entries[i as usize];
            e.c.add(c);
            let l = level_of(weight(&e.c));
            if l != e.level {
                self.move_to(i, l);
            }
            return;
        }
        let l = level_of(weight(c));
        if self.index.len() >= self.cap {
            let lowest = self.nonempty.trailing_zeros() as u8;
            if l <= lowest {
                self.dropped += 1;
                return;
            }
            self.displace(lowest);
        }
        let e = Entry { addr: ip, level: l, pos: self.bags[l as usize].len() as u32, c: *c };
        let i = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = e;
                i
            }
            None => {
                self.entries.push(e);
                (self.entries.len() - 1) as u32
            }
        };
        self.bags[l as usize].push(i);
        self.nonempty |= 1 << l;
        self.index.insert(FastAddr(ip), i);
    }

    /// Forgets one entry of bag `l` (the last one: O(1)), counting it.
    fn displace(&mut self, l: u8) {
        let Some(&i) = self.bags[l as usize].last() else { return };
        self.unbag(i);
        let addr = self.entries[i as usize].addr;
        self.index.remove(&FastAddr(addr));
        self.free.push(i);
        self.dropped += 1;
    }

    /// Takes entry `i` out of its bag.
    fn unbag(&mut self, i: u32) {
        let (l, pos) = (self.entries[i as usize].level as usize, self.entries[i as usize].pos as usize);
        let bag = &mut self.bags[l];
        bag.swap_remove(pos);
        if let Some(&moved) = bag.get(pos) {
            self.entries[moved as usize].pos = pos as u32;
        }
        if bag.is_empty() {
            self.nonempty &= !(1 << l);
        }
    }

    fn move_to(&mut self, i: u32, l: u8) {
        self.unbag(i);
        let e = &mut self.entries[i as usize];
        e.level = l;
        e.pos = self.bags[l as usize].len() as u32;
        self.bags[l as usize].push(i);
        self.nonempty |= 1 << l;
    }

    /// Bytes held (for the memory report).
    pub fn heap_bytes(&self) -> usize {
        let bags: usize = self.bags.iter().map(|b| b.capacity() * 4).sum();
        self.index.capacity() * (std::mem::size_of::<(FastAddr, u32)>() + 1)
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.free.capacity() * 4
            + bags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(n: u64) -> TcpCounters {
        TcpCounters { segments_received: n, ..TcpCounters::default() }
    }

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn a_flood_of_one_segment_sources_never_displaces_a_busy_address() {
        let mut h = HostCounters::new(100);
        h.add(ip(0), &segs(1));
        for i in 1..100_000 {
            h.add(ip(i), &segs(1));
            // The flooded server hears every one of them.
            h.add(ip(0), &segs(1));
        }
        assert_eq!(h.get(&ip(0)), Some(&segs(100_000)));
        assert_eq!(h.len(), 100);
        assert_eq!(h.dropped, 100_000 - 100);
    }

    #[test]
    fn a_heavier_newcomer_displaces_the_lightest_and_growth_moves_levels() {
        let mut h = HostCounters::new(3);
        h.add(ip(1), &segs(1));
        h.add(ip(2), &segs(4));
        h.add(ip(3), &segs(1));
        // Full: as light as the lightest, so it is the one not kept.
        h.add(ip(4), &segs(1));
        assert!(h.get(&ip(4)).is_none());
        // ip(1) grows out of the lowest level; ip(3) is now the lightest.
        h.add(ip(1), &segs(7));
        h.add(ip(5), &segs(2));
        assert!(h.get(&ip(3)).is_none());
        assert_eq!(h.get(&ip(1)), Some(&segs(8)));
        assert_eq!(h.get(&ip(5)), Some(&segs(2)));
        assert_eq!((h.len(), h.dropped), (3, 2));
    }
}

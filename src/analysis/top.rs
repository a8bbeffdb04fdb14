//! Without `--host`, only the busiest hosts get a view (`--top N`): the
//! workers pick them together at each snapshot barrier, and publish the
//! rows and counters of those hosts alone, so a capture with a million
//! addresses never builds a million views, nor a million entries of anything.
//!
//! How the N are found without a map of every address: an address's score
//! (its table lines, then its segments) is a sum over its *contributions*:
//! the sides of tracked connections it is an endpoint of, its retired
//! counters, its listening sockets; spread over the workers. Most addresses
//! of a big capture contribute once (a client with one connection, a spoofed
//! source). So:
//! 1. every worker marks each contribution's address in a shared sketch: two
//!    rows of "seen once" / "seen twice" bits (a count-min sketch of 2-bit
//!    saturating counters, which never undercounts);
//! 2. an address the sketch has seen once in all is exactly what its one
//!    contribution says: the worker holding it ranks it on the spot (a
//!    bounded heap of the best N); the others (seen twice or more, or
//!    mistaken for that: a few percent) are summed in a map shared by the
//!    workers, as are addresses with listeners (counted once across workers);
//! 3. one worker picks the best N of both, and counts the rest.
//!
//! Memory: 4 bit arrays of 8 to 16 bits per contribution (4 to 8 bytes in all), the map of the few repeated addresses, and N candidates
//! per worker. Three barrier waits per snapshot.

use super::hosts::FastAddr;
use crate::addr::{AddrHash, AddrMap, AddrSet};
use crate::report::TcpCounters;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, RwLock};

/// What "busiest" means for the views asked for, and how many are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rank {
    /// Hosts shown (at least 1).
    pub n: usize,
    /// `-a` or `-l`: listening sockets are table lines.
    pub listeners: bool,
    /// `-s`: an address with counters and no table line has something to show.
    pub stats: bool,
    /// `-p`: only addresses of this family (`Some(true)`: IPv6).
    pub v6_only: Option<bool>,
    /// `-l` without `-s`: only addresses with listening sockets.
    pub listening_only: bool,
}

/// What was left out at the last snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Omitted {
    /// Hosts with something to show that did not make the top N.
    pub hosts: u64,
    /// Of those, the ones that only sent SYNs nobody answered (a flood's
    /// spoofed sources, a scan's probes).
    pub syn_only: u64,
}

/// One address's part of a score: table rows, listening ports, counters.
#[derive(Clone, Debug, Default)]
pub struct Score {
    pub rows: u64,
    pub ports: Vec<u16>,
    pub c: TcpCounters,
}

impl Score {
    fn add(&mut self, o: Score) {
        self.rows += o.rows;
        self.ports.extend(o.ports);
        self.c.add(&o.c);
    }
}

/// An address that only sent SYNs, none answered.
pub fn syn_only(c: &TcpCounters) -> bool {
    c.active_opens > 0 && c.passive_opens == 0 && c.segments_received == 0
}

/// Shows a visitor (its argument) every contribution of one worker.
pub type Contributions<'a> = &'a dyn Fn(&mut dyn FnMut(IpAddr, Score));

/// Ordering key: more table lines, then more segments, then the address (IPv4 first).
type Key = (Reverse<u64>, Reverse<u64>, bool, IpAddr);

impl Rank {
    /// The ordering key of an address with this (complete) score, if it has
    /// anything to show.
    fn key(&self, ip: IpAddr, s: &Score, ports: usize) -> Option<Key> {
        if self.v6_only.is_some_and(|v6| ip.is_ipv6() != v6) {
            return None;
        }
        if self.listening_only && ports == 0 {
            return None;
        }
        let lines = s.rows + if self.listeners { ports as u64 } else { 0 };
        let segs = s.c.segments_received + s.c.segments_sent;
        (lines > 0 || (self.stats && segs > 0)).then_some((Reverse(lines), Reverse(segs), ip.is_ipv6(), ip))
    }
}

/// The best N keys seen, and how many were seen.
struct Best {
    n: usize,
    heap: BinaryHeap<(Key, bool)>,
    seen: u64,
    syn_only: u64,
}

impl Best {
    fn new(n: usize) -> Best {
        Best { n, heap: BinaryHeap::with_capacity(n + 1), seen: 0, syn_only: 0 }
    }

    fn offer(&mut self, k: Key, syn: bool) {
        self.seen += 1;
        self.syn_only += syn as u64;
        self.keep(k, syn);
    }

    /// Keeps `k` if it is among the best N, without counting it as seen.
    fn keep(&mut self, k: Key, syn: bool) {
        // A max-heap of the best N: its top is the worst kept.
        if self.heap.len() < self.n {
            self.heap.push((k, syn));
        } else if self.heap.peek().is_some_and(|(top, _)| k < *top) {
            self.heap.pop();
            self.heap.push((k, syn));
        }
    }
}

/// 2 rows of "once"/"twice" bits over the contributions' addresses.
struct Sketch {
    mask: u64,
    once: [Vec<AtomicU64>; 2],
    twice: [Vec<AtomicU64>; 2],
}

impl Sketch {
    fn new(contributions: u64) -> Sketch {
        let bits = (contributions.saturating_mul(8)).next_power_of_two().max(1 << 12);
        let words = || (0..bits / 64).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Sketch { mask: bits - 1, once: [words(), words()], twice: [words(), words()] }
    }

    fn spots(&self, h: u64) -> [u64; 2] {
        [h & self.mask, h.rotate_left(32) & self.mask]
    }

    fn mark(&self, h: u64) {
        for (r, b) in self.spots(h).into_iter().enumerate() {
            let (w, bit) = ((b / 64) as usize, 1u64 << (b % 64));
            if self.twice[r][w].load(Ordering::Relaxed) & bit != 0 {
                continue;
            }
            if self.once[r][w].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
                self.twice[r][w].fetch_or(bit, Ordering::Relaxed);
            }
        }
    }

    /// Whether the address may have contributed more than once (never a
    /// wrong "no": then it contributed exactly once).
    fn repeated(&self, h: u64) -> bool {
        self.spots(h)
            .into_iter()
            .enumerate()
            .all(|(r, b)| self.twice[r][(b / 64) as usize].load(Ordering::Relaxed) & (1u64 << (b % 64)) != 0)
    }
}

/// State the workers share to pick the top N (one per run, behind `Interest::Top`).
pub struct TopShared {
    pub rank: Rank,
    barrier: Barrier,
    hash: AddrHash,
    contributions: AtomicU64,
    sketch: RwLock<Option<Sketch>>,
    repeated: Mutex<AddrMap<Score>>,
    candidates: Mutex<Best>,
    selected: RwLock<Arc<AddrSet<IpAddr>>>,
    omitted: Mutex<Omitted>,
}

impl std::fmt::Debug for TopShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopShared").field("rank", &self.rank).finish_non_exhaustive()
    }
}

impl TopShared {
    /// For `workers` workers, each of which calls [`TopShared::select`] at every snapshot.
    pub fn new(rank: Rank, workers: usize) -> TopShared {
        let rank = Rank { n: rank.n.max(1), ..rank };
        TopShared {
            rank,
            barrier: Barrier::new(workers.max(1)),
            hash: AddrHash::default(),
            contributions: AtomicU64::new(0),
            sketch: RwLock::new(None),
            repeated: Mutex::new(AddrMap::default()),
            candidates: Mutex::new(Best::new(rank.n)),
            selected: RwLock::new(Arc::default()),
            omitted: Mutex::new(Omitted::default()),
        }
    }

    /// The hosts picked at the last snapshot.
    pub fn selected(&self) -> Arc<AddrSet<IpAddr>> {
        self.selected.read().expect("top lock").clone()
    }

    /// What the last snapshot left out.
    pub fn omitted(&self) -> Omitted {
        *self.omitted.lock().expect("top lock")
    }

    /// One worker's part in picking the top N; every worker calls it at the
    /// same snapshot and all return together, the pick made. `each` shows a
    /// visitor every contribution of this worker (it is called twice: marking,
    /// then ranking), `n` how many there are (it sizes the sketch; counted,
    /// not walked), `has_ports` whether an address has listening sockets here.
    pub fn select(&self, each: Contributions<'_>, n: u64, has_ports: &dyn Fn(&IpAddr) -> bool) {
        self.contributions.fetch_add(n, Ordering::Relaxed);
        if self.barrier.wait().is_leader() {
            let total = self.contributions.swap(0, Ordering::Relaxed);
            *self.sketch.write().expect("top lock") = Some(Sketch::new(total));
            *self.candidates.lock().expect("top lock") = Best::new(self.rank.n);
        }
        self.barrier.wait();
        {
            let sketch = self.sketch.read().expect("top lock");
            let sketch = sketch.as_ref().expect("sketch made by the leader");
            each(&mut |ip, _| sketch.mark(self.hash.hash_one(FastAddr(ip))));
        }
        self.barrier.wait();
        let mut mine = Best::new(self.rank.n);
        let mut repeated: AddrMap<Score> = AddrMap::default();
        {
            let sketch = self.sketch.read().expect("top lock");
            let sketch = sketch.as_ref().expect("sketch made by the leader");
            each(&mut |ip, s| {
                if has_ports(&ip) || sketch.repeated(self.hash.hash_one(FastAddr(ip))) {
                    repeated.entry(ip).or_default().add(s);
                } else if let Some(k) = self.rank.key(ip, &s, s.ports.len()) {
                    mine.offer(k, syn_only(&s.c));
                }
            });
        }
        {
            let mut shared = self.repeated.lock().expect("top lock");
            for (ip, s) in repeated {
                shared.entry(ip).or_default().add(s);
            }
        }
        {
            let mut c = self.candidates.lock().expect("top lock");
            c.seen += mine.seen;
            c.syn_only += mine.syn_only;
            for (k, syn) in mine.heap {
                c.keep(k, syn);
            }
        }
        if self.barrier.wait().is_leader() {
            self.pick();
        }
        self.barrier.wait();
    }

    /// The leader's last step: the repeated addresses, now summed, join the
    /// candidates; the best N are published.
    fn pick(&self) {
        *self.sketch.write().expect("top lock") = None;
        let repeated = std::mem::take(&mut *self.repeated.lock().expect("top lock"));
        let mut best = std::mem::replace(&mut *self.candidates.lock().expect("top lock"), Best::new(0));
        for (ip, mut s) in repeated {
            s.ports.sort_unstable();
            s.ports.dedup();
            if let Some(k) = self.rank.key(ip, &s, s.ports.len()) {
                best.offer(k, syn_only(&s.c));
            }
        }
        let shown: AddrSet<IpAddr> = best.heap.iter().map(|((_, _, _, ip), _)| *ip).collect();
        let shown_syn = best.heap.iter().filter(|(_, syn)| *syn).count() as u64;
        *self.omitted.lock().expect("top lock") =
            Omitted { hosts: best.seen - shown.len() as u64, syn_only: best.syn_only - shown_syn };
        *self.selected.write().expect("top lock") = Arc::new(shown);
    }
}

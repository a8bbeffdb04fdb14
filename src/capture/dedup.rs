//! Dropping the exact duplicates a mirror port delivers.
//!
//! A SPAN session that mirrors both ports of a link sees every frame between
//! them twice: once entering the switch, once leaving it, a few microseconds
//! apart, byte for byte the same. Tracking both copies would count every
//! segment twice and call the second one a retransmission.
//!
//! A real retransmission can be byte-identical too: an IPv6 fast
//! retransmission carries no IP ID, and within the same millisecond the same
//! TCP timestamp, window and ACK. The kernel-truth captures hold such pairs
//! 35 µs apart. What tells them apart is the peer: a fast retransmission
//! answers duplicate ACKs or SACKs, so the peer spoke on that connection
//! between the two; a timer-driven one comes at least 10 ms (a tail loss
//! probe) later. So a frame is dropped as a duplicate only when
//! - its bytes (and wire length) equal a frame seen at most `window` before or
//!   after it, and
//! - for TCP, nothing was seen from the other end of its connection since the
//!   first copy.
//!
//! The cost is fixed: a direct-mapped table of recent frames and a ring of
//! the last frames' connections and directions (written in order, so cheap to
//! keep; read only when a frame looks like a copy), no allocation per frame.
//! Frames are compared by a keyed 64-bit hash, not byte by byte, and the hash
//! reads the headers and the end of the frame rather than all of it (a full
//! pass over every byte cost a fifth of a replay's CPU): the first
//! `HASHED_HEAD` bytes hold every header down to the transport checksum, which
//! covers the payload, plus the IP ID that tells an IPv4 retransmission apart;
//! the wire and captured lengths and the last 16 bytes catch what a checksum
//! offloaded to the NIC leaves unchecked. Two different frames that agree on
//! all of that within the window, with the peer silent in between, would
//! carry the same sequence space: a copy for every count wirestat keeps.
//!
//! Where a frame is remembered is decided without that key, by a fixed hash
//! of its connection and segment fields: whether a copy still finds its
//! original (or another frame took the slot in between) must not change from
//! run to run of the same capture. Crafted frames can aim at a slot, which
//! only keeps a copy (counted as a retransmission), never drops a frame.

use crate::addr::fold;
use crate::decode::{Kind, Packet, Skip};

/// How far apart two copies of one frame may be. The copies of a SPAN session
/// are microseconds apart (the switch's latency, or one frame's serialisation
/// on a slow mirror port); a retransmission by timer comes ≥ 10 ms later.
pub const DEFAULT_WINDOW_NS: u64 = 1_000_000;
/// Recent frames remembered: a frame's entry lives until another frame lands
/// in its slot, i.e. for about this many frames (far more than one window holds
/// below a few Mpps).
const FRAME_SLOTS: usize = 1 << 12;
/// Bytes of a frame's start that the hash reads: every header wirestat decodes
/// down to the transport checksum fits (ERSPAN III with its subheader, an
/// inner VLAN, IPv6 and TCP: 122 bytes).
const HASHED_HEAD: usize = 128;
/// Frames whose connection and direction are remembered, for the "peer
/// silent since" rule. A copy further back than this is kept (tracked).
const RING: usize = 1 << 12;

#[derive(Clone, Copy, Default)]
struct Seen {
    hash: u64,
    ts: u64,
    /// Reader's frame number of this copy.
    frame: u64,
}

/// The duplicate filter: feed it every frame in reading order.
pub struct Dedup {
    window: u64,
    key: [u64; 2],
    frames: Box<[Seen]>,
    /// Per frame number modulo `RING`: its TCP connection's direction-free hash
    /// with the low bit telling the direction (0: not TCP).
    ring: Box<[u64]>,
    /// Frames dropped as duplicates.
    pub dropped: u64,
}

impl Dedup {
    pub fn new(window_ns: u64) -> Dedup {
        use std::hash::BuildHasher;
        let rs = std::collections::hash_map::RandomState::new();
        Dedup {
            window: window_ns,
            // Keyed per process: crafted frames cannot aim at each other's slots.
            key: [rs.hash_one(1u8) | 1, rs.hash_one(2u8) | 1],
            frames: vec![Seen::default(); FRAME_SLOTS].into_boxed_slice(),
            ring: vec![0; RING].into_boxed_slice(),
            dropped: 0,
        }
    }

    /// Whether frame number `frame` (its captured bytes `data`, wire length
    /// `orig_len`, and what decoding made of it) is a copy of a recent frame.
    /// A copy is counted and must not be tracked; anything else is remembered.
    /// `route` is the packet's routing hash ([`crate::pipeline::route_hash`]),
    /// for a TCP segment its connection's.
    #[inline]
    pub fn is_copy(
        &mut self,
        frame: u64,
        data: &[u8],
        orig_len: u32,
        s: &Packet,
        r: Result<Kind, Skip>,
        route: u64,
    ) -> bool {
        let hash = self.hash(data, orig_len);
        // TCP frames note their connection and direction; other frames have no peer to consult.
        let (end, place) = match r {
            Ok(Kind::Tcp) => {
                let dir = ((s.src, s.sport) > (s.dst, s.dport)) as u64;
                (route & !1 | 2 | dir, segment_place(route, s))
            }
            _ => {
                let (mid, tail) = sample(data);
                (0, fold(FIXED_KEY ^ mid ^ data.len() as u64, tail ^ (orig_len as u64) << 32))
            }
        };
        self.ring[frame as usize % RING] = end;
        let slot = (place >> (64 - FRAME_SLOTS.trailing_zeros())) as usize;
        let seen = self.frames[slot];
        let copy = seen.hash == hash
            && seen.ts.abs_diff(s.ts) < self.window
            && (end == 0 || self.peer_silent(end, seen.frame, frame));
        if copy {
            // The first copy stays the reference: a third one is measured from it too.
            self.dropped += 1;
        } else {
            self.frames[slot] = Seen { hash, ts: s.ts, frame };
        }
        copy
    }

    /// Nothing from the other end of `end`'s connection between frames
    /// `since` and `now`. A first copy too far back for the ring to tell is
    /// taken as answered: the frame is kept.
    fn peer_silent(&self, end: u64, since: u64, now: u64) -> bool {
        if now.saturating_sub(since) >= RING as u64 {
            return false;
        }
        let other = end ^ 1;
        (since + 1..now).all(|f| self.ring[f as usize % RING] != other)
    }

    /// A keyed hash of the frame's headers, its end and its lengths (see the
    /// module's comment). Four lanes of 64-bit multiplies, one word at a
    /// time, so their latencies overlap (one 128-bit fold per 16 bytes in a
    /// single chain cost a tenth of a replay's reading thread); the lanes are
    /// folded together at the end. Every bit of the bytes it covers changes
    /// the result: frames are told apart by it alone (a slot is only a few
    /// bits of their place, and frames that are not TCP share nothing else).
    #[inline]
    fn hash(&self, data: &[u8], orig_len: u32) -> u64 {
        let [k0, k1] = self.key;
        let (mut a, mut b) = (k0 ^ orig_len as u64, k1 ^ data.len() as u64);
        let (mut c, mut d) = (k0.rotate_left(23), k1.rotate_left(41));
        let head = &data[..data.len().min(HASHED_HEAD)];
        let n = head.len();
        if n >= 8 {
            let mut i = 0;
            while i + 32 <= n {
                a = mix(a ^ word(head, i));
                b = mix(b ^ word(head, i + 8));
                c = mix(c ^ word(head, i + 16));
                d = mix(d ^ word(head, i + 24));
                i += 32;
            }
            // Under 32 bytes left: whole words, and one that ends at the
            // head's end (overlapping the one before it rather than copying).
            let rest = n - i;
            if rest > 8 {
                a = mix(a ^ word(head, i));
            }
            if rest > 16 {
                b = mix(b ^ word(head, i + 8));
            }
            if rest > 24 {
                c = mix(c ^ word(head, i + 16));
            }
            if rest > 0 {
                d = mix(d ^ word(head, n - 8));
            }
        } else {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(head);
            a = mix(a ^ u64::from_le_bytes(w));
        }
        if data.len() > HASHED_HEAD + 16 {
            let end = data.len() - 16;
            c = mix(c ^ word(data, end));
            d = mix(d ^ word(data, end + 8));
        }
        // A zero hash marks an empty slot.
        fold(a ^ c.rotate_left(32), b ^ d.rotate_left(32) ^ k0) | 1
    }
}

/// One lane step: multiply by an odd constant, then fold the high half down
/// so that later multiplies spread every bit.
#[inline(always)]
fn mix(x: u64) -> u64 {
    let m = x.wrapping_mul(0x9fb2_1c65_1e98_df25);
    m ^ m >> 29
}

/// The little-endian word at `at` (which has 8 bytes after it).
#[inline(always)]
fn word(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The fixed key of the slot hashes (any odd constant).
const FIXED_KEY: u64 = 0x9e6c_63d0_676a_9a99;

/// Where a TCP segment's frame is remembered: from its connection and the
/// fields that tell its segments apart (copies agree on all of them).
#[inline]
fn segment_place(conn: u64, s: &Packet) -> u64 {
    let a = conn ^ ((s.seq as u64) << 32 | s.ack as u64);
    let b = (s.ip_len as u64) << 32 | (s.win as u64) << 16 | s.flags as u64;
    fold(a, b ^ FIXED_KEY)
}

/// Two words of a frame that is not a TCP segment, for its slot: bytes 16 to
/// 24 (past an Ethernet header: IPv4's length and ID) and the last 8.
#[inline]
fn sample(data: &[u8]) -> (u64, u64) {
    if data.len() >= 24 {
        return (word(data, 16), word(data, data.len() - 8));
    }
    let short = |b: &[u8]| {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    let mid = data.get(16..24).unwrap_or(&[]);
    (short(mid), short(&data[data.len().saturating_sub(8)..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Kind;

    const MS: u64 = 1_000_000;

    /// `is_copy` with the routing hash the reader computes.
    fn copy(d: &mut Dedup, frame: u64, data: &[u8], orig_len: u32, s: &Packet, r: Result<Kind, Skip>) -> bool {
        let mut s = *s;
        if let Ok(k) = r {
            s.kind = k;
        }
        d.is_copy(frame, data, orig_len, &s, r, crate::pipeline::route_hash(&s))
    }

    /// A TCP summary from `a` to `b` (one-byte addresses are enough here).
    fn tcp(ts: u64, a: u8, b: u8) -> Packet {
        let mut s = Packet { ts, ..Packet::default() };
        s.src[15] = a;
        s.dst[15] = b;
        (s.sport, s.dport) = (40000 + a as u16, 40000 + b as u16);
        s
    }

    #[test]
    fn a_copy_within_the_window_is_dropped_once_and_later_frames_are_kept() {
        let mut d = Dedup::new(DEFAULT_WINDOW_NS);
        let frame = [7u8; 100];
        let t = 1_000 * MS;
        assert!(!copy(&mut d, 1, &frame, 100, &tcp(t, 1, 2), Ok(Kind::Tcp)));
        assert!(copy(&mut d, 2, &frame, 100, &tcp(t + 7_000, 1, 2), Ok(Kind::Tcp)));
        // A different wire length is a different frame.
        assert!(!copy(&mut d, 3, &frame, 101, &tcp(t + 8_000, 1, 2), Ok(Kind::Tcp)));
        // The same bytes a millisecond later: not a copy (a timer-driven retransmission).
        assert!(!copy(&mut d, 4, &frame, 100, &tcp(t + MS, 1, 2), Ok(Kind::Tcp)));
        assert_eq!(d.dropped, 1);
    }

    #[test]
    fn a_retransmission_after_the_peer_spoke_is_never_a_copy() {
        let mut d = Dedup::new(DEFAULT_WINDOW_NS);
        let (orig, dupack) = ([1u8; 90], [2u8; 60]);
        let t = 5_000 * MS;
        assert!(!copy(&mut d, 1, &orig, 90, &tcp(t, 1, 2), Ok(Kind::Tcp)));
        // The peer's duplicate ACK, then the same bytes 35 µs after the original.
        assert!(!copy(&mut d, 2, &dupack, 60, &tcp(t + 20_000, 2, 1), Ok(Kind::Tcp)));
        assert!(!copy(&mut d, 3, &orig, 90, &tcp(t + 35_000, 1, 2), Ok(Kind::Tcp)));
        // Frames of other connections in between change nothing.
        assert!(!copy(&mut d, 4, &[3u8; 90], 90, &tcp(t + 36_000, 3, 4), Ok(Kind::Tcp)));
        assert!(copy(&mut d, 5, &[3u8; 90], 90, &tcp(t + 37_000, 3, 4), Ok(Kind::Tcp)));
    }

    /// Where frames are remembered does not depend on the per-process key:
    /// two filters (two runs) drop the same frames, even when the table is
    /// so busy that frames evict each other between original and copy.
    #[test]
    fn two_runs_drop_the_same_copies() {
        let frames: Vec<(Packet, [u8; 64])> = (0..20_000u32)
            .map(|i| {
                let mut s = tcp(1_000 * MS + i as u64 * 100, (i % 7) as u8, 9);
                s.seq = i.wrapping_mul(2_654_435_761);
                let mut b = [0u8; 64];
                b[..4].copy_from_slice(&s.seq.to_le_bytes());
                (s, b)
            })
            .collect();
        // Each frame, and its copy 3000 frames later (within the window: 300 µs).
        let order: Vec<usize> =
            (0..frames.len() + 3000).flat_map(|i| [Some(i), i.checked_sub(3000)]).flatten().collect();
        let run = || {
            let mut d = Dedup::new(DEFAULT_WINDOW_NS);
            let got: Vec<bool> = order
                .iter()
                .filter_map(|&i| frames.get(i))
                .enumerate()
                .map(|(n, (s, b))| copy(&mut d, n as u64 + 1, b, 64, s, Ok(Kind::Tcp)))
                .collect();
            (got, d.dropped)
        };
        let (a, b) = (run(), run());
        assert!(a.1 > 0 && a.1 < 20_000, "some copies found, some lost to the busy table: {}", a.1);
        assert_eq!(a, b);
    }

    #[test]
    fn frames_alike_in_their_headers_but_not_their_end_are_different() {
        let mut d = Dedup::new(DEFAULT_WINDOW_NS);
        let a = [5u8; 400];
        let mut b = a;
        b[399] = 6;
        let s = Packet { ts: 20 * MS, ..Packet::default() };
        assert!(!copy(&mut d, 1, &a, 400, &s, Err(Skip::NonIp)));
        assert!(!copy(&mut d, 2, &b, 400, &Packet { ts: 20 * MS + 5_000, ..s }, Err(Skip::NonIp)));
        assert!(copy(&mut d, 3, &b, 400, &Packet { ts: 20 * MS + 6_000, ..s }, Err(Skip::NonIp)));
    }

    #[test]
    fn frames_that_are_not_tcp_are_compared_by_bytes_and_time_only() {
        let mut d = Dedup::new(DEFAULT_WINDOW_NS);
        let arp = [9u8; 42];
        let s = Packet { ts: 10 * MS, ..Packet::default() };
        assert!(!copy(&mut d, 1, &arp, 60, &s, Err(Skip::NonIp)));
        assert!(copy(&mut d, 2, &arp, 60, &Packet { ts: 10 * MS + 5_000, ..s }, Err(Skip::NonIp)));
    }
}

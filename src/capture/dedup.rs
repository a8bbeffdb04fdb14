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
//! The cost is fixed: two direct-mapped tables, no allocation per frame.
//! Frames are compared by a keyed 64-bit hash of their bytes, not the bytes
//! themselves; two different frames colliding within the window is a 2^-64
//! event per comparison.

use crate::addr::shard_hash;
use crate::decode::{Kind, Packet, Skip};

/// How far apart two copies of one frame may be. The copies of a SPAN session
/// are microseconds apart (the switch's latency, or one frame's serialisation
/// on a slow mirror port); a retransmission by timer comes ≥ 10 ms later.
pub const DEFAULT_WINDOW_NS: u64 = 1_000_000;
/// Recent frames remembered: a frame's entry lives until another frame lands
/// in its slot, i.e. for about this many frames (far more than one window holds
/// below a few Mpps).
const FRAME_SLOTS: usize = 1 << 12;
/// Connections whose last frame per direction is remembered. A slot only has
/// to outlive the few frames between a SPAN session's two copies, and the
/// table is read for every TCP frame: 128 KiB stays in the core's L2 cache,
/// where a bigger one missed it on most frames (a third of the reader's time
/// on a capture with a million connections).
const FLOW_SLOTS: usize = 1 << 12;

#[derive(Clone, Copy, Default)]
struct Seen {
    hash: u64,
    ts: u64,
    /// Reader's frame number of this copy.
    frame: u64,
}

#[derive(Clone, Copy, Default)]
struct FlowSeen {
    /// The connection's direction-free hash (0: empty slot).
    key: u64,
    /// Frame number at which this connection took the slot: it knows nothing before.
    claimed: u64,
    /// Last frame number seen from each end (0: none).
    last: [u64; 2],
}

/// The duplicate filter: feed it every frame in reading order.
pub struct Dedup {
    window: u64,
    key: [u64; 2],
    frames: Box<[Seen]>,
    flows: Box<[FlowSeen]>,
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
            flows: vec![FlowSeen::default(); FLOW_SLOTS].into_boxed_slice(),
            dropped: 0,
        }
    }

    /// Whether frame number `frame` (its captured bytes `data`, wire length
    /// `orig_len`, and what decoding made of it) is a copy of a recent frame.
    /// A copy is counted and must not be tracked; anything else is remembered.
    #[inline]
    pub fn is_copy(&mut self, frame: u64, data: &[u8], orig_len: u32, s: &Packet, r: Result<Kind, Skip>) -> bool {
        let hash = self.hash(data, orig_len);
        // TCP frames note their direction; other frames have no peer to consult.
        let flow = match r {
            Ok(Kind::Tcp) => Some(self.note_flow(s, frame)),
            _ => None,
        };
        let slot = (hash >> (64 - FRAME_SLOTS.trailing_zeros())) as usize;
        let seen = self.frames[slot];
        let copy = seen.hash == hash
            && seen.ts.abs_diff(s.ts) < self.window
            && flow.is_none_or(|(f, dir)| self.peer_silent_since(f, dir, seen.frame));
        if copy {
            // The first copy stays the reference: a third one is measured from it too.
            self.dropped += 1;
        } else {
            self.frames[slot] = Seen { hash, ts: s.ts, frame };
        }
        copy
    }

    /// Records that this end of the connection sent frame `frame`; returns the
    /// connection's slot and this end's side.
    fn note_flow(&mut self, s: &Packet, frame: u64) -> (usize, usize) {
        let key = shard_hash(&s.src, &s.dst, s.sport, s.dport) | 1;
        let dir = ((s.src, s.sport) > (s.dst, s.dport)) as usize;
        let slot = (key >> (64 - FLOW_SLOTS.trailing_zeros())) as usize;
        let f = &mut self.flows[slot];
        if f.key != key {
            *f = FlowSeen { key, claimed: frame, last: [0, 0] };
        }
        f.last[dir] = frame;
        (slot, dir)
    }

    /// Nothing from the other end since frame `since`, as far as the table
    /// knows. A connection that lost its slot to another one in between is a
    /// stranger again: its slot no longer remembers that far back, so nothing
    /// is dropped.
    fn peer_silent_since(&self, slot: usize, dir: usize, since: u64) -> bool {
        let f = &self.flows[slot];
        f.claimed <= since && f.last[dir ^ 1] < since
    }

    /// A keyed hash of the frame's bytes and wire length: 16 bytes per
    /// multiply, folded (the same mixing as the flow hash in `addr`), in two
    /// independent lanes of alternate 16-byte blocks so that the multiplies
    /// overlap instead of waiting for one another.
    #[inline]
    fn hash(&self, data: &[u8], orig_len: u32) -> u64 {
        let [k0, k1] = self.key;
        let mut h = fold(k0 ^ orig_len as u64, k1 ^ data.len() as u64);
        let mut g = h ^ k1;
        let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap());
        let mut pairs = data.chunks_exact(32);
        for c in &mut pairs {
            h = fold(word(&c[..8]) ^ k0 ^ h, word(&c[8..16]) ^ k1);
            g = fold(word(&c[16..24]) ^ k1 ^ g, word(&c[24..32]) ^ k0);
        }
        h = fold(h ^ k0, g ^ k1);
        let mut chunks = pairs.remainder().chunks_exact(16);
        for c in &mut chunks {
            h = fold(word(&c[..8]) ^ k0 ^ h, word(&c[8..]) ^ k1);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut tail = [0u8; 16];
            tail[..rest.len()].copy_from_slice(rest);
            let a = u64::from_le_bytes(tail[..8].try_into().unwrap());
            let b = u64::from_le_bytes(tail[8..].try_into().unwrap());
            h = fold(a ^ k0 ^ h, b ^ k1 ^ rest.len() as u64);
        }
        // A zero hash marks an empty slot.
        h | 1
    }
}

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let m = a as u128 * b as u128;
    (m as u64) ^ (m >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Kind;

    const MS: u64 = 1_000_000;

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
        assert!(!d.is_copy(1, &frame, 100, &tcp(t, 1, 2), Ok(Kind::Tcp)));
        assert!(d.is_copy(2, &frame, 100, &tcp(t + 7_000, 1, 2), Ok(Kind::Tcp)));
        // A different wire length is a different frame.
        assert!(!d.is_copy(3, &frame, 101, &tcp(t + 8_000, 1, 2), Ok(Kind::Tcp)));
        // The same bytes a millisecond later: not a copy (a timer-driven retransmission).
        assert!(!d.is_copy(4, &frame, 100, &tcp(t + MS, 1, 2), Ok(Kind::Tcp)));
        assert_eq!(d.dropped, 1);
    }

    #[test]
    fn a_retransmission_after_the_peer_spoke_is_never_a_copy() {
        let mut d = Dedup::new(DEFAULT_WINDOW_NS);
        let (orig, dupack) = ([1u8; 90], [2u8; 60]);
        let t = 5_000 * MS;
        assert!(!d.is_copy(1, &orig, 90, &tcp(t, 1, 2), Ok(Kind::Tcp)));
        // The peer's duplicate ACK, then the same bytes 35 µs after the original.
        assert!(!d.is_copy(2, &dupack, 60, &tcp(t + 20_000, 2, 1), Ok(Kind::Tcp)));
        assert!(!d.is_copy(3, &orig, 90, &tcp(t + 35_000, 1, 2), Ok(Kind::Tcp)));
        // Frames of other connections in between change nothing.
        assert!(!d.is_copy(4, &[3u8; 90], 90, &tcp(t + 36_000, 3, 4), Ok(Kind::Tcp)));
        assert!(d.is_copy(5, &[3u8; 90], 90, &tcp(t + 37_000, 3, 4), Ok(Kind::Tcp)));
    }

    #[test]
    fn frames_that_are_not_tcp_are_compared_by_bytes_and_time_only() {
        let mut d = Dedup::new(DEFAULT_WINDOW_NS);
        let arp = [9u8; 42];
        let s = Packet { ts: 10 * MS, ..Packet::default() };
        assert!(!d.is_copy(1, &arp, 60, &s, Err(Skip::NonIp)));
        assert!(d.is_copy(2, &arp, 60, &Packet { ts: 10 * MS + 5_000, ..s }, Err(Skip::NonIp)));
    }
}

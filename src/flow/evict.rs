//! Making room under `--max-flows`: which connection goes, in O(1).
//!
//! A full table evicts one connection per new one, found without a scan:
//! 1. no row left (it shows nothing): the oldest entry of the linger queue;
//! 2. half-open (SYN_SENT or SYN_RCVD, nothing established): the oldest entry of
//!    the SYN_SENT and SYN_RCVD timer queues, i.e. the handshake that started first;
//! 3. otherwise the longest idle of a few connections sampled at a rotating
//!    hand (CLOCK-like): exact on a small table, approximate on a big one.
//!
//! The timer queues are FIFO in deadline order and every kind has one length,
//! so their fronts are the oldest connections of their kind. Superseded
//! entries met at the front are dropped on the way (they would have been
//! dropped unread when due), so each entry is looked at once: O(1) amortised.

use super::expiry::stands;
use super::shard::Ctx;
use super::state::TcpState;
use super::table::{Flow, Table};
use super::tables::{slot, with_table};
use super::timers::{Entry, TimerKind};
use crate::addr::FlowKey;
use crate::analysis::{FlowId, Retire};

/// How much an eviction loses: a connection with no row left loses nothing a
/// view shows (0), a half-open one the least (1), the rest more (2).
fn rank<K: FlowKey>(f: &Flow<K>) -> u8 {
    if !f.conn.has_rows() {
        0
    } else if f.conn.ep.iter().any(|e| matches!(e.state, TcpState::SynSent | TcpState::SynRcvd))
        && !f.conn.ep.iter().any(|e| e.state.is_current())
    {
        1
    } else {
        2
    }
}

/// Connections the rotating hand compares when no queue offers one.
const SAMPLE: usize = 16;
/// Slots the hand visits at most per eviction (free slots are skipped).
const SAMPLE_VISITS: usize = 4 * SAMPLE;

/// The rank and last packet time of the connection `id` names, in either
/// table: `a` is the table of the packet being handled, `b` the other.
fn whose<A: FlowKey, B: FlowKey>(a: &Table<A>, b: &Table<B>, id: FlowId) -> Option<(u8, u64)> {
    with_table!(pair A: a, b, id, |t| t.get(slot(id)).map(|f| (rank(f), f.last_ts)))
}

impl Ctx {
    /// Makes room for one connection: evicts the least useful one (see the
    /// module's doc) and counts it.
    pub(super) fn evict<A: FlowKey, B: FlowKey>(&mut self, a: &mut Table<A>, b: &mut Table<B>) {
        let victim = self
            .oldest_queued(a, b, &[TimerKind::Linger], 0)
            .or_else(|| self.oldest_queued(a, b, &[TimerKind::SynSent, TimerKind::SynRcvd], 1))
            .or_else(|| self.sampled(a, b));
        let Some(id) = victim else { return };
        with_table!(pair A: &mut *a, &mut *b, id, |t| self.retire(t, slot(id), Retire::Evicted));
        self.prefetch_next(a, b);
    }

    /// A full table evicts once per new connection, and each eviction misses
    /// the cache twice: on the victim and on its index bucket. The next
    /// victims are the queues' next entries, so their loads are started well
    /// ahead (a flood's SYNs come one after another): the connection of the
    /// `FLOW_AHEAD`th next one, and the bucket of the `BUCKET_AHEAD`th, whose
    /// connection an earlier call started loading.
    fn prefetch_next<A: FlowKey, B: FlowKey>(&self, a: &Table<A>, b: &Table<B>) {
        const BUCKET_AHEAD: usize = 8;
        const FLOW_AHEAD: usize = 16;
        for k in [TimerKind::Linger, TimerKind::SynSent, TimerKind::SynRcvd] {
            if let Some(e) = self.timers.nth(k, BUCKET_AHEAD) {
                with_table!(pair A: a, b, e.slot, |t| t.prefetch_index_of(slot(e.slot)));
            }
            if let Some(e) = self.timers.nth(k, FLOW_AHEAD) {
                with_table!(pair A: a, b, e.slot, |t| t.prefetch_slot(slot(e.slot)));
            }
        }
    }

    /// The connection of the oldest standing entry among the queues of
    /// `kinds` whose rank is at most `max_rank`; superseded entries in front
    /// are dropped on the way. Queues of different kinds are compared by when
    /// their entries' states began (their deadlines less the kind's length).
    fn oldest_queued<A: FlowKey, B: FlowKey>(
        &mut self,
        a: &Table<A>,
        b: &Table<B>,
        kinds: &[TimerKind],
        max_rank: u8,
    ) -> Option<FlowId> {
        // Under a flood the linger queue is usually empty: no work for it.
        if kinds.iter().all(|&k| self.timers.front(k).is_none()) {
            return None;
        }
        let mut fronts: [Option<(u64, Entry)>; 2] = [None; 2];
        for (i, &k) in kinds.iter().enumerate().take(2) {
            while let Some(e) = self.timers.front(k).copied() {
                let live = with_table!(pair A: a, b, e.slot, |t| stands(t, &e));
                if live {
                    fronts[i] = Some((e.at.saturating_sub(self.profile.timer_len(k)), e));
                    break;
                }
                self.timers.pop_front(k);
            }
        }
        if fronts[1].is_some_and(|(s1, _)| fronts[0].is_none_or(|(s0, _)| s1 < s0)) {
            fronts.swap(0, 1);
        }
        // A timed side whose peer is established (rank 2) waits for the
        // sample; the other queue's front may still do.
        let (_, e) =
            fronts.into_iter().flatten().find(|(_, e)| whose(a, b, e.slot).is_some_and(|(r, _)| r <= max_rank))?;
        self.timers.pop_front(e.kind);
        Some(e.slot)
    }

    /// The lowest-ranked, then longest idle, of `SAMPLE` live connections
    /// found at the rotating hand, which moves on past them.
    fn sampled<A: FlowKey, B: FlowKey>(&mut self, a: &Table<A>, b: &Table<B>) -> Option<FlowId> {
        let (na, nb) = (a.slot_count(), b.slot_count());
        let total = na + nb;
        if total == 0 {
            return None;
        }
        let mut best: Option<((u8, u64), FlowId)> = None;
        let (mut seen, mut visits) = (0, 0);
        while seen < SAMPLE && visits < total.min(SAMPLE_VISITS) {
            let i = self.hand % total;
            self.hand = (i + 1) % total;
            visits += 1;
            let id = if i < na { i as u32 | A::BIT } else { (i - na) as u32 | B::BIT };
            if let Some(key) = whose(a, b, id) {
                seen += 1;
                if best.is_none_or(|(k, _)| key < k) {
                    best = Some((key, id));
                }
            }
        }
        best.map(|(_, id)| id).or_else(|| {
            // Only free slots in the hand's way: any live connection will do.
            a.iter().next().map(|(s, _)| s | A::BIT).or_else(|| b.iter().next().map(|(s, _)| s | B::BIT))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::addr::from_ip;
    use crate::analysis::Interest;
    use crate::decode::{Kind, Packet, flag};
    use crate::flow::shard::Shard;
    use crate::os::{Os, Profile};
    use std::net::IpAddr;

    const S: u64 = 1_000_000_000;
    const T0: u64 = 1_700_000_000 * S;

    /// A segment from 10.0.0.1:`port` to 10.0.0.2:80 (or back, with `back`).
    fn seg(port: u16, back: bool, flags: u8, (seq, ack): (u32, u32), ts: u64) -> Packet {
        let (a, _) = from_ip("10.0.0.1".parse().unwrap());
        let (b, _) = from_ip("10.0.0.2".parse().unwrap());
        let (src, dst, sport, dport) = if back { (b, a, 80, port) } else { (a, b, port, 80) };
        Packet { src, dst, sport, dport, flags, seq, ack, ts, kind: Kind::Tcp, ..Default::default() }
    }

    fn tracked(sh: &Shard, port: u16) -> bool {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        sh.conn(ip("10.0.0.1"), port, ip("10.0.0.2"), 80).is_some()
    }

    #[test]
    fn a_full_table_evicts_no_row_first_then_the_oldest_half_open_then_the_longest_idle() {
        // The smallest table a shard keeps: 16 connections.
        let mut sh = Shard::new(Profile::new(Os::Linux), Interest::All, 16);
        // Port 1000: established, then idle. Ports 1001..=1013: half-open, oldest first.
        sh.process(&seg(1000, false, flag::SYN, (100, 0), T0));
        sh.process(&seg(1000, true, flag::SYN | flag::ACK, (500, 101), T0 + 1));
        sh.process(&seg(1000, false, flag::ACK, (101, 501), T0 + 2));
        for p in 1001..=1013 {
            sh.process(&seg(p, false, flag::SYN, (100, 0), T0 + S + p as u64));
        }
        // Port 1014: refused (no row left); port 1015: established later.
        sh.process(&seg(1014, false, flag::SYN, (100, 0), T0 + 2 * S));
        sh.process(&seg(1014, true, flag::RST | flag::ACK, (0, 101), T0 + 2 * S + 1));
        sh.process(&seg(1015, false, flag::SYN, (100, 0), T0 + 3 * S));
        sh.process(&seg(1015, true, flag::SYN | flag::ACK, (500, 101), T0 + 3 * S + 1));
        sh.process(&seg(1015, false, flag::ACK, (101, 501), T0 + 3 * S + 2));
        assert_eq!(sh.flows(), 16);
        // The refused one goes first, though it is newer than the half-open ones.
        sh.process(&seg(2000, false, flag::SYN, (100, 0), T0 + 4 * S));
        assert!(!tracked(&sh, 1014) && tracked(&sh, 1001));
        // Then the half-open ones, the handshake that started first first.
        sh.process(&seg(2001, false, flag::SYN, (100, 0), T0 + 4 * S + 1));
        assert!(!tracked(&sh, 1001) && tracked(&sh, 1002));
        // With no half-open one left (they are answered), the longest idle goes.
        for p in (1002..=1013).chain(2000..=2001) {
            sh.process(&seg(p, true, flag::SYN | flag::ACK, (500, 101), T0 + 5 * S));
            sh.process(&seg(p, false, flag::ACK, (101, 501), T0 + 5 * S + 1));
        }
        sh.process(&seg(3000, false, flag::ACK, (101, 501), T0 + 6 * S));
        assert!(!tracked(&sh, 1000), "the connection idle since T0");
        assert!(tracked(&sh, 1015) && tracked(&sh, 3000));
        assert_eq!(sh.stats().evicted, 3);
    }
}

//! The netstat analyzer: every host's connection rows, listening sockets and
//! TCP MIB counters (`netstat -an`, `netstat -s -p TCP`), counted the way the
//! host's own Linux kernel counts them (`../shared/oracle/README.md`).
//!
//! A host's counters are the sum of its live connections' counts (kept inline
//! in each flow entry, [`MibFlow`]) and of an accumulator of connections
//! already forgotten, so a flood of short connections costs no more than the
//! connections tracked at once.

use super::Interest;
use super::hosts::HostCounters;
use super::top::Score;
use crate::addr::{AddrMap, AddrSet, FlowKey};
use crate::decode::{Packet, flag};
use crate::flow::Conn;
use crate::flow::events::{Event, Events, SegEvents};
use crate::flow::table::Flow;
use crate::report::{AddrView, Row, Store, TcpCounters};
use crate::seq::after;
use std::net::IpAddr;

/// What one endpoint of a connection adds to its host's TCP MIB, and what
/// its peer has acknowledged (for Send-Q). Packed into 16 bytes, so that with
/// the state machine an IPv4 connection stays within 128 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpCounts {
    /// Every segment it sent, retransmissions included: the peer's Segments Received.
    pub segs: u32,
    /// Segments Retransmitted (RetransSegs): resent sequence space, except a
    /// simultaneous open's first SYN-ACK.
    pub retrans: u32,
    /// The highest acknowledgment its peer sent (valid with `UNA_SET`).
    una: u32,
    /// Active opens, passive opens, failed attempts and resets, 4 bits each
    /// (saturating at 15: one connection's endpoint sees each once or twice).
    opens: u16,
    /// Of the retransmissions, a request socket's SYN-ACKs: Linux counts them in OutSegs too.
    synack_resent: u8,
    flags: u8,
}

/// `EpCounts::flags` bits.
const SIMUL_SYNACK: u8 = 1;
const UNA_SET: u8 = 2;

/// Nibbles of `EpCounts::opens`, in the order of the events they count.
const ACTIVE: u32 = 0;
const PASSIVE: u32 = 4;
const FAILS: u32 = 8;
const RESETS: u32 = 12;

/// The four counted events are the first four, so event bit `i` counts in nibble `i`.
const OPENS: u32 = 0b1111;
const _: () = assert!(
    Event::ActiveOpen as u8 == 0
        && Event::PassiveOpen as u8 == 1
        && Event::AttemptFailed as u8 == 2
        && Event::EstabReset as u8 == 3
);
/// Events a segment's sender counts beyond the segment itself.
const SENDER_COUNTED: u32 = OPENS | 1 << Event::Retransmit as u8 | 1 << Event::AttemptRevived as u8;

impl EpCounts {
    /// Adds one to the nibble of every counted event in `ev`, except nibbles at 15.
    #[inline]
    fn count(&mut self, ev: Events) {
        let b = (ev.bits() & OPENS) as u16;
        if b == 0 {
            return;
        }
        let inc = (b & 1) | (b & 2) << 3 | (b & 4) << 6 | (b & 8) << 9;
        let n = self.opens;
        // The low bit of every nibble that holds 15.
        let full = (((n & 0x7777) + 0x1111) & n & 0x8888) >> 3;
        self.opens = n + (inc & !full);
    }

    /// Takes back one failed attempt (the attempt went on after all).
    fn uncount_fail(&mut self) {
        if self.nibble(FAILS) > 0 {
            self.opens -= 1 << FAILS;
        }
    }

    fn nibble(&self, at: u32) -> u64 {
        (self.opens >> at & 0xf) as u64
    }

    pub fn active_opens(&self) -> u64 {
        self.nibble(ACTIVE)
    }

    pub fn passive_opens(&self) -> u64 {
        self.nibble(PASSIVE)
    }

    pub fn attempt_fails(&self) -> u64 {
        self.nibble(FAILS)
    }

    pub fn estab_resets(&self) -> u64 {
        self.nibble(RESETS)
    }

    /// Segments Sent as Linux counts them (OutSegs): everything that is not a
    /// retransmission, plus every SYN-ACK resent; a simultaneous open's first
    /// SYN-ACK is in neither.
    pub fn out(&self) -> u64 {
        let simul = (self.flags & SIMUL_SYNACK != 0) as u64;
        self.segs as u64 - (self.retrans as u64 - self.synack_resent as u64) - simul
    }

    /// The highest acknowledgment its peer sent, if any.
    pub fn acked(&self) -> Option<u32> {
        (self.flags & UNA_SET != 0).then_some(self.una)
    }
}

/// Both endpoints' counts of one connection: the analyzer's per-flow state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MibFlow {
    pub ep: [EpCounts; 2],
}

impl MibFlow {
    /// Counts a segment `p` that side `d` sent, and what it did to both sides.
    #[inline(always)]
    pub fn segment(&mut self, d: usize, p: &Packet, ev: &SegEvents) {
        self.ep[d].segs += 1;
        if ev.sender.bits() & SENDER_COUNTED != 0 || ev.receiver.bits() & OPENS != 0 {
            self.events_of(d, ev);
        }
        let r = &mut self.ep[1 - d];
        if p.flags & (flag::ACK | flag::RST) == flag::ACK && (r.flags & UNA_SET == 0 || after(p.ack, r.una)) {
            r.una = p.ack;
            r.flags |= UNA_SET;
        }
    }

    /// The rarer part of `segment`: a retransmission, an open, a failure, a reset.
    fn events_of(&mut self, d: usize, ev: &SegEvents) {
        let s = &mut self.ep[d];
        let e = ev.sender;
        if e.has(Event::Retransmit) {
            if e.has(Event::SimulSynAck) {
                s.flags |= SIMUL_SYNACK;
            } else {
                s.retrans += 1;
            }
            s.synack_resent = s.synack_resent.saturating_add(e.has(Event::SynAckResent) as u8);
        }
        s.count(e);
        if e.has(Event::AttemptRevived) {
            s.uncount_fail();
        }
        self.ep[1 - d].count(ev.receiver);
    }

    /// Counts what a timer or an ICMP error did to side `side`.
    #[inline]
    pub fn events(&mut self, side: usize, ev: Events) {
        self.ep[side].count(ev);
    }

    /// Long before a u32 count wraps, the counts must go to the host totals.
    #[inline]
    pub fn near_wrap(&self, d: usize) -> bool {
        self.ep[d].segs >= 1 << 31
    }

    /// Zeroes the counts (once they went to the host totals), keeping what
    /// the peers acknowledged.
    pub fn clear_counts(&mut self) {
        for e in &mut self.ep {
            *e = EpCounts { una: e.una, flags: e.flags & UNA_SET, ..EpCounts::default() };
        }
    }

    /// What side `side` contributes to its host's counters; the gauge
    /// (current connections) only while the connection is `live`.
    pub fn counters(&self, conn: &Conn, side: usize, live: bool) -> TcpCounters {
        let e = &self.ep[side];
        TcpCounters {
            active_opens: e.active_opens(),
            passive_opens: e.passive_opens(),
            failed_connection_attempts: e.attempt_fails(),
            reset_connections: e.estab_resets(),
            current_connections: (live && conn.ep[side].state.is_current()) as u64,
            // Every segment the peer sent reaches this host's stack (InSegs).
            segments_received: self.ep[1 - side].segs as u64,
            segments_sent: e.out(),
            segments_retransmitted: e.retrans as u64,
        }
    }
}

/// Per-address entries a worker keeps at least, whatever `--max-flows` says
/// (a few hundred KiB): small tables must not lose a busy host's counters.
const MIN_HOST_ENTRIES: usize = 4096;
/// With `--top N`, per-address entries kept per host shown: the busiest
/// hosts' counters are what the views need; lighter ones only compete for
/// the last places.
const HOST_ENTRIES_PER_SHOWN: usize = 64;

/// How many per-address entries (retired counters, and as many listening
/// sockets) a worker keeps: the one memory bound, derived from its share of
/// `--max-flows` (`max_flows`). With `--host` only those addresses have
/// entries, never displaced; with every host shown (`--top 0`) up to half a
/// connection's worth each; with `--top N`, what the N busiest need.
pub fn host_entries(interest: &Interest, max_flows: usize) -> usize {
    let share = (max_flows / 2).max(MIN_HOST_ENTRIES);
    match interest {
        Interest::Only(_) => usize::MAX,
        Interest::All => share,
        Interest::Top(t) => t.rank.n.saturating_mul(HOST_ENTRIES_PER_SHOWN).clamp(MIN_HOST_ENTRIES, share),
    }
}

/// A shard's netstat state beyond its live connections.
#[derive(Debug)]
pub struct Netstat {
    interest: Interest,
    /// `--host` addresses, looked up by a scan: faster than hashing for a few.
    only: Option<Box<[IpAddr]>>,
    /// Counters of connections no longer tracked, and of segments that belong to none.
    retired: HostCounters,
    listeners: AddrSet<(IpAddr, u16)>,
    /// Listener entries not kept (the bound); retired counters count their own.
    listeners_dropped: u64,
}

impl Netstat {
    /// `max_flows`: the worker's share of `--max-flows`, which bounds the
    /// per-address entries too ([`host_entries`]).
    pub fn new(interest: Interest, max_flows: usize) -> Netstat {
        let cap = host_entries(&interest, max_flows);
        let only = match &interest {
            Interest::Only(s) => Some(s.iter().copied().collect()),
            _ => None,
        };
        Netstat { interest, only, retired: HostCounters::new(cap), listeners: AddrSet::default(), listeners_dropped: 0 }
    }

    pub fn interest(&self) -> &Interest {
        &self.interest
    }

    pub fn listeners(&self) -> usize {
        self.listeners.len()
    }

    /// Per-address entries not kept because of the bound.
    pub fn dropped(&self) -> u64 {
        self.retired.dropped + self.listeners_dropped
    }

    /// Bytes held by the per-address entries (for the memory report).
    pub fn heap_bytes(&self) -> usize {
        self.retired.heap_bytes() + self.listeners.capacity() * (std::mem::size_of::<(IpAddr, u16)>() + 1)
    }

    #[inline]
    fn wants(&self, ip: &IpAddr) -> bool {
        match &self.only {
            Some(a) => a.contains(ip),
            None => true,
        }
    }

    /// Folds a connection's counts into its hosts' totals before they are
    /// forgotten (or zeroed).
    pub fn retire<K: FlowKey>(&mut self, flow: &Flow<K>) {
        for side in 0..2 {
            let ip = flow.key.ip(side);
            if self.wants(&ip) {
                let c = flow.mib.counters(&flow.conn, side, false);
                self.retired.add(ip, &c);
            }
        }
    }

    /// A segment for no connection (a stray RST): it still crossed both stacks.
    pub fn stray_segment(&mut self, src: IpAddr, dst: IpAddr) {
        if self.wants(&src) {
            self.retired.add(src, &TcpCounters { segments_sent: 1, ..TcpCounters::default() });
        }
        if self.wants(&dst) {
            self.retired.add(dst, &TcpCounters { segments_received: 1, ..TcpCounters::default() });
        }
    }

    /// Records a listening socket, within the same bound as the retired counters.
    pub fn listener(&mut self, ip: IpAddr, port: u16) {
        if !self.wants(&ip) {
            return;
        }
        if self.listeners.len() >= self.retired.cap() && !self.listeners.contains(&(ip, port)) {
            self.listeners_dropped += 1;
            return;
        }
        self.listeners.insert((ip, port));
    }

    /// Shows `v` this shard's per-address contributions beyond its live
    /// connections: retired counters, and listening sockets (for `--top`).
    pub fn contributions(&self, v: &mut dyn FnMut(IpAddr, Score)) {
        for (ip, c) in self.retired.iter() {
            v(*ip, Score { c: *c, ..Score::default() });
        }
        for (ip, port) in &self.listeners {
            v(*ip, Score { ports: vec![*port], ..Score::default() });
        }
    }

    /// How many contributions `contributions` shows.
    pub fn contribution_count(&self) -> u64 {
        (self.retired.len() + self.listeners.len()) as u64
    }

    /// Addresses with a listening socket here.
    pub fn listener_addrs(&self) -> AddrSet<IpAddr> {
        self.listeners.iter().map(|(ip, _)| *ip).collect()
    }

    /// A connection side's part of its address's score (for `--top`).
    pub fn score<K: FlowKey>(f: &Flow<K>, side: usize, live: bool) -> Score {
        Score {
            rows: (live && f.conn.ep[side].state.has_row()) as u64,
            ports: Vec::new(),
            c: f.mib.counters(&f.conn, side, live),
        }
    }

    /// Adds a tracked connection's rows and counts to the views being built
    /// (of the addresses in `shown`, if given: the `--top` pick); a
    /// connection `--idle-timeout` has already forgotten (not `live`) has no rows.
    pub fn collect<K: FlowKey>(
        &self,
        f: &Flow<K>,
        live: bool,
        shown: Option<&AddrSet<IpAddr>>,
        out: &mut AddrMap<AddrView>,
    ) {
        for side in 0..2 {
            let ip = f.key.ip(side);
            if !self.wants(&ip) || shown.is_some_and(|s| !s.contains(&ip)) {
                continue;
            }
            let v = out.entry(ip).or_default();
            v.tcp.add(&f.mib.counters(&f.conn, side, live));
            let st = f.conn.ep[side].state;
            if live && st.has_row() {
                v.rows.push(Row {
                    local_port: f.key.port(side),
                    foreign: f.key.ip(1 - side),
                    foreign_port: f.key.port(1 - side),
                    state: st,
                    midstream: f.conn.midstream(),
                    one_sided: f.conn.one_sided(),
                    send_q: f.conn.ep[side].send_q(f.mib.ep[side].acked()),
                });
            }
        }
    }

    /// Adds the counters of forgotten connections and the listeners (of the
    /// addresses in `shown`, if given), then merges this shard's part of
    /// every address's view into the shared store.
    pub fn publish(&self, mut local: AddrMap<AddrView>, shown: Option<&AddrSet<IpAddr>>, store: &Store) {
        let show = |ip: &IpAddr| shown.is_none_or(|s| s.contains(ip));
        for (ip, c) in self.retired.iter().filter(|(ip, _)| show(ip)) {
            local.entry(*ip).or_default().tcp.add(c);
        }
        for (ip, port) in self.listeners.iter().filter(|(ip, _)| show(ip)) {
            local.entry(*ip).or_default().listen_ports.push(*port);
        }
        for (ip, v) in local {
            store.entry(ip).or_default().merge(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counted_event_has_its_own_nibble_which_stops_at_15() {
        let mut c = EpCounts::default();
        let mut ev = Events::default();
        ev.add(Event::ActiveOpen);
        ev.add(Event::EstabReset);
        ev.add(Event::Listener);
        for _ in 0..20 {
            c.count(ev);
        }
        let mut fail = Events::default();
        fail.add(Event::AttemptFailed);
        c.count(fail);
        assert_eq!((c.active_opens(), c.passive_opens(), c.attempt_fails(), c.estab_resets()), (15, 0, 1, 15));
    }
}

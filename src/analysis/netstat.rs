//! The netstat analyzer: every host's connection rows, listening sockets and
//! TCP MIB counters (`netstat -an`, `netstat -s -p TCP`), counted the way the
//! host's own Linux kernel counts them (`../shared/oracle/README.md`).
//!
//! A host's counters are the sum of its live connections' counts (kept inline
//! in each flow entry, [`MibFlow`]) and of an accumulator of connections
//! already forgotten, so a flood of short connections costs no more than the
//! connections tracked at once.

use super::Interest;
use crate::addr::{AddrMap, AddrSet, FlowKey};
use crate::flow::Conn;
use crate::flow::events::{Event, Events, SegEvents};
use crate::flow::table::Flow;
use crate::report::{AddrView, Row, Store, TcpCounters};
use std::net::IpAddr;

/// Without `--host`, at most this many forgotten addresses keep counters (and
/// as many listening sockets are kept) per shard, so a flood of spoofed
/// sources cannot grow memory without bound.
const ACC_CAP: usize = 1 << 20;

/// What one endpoint of a connection adds to its host's TCP MIB (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpCounts {
    /// Every segment it sent, retransmissions included: the peer's Segments Received.
    pub segs: u32,
    /// Segments Sent as Linux counts them (OutSegs).
    pub out: u32,
    /// Segments Retransmitted (RetransSegs).
    pub retrans: u32,
    pub active_opens: u8,
    pub passive_opens: u8,
    pub attempt_fails: u8,
    pub estab_resets: u8,
}

impl EpCounts {
    #[inline]
    fn count(&mut self, ev: Events) {
        if ev.is_empty() {
            return;
        }
        let bump = |n: &mut u8, e: Event| *n = n.saturating_add(ev.has(e) as u8);
        bump(&mut self.active_opens, Event::ActiveOpen);
        bump(&mut self.passive_opens, Event::PassiveOpen);
        bump(&mut self.attempt_fails, Event::AttemptFailed);
        bump(&mut self.estab_resets, Event::EstabReset);
    }
}

/// Both endpoints' counts of one connection: the analyzer's per-flow state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MibFlow {
    pub ep: [EpCounts; 2],
}

impl MibFlow {
    /// Counts a segment side `d` sent, and what it did to both sides.
    #[inline]
    pub fn segment(&mut self, d: usize, ev: &SegEvents) {
        let s = &mut self.ep[d];
        s.segs += 1;
        let e = ev.sender;
        if !e.has(Event::Retransmit) {
            s.out += 1;
        } else {
            // A simultaneous open's first SYN-ACK is counted nowhere; a request
            // socket's resent SYN-ACK counts in both (Linux counts every SYN-ACK sent).
            s.retrans += !e.has(Event::SimulSynAck) as u32;
            s.out += e.has(Event::SynAckResent) as u32;
        }
        s.count(e);
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

    /// What side `side` contributes to its host's counters; the gauge
    /// (current connections) only while the connection is `live`.
    pub fn counters(&self, conn: &Conn, side: usize, live: bool) -> TcpCounters {
        let e = &self.ep[side];
        TcpCounters {
            active_opens: e.active_opens as u64,
            passive_opens: e.passive_opens as u64,
            failed_connection_attempts: e.attempt_fails as u64,
            reset_connections: e.estab_resets as u64,
            current_connections: (live && conn.ep[side].state.is_current()) as u64,
            // Every segment the peer sent reaches this host's stack (InSegs).
            segments_received: self.ep[1 - side].segs as u64,
            segments_sent: e.out as u64,
            segments_retransmitted: e.retrans as u64,
        }
    }
}

/// A shard's netstat state beyond its live connections.
#[derive(Debug, Default)]
pub struct Netstat {
    interest: Interest,
    /// Counters of connections no longer tracked, and of segments that belong to none.
    retired: AddrMap<TcpCounters>,
    listeners: AddrSet<(IpAddr, u16)>,
    /// Counter and listener entries not kept (the cap without `--host`).
    pub dropped: u64,
}

impl Netstat {
    pub fn new(interest: Interest) -> Netstat {
        Netstat { interest, ..Default::default() }
    }

    pub fn listeners(&self) -> usize {
        self.listeners.len()
    }

    fn wants_counters(&mut self, ip: &IpAddr) -> bool {
        if !self.interest.wants(ip) {
            return false;
        }
        if matches!(self.interest, Interest::All) && self.retired.len() >= ACC_CAP && !self.retired.contains_key(ip) {
            self.dropped += 1;
            return false;
        }
        true
    }

    /// Folds a connection's counts into its hosts' totals before they are
    /// forgotten (or zeroed).
    pub fn retire<K: FlowKey>(&mut self, flow: &Flow<K>) {
        for side in 0..2 {
            let ip = flow.key.ip(side);
            if self.wants_counters(&ip) {
                let c = flow.mib.counters(&flow.conn, side, false);
                self.retired.entry(ip).or_default().add(&c);
            }
        }
    }

    /// A segment for no connection (a stray RST): it still crossed both stacks.
    pub fn stray_segment(&mut self, src: IpAddr, dst: IpAddr) {
        if self.wants_counters(&src) {
            self.retired.entry(src).or_default().segments_sent += 1;
        }
        if self.wants_counters(&dst) {
            self.retired.entry(dst).or_default().segments_received += 1;
        }
    }

    /// Records a listening socket, within the same bounds as the retired counters.
    pub fn listener(&mut self, ip: IpAddr, port: u16) {
        if !self.interest.wants(&ip) {
            return;
        }
        if matches!(self.interest, Interest::All) && self.listeners.len() >= ACC_CAP {
            self.dropped += 1;
            return;
        }
        self.listeners.insert((ip, port));
    }

    /// Adds a tracked connection's rows and counts to the views being built;
    /// a connection `--idle-timeout` has already forgotten (not `live`) has no rows.
    pub fn collect<K: FlowKey>(&self, f: &Flow<K>, live: bool, out: &mut AddrMap<AddrView>) {
        for side in 0..2 {
            let ip = f.key.ip(side);
            if !self.interest.wants(&ip) {
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
                });
            }
        }
    }

    /// Adds the counters of forgotten connections and the listeners, then
    /// merges this shard's part of every address's view into the shared store.
    pub fn publish(&self, mut local: AddrMap<AddrView>, store: &Store) {
        for (ip, c) in &self.retired {
            local.entry(*ip).or_default().tcp.add(c);
        }
        for (ip, port) in &self.listeners {
            if self.interest.wants(ip) {
                local.entry(*ip).or_default().listen_ports.push(*port);
            }
        }
        for (ip, v) in local {
            store.entry(ip).or_default().merge(v);
        }
    }
}

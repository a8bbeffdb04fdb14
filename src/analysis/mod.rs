//! Analyzers: what is made of the connections. The flow layer (`crate::flow`)
//! tracks each connection's state and reports what every segment, timer and
//! ICMP error did as [`SegEvents`]/[`Events`]; analyzers turn those facts into
//! what a view shows, and publish it at snapshot barriers.
//!
//! [`netstat`] is built in: its rows, listeners and TCP MIB are what every run
//! prints, so its per-connection counts live inline in the flow entry (one
//! cache line per packet). Every other analyzer plugs in through [`Analyzer`]
//! and keeps its per-connection state beside the table, indexed by [`FlowId`]
//! (as the timer epochs are), so a run that does not ask for it pays nothing.

pub mod netstat;

use crate::decode::Packet;
use crate::flow::Conn;
use crate::flow::events::{Events, SegEvents};
use crate::report::Store;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

/// A connection's identity inside its shard while it is tracked: its table
/// slot, with the top bit set for the IPv6 table. A slot is reused once its
/// connection is retired, so per-flow state indexed by it starts afresh in
/// [`Analyzer::on_open`].
pub type FlowId = u32;

/// Why a connection stopped being tracked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retire {
    /// No rows left and quiet for the linger time: the host forgot it too.
    Closed,
    /// `--idle-timeout` passed without a packet.
    IdleExpired,
    /// `--max-flows` made room.
    Evicted,
    /// A SYN opened a new connection on the same 4-tuple.
    Reused,
    /// The capture ended (the last snapshot consumes the tables).
    End,
}

/// Which addresses views will be asked about.
#[derive(Clone, Debug, Default)]
pub enum Interest {
    /// Every address (no `--host`).
    #[default]
    All,
    /// Only these addresses.
    Only(Arc<HashSet<IpAddr>>),
}

impl Interest {
    pub fn wants(&self, ip: &IpAddr) -> bool {
        match self {
            Interest::All => true,
            Interest::Only(s) => s.contains(ip),
        }
    }
}

/// A pluggable analyzer, run by each worker on its own shard of the
/// connections (so it needs no locks; what it publishes is merged).
pub trait Analyzer: Send {
    /// A new connection entry `id` was created for the packet `p`.
    fn on_open(&mut self, _id: FlowId, _p: &Packet) {}
    /// Segment `p`, sent by side `d` of connection `id`, did `ev`; `conn` is its state after it.
    fn on_segment(&mut self, _id: FlowId, _d: usize, _p: &Packet, _conn: &Conn, _ev: &SegEvents) {}
    /// An ICMP error quoting a segment side `d` sent did `ev`.
    fn on_icmp_error(&mut self, _id: FlowId, _d: usize, _p: &Packet, _conn: &Conn, _ev: Events) {}
    /// Side `side`'s state timer ran out at `now` (or was found overdue).
    fn on_timer(&mut self, _id: FlowId, _side: usize, _conn: &Conn, _ev: Events, _now: u64) {}
    /// Connection `id` is no longer tracked.
    fn on_retire(&mut self, _id: FlowId, _conn: &Conn, _why: Retire) {}
    /// A packet that belongs to no tracked connection.
    fn on_packet(&mut self, _p: &Packet) {}
    /// Merges what it has into the shared store, at a snapshot barrier.
    fn publish(&self, _store: &Store) {}
}

/// The analyzers a shard runs besides netstat; built per worker.
pub type Extras = Vec<Box<dyn Analyzer>>;

/// Builds each worker's extra analyzers.
pub type ExtrasFactory = Arc<dyn Fn() -> Extras + Send + Sync>;

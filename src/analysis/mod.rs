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

pub mod hosts;
pub mod netstat;
pub mod top;

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
    /// Every address is tracked, and the busiest are shown: the workers pick
    /// them together at each snapshot (`--top N` without `--host`).
    Top(Arc<top::TopShared>),
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

/// A plug-in analyzer's per-connection state, kept beside the flow table and
/// indexed by [`FlowId`] (as the timer epochs are), so the flow entry itself
/// stays at its size whatever analyzers run. An entry starts afresh in
/// `open` (a slot is reused once its connection is retired).
#[derive(Debug, Default)]
pub struct PerFlow<T> {
    v4: Vec<T>,
    v6: Vec<T>,
}

impl<T: Default> PerFlow<T> {
    fn vec(&mut self, id: FlowId) -> (&mut Vec<T>, usize) {
        let slot = crate::flow::tables::slot(id) as usize;
        (if crate::flow::tables::is_v6(id) { &mut self.v6 } else { &mut self.v4 }, slot)
    }

    /// The fresh state of a connection just opened in `id`.
    pub fn open(&mut self, id: FlowId) -> &mut T {
        let (v, slot) = self.vec(id);
        if v.len() <= slot {
            v.resize_with(slot + 1, T::default);
        }
        v[slot] = T::default();
        &mut v[slot]
    }

    /// The state of connection `id` (opened before).
    pub fn get_mut(&mut self, id: FlowId) -> Option<&mut T> {
        let (v, slot) = self.vec(id);
        v.get_mut(slot)
    }
}

/// The analyzers a shard runs besides netstat; built per worker.
pub type Extras = Vec<Box<dyn Analyzer>>;

/// Builds each worker's extra analyzers.
pub type ExtrasFactory = Arc<dyn Fn() -> Extras + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::from_ip;
    use crate::decode::{Kind, flag};
    use crate::flow::events::Event;
    use crate::flow::shard::Shard;
    use crate::os::{Os, Profile};
    use std::sync::Mutex;

    /// What the probe analyzer heard, by hook.
    #[derive(Debug, Default, PartialEq)]
    struct Heard {
        opens: Vec<FlowId>,
        active_opens: u32,
        listeners: u32,
        timer_fails: u32,
        /// Why, and how many segments the connection had (from the probe's per-flow state).
        retired: Vec<(Retire, u32)>,
        other_packets: u32,
        published: u32,
    }

    struct Probe(Arc<Mutex<Heard>>, PerFlow<u32>);

    impl Analyzer for Probe {
        fn on_open(&mut self, id: FlowId, _p: &Packet) {
            self.0.lock().unwrap().opens.push(id);
            self.1.open(id);
        }
        fn on_segment(&mut self, id: FlowId, _d: usize, _p: &Packet, _c: &Conn, ev: &SegEvents) {
            *self.1.get_mut(id).expect("opened") += 1;
            let mut h = self.0.lock().unwrap();
            h.active_opens += ev.sender.has(Event::ActiveOpen) as u32;
            h.listeners += ev.sender.has(Event::Listener) as u32;
        }
        fn on_timer(&mut self, _id: FlowId, _side: usize, _c: &Conn, ev: Events, _now: u64) {
            self.0.lock().unwrap().timer_fails += ev.has(Event::AttemptFailed) as u32;
        }
        fn on_retire(&mut self, id: FlowId, _c: &Conn, why: Retire) {
            let segs = *self.1.get_mut(id).expect("opened");
            self.0.lock().unwrap().retired.push((why, segs));
        }
        fn on_packet(&mut self, _p: &Packet) {
            self.0.lock().unwrap().other_packets += 1;
        }
        fn publish(&self, _store: &Store) {
            self.0.lock().unwrap().published += 1;
        }
    }

    /// A segment from `from` to `to` ("addr:port").
    fn seg(from: &str, to: &str, flags: u8, (seq, ack): (u32, u32), ts: u64) -> Packet {
        let ep = |s: &str| {
            let a: std::net::SocketAddr = s.parse().unwrap();
            (from_ip(a.ip()), a.port())
        };
        let (((src, v6), sport), ((dst, _), dport)) = (ep(from), ep(to));
        Packet { src, dst, sport, dport, v6, flags, seq, ack, ts, kind: Kind::Tcp, ..Default::default() }
    }

    /// A plug-in hears every hook of a shard it runs in, alongside netstat.
    #[test]
    fn an_extra_analyzer_hears_opens_events_timers_retirements_and_other_packets() {
        let heard = Arc::new(Mutex::new(Heard::default()));
        let extras: Extras = vec![Box::new(Probe(heard.clone(), PerFlow::default()))];
        let mut sh = Shard::with_extras(Profile::new(Os::Linux), Interest::All, 1 << 10, extras);
        const S: u64 = 1_000_000_000;
        let t0 = 1_700_000_000 * S;
        // A handshake that completes, and a SYN nobody answers.
        sh.process(&seg("10.0.0.1:40000", "10.0.0.2:80", flag::SYN, (100, 0), t0));
        sh.process(&seg("10.0.0.2:80", "10.0.0.1:40000", flag::SYN | flag::ACK, (500, 101), t0 + 1));
        sh.process(&seg("10.0.0.1:40000", "10.0.0.2:80", flag::ACK, (101, 501), t0 + 2));
        sh.process(&seg("10.0.0.1:40001", "10.0.0.3:80", flag::SYN, (900, 0), t0 + 3));
        // A UDP datagram belongs to no connection.
        let mut udp = seg("10.0.0.1:53", "10.0.0.9:53", 0, (0, 0), t0 + 4);
        udp.kind = Kind::Udp;
        sh.process(&udp);
        // Past the SYN give-up and the linger time: the unanswered one fails and is forgotten.
        sh.advance(t0 + 200 * S);
        sh.publish(&Store::new());
        let h = heard.lock().unwrap();
        assert_eq!(h.opens.len(), 2, "{h:?}");
        assert_eq!((h.active_opens, h.listeners, h.timer_fails), (2, 1, 1), "{h:?}");
        assert_eq!(h.retired, [(Retire::Closed, 1)], "the unanswered SYN: {h:?}");
        assert_eq!((h.other_packets, h.published), (1, 1), "{h:?}");
    }
}

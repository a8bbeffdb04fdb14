//! The two-endpoint state machine, transition by transition: each test feeds
//! segments as a capture shows them and, after every segment that matters,
//! checks the state of BOTH endpoints and what each endpoint's own kernel
//! would have counted. The counter semantics are Linux's, the oracle's
//! (`../shared/oracle/README.md`, "Linux counter semantics").
//!
//! Two harnesses: [`Wire`] drives a [`Conn`] directly, the way the shard does;
//! the shard tests go through [`Shard`] for timers on capture time, tables
//! and per-host counter accumulation, and read what views read.

use super::conn::{Conn, Endpoint};
use super::events::{Event, SegEvents};
use super::shard::Shard;
use super::state::TcpState::{self, *};
use crate::addr::{FlowKey, Key4, Key6, from_ip};
use crate::analysis::Interest;
use crate::analysis::netstat::{EpCounts, MibFlow};
use crate::decode::{Kind, Packet, flag};
use crate::os::{Os, Profile};
use crate::report::TcpCounters;
use crate::report::{HostView, Store};
use std::net::IpAddr;

const US: u64 = 1_000;
const MS: u64 = 1_000 * US;
const SEC: u64 = 1_000 * MS;
/// Capture time of every test's first segment.
const T0: u64 = 1_700_000_000 * SEC;

/// Capture time `n` milliseconds after `T0`.
fn ms(n: u64) -> u64 {
    T0 + n * MS
}

/// Side of the client (the lower address, so side 0 of the flow key) and of the server.
const C: usize = 0;
const S: usize = 1;

const ISN_C: u32 = 1000;
const ISN_S: u32 = 5000;

/// One segment (or the ICMP error quoting one), built field by field.
#[derive(Clone, Copy, Debug)]
struct Seg(Packet);

impl Seg {
    fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Seg {
        let (s, v6) = from_ip(src);
        let (d, _) = from_ip(dst);
        Seg(Packet { src: s, dst: d, sport, dport, v6, kind: Kind::Tcp, ..Default::default() })
    }

    fn flags(mut self, f: u8) -> Seg {
        self.0.flags |= f;
        self
    }

    fn syn(self) -> Seg {
        self.flags(flag::SYN)
    }

    fn fin(self) -> Seg {
        self.flags(flag::FIN)
    }

    fn rst(self) -> Seg {
        self.flags(flag::RST)
    }

    fn seq(mut self, n: u32) -> Seg {
        self.0.seq = n;
        self
    }

    /// Sets the ACK flag and the acknowledgment number.
    fn ack(mut self, n: u32) -> Seg {
        self.0.ack = n;
        self.flags(flag::ACK)
    }

    /// `n` bytes of payload (with PSH, as a sender's last segment of a write has).
    fn data(mut self, n: u32) -> Seg {
        self.0.payload_len = n;
        self.flags(flag::PSH)
    }

    fn at(mut self, ts: u64) -> Seg {
        self.0.ts = ts;
        self
    }

    /// The ICMP error (`typ`, `code`) quoting this segment: as the decoder
    /// reports it, addresses, ports, sequence number and flags are the quoted
    /// segment's as its sender sent it; the ACK number is not quoted.
    fn icmp(mut self, typ: u8, code: u8) -> Seg {
        self.0.kind = Kind::IcmpError;
        self.0.icmp_type = typ;
        self.0.icmp_code = code;
        self.0.ack = 0;
        self.0.payload_len = 0;
        self
    }

    /// Which side of the flow key sent it, as the shard decides.
    fn side(&self) -> usize {
        let s = &self.0;
        if s.v6 {
            Key6::canonical(&s.src, &s.dst, s.sport, s.dport).1
        } else {
            Key4::canonical(&s.src, &s.dst, s.sport, s.dport).1
        }
    }
}

/// The 4-tuple of a test connection.
#[derive(Clone, Copy, Debug)]
struct Tuple {
    client: IpAddr,
    cport: u16,
    server: IpAddr,
    sport: u16,
}

impl Tuple {
    fn new(client: &str, cport: u16, server: &str, sport: u16) -> Tuple {
        let t = Tuple { client: client.parse().unwrap(), cport, server: server.parse().unwrap(), sport };
        assert_eq!(t.c().side(), C, "the client must be side 0 of the flow key");
        t
    }

    fn v4() -> Tuple {
        Tuple::new("10.0.0.1", 40000, "10.0.0.2", 80)
    }

    fn v6() -> Tuple {
        Tuple::new("fd00::1", 40000, "fd00::2", 443)
    }

    /// A segment from the client to the server.
    fn c(&self) -> Seg {
        Seg::new(self.client, self.cport, self.server, self.sport)
    }

    /// A segment from the server to the client.
    fn s(&self) -> Seg {
        Seg::new(self.server, self.sport, self.client, self.cport)
    }
}

/// A [`Conn`] driven directly: the first segment creates it, as in the shard,
/// and each segment is applied from its sender's side.
struct Wire {
    conn: Option<Conn>,
    /// What the netstat analyzer counts from the events.
    mib: MibFlow,
    profile: Profile,
}

impl Wire {
    fn new() -> Wire {
        Wire { conn: None, mib: MibFlow::default(), profile: Profile::new(Os::Linux) }
    }

    fn feed(&mut self, seg: Seg) -> SegEvents {
        let s = seg.0;
        assert_eq!(s.kind, Kind::Tcp);
        let d = seg.side();
        let ev = self.conn.get_or_insert_with(|| Conn::first(&s)).segment(d, &s, s.ts);
        self.mib.segment(d, &s, &ev);
        ev
    }

    fn icmp(&mut self, seg: Seg) {
        let s = seg.0;
        assert_eq!(s.kind, Kind::IcmpError);
        let d = seg.side();
        let ev = self.conn.as_mut().expect("ICMP error before any segment").icmp_error(d, &s, s.ts, &self.profile);
        self.mib.events(d, ev);
    }

    /// What side `side` counts, as the netstat analyzer keeps it.
    fn counts(&self, side: usize) -> &EpCounts {
        &self.mib.ep[side]
    }

    fn conn(&self) -> &Conn {
        self.conn.as_ref().expect("no segment fed yet")
    }

    fn ep(&self, side: usize) -> &Endpoint {
        &self.conn().ep[side]
    }
}

/// An endpoint's MIB events, compared in one line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Mib {
    active: u8,
    passive: u8,
    fails: u8,
    resets: u8,
}

const NONE: Mib = Mib { active: 0, passive: 0, fails: 0, resets: 0 };
const ACTIVE: Mib = Mib { active: 1, ..NONE };
const PASSIVE: Mib = Mib { passive: 1, ..NONE };

impl Mib {
    fn of(e: &EpCounts) -> Mib {
        let n = |v: u64| v as u8;
        Mib {
            active: n(e.active_opens()),
            passive: n(e.passive_opens()),
            fails: n(e.attempt_fails()),
            resets: n(e.estab_resets()),
        }
    }
}

/// What an endpoint sent: frames, the MIB's Segments Retransmitted and
/// Segments Sent (which counts every SYN-ACK, resent or not).
#[derive(Debug, PartialEq, Eq)]
struct Tx {
    segs: u32,
    rexmits: u32,
    out: u32,
}

impl Tx {
    fn of(e: &EpCounts) -> Tx {
        Tx { segs: e.segs, rexmits: e.retrans, out: e.out() as u32 }
    }
}

/// `synack_rexmits`: how many of the retransmissions were a request socket's
/// SYN-ACK, which Segments Sent counts as well (stated for the reader; `out` says it).
fn tx(segs: u32, rexmits: u32, synack_rexmits: u16, out: u32) -> Tx {
    assert!(synack_rexmits as u32 <= rexmits);
    Tx { segs, rexmits, out }
}

#[track_caller]
fn states(w: &Wire, client: TcpState, server: TcpState) {
    assert_eq!((w.ep(C).state, w.ep(S).state), (client, server), "(client, server) states");
}

#[track_caller]
fn mibs(w: &Wire, client: Mib, server: Mib) {
    assert_eq!((Mib::of(w.counts(C)), Mib::of(w.counts(S))), (client, server), "(client, server) MIB events");
}

/// SYN, SYN-ACK, ACK at `T0`, +1 ms and +2 ms.
fn handshake(w: &mut Wire, t: &Tuple) {
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)));
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(2)));
}

/// An IPv4 connection with its handshake done: the client's next sequence
/// number is `ISN_C + 1`, the server's `ISN_S + 1`.
fn established() -> (Wire, Tuple) {
    let t = Tuple::v4();
    let mut w = Wire::new();
    handshake(&mut w, &t);
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
    (w, t)
}

fn linux_shard() -> Shard {
    Shard::new(Profile::new(Os::Linux), Interest::All, 1 << 16)
}

fn process(sh: &mut Shard, segs: &[Seg]) {
    for s in segs {
        sh.process(&s.0);
    }
}

/// What a view of host `ip` shows now: a fresh store, one publish.
fn view(sh: &Shard, ip: IpAddr) -> HostView {
    let store = Store::new();
    sh.publish(&store);
    HostView::build(&store, &[ip])
}

/// A view's rows as (local port, foreign port, state).
fn rows(h: &HostView) -> Vec<(u16, u16, TcpState)> {
    h.rows.iter().map(|(_, r)| (r.local_port, r.foreign_port, r.state)).collect()
}

/// The handshake and an active close by the client, which ends in TIME_WAIT
/// at `ms(12)` while the server is gone.
fn client_closes(t: &Tuple) -> Vec<Seg> {
    vec![
        t.c().syn().seq(ISN_C).at(ms(0)),
        t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)),
        t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(2)),
        t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)),
        t.s().fin().seq(ISN_S + 1).ack(ISN_C + 2).at(ms(11)),
        t.c().seq(ISN_C + 2).ack(ISN_S + 2).at(ms(12)),
    ]
}

// ---------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------

#[test]
fn active_open_counts_at_syn_and_passive_open_only_at_final_ack() {
    let t = Tuple::v4();
    let mut w = Wire::new();

    let out = w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    assert!(!out.sender.has(Event::Listener));
    states(&w, SynSent, Unknown);
    mibs(&w, ACTIVE, NONE);

    let out = w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)));
    assert!(out.sender.has(Event::Listener), "a SYN answered with a SYN-ACK shows a listener");
    states(&w, Established, SynRcvd);
    // A request socket is no passive open yet: the final ACK creates the child.
    mibs(&w, ACTIVE, NONE);

    let out = w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(2)));
    assert!(!out.sender.has(Event::Listener));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
    assert_eq!(Tx::of(w.counts(C)), tx(2, 0, 0, 2));
    assert_eq!(Tx::of(w.counts(S)), tx(1, 0, 0, 1));
    assert!(!w.conn().midstream());
}

#[test]
fn shard_publishes_listener_rows_and_counters_of_a_handshake() {
    let t = Tuple::v4();
    let mut sh = linux_shard();

    process(&mut sh, &[t.c().syn().seq(ISN_C).at(ms(0))]);
    let srv = view(&sh, t.server);
    assert!(srv.listeners.is_empty(), "no listener before it answers");
    assert!(rows(&srv).is_empty(), "a SYN alone leaves the server no row");
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, SynSent)]);

    process(&mut sh, &[t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1))]);
    let srv = view(&sh, t.server);
    assert_eq!(srv.listeners, [(t.server, 80)]);
    assert_eq!(rows(&srv), [(80, 40000, SynRcvd)]);
    assert_eq!(srv.tcp_v4.passive_opens, 0);

    process(&mut sh, &[t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(2))]);
    let srv = view(&sh, t.server);
    assert_eq!(srv.listeners, [(t.server, 80)], "the listener stays after the handshake");
    assert_eq!(rows(&srv), [(80, 40000, Established)]);
    assert_eq!(
        srv.tcp_v4,
        TcpCounters {
            passive_opens: 1,
            current_connections: 1,
            segments_received: 2,
            segments_sent: 1,
            ..Default::default()
        }
    );
    let cli = view(&sh, t.client);
    assert!(cli.listeners.is_empty());
    assert_eq!(rows(&cli), [(40000, 80, Established)]);
    assert_eq!(
        cli.tcp_v4,
        TcpCounters {
            active_opens: 1,
            current_connections: 1,
            segments_received: 1,
            segments_sent: 2,
            ..Default::default()
        }
    );
    assert_eq!(cli.tcp_v6, TcpCounters::default());

    let (conn, _, dir) = sh.conn(t.client, t.cport, t.server, t.sport).expect("tracked");
    assert_eq!(dir, C);
    assert_eq!((conn.ep[C].state, conn.ep[S].state), (Established, Established));
    let (_, _, dir) = sh.conn(t.server, t.sport, t.client, t.cport).expect("tracked");
    assert_eq!(dir, S);
}

#[test]
fn shard_ipv6_handshake_counts_in_tcp_v6() {
    let t = Tuple::v6();
    let mut sh = linux_shard();
    process(
        &mut sh,
        &[
            t.c().syn().seq(ISN_C).at(ms(0)),
            t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)),
            t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(2)),
        ],
    );
    let srv = view(&sh, t.server);
    assert_eq!(srv.listeners, [(t.server, 443)]);
    assert_eq!(rows(&srv), [(443, 40000, Established)]);
    assert_eq!(srv.tcp_v4, TcpCounters::default());
    assert_eq!(
        srv.tcp_v6,
        TcpCounters {
            passive_opens: 1,
            current_connections: 1,
            segments_received: 2,
            segments_sent: 1,
            ..Default::default()
        }
    );
    assert_eq!(view(&sh, t.client).tcp_v6.active_opens, 1);
}

#[test]
fn syn_retransmission_is_a_retransmit_not_a_segment_sent_nor_a_second_open() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    assert_eq!(Tx::of(w.counts(C)), tx(1, 0, 0, 1));

    w.feed(t.c().syn().seq(ISN_C).at(ms(1000)));
    states(&w, SynSent, Unknown);
    mibs(&w, ACTIVE, NONE);
    assert_eq!(Tx::of(w.counts(C)), tx(2, 1, 0, 1));

    w.feed(t.c().syn().seq(ISN_C).at(ms(3000)));
    mibs(&w, ACTIVE, NONE);
    assert_eq!(Tx::of(w.counts(C)), tx(3, 2, 0, 1));

    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(3001)));
    states(&w, Established, SynRcvd);
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(3002)));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
    assert_eq!(Tx::of(w.counts(C)), tx(4, 2, 0, 2));
}

#[test]
fn synack_retransmission_counts_in_both_out_segs_and_retransmits() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)));
    assert_eq!(Tx::of(w.counts(S)), tx(1, 0, 0, 1));

    // The request timer resends the SYN-ACK (tcp_make_synack counts every one in OutSegs).
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1001)));
    states(&w, Established, SynRcvd);
    mibs(&w, ACTIVE, NONE);
    assert_eq!(Tx::of(w.counts(S)), tx(2, 1, 1, 2));

    // The client never got them: it resends its SYN and is connecting again.
    w.feed(t.c().syn().seq(ISN_C).at(ms(1002)));
    states(&w, SynSent, SynRcvd);
    mibs(&w, ACTIVE, NONE);
    assert_eq!(Tx::of(w.counts(C)), tx(2, 1, 0, 1));

    // The duplicate SYN draws another SYN-ACK.
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1003)));
    states(&w, Established, SynRcvd);
    assert_eq!(Tx::of(w.counts(S)), tx(3, 2, 2, 3));

    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(1004)));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
    assert_eq!(Tx::of(w.counts(C)), tx(3, 1, 0, 2));
    assert_eq!(Tx::of(w.counts(S)), tx(3, 2, 2, 3));
}

#[test]
fn data_segment_completes_the_handshake_when_the_final_ack_was_lost() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)));
    states(&w, Established, SynRcvd);

    // The pure ACK never made it to the capture; the first data segment carries the same ACK.
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(100).at(ms(5)));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
    assert_eq!(w.ep(S).rcv_nxt, ISN_C + 101);
    assert_eq!(Tx::of(w.counts(C)), tx(2, 0, 0, 2));

    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 101).at(ms(6)));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
}

#[test]
fn ack_with_the_wrong_number_does_not_complete_the_handshake() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)));
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 7).at(ms(2)));
    states(&w, Established, SynRcvd);
    mibs(&w, ACTIVE, NONE);
    // The listener answers the bad ACK with a bare RST at that ACK's number
    // (tcp_check_req hands it to the listener, which resets it): that ends
    // whatever connection the client thought it had, but the request socket
    // lives on and keeps resending its SYN-ACK.
    w.feed(t.s().rst().seq(ISN_S + 7).at(ms(3)));
    states(&w, Closed, SynRcvd);
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1001)));
    states(&w, Closed, SynRcvd);
    assert_eq!(Mib::of(w.counts(S)), NONE);
}

#[test]
fn simultaneous_open_counts_two_active_opens_and_no_passive_open() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    states(&w, SynSent, Unknown);

    // The server's own SYN crossed the client's.
    let out = w.feed(t.s().syn().seq(ISN_S).at(ms(1)));
    assert!(!out.sender.has(Event::Listener));
    states(&w, SynRcvd, SynSent);
    mibs(&w, ACTIVE, ACTIVE);

    // Each answers the other's SYN with a SYN-ACK that re-sends its own SYN.
    let out = w.feed(t.c().syn().seq(ISN_C).ack(ISN_S + 1).at(ms(2)));
    assert!(!out.sender.has(Event::Listener), "a connecting socket answering a SYN is no listener");
    states(&w, SynRcvd, Established);
    let out = w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(3)));
    assert!(!out.sender.has(Event::Listener));
    states(&w, Established, Established);
    // No request socket, no child: neither side counts a passive open.
    mibs(&w, ACTIVE, ACTIVE);
    assert!(!w.conn().midstream());
    // Each SYN-ACK re-sends a SYN already counted: Linux's tcp_send_synack
    // counts it in neither Segments Sent nor Segments Retransmitted.
    // (Segments Sent, Retransmitted, Received) of each side.
    let segs = |w: &Wire| {
        [C, S].map(|side| {
            let c = w.mib.counters(w.conn(), side, true);
            (c.segments_sent, c.segments_retransmitted, c.segments_received)
        })
    };
    assert_eq!(segs(&w), [(1, 0, 2), (1, 0, 2)]);
    // Its timer resending it is a retransmission, and still not a segment sent.
    w.feed(t.c().syn().seq(ISN_C).ack(ISN_S + 1).at(ms(1000)));
    assert_eq!(segs(&w), [(1, 1, 2), (1, 0, 3)]);
}

// ---------------------------------------------------------------------------
// Refused and reset handshakes
// ---------------------------------------------------------------------------

#[test]
fn syn_refused_by_rst_ack_of_the_isn_fails_the_attempt() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.s().rst().seq(0).ack(ISN_C + 1).at(ms(1)));
    states(&w, Closed, Closed);
    mibs(&w, Mib { active: 1, fails: 1, ..NONE }, NONE);
    assert!(!w.conn().has_rows());
    // The reset for a closed port counts in the refusing host's OutSegs.
    assert_eq!(Tx::of(w.counts(S)), tx(1, 0, 0, 1));
    assert_eq!(Tx::of(w.counts(C)), tx(1, 0, 0, 1));
}

#[test]
fn rst_that_does_not_ack_the_syn_is_ignored_in_syn_sent() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));

    w.feed(t.s().rst().seq(0).ack(ISN_C + 2).at(ms(1)));
    assert_eq!(w.ep(C).state, SynSent);
    assert_eq!(Mib::of(w.counts(C)), ACTIVE);

    w.feed(t.s().rst().seq(0).ack(ISN_C).at(ms(2)));
    assert_eq!(w.ep(C).state, SynSent);

    // RFC 9293: in SYN-SENT a RST without ACK is dropped.
    w.feed(t.s().rst().seq(ISN_C + 1).at(ms(3)));
    assert_eq!(w.ep(C).state, SynSent);
    assert_eq!(Mib::of(w.counts(C)), ACTIVE);

    w.feed(t.s().rst().seq(0).ack(ISN_C + 1).at(ms(4)));
    assert_eq!(w.ep(C).state, Closed);
    assert_eq!(Mib::of(w.counts(C)), Mib { active: 1, fails: 1, ..NONE });
}

#[test]
fn shard_refused_connect_publishes_failed_attempt_and_no_listener() {
    let t = Tuple::v4();
    let mut sh = linux_shard();
    process(&mut sh, &[t.c().syn().seq(ISN_C).at(ms(0)), t.s().rst().seq(0).ack(ISN_C + 1).at(ms(1))]);
    let cli = view(&sh, t.client);
    assert!(rows(&cli).is_empty());
    assert_eq!(
        cli.tcp_v4,
        TcpCounters {
            active_opens: 1,
            failed_connection_attempts: 1,
            segments_received: 1,
            segments_sent: 1,
            ..Default::default()
        }
    );
    let srv = view(&sh, t.server);
    assert!(srv.listeners.is_empty(), "a port that refuses is not listening");
    assert!(rows(&srv).is_empty());
    assert_eq!(srv.tcp_v4, TcpCounters { segments_received: 1, segments_sent: 1, ..Default::default() });
}

#[test]
fn embryonic_reset_closes_syn_rcvd_and_fails_the_attempt() {
    // The oracle's `resets` case: the client's firewall drops the SYN-ACKs, the
    // client gives up, and its host answers the next SYN-ACK with a socket-less
    // RST: seq = the SYN-ACK's ACK number, no ACK flag (tcp_v4_send_reset).
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1001)));
    states(&w, Established, SynRcvd);
    assert_eq!(w.ep(S).rcv_nxt, ISN_C + 1);

    w.feed(t.c().rst().seq(ISN_C + 1).at(ms(1002)));
    // Only the request socket counts (tcp_check_req → AttemptFails). The client
    // had no socket left: its close() in SYN_SENT counted nothing, and a bare RST
    // is no abort of an established connection (those carry ACK).
    states(&w, Closed, Closed);
    mibs(&w, ACTIVE, Mib { fails: 1, ..NONE });
    assert!(!w.conn().has_rows());
    assert_eq!(Tx::of(w.counts(S)), tx(2, 1, 1, 2));
    assert_eq!(Tx::of(w.counts(C)), tx(2, 0, 0, 2));
}

#[test]
fn socket_less_rst_from_a_client_still_in_syn_sent_closes_it_uncounted() {
    // As above, but the client had resent its SYN (the capture shows it connecting
    // again) and the capture missed the SYN-ACK its host then answers. A RST at its
    // snd_nxt answers an acceptable SYN-ACK, which a live SYN_SENT socket would have
    // taken (it resets only an unacceptable one, at that one's ACK number): the
    // socket is gone.
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)));
    w.feed(t.c().syn().seq(ISN_C).at(ms(1000)));
    states(&w, SynSent, SynRcvd);

    w.feed(t.c().rst().seq(ISN_C + 1).at(ms(3002)));
    states(&w, Closed, Closed);
    mibs(&w, ACTIVE, Mib { fails: 1, ..NONE });
    assert!(!w.conn().has_rows());
}

#[test]
fn syn_sent_socket_resetting_a_bad_synack_stays_connecting() {
    // A SYN-ACK that acknowledges something else draws a RST at its ACK number;
    // the connecting socket goes on (tcp_rcv_synsent_state_process).
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 50).at(ms(1)));
    assert_eq!(w.ep(C).state, SynSent);
    w.feed(t.c().rst().seq(ISN_C + 50).at(ms(2)));
    assert_eq!(w.ep(C).state, SynSent);
    assert_eq!(Mib::of(w.counts(C)), ACTIVE);
}

#[test]
fn out_of_window_rst_leaves_the_request_socket() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)));
    w.feed(t.c().rst().seq(ISN_C + 1 + 1_000_000).at(ms(2)));
    assert_eq!(w.ep(S).state, SynRcvd);
    assert_eq!(Mib::of(w.counts(S)), NONE);
    // A RST whose ACK is not the SYN-ACK's is not for this request either.
    w.feed(t.c().rst().seq(ISN_C + 1).ack(ISN_S + 9).at(ms(3)));
    assert_eq!(w.ep(S).state, SynRcvd);
    assert_eq!(Mib::of(w.counts(S)), NONE);
}

// ---------------------------------------------------------------------------
// Closing
// ---------------------------------------------------------------------------

#[test]
fn active_close_fin_wait_1_fin_wait_2_time_wait_and_passive_close_to_closed() {
    let (mut w, t) = established();

    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    states(&w, FinWait1, CloseWait);

    // Data the server sent before the FIN reached it: its ACK does not cover the FIN.
    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 1).data(50).at(ms(11)));
    states(&w, FinWait1, CloseWait);

    w.feed(t.s().seq(ISN_S + 51).ack(ISN_C + 2).at(ms(12)));
    states(&w, FinWait2, CloseWait);

    w.feed(t.s().fin().seq(ISN_S + 51).ack(ISN_C + 2).at(ms(20)));
    states(&w, TimeWait, LastAck);

    w.feed(t.c().seq(ISN_C + 2).ack(ISN_S + 52).at(ms(21)));
    states(&w, TimeWait, Closed);
    mibs(&w, ACTIVE, PASSIVE);
    assert_eq!(w.ep(C).state_ts, ms(20), "TIME_WAIT entered at the peer's FIN");
    assert_eq!(Tx::of(w.counts(C)), tx(4, 0, 0, 4));
    assert_eq!(Tx::of(w.counts(S)), tx(4, 0, 0, 4));
}

#[test]
fn fin_ack_that_also_acks_our_fin_goes_from_fin_wait_1_straight_to_time_wait() {
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    states(&w, FinWait1, CloseWait);

    w.feed(t.s().fin().seq(ISN_S + 1).ack(ISN_C + 2).at(ms(11)));
    states(&w, TimeWait, LastAck);

    w.feed(t.c().seq(ISN_C + 2).ack(ISN_S + 2).at(ms(12)));
    states(&w, TimeWait, Closed);
    mibs(&w, ACTIVE, PASSIVE);
}

#[test]
fn peer_fin_that_does_not_ack_ours_goes_through_closing() {
    // Simultaneous close: the server's FIN left before the client's FIN reached
    // it, so it acknowledges only up to the client's FIN. Both sides closed
    // first, so both are active closers: neither ever is in CLOSE_WAIT/LAST_ACK.
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    states(&w, FinWait1, CloseWait);

    w.feed(t.s().fin().seq(ISN_S + 1).ack(ISN_C + 1).at(ms(11)));
    states(&w, Closing, Closing);

    // Each acknowledges the other's FIN.
    w.feed(t.c().seq(ISN_C + 2).ack(ISN_S + 2).at(ms(12)));
    states(&w, Closing, TimeWait);
    w.feed(t.s().seq(ISN_S + 2).ack(ISN_C + 2).at(ms(13)));
    states(&w, TimeWait, TimeWait);
    mibs(&w, ACTIVE, PASSIVE);
}

#[test]
fn closing_waits_for_the_ack_of_our_fin_retransmission() {
    // The oracle's `halfclose` CLOSING: the peer drops the client's FIN, then
    // half-closes itself; the client gets the peer's FIN with no ACK of its own.
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    w.feed(t.s().fin().seq(ISN_S + 1).ack(ISN_C + 1).at(ms(20)));
    assert_eq!(w.ep(C).state, Closing);

    // The client acknowledges the peer's FIN (and resends its own with it).
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 2).at(ms(21)));
    assert_eq!(w.ep(C).state, Closing);
    assert_eq!(Tx::of(w.counts(C)), tx(4, 1, 0, 3), "the FIN resent is a retransmission");

    // A duplicate ACK that still does not cover the FIN changes nothing.
    w.feed(t.s().seq(ISN_S + 2).ack(ISN_C + 1).at(ms(22)));
    assert_eq!(w.ep(C).state, Closing);

    w.feed(t.s().seq(ISN_S + 2).ack(ISN_C + 2).at(ms(30)));
    assert_eq!(w.ep(C).state, TimeWait);
    assert_eq!(w.ep(C).state_ts, ms(30));
    assert_eq!(Mib::of(w.counts(C)), ACTIVE);
}

#[test]
fn out_of_order_fin_waits_for_the_gap_before_close_wait() {
    // The client's 100 bytes were lost before the capture point; its FIN behind
    // them arrives first, then the data is resent.
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 101).ack(ISN_S + 1).at(ms(10)));
    states(&w, FinWait1, Established);
    assert_eq!(w.ep(S).rcv_nxt, ISN_C + 1);

    // The server can only acknowledge what precedes the hole.
    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 1).at(ms(11)));
    states(&w, FinWait1, Established);

    // Half the hole filled: still a hole.
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(50).at(ms(20)));
    states(&w, FinWait1, Established);
    assert_eq!(w.ep(S).rcv_nxt, ISN_C + 51);

    w.feed(t.c().seq(ISN_C + 51).ack(ISN_S + 1).data(50).at(ms(21)));
    states(&w, FinWait1, CloseWait);
    assert_eq!(w.ep(S).rcv_nxt, ISN_C + 102, "the FIN is taken once the hole is filled");
    // From the capture point the data came after the FIN that follows it: by the
    // sequence rule it re-sends sequence space the client had already used.
    assert_eq!(Tx::of(w.counts(C)), tx(5, 2, 0, 3));

    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 102).at(ms(22)));
    states(&w, FinWait2, CloseWait);
    mibs(&w, ACTIVE, PASSIVE);
}

#[test]
fn out_of_order_fin_is_taken_when_the_receiver_acks_it() {
    // The capture missed the data before the FIN altogether; the receiver's ACK
    // of the FIN shows it has everything.
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 101).ack(ISN_S + 1).at(ms(10)));
    states(&w, FinWait1, Established);
    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 102).at(ms(11)));
    states(&w, FinWait2, CloseWait);
    assert_eq!(w.ep(S).rcv_nxt, ISN_C + 102);
}

// ---------------------------------------------------------------------------
// Resets of synchronized connections
// ---------------------------------------------------------------------------

#[test]
fn rst_in_established_is_accepted_only_at_rcv_nxt() {
    let (mut w, t) = established();
    // The server sent 100 bytes the capture never saw (lost upstream), then aborted:
    // its RST is at its own snd_nxt, beyond what the client expects (RFC 5961).
    w.feed(t.s().rst().ack(ISN_C + 1).seq(ISN_S + 101).at(ms(10)));
    assert_eq!(w.ep(C).state, Established);
    assert_eq!(Mib::of(w.counts(C)), ACTIVE);
    // The sender aborted its own established connection whatever the peer makes of it.
    assert_eq!(w.ep(S).state, Closed);
    assert_eq!(Mib::of(w.counts(S)), Mib { passive: 1, resets: 1, ..NONE });

    // rcv_nxt - 1 is not acceptable in ESTABLISHED either.
    w.feed(t.s().rst().seq(ISN_S).at(ms(11)));
    assert_eq!(w.ep(C).state, Established);

    // The client's challenge ACK reaches a host with no socket, which resets at
    // the ACK number: exactly rcv_nxt.
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(12)));
    assert_eq!(w.ep(C).state, Established);
    w.feed(t.s().rst().seq(ISN_S + 1).at(ms(13)));
    states(&w, Closed, Closed);
    mibs(&w, Mib { active: 1, resets: 1, ..NONE }, Mib { passive: 1, resets: 1, ..NONE });
}

#[test]
fn rst_received_at_rcv_nxt_in_established_counts_an_estab_reset() {
    let (mut w, t) = established();
    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 1).data(10).at(ms(10)));
    w.feed(t.s().rst().seq(ISN_S + 11).ack(ISN_C + 1).at(ms(11)));
    states(&w, Closed, Closed);
    mibs(&w, Mib { active: 1, resets: 1, ..NONE }, Mib { passive: 1, resets: 1, ..NONE });
    assert!(!w.conn().has_rows());
}

#[test]
fn rst_sent_in_established_counts_for_the_sender_too() {
    let (mut w, t) = established();
    // SO_LINGER {1, 0} close by the client: RST|ACK at its snd_nxt.
    w.feed(t.c().rst().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    states(&w, Closed, Closed);
    mibs(&w, Mib { active: 1, resets: 1, ..NONE }, Mib { passive: 1, resets: 1, ..NONE });
    // A RST is a segment sent, never a retransmission.
    assert_eq!(Tx::of(w.counts(C)), tx(3, 0, 0, 3));
}

#[test]
fn rst_sent_in_close_wait_counts_for_the_sender_and_closes_fin_wait_2_uncounted() {
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 2).at(ms(11)));
    states(&w, FinWait2, CloseWait);

    w.feed(t.s().rst().seq(ISN_S + 1).ack(ISN_C + 2).at(ms(20)));
    states(&w, Closed, Closed);
    // CLOSE_WAIT → CLOSED counts for the server; a RST in FIN_WAIT_2 does not.
    mibs(&w, ACTIVE, Mib { passive: 1, resets: 1, ..NONE });
}

#[test]
fn rst_received_in_close_wait_counts_an_estab_reset() {
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 2).at(ms(11)));
    w.feed(t.c().rst().seq(ISN_C + 2).ack(ISN_S + 1).at(ms(20)));
    states(&w, Closed, Closed);
    // The client sent it from FIN_WAIT_2: not counted there.
    mibs(&w, ACTIVE, Mib { passive: 1, resets: 1, ..NONE });
}

#[test]
fn rst_at_rcv_nxt_minus_one_is_accepted_in_close_wait() {
    // tcp_reset_check: after the peer's FIN, a RST at the FIN's own sequence
    // number is accepted (macOS sends FIN then RST with the same seq).
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 2).at(ms(11)));
    states(&w, FinWait2, CloseWait);
    assert_eq!(w.ep(S).rcv_nxt, ISN_C + 2);

    w.feed(t.c().rst().seq(ISN_C + 1).at(ms(12)));
    states(&w, Closed, Closed);
    mibs(&w, ACTIVE, Mib { passive: 1, resets: 1, ..NONE });
}

#[test]
fn rst_at_rcv_nxt_minus_one_is_accepted_in_last_ack_uncounted() {
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    w.feed(t.s().fin().seq(ISN_S + 1).ack(ISN_C + 2).at(ms(11)));
    states(&w, TimeWait, LastAck);

    w.feed(t.c().rst().seq(ISN_C + 1).at(ms(12)));
    assert_eq!(w.ep(S).state, Closed);
    // LAST_ACK → CLOSED is no estab reset.
    mibs(&w, ACTIVE, PASSIVE);
}

#[test]
fn rst_at_rcv_nxt_minus_one_is_rejected_in_fin_wait_2() {
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 2).data(20).at(ms(11)));
    states(&w, FinWait2, CloseWait);
    assert_eq!(w.ep(C).rcv_nxt, ISN_S + 21);

    // No FIN from the server yet: only rcv_nxt itself is acceptable.
    w.feed(t.s().rst().seq(ISN_S + 20).at(ms(12)));
    assert_eq!(w.ep(C).state, FinWait2);
    w.feed(t.s().rst().seq(ISN_S + 21).at(ms(13)));
    assert_eq!(w.ep(C).state, Closed);
    assert_eq!(Mib::of(w.counts(C)), ACTIVE);
}

#[test]
fn rst_in_time_wait_at_rcv_nxt_closes_it() {
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    w.feed(t.s().fin().seq(ISN_S + 1).ack(ISN_C + 2).at(ms(11)));
    states(&w, TimeWait, LastAck);
    w.feed(t.s().rst().seq(ISN_S + 1).at(ms(12)));
    assert_eq!(w.ep(C).state, TimeWait, "a RST before rcv_nxt is no TIME_WAIT assassination");
    w.feed(t.s().rst().seq(ISN_S + 2).at(ms(13)));
    assert_eq!(w.ep(C).state, Closed);
    mibs(&w, ACTIVE, PASSIVE);
}

// ---------------------------------------------------------------------------
// ICMP errors
// ---------------------------------------------------------------------------

#[test]
fn icmp_port_unreachable_for_a_retransmitted_syn_fails_the_attempt() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    let syn = t.c().syn().seq(ISN_C);
    w.feed(syn.at(ms(0)));
    w.feed(syn.at(ms(1000)));
    w.icmp(syn.icmp(3, 3).at(ms(1000) + 50 * US));
    states(&w, Closed, Unknown);
    mibs(&w, Mib { active: 1, fails: 1, ..NONE }, NONE);
    assert!(!w.conn().has_rows());
}

#[test]
fn icmp_port_unreachable_right_after_the_first_syn_is_a_soft_error() {
    // On the first SYN, connect() still holds the socket lock when the ICMP
    // arrives: only sk_err_soft is set, nothing is counted.
    let t = Tuple::v4();
    let mut w = Wire::new();
    let syn = t.c().syn().seq(ISN_C);
    w.feed(syn.at(ms(0)));
    w.icmp(syn.icmp(3, 3).at(ms(0) + 50 * US));
    states(&w, Closed, Unknown);
    mibs(&w, ACTIVE, NONE);
    assert!(!w.conn().has_rows());

    // connect() had not given up: its timer resends the SYN, with no new open.
    w.feed(syn.at(ms(1000)));
    states(&w, SynSent, Unknown);
    mibs(&w, ACTIVE, NONE);
    assert_eq!(Tx::of(w.counts(C)), tx(2, 1, 0, 1));

    // The error for the retransmission is processed unlocked: a hard failure.
    w.icmp(syn.icmp(3, 3).at(ms(1000) + 50 * US));
    states(&w, Closed, Unknown);
    mibs(&w, Mib { active: 1, fails: 1, ..NONE }, NONE);
}

#[test]
fn icmp_port_unreachable_outside_the_soft_window_fails_the_attempt() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    let syn = t.c().syn().seq(ISN_C);
    w.feed(syn.at(ms(0)));
    w.icmp(syn.icmp(3, 3).at(ms(0) + 100 * US));
    assert_eq!(w.ep(C).state, Closed);
    assert_eq!(Mib::of(w.counts(C)), Mib { active: 1, fails: 1, ..NONE });
}

#[test]
fn icmp_frag_needed_and_errors_for_other_segments_change_nothing() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    let syn = t.c().syn().seq(ISN_C);
    w.feed(syn.at(ms(0)));
    w.feed(syn.at(ms(1000)));
    // Fragmentation needed only lowers the path MTU.
    w.icmp(syn.icmp(3, 4).at(ms(1001)));
    states(&w, SynSent, Unknown);
    mibs(&w, ACTIVE, NONE);
    // An error quoting some other sequence number is not about this SYN.
    w.icmp(t.c().syn().seq(ISN_C + 77).icmp(3, 3).at(ms(1002)));
    states(&w, SynSent, Unknown);
    mibs(&w, ACTIVE, NONE);

    // A synchronized connection only notes hard errors.
    let (mut w, t) = established();
    w.icmp(t.c().seq(ISN_C + 1).icmp(3, 3).at(ms(10)));
    w.icmp(t.c().seq(ISN_C).icmp(3, 1).at(ms(11)));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
}

#[test]
fn shard_icmpv6_port_unreachable_fails_the_attempt_and_packet_too_big_does_not() {
    let t = Tuple::v6();
    let mut sh = linux_shard();
    let syn = t.c().syn().seq(ISN_C);
    process(&mut sh, &[syn.at(ms(0)), syn.at(ms(1000)), syn.icmp(2, 0).at(ms(1001))]);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 443, SynSent)]);
    process(&mut sh, &[syn.icmp(1, 4).at(ms(1002))]);
    let cli = view(&sh, t.client);
    assert!(rows(&cli).is_empty());
    assert_eq!(
        cli.tcp_v6,
        TcpCounters {
            active_opens: 1,
            failed_connection_attempts: 1,
            segments_sent: 1,
            segments_retransmitted: 1,
            ..Default::default()
        }
    );
    // The server's host received both SYNs; the ICMP error is not a TCP segment.
    assert_eq!(view(&sh, t.server).tcp_v6, TcpCounters { segments_received: 2, ..Default::default() });
}

// ---------------------------------------------------------------------------
// Mid-stream pickup
// ---------------------------------------------------------------------------

#[test]
fn midstream_pickup_needs_traffic_both_ways_and_counts_no_open() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().seq(70_000).ack(90_000).data(100).at(ms(0)));
    assert!(w.conn().midstream());
    states(&w, Unknown, Unknown);
    assert!(!w.conn().has_rows());

    w.feed(t.c().seq(70_100).ack(90_000).data(100).at(ms(1)));
    states(&w, Unknown, Unknown);

    w.feed(t.s().seq(90_000).ack(70_200).data(10).at(ms(2)));
    states(&w, Established, Established);
    mibs(&w, NONE, NONE);
    assert_eq!(Tx::of(w.counts(C)), tx(2, 0, 0, 2));

    // It then closes like any other connection.
    w.feed(t.c().fin().seq(70_200).ack(90_010).at(ms(3)));
    states(&w, FinWait1, CloseWait);
    mibs(&w, NONE, NONE);
}

#[test]
fn shard_one_way_midstream_traffic_makes_no_rows() {
    let t = Tuple::v4();
    let mut sh = linux_shard();
    process(
        &mut sh,
        &[
            t.c().seq(70_000).ack(90_000).data(100).at(ms(0)),
            t.c().seq(70_100).ack(90_000).data(100).at(ms(1)),
            t.c().seq(70_200).ack(90_000).at(ms(2)),
        ],
    );
    let (cli, srv) = (view(&sh, t.client), view(&sh, t.server));
    assert!(rows(&cli).is_empty());
    assert!(rows(&srv).is_empty());
    assert!(srv.listeners.is_empty());
    assert_eq!(cli.tcp_v4, TcpCounters { segments_sent: 3, ..Default::default() });
    assert_eq!(srv.tcp_v4, TcpCounters { segments_received: 3, ..Default::default() });
}

// ---------------------------------------------------------------------------
// Retransmissions by the sequence rule
// ---------------------------------------------------------------------------

#[test]
fn partial_overlap_beyond_snd_nxt_is_not_a_retransmission() {
    let (mut w, t) = established();
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(100).at(ms(10)));
    assert_eq!(w.ep(C).snd_nxt, ISN_C + 101);

    // Repacketized: starts inside what was sent but ends beyond it (new data → OutSegs).
    w.feed(t.c().seq(ISN_C + 51).ack(ISN_S + 1).data(100).at(ms(11)));
    assert_eq!(Tx::of(w.counts(C)), tx(4, 0, 0, 4));
    assert_eq!(w.ep(C).snd_nxt, ISN_C + 151);

    // Wholly inside: a retransmission.
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(150).at(ms(12)));
    assert_eq!(Tx::of(w.counts(C)), tx(5, 1, 0, 4));
    w.feed(t.c().seq(ISN_C + 101).ack(ISN_S + 1).data(50).at(ms(13)));
    assert_eq!(Tx::of(w.counts(C)), tx(6, 2, 0, 4));
    assert_eq!(w.ep(C).snd_nxt, ISN_C + 151);
    assert_eq!(w.ep(C).payload_bytes(), Some(150), "sequence space sent, retransmissions once");
    states(&w, Established, Established);
}

#[test]
fn zero_length_segments_are_never_retransmissions() {
    let (mut w, t) = established();
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(100).at(ms(10)));
    // A Linux keepalive probe: zero length at snd_una - 1.
    w.feed(t.c().seq(ISN_C + 100).ack(ISN_S + 1).at(ms(20)));
    // Duplicate ACKs, window updates.
    w.feed(t.c().seq(ISN_C + 101).ack(ISN_S + 1).at(ms(21)));
    w.feed(t.c().seq(ISN_C + 101).ack(ISN_S + 1).at(ms(22)));
    assert_eq!(Tx::of(w.counts(C)), tx(6, 0, 0, 6));
    assert_eq!(w.ep(C).snd_nxt, ISN_C + 101);
    states(&w, Established, Established);
}

#[test]
fn sequence_numbers_wrap_around_2_pow_32() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    let (isn_c, isn_s) = (u32::MAX, u32::MAX - 10);
    w.feed(t.c().syn().seq(isn_c).at(ms(0)));
    assert_eq!(w.ep(C).snd_nxt, 0);
    w.feed(t.s().syn().seq(isn_s).ack(0).at(ms(1)));
    states(&w, Established, SynRcvd);
    w.feed(t.c().seq(0).ack(isn_s.wrapping_add(1)).at(ms(2)));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);

    // The server's data crosses 2^32.
    w.feed(t.s().seq(isn_s.wrapping_add(1)).ack(0).data(100).at(ms(3)));
    let end = isn_s.wrapping_add(101);
    assert_eq!(end, 90);
    assert_eq!(w.ep(S).snd_nxt, end);
    assert_eq!(w.ep(C).rcv_nxt, end);
    w.feed(t.s().seq(isn_s.wrapping_add(1)).ack(0).data(100).at(ms(4)));
    w.feed(t.s().seq(u32::MAX - 2).ack(0).data(20).at(ms(5)));
    assert_eq!(Tx::of(w.counts(S)), tx(4, 2, 0, 2));
    w.feed(t.s().seq(end).ack(0).data(10).at(ms(6)));
    assert_eq!(Tx::of(w.counts(S)), tx(5, 2, 0, 3));

    // RST acceptance across the wrap: rcv_nxt is 100, rcv_nxt - 1 is rejected.
    w.feed(t.s().rst().seq(end + 9).at(ms(7)));
    assert_eq!(w.ep(C).state, Established);
    w.feed(t.s().rst().seq(end + 10).at(ms(8)));
    assert_eq!(w.ep(C).state, Closed);
    assert_eq!(Mib::of(w.counts(C)), Mib { active: 1, resets: 1, ..NONE });
}

// ---------------------------------------------------------------------------
// Timers on capture time (through the shard)
// ---------------------------------------------------------------------------

/// Segments that arrive just after a deadline, before the queued timers have
/// had their turn (they may run up to `TIMER_SLACK` late): each connection is
/// brought up to date by its own segment, so the views equal those of a shard
/// whose timers run exactly on time, at every snapshot.
#[test]
fn shard_late_timers_change_nothing_a_view_or_segment_sees() {
    let (a, b, c, d) = (
        Tuple::new("10.0.0.1", 40000, "10.0.0.2", 80),
        Tuple::new("10.0.0.1", 40001, "10.0.0.2", 80),
        Tuple::new("10.0.0.1", 40002, "10.0.0.2", 80),
        Tuple::new("10.0.0.1", 40003, "10.0.0.2", 80),
    );
    let tw = ms(12);
    let mut segs = client_closes(&a);
    // A: the 4-tuple reused 1 ms after its TIME_WAIT ran out.
    segs.push(a.c().syn().seq(ISN_C + 100_000).at(tw + 60 * SEC + MS));
    segs.push(a.s().syn().seq(ISN_S + 7).ack(ISN_C + 100_001).at(tw + 60 * SEC + 2 * MS));
    segs.push(a.c().seq(ISN_C + 100_001).ack(ISN_S + 8).at(tw + 60 * SEC + 3 * MS));
    // B: a SYN nobody answers until just after connect() gave up.
    segs.push(b.c().syn().seq(ISN_C).at(0));
    segs.push(b.c().syn().seq(ISN_C).at(SEC));
    segs.push(b.s().syn().seq(ISN_S).ack(ISN_C + 1).at(127 * SEC + 5 * MS));
    // C: closed, then a stray ACK once TIME_WAIT and the linger time are over.
    segs.extend(client_closes(&c));
    segs.push(c.s().seq(ISN_S + 2).ack(ISN_C + 2).at(tw + 70 * SEC + MS));
    // D: a handshake whose final ACK comes after the server gave up on it.
    segs.push(d.c().syn().seq(ISN_C).at(ms(3)));
    segs.push(d.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(4)));
    segs.push(d.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(4) + 63 * SEC + MS));
    // E: reset, a stray segment inside the linger time (which moves it on), then
    // traffic both ways just after the linger time counted from that segment.
    let e = Tuple::new("10.0.0.1", 40004, "10.0.0.2", 80);
    let t0 = 200 * SEC;
    segs.push(e.c().syn().seq(ISN_C).at(t0));
    segs.push(e.s().syn().seq(ISN_S).ack(ISN_C + 1).at(t0 + MS));
    segs.push(e.c().seq(ISN_C + 1).ack(ISN_S + 1).at(t0 + 2 * MS));
    segs.push(e.c().rst().ack(ISN_S + 1).seq(ISN_C + 1).at(t0 + 3 * MS));
    segs.push(e.s().seq(ISN_S + 1).ack(ISN_C + 1).data(10).at(t0 + 3 * SEC));
    // (another connection's SYN wakes the shard in between)
    segs.push(Tuple::new("10.0.0.1", 40005, "10.0.0.2", 80).c().syn().seq(ISN_C).at(t0 + 11 * SEC));
    segs.push(e.c().seq(ISN_C + 1).ack(ISN_S + 11).data(5).at(t0 + 13 * SEC + 5 * MS));
    segs.push(e.s().seq(ISN_S + 11).ack(ISN_C + 6).at(t0 + 13 * SEC + 6 * MS));
    segs.sort_by_key(|s| s.0.ts);

    let (mut late, mut exact) = (linux_shard(), linux_shard());
    let hosts = [a.client, a.server];
    let mut checked = 0;
    for (i, s) in segs.iter().enumerate() {
        late.process(&s.0);
        exact.advance(s.0.ts);
        exact.process(&s.0);
        // A snapshot after every segment: both run their due timers first.
        let at = s.0.ts;
        if segs.get(i + 1).is_none_or(|n| n.0.ts > at) {
            late.advance(at);
            for h in hosts {
                assert_eq!(view(&late, h), view(&exact, h), "after the segment at {at}");
            }
            checked += 1;
        }
    }
    assert!(checked > 10);
    let end = t0 + 300 * SEC;
    late.advance(end);
    exact.advance(end);
    for h in hosts {
        assert_eq!(view(&late, h), view(&exact, h));
    }
    let cli = view(&exact, a.client);
    assert_eq!(cli.tcp_v4.active_opens, 7, "A twice, B, C, D, E, and the one waking the shard");
    assert_eq!(cli.tcp_v4.failed_connection_attempts, 2, "B and the waker gave up");
}

/// `--idle-timeout` forgets a quiet connection even when no timer is queued
/// to wake the shard, and a snapshot taken before the sweep runs already
/// leaves it out; traffic resuming later is a new, mid-stream connection.
#[test]
fn shard_idle_timeout_holds_without_queued_timers() {
    let t = Tuple::v4();
    let idle = Profile::new(Os::Linux).with_idle_timeout(Some(std::time::Duration::from_secs(5)));
    let mut sh = Shard::new(idle, Interest::All, 1 << 16);
    process(&mut sh, &[t.c().syn().seq(ISN_C).at(0), t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(MS)]);
    process(&mut sh, &[t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(2 * MS)]);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, Established)]);
    // 5 s of silence: gone from the view, its counters kept, before any sweep ran.
    sh.tick(5 * SEC + 2 * MS);
    let v = view(&sh, t.client);
    assert!(rows(&v).is_empty());
    assert_eq!((v.tcp_v4.active_opens, v.tcp_v4.current_connections, v.tcp_v4.segments_sent), (1, 0, 2));
    // Traffic resumes at 30 s: a new connection, picked up mid-stream.
    process(&mut sh, &[t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(10).at(30 * SEC)]);
    process(&mut sh, &[t.s().seq(ISN_S + 1).ack(ISN_C + 11).at(30 * SEC + MS)]);
    let v = view(&sh, t.client);
    assert_eq!(rows(&v), [(40000, 80, Established)]);
    assert!(v.rows[0].1.midstream);
    assert_eq!((v.tcp_v4.active_opens, v.tcp_v4.segments_sent), (1, 3));
    assert_eq!(sh.stats().idle_expired, 1);
}

/// The same, without snapshots in between: the late shard's timers run only
/// when they are `TIMER_SLACK` overdue, and it ends with the same views.
#[test]
fn shard_late_timers_end_in_the_same_views_without_snapshots() {
    let mut segs = Vec::new();
    for i in 0..200u16 {
        let t = Tuple::new("10.0.0.1", 20000 + i, "10.0.0.2", 80);
        let base = i as u64 * 700 * MS;
        let shifted: Vec<Seg> = client_closes(&t)
            .into_iter()
            .map(|s| {
                let ts = s.0.ts;
                s.at(base + ts)
            })
            .collect();
        segs.extend(shifted);
        // Every third 4-tuple is reused just after its TIME_WAIT ran out.
        if i % 3 == 0 {
            let at = base + ms(12) + 60 * SEC + (i as u64 % 7) * MS;
            segs.push(t.c().syn().seq(ISN_C - 500).at(at));
            segs.push(t.s().rst().seq(0).ack(ISN_C - 499).at(at + MS));
        }
    }
    segs.sort_by_key(|s| s.0.ts);
    let (mut late, mut exact) = (linux_shard(), linux_shard());
    for s in &segs {
        late.process(&s.0);
        exact.advance(s.0.ts);
        exact.process(&s.0);
    }
    let end = segs.last().unwrap().0.ts;
    late.advance(end);
    exact.advance(end);
    let (cli, srv) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    for h in [cli, srv] {
        assert_eq!(view(&late, h), view(&exact, h));
    }
    let v = view(&exact, cli);
    assert_eq!(v.tcp_v4.active_opens, 200 + 67);
    assert_eq!(v.tcp_v4.failed_connection_attempts, 67);
    assert!(!v.rows.is_empty());
}

#[test]
fn shard_time_wait_expires_after_60s_of_capture_time() {
    let t = Tuple::v4();
    let mut sh = linux_shard();
    process(&mut sh, &client_closes(&t));
    let tw = ms(11);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, TimeWait)]);
    assert!(rows(&view(&sh, t.server)).is_empty());

    sh.advance(tw + 59 * SEC);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, TimeWait)]);
    sh.advance(tw + 60 * SEC - 1);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, TimeWait)]);
    sh.advance(tw + 60 * SEC);
    let cli = view(&sh, t.client);
    assert!(rows(&cli).is_empty());
    assert_eq!(sh.flows(), 0, "quiet for longer than the linger: forgotten");
    // Its counters outlive it.
    assert_eq!(
        cli.tcp_v4,
        TcpCounters { active_opens: 1, segments_received: 2, segments_sent: 4, ..Default::default() }
    );
    assert_eq!(
        view(&sh, t.server).tcp_v4,
        TcpCounters { passive_opens: 1, segments_received: 4, segments_sent: 2, ..Default::default() }
    );
}

#[test]
fn shard_time_wait_is_rearmed_by_an_ack_bearing_segment() {
    let t = Tuple::v4();
    let mut sh = linux_shard();
    process(&mut sh, &client_closes(&t));
    let tw = ms(11);

    // The server did not get the last ACK: its FIN comes again 30 s later.
    let again = tw + 30 * SEC;
    process(&mut sh, &[t.s().fin().seq(ISN_S + 1).ack(ISN_C + 2).at(again)]);
    let (conn, mib, _) = sh.conn(t.client, t.cport, t.server, t.sport).unwrap();
    assert_eq!(conn.ep[C].state_ts, again);
    assert_eq!(mib.ep[S].retrans, 1);
    process(&mut sh, &[t.c().seq(ISN_C + 2).ack(ISN_S + 2).at(again + MS)]);

    sh.advance(tw + 60 * SEC);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, TimeWait)], "the first deadline no longer holds");
    sh.advance(again + 60 * SEC - 1);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, TimeWait)]);
    sh.advance(again + 60 * SEC);
    assert!(rows(&view(&sh, t.client)).is_empty());

    // A pure ACK re-arms it too.
    let mut sh = linux_shard();
    process(&mut sh, &client_closes(&t));
    let again = tw + 50 * SEC;
    process(&mut sh, &[t.s().seq(ISN_S + 2).ack(ISN_C + 2).at(again)]);
    sh.advance(tw + 70 * SEC);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, TimeWait)]);
    sh.advance(again + 60 * SEC);
    assert!(rows(&view(&sh, t.client)).is_empty());
}

#[test]
fn shard_windows_time_wait_lasts_240s() {
    let t = Tuple::v4();
    let mut sh = Shard::new(Profile::new(Os::Windows), Interest::All, 1 << 16);
    process(&mut sh, &client_closes(&t));
    let tw = ms(11);
    sh.advance(tw + 60 * SEC);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, TimeWait)]);
    sh.advance(tw + 239 * SEC);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, TimeWait)]);
    sh.advance(tw + 240 * SEC);
    assert!(rows(&view(&sh, t.client)).is_empty());
}

#[test]
fn shard_syn_sent_gives_up_at_127s_and_counts_a_failed_attempt() {
    let t = Tuple::v4();
    let mut sh = linux_shard();
    // tcp_syn_retries = 6: SYNs at 0, 1, 3, 7, 15, 31 and 63 s.
    for s in [0, 1, 3, 7, 15, 31, 63] {
        process(&mut sh, &[t.c().syn().seq(ISN_C).at(T0 + s * SEC)]);
    }
    sh.advance(T0 + 127 * SEC - 1);
    let cli = view(&sh, t.client);
    assert_eq!(rows(&cli), [(40000, 80, SynSent)]);
    assert_eq!(cli.tcp_v4.failed_connection_attempts, 0);

    sh.advance(T0 + 127 * SEC);
    let cli = view(&sh, t.client);
    assert!(rows(&cli).is_empty());
    let gave_up = TcpCounters {
        active_opens: 1,
        failed_connection_attempts: 1,
        segments_sent: 1,
        segments_retransmitted: 6,
        ..Default::default()
    };
    assert_eq!(cli.tcp_v4, gave_up);
    assert_eq!(view(&sh, t.server).tcp_v4, TcpCounters { segments_received: 7, ..Default::default() });

    // Still there once the connection is forgotten.
    sh.advance(T0 + 300 * SEC);
    assert_eq!(sh.flows(), 0);
    assert_eq!(view(&sh, t.client).tcp_v4, gave_up);
}

#[test]
fn shard_syn_rcvd_expires_at_63s_without_counting() {
    let t = Tuple::v4();
    let mut sh = linux_shard();
    let first = ms(1);
    process(&mut sh, &[t.c().syn().seq(ISN_C).at(ms(0))]);
    // tcp_synack_retries = 5: SYN-ACKs at 0, 1, 3, 7, 15 and 31 s.
    for s in [0, 1, 3, 7, 15, 31] {
        process(&mut sh, &[t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(first + s * SEC)]);
    }
    sh.advance(first + 63 * SEC - 1);
    assert_eq!(rows(&view(&sh, t.server)), [(80, 40000, SynRcvd)]);

    sh.advance(first + 63 * SEC);
    let srv = view(&sh, t.server);
    assert!(rows(&srv).is_empty());
    assert_eq!(srv.listeners, [(t.server, 80)], "the port is still a listener");
    assert_eq!(
        srv.tcp_v4,
        TcpCounters { segments_received: 1, segments_sent: 6, segments_retransmitted: 5, ..Default::default() }
    );
}

#[test]
fn shard_refused_syn_leaves_no_timer_behind() {
    // A closed connection is forgotten after the linger, and late timers of
    // states it left do nothing.
    let t = Tuple::v4();
    let mut sh = linux_shard();
    process(&mut sh, &[t.c().syn().seq(ISN_C).at(ms(0)), t.s().rst().seq(0).ack(ISN_C + 1).at(ms(1))]);
    assert_eq!(sh.flows(), 1);
    sh.advance(ms(1) + 10 * SEC);
    assert_eq!(sh.flows(), 0);
    sh.advance(T0 + 200 * SEC);
    let cli = view(&sh, t.client);
    assert_eq!(cli.tcp_v4.failed_connection_attempts, 1, "the SYN_SENT give-up must not count it again");
}

// ---------------------------------------------------------------------------
// Reuse of a 4-tuple, per-host counters
// ---------------------------------------------------------------------------

#[test]
fn shard_new_syn_after_time_wait_starts_a_new_connection_and_keeps_old_counters() {
    let t = Tuple::v4();
    let mut sh = linux_shard();
    // The server closes first and keeps the TIME_WAIT.
    process(
        &mut sh,
        &[
            t.c().syn().seq(ISN_C).at(ms(0)),
            t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)),
            t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(2)),
            t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(100).at(ms(3)),
            t.s().fin().seq(ISN_S + 1).ack(ISN_C + 101).at(ms(4)),
            t.c().fin().seq(ISN_C + 101).ack(ISN_S + 2).at(ms(5)),
            t.s().seq(ISN_S + 2).ack(ISN_C + 102).at(ms(6)),
        ],
    );
    assert_eq!(rows(&view(&sh, t.server)), [(80, 40000, TimeWait)]);
    assert!(rows(&view(&sh, t.client)).is_empty());

    // The client reuses its port with a new ISN 5 s later.
    let isn2 = ISN_C + 1_000_000;
    process(
        &mut sh,
        &[
            t.c().syn().seq(isn2).at(ms(5000)),
            t.s().syn().seq(ISN_S + 7_000_000).ack(isn2 + 1).at(ms(5001)),
            t.c().seq(isn2 + 1).ack(ISN_S + 7_000_001).at(ms(5002)),
        ],
    );
    let (conn, mib, _) = sh.conn(t.client, t.cport, t.server, t.sport).unwrap();
    assert_eq!((conn.ep[C].state, conn.ep[S].state), (Established, Established));
    assert_eq!(conn.ep[C].isn, isn2);
    assert_eq!((mib.ep[C].segs, mib.ep[S].segs), (2, 1), "the new connection starts from zero");

    let srv = view(&sh, t.server);
    assert_eq!(rows(&srv), [(80, 40000, Established)]);
    assert_eq!(
        srv.tcp_v4,
        TcpCounters {
            passive_opens: 2,
            current_connections: 1,
            segments_received: 4 + 2,
            segments_sent: 3 + 1,
            ..Default::default()
        }
    );
    let cli = view(&sh, t.client);
    assert_eq!(rows(&cli), [(40000, 80, Established)]);
    assert_eq!(
        cli.tcp_v4,
        TcpCounters {
            active_opens: 2,
            current_connections: 1,
            segments_received: 3 + 1,
            segments_sent: 4 + 2,
            ..Default::default()
        }
    );

    // The old TIME_WAIT deadline passes without touching the new connection.
    sh.advance(ms(4) + 61 * SEC);
    assert_eq!(rows(&view(&sh, t.server)), [(80, 40000, Established)]);
    assert_eq!(view(&sh, t.server).tcp_v4.passive_opens, 2);
}

#[test]
fn retransmitted_syn_after_time_wait_is_not_a_new_connection() {
    let t = Tuple::v4();
    let mut sh = linux_shard();
    process(&mut sh, &client_closes(&t));
    // The same ISN again is an old duplicate of the first SYN.
    process(&mut sh, &[t.c().syn().seq(ISN_C).at(ms(100))]);
    let (conn, mib, _) = sh.conn(t.client, t.cport, t.server, t.sport).unwrap();
    assert_eq!((conn.ep[C].state, conn.ep[S].state), (TimeWait, Closed));
    assert_eq!(mib.ep[C].active_opens(), 1);
    assert_eq!(mib.ep[C].retrans, 1);
}

#[test]
fn shard_host_counters_include_stray_rsts_and_synack_retransmits() {
    let t = Tuple::v4();
    let stray: IpAddr = "10.0.0.9".parse().unwrap();
    let mut sh = linux_shard();
    process(
        &mut sh,
        &[
            t.c().syn().seq(ISN_C).at(ms(0)),
            t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)),
            t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1001)),
            t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(1002)),
            t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(100).at(ms(1003)),
            t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(100).at(ms(1300)),
            t.s().seq(ISN_S + 1).ack(ISN_C + 101).at(ms(1301)),
            // A reset for a connection nobody knows still reaches the server's stack.
            Seg::new(stray, 5555, t.server, 80).rst().seq(42).at(ms(1400)),
        ],
    );
    assert!(sh.conn(stray, 5555, t.server, 80).is_none(), "a stray RST creates no connection");

    let srv = view(&sh, t.server);
    // Sent: SYN-ACK, SYN-ACK again, ACK = 3 frames; OutSegs = 3 - 1 + 1.
    assert_eq!(
        srv.tcp_v4,
        TcpCounters {
            passive_opens: 1,
            current_connections: 1,
            segments_received: 4 + 1,
            segments_sent: 3,
            segments_retransmitted: 1,
            ..Default::default()
        }
    );
    let cli = view(&sh, t.client);
    assert_eq!(
        cli.tcp_v4,
        TcpCounters {
            active_opens: 1,
            current_connections: 1,
            segments_received: 3,
            segments_sent: 3,
            segments_retransmitted: 1,
            ..Default::default()
        }
    );
    assert_eq!(view(&sh, stray).tcp_v4, TcpCounters { segments_sent: 1, ..Default::default() });
    // The identity the oracle checks: frames sent = OutSegs + RetransSegs − SYN-ACK retransmits.
    assert_eq!(srv.tcp_v4.segments_sent + srv.tcp_v4.segments_retransmitted - 1, 3);
}

// ---------------------------------------------------------------------------
// Review regressions
// ---------------------------------------------------------------------------

/// A shard that follows only `hosts` (as under `--host`).
fn shard_for(hosts: &[IpAddr]) -> Shard {
    let only: std::collections::HashSet<IpAddr> = hosts.iter().copied().collect();
    Shard::new(Profile::new(Os::Linux), Interest::Only(std::sync::Arc::new(only)), 1 << 16)
}

#[test]
fn shard_midstream_pickup_after_both_fins_puts_the_active_closer_in_time_wait() {
    let t = Tuple::v4();

    // Only the client's FIN and the server's ACK of it: the close is half done.
    let mut sh = linux_shard();
    process(&mut sh, &[t.c().fin().seq(100).ack(500).at(ms(0)), t.s().seq(500).ack(101).at(ms(100))]);
    let (conn, _, _) = sh.conn(t.client, t.cport, t.server, t.sport).unwrap();
    assert_eq!((conn.ep[C].state, conn.ep[S].state), (FinWait2, CloseWait), "(client, server) states");
    assert!(conn.midstream());
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, FinWait2)]);
    assert_eq!(rows(&view(&sh, t.server)), [(80, 40000, CloseWait)]);

    // The whole close, with no handshake seen: FIN, ACK, FIN, ACK.
    let mut sh = linux_shard();
    process(
        &mut sh,
        &[
            t.c().fin().seq(100).ack(500).at(ms(0)),
            t.s().seq(500).ack(101).at(ms(100)),
            t.s().fin().seq(500).ack(101).at(ms(200)),
            t.c().seq(101).ack(501).at(ms(300)),
        ],
    );
    let (conn, _, _) = sh.conn(t.client, t.cport, t.server, t.sport).unwrap();
    assert_eq!((conn.ep[C].state, conn.ep[S].state), (TimeWait, Closed), "(client, server) states");
    let (cli, srv) = (view(&sh, t.client), view(&sh, t.server));
    assert_eq!(rows(&cli), [(40000, 80, TimeWait)], "the side that sent the first FIN closed actively");
    assert!(rows(&srv).is_empty(), "the passive closer has no row once its FIN is acked");
    assert_eq!(cli.tcp_v4.current_connections, 0);
    assert_eq!(srv.tcp_v4.current_connections, 0);
    // TIME_WAIT began when the server's FIN arrived (the client's own ACK does not re-arm it).
    let tw = conn.ep[C].state_ts;
    assert_eq!(tw, ms(200));
    sh.advance(tw + 60 * SEC - 1);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, TimeWait)]);
    sh.advance(tw + 60 * SEC);
    assert!(rows(&view(&sh, t.client)).is_empty());
    assert!(rows(&view(&sh, t.server)).is_empty());
    assert_eq!(sh.flows(), 0, "TIME_WAIT over and quiet for longer than the linger: forgotten");
}

#[test]
fn shard_connection_whose_linger_fired_while_it_had_rows_is_forgotten_after_it_closes() {
    // Picked up mid-stream: rowless for its first segment, so a linger entry is
    // queued for T0 + 11 s; the connection is ESTABLISHED when that entry fires.
    let t = Tuple::v4();
    let mut sh = linux_shard();
    process(
        &mut sh,
        &[
            t.c().seq(100).ack(500).data(10).at(T0 + SEC),
            t.s().seq(500).ack(110).at(T0 + 1100 * MS),
            t.c().seq(110).ack(500).data(10).at(T0 + 12 * SEC),
        ],
    );
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, Established)]);

    // Reset at T0 + 20 s: no rows left, so it must be forgotten one linger later.
    process(&mut sh, &[t.c().rst().seq(120).ack(500).at(T0 + 20 * SEC)]);
    let (conn, _, _) = sh.conn(t.client, t.cport, t.server, t.sport).unwrap();
    assert!(!conn.has_rows());
    assert_eq!(sh.flows(), 1, "kept for the linger");

    sh.advance(T0 + 1000 * SEC);
    assert!(sh.conn(t.client, t.cport, t.server, t.sport).is_none(), "the closed connection leaked");
    assert_eq!(sh.flows(), 0);
    // Its counters are kept.
    assert_eq!(view(&sh, t.client).tcp_v4.segments_sent, 3);
    assert_eq!(view(&sh, t.server).tcp_v4.segments_received, 3);
}

#[test]
fn shard_ack_flood_on_a_time_wait_keeps_the_timer_queues_bounded() {
    let t = Tuple::v4();
    let mut sh = linux_shard();
    process(&mut sh, &client_closes(&t));
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, TimeWait)]);

    // 100 000 ACKs from the server, 20 µs apart: each re-arms the TIME_WAIT.
    // Time advances after every 512 segments, as the pipeline does per batch.
    let ack = t.s().seq(ISN_S + 2).ack(ISN_C + 2);
    let start = T0 + 2 * SEC;
    let n = 100_000u64;
    let mut most_queued = 0;
    let mut last = start;
    for i in 0..n {
        last = start + i * 20 * US;
        sh.process(&ack.at(last).0);
        if i % 512 == 511 {
            sh.advance(last);
        }
        most_queued = most_queued.max(sh.bookkeeping().0);
    }
    sh.advance(last);
    assert_eq!(sh.flows(), 1);
    assert!(
        most_queued < 10_000,
        "{most_queued} timer entries queued at once for one connection: the queues grow with the packet rate"
    );
    assert!(sh.bookkeeping().0 <= 2 * sh.flows() + 4096);

    // The TIME_WAIT still ends 60 s after the last ACK, not before.
    sh.advance(last + 60 * SEC - 1);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, TimeWait)]);
    sh.advance(last + 60 * SEC);
    assert!(rows(&view(&sh, t.client)).is_empty());
    assert_eq!(sh.flows(), 0);
}

#[test]
fn shard_with_host_interest_records_only_that_hosts_listeners() {
    let x: IpAddr = "10.0.0.2".parse().unwrap();
    let mut sh = shard_for(&[x]);
    // X answers a SYN on port 80: X listens there.
    let t = Tuple::v4();
    process(&mut sh, &[t.c().syn().seq(ISN_C).at(ms(0)), t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1))]);

    // SYN-ACKs from 10 000 other addresses (port 80) to a third host.
    let victim: IpAddr = "10.0.0.3".parse().unwrap();
    for i in 0..10_000u32 {
        let src = IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + i));
        let s = Seg::new(src, 80, victim, 1000).syn().seq(100).ack(1).at(ms(10) + i as u64 * 100 * US);
        sh.process(&s.0);
    }
    assert_eq!(view(&sh, x).listeners, [(x, 80)]);
    assert_eq!(sh.bookkeeping().1, 1, "listening sockets of addresses nobody asked about were recorded");
}

#[test]
fn shard_syn_resent_after_its_synack_gives_up_on_time_behind_later_syn_sent_deadlines() {
    let a = Tuple::new("10.0.0.1", 1000, "10.0.0.2", 80);
    let b = Tuple::new("10.0.0.1", 2000, "10.0.0.3", 80);
    let c = Tuple::new("10.0.0.5", 7, "10.0.0.6", 8);
    let mut sh = linux_shard();
    let syn = T0 + 100 * SEC;
    let synack = syn + 10 * MS;
    process(
        &mut sh,
        &[
            a.c().syn().seq(100).at(syn),
            a.s().syn().seq(500).ack(101).at(synack),
            // Other connections' SYN_SENT deadlines (287 s, 290 s) queue up...
            b.c().syn().seq(9).at(T0 + 160 * SEC),
            c.c().syn().seq(1).at(T0 + 163 * SEC),
            // ...before the client, which never got the SYN-ACK, sends its SYN again.
            a.c().syn().seq(100).at(T0 + 163 * SEC),
        ],
    );
    assert_eq!(rows(&view(&sh, a.client)), [(1000, 80, SynSent), (2000, 80, SynSent)]);

    // Not before 127 s after the first SYN...
    sh.advance(syn + 127 * SEC - 1);
    assert_eq!(rows(&view(&sh, a.client)), [(1000, 80, SynSent), (2000, 80, SynSent)]);
    assert_eq!(view(&sh, a.client).tcp_v4.failed_connection_attempts, 0);
    // ...and no later than 127 s after the SYN-ACK, whatever is queued behind.
    sh.advance(synack + 127 * SEC);
    let cli = view(&sh, a.client);
    assert_eq!(rows(&cli), [(2000, 80, SynSent)], "connect() gives up 127 s after the first SYN");
    assert_eq!(cli.tcp_v4.failed_connection_attempts, 1);
    assert_eq!(cli.tcp_v4.active_opens, 2);

    sh.advance(T0 + 287 * SEC);
    let cli = view(&sh, a.client);
    assert!(rows(&cli).is_empty());
    assert_eq!(cli.tcp_v4.failed_connection_attempts, 2);
}

#[test]
fn icmp_port_unreachable_for_a_synack_keeps_the_request_socket_host_unreachable_drops_it() {
    // IPv4: port unreachable is not fatal to a request socket (tcp_req_err).
    let t = Tuple::v4();
    let mut w = Wire::new();
    let synack = t.s().syn().seq(ISN_S).ack(ISN_C + 1);
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(synack.at(ms(1)));
    states(&w, Established, SynRcvd);
    w.icmp(synack.icmp(3, 3).at(ms(2)));
    states(&w, Established, SynRcvd);
    // Host unreachable is.
    w.icmp(synack.icmp(3, 1).at(ms(3)));
    states(&w, Established, Closed);
    mibs(&w, ACTIVE, NONE);

    // IPv6: destination unreachable, port unreachable (code 4) is fatal.
    let t = Tuple::v6();
    let mut w = Wire::new();
    let synack = t.s().syn().seq(ISN_S).ack(ISN_C + 1);
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(synack.at(ms(1)));
    states(&w, Established, SynRcvd);
    w.icmp(synack.icmp(1, 4).at(ms(2)));
    states(&w, Established, Closed);
    mibs(&w, ACTIVE, NONE);
}

// ---------------------------------------------------------------------------
// One-sided captures: what the seen side's segments prove of the silent one
// ---------------------------------------------------------------------------

#[test]
fn one_sided_client_ack_of_the_peer_isn_proves_the_synack_and_a_listener() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    states(&w, SynSent, Unknown);
    assert!(!w.conn().one_sided(), "an unanswered SYN proves nothing missing");

    let out = w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(50)));
    states(&w, Established, Established);
    assert!(out.receiver.has(Event::Inferred) && out.receiver.has(Event::Listener));
    assert!(!out.sender.has(Event::Inferred));
    // The server's request socket took this ACK: its passive open.
    mibs(&w, ACTIVE, PASSIVE);
    assert!(w.conn().one_sided());
    // Nothing the server sent was captured, so nothing is counted as sent by it.
    assert_eq!(Tx::of(w.counts(S)), tx(0, 0, 0, 0));

    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(18).at(ms(51)));
    w.feed(t.c().seq(ISN_C + 19).ack(ISN_S + 500).at(ms(200)));
    states(&w, Established, Established);
    // Its FIN: the server gets it (what is sent is taken as delivered).
    w.feed(t.c().fin().seq(ISN_C + 19).ack(ISN_S + 500).at(ms(300)));
    states(&w, FinWait1, CloseWait);
    mibs(&w, ACTIVE, PASSIVE);
    assert!(w.conn().one_sided());
}

#[test]
fn one_sided_ack_moving_by_one_after_our_fin_is_the_peer_fin_time_wait() {
    // http-get-client-only.pcap: the client's FIN, then its ACK one past the server's data.
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(70)));
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(136).at(ms(71)));
    w.feed(t.c().seq(ISN_C + 137).ack(ISN_S + 5008).at(ms(140)));
    w.feed(t.c().fin().seq(ISN_C + 137).ack(ISN_S + 5008).at(ms(142)));
    states(&w, FinWait1, CloseWait);

    let out = w.feed(t.c().seq(ISN_C + 138).ack(ISN_S + 5009).at(ms(211)));
    // The server's FIN followed the client's and acknowledged it; this ACK of it
    // ends the server's LAST_ACK.
    states(&w, TimeWait, Closed);
    assert!(out.receiver.has(Event::Inferred));
    assert_eq!(w.ep(C).state_ts, ms(211));
    mibs(&w, ACTIVE, PASSIVE);
}

#[test]
fn one_sided_lone_synack_leaves_the_silent_client_without_a_row() {
    // wikipedia.pcap's last connection: the server answers a SYN the capture lacks.
    let t = Tuple::v4();
    let mut w = Wire::new();
    let out = w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(0)));
    assert!(out.sender.has(Event::Listener));
    states(&w, Unknown, SynRcvd);
    assert!(!w.conn().one_sided());
    // Retransmissions of it prove nothing more.
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1000)));
    states(&w, Unknown, SynRcvd);
    mibs(&w, NONE, NONE);
    assert!(!w.conn().one_sided());
}

#[test]
fn one_sided_server_data_proves_the_handshake_and_its_fin_acking_the_client_fin_last_ack() {
    // http-get-server-only.pcap: SYN-ACK, an ACK of the request, the response, and a
    // FIN that acknowledges one more byte: the client's FIN came first.
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(0)));
    let out = w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 137).at(ms(69)));
    states(&w, Established, Established);
    assert!(out.receiver.has(Event::Inferred));
    // The server's handshake completed: its passive open; the client's SYN was not
    // captured, so its open is not counted (it may predate the capture).
    mibs(&w, NONE, PASSIVE);
    assert!(w.conn().one_sided());

    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 137).data(5007).at(ms(70)));
    states(&w, Established, Established);
    let out = w.feed(t.s().fin().seq(ISN_S + 5008).ack(ISN_C + 138).at(ms(141)));
    assert!(out.receiver.has(Event::Inferred));
    states(&w, TimeWait, LastAck);
    mibs(&w, NONE, PASSIVE);
}

#[test]
fn one_sided_server_fin_right_after_its_synack_proves_the_handshake() {
    // A request socket sends no FIN: the socket that does was accepted.
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(0)));
    w.feed(t.s().fin().seq(ISN_S + 1).ack(ISN_C + 1).at(ms(5)));
    states(&w, CloseWait, FinWait1);
    mibs(&w, NONE, PASSIVE);
    assert!(w.conn().one_sided());
}

#[test]
fn one_sided_ack_by_one_that_is_followed_by_more_was_data_and_is_withdrawn() {
    // A telnet client's capture: the server's one-byte echo moves the ACK by one too.
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(1)));
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(1).at(ms(2)));
    // The ACK that proves the server's FIN also acknowledges it.
    w.feed(t.c().seq(ISN_C + 2).ack(ISN_S + 2).at(ms(3)));
    states(&w, CloseWait, FinWait2);

    let out = w.feed(t.c().seq(ISN_C + 2).ack(ISN_S + 3).data(1).at(ms(4)));
    // Not a FIN: the echo was a byte, and this one too may be the FIN.
    assert!(out.receiver.has(Event::InferenceWithdrawn));
    states(&w, CloseWait, FinWait2);
    let out = w.feed(t.c().seq(ISN_C + 3).ack(ISN_S + 40).at(ms(5)));
    assert!(out.receiver.has(Event::InferenceWithdrawn));
    states(&w, Established, Established);
    assert_eq!(w.ep(S).snd_nxt, ISN_S + 3, "the silent side's data now ends where the guess did");

    // Closing first, then an ACK by one, then more: back to FIN_WAIT_1 / CLOSE_WAIT.
    w.feed(t.c().fin().seq(ISN_C + 3).ack(ISN_S + 40).at(ms(6)));
    states(&w, FinWait1, CloseWait);
    w.feed(t.c().seq(ISN_C + 4).ack(ISN_S + 41).at(ms(7)));
    states(&w, TimeWait, Closed);
    w.feed(t.c().seq(ISN_C + 4).ack(ISN_S + 45).at(ms(8)));
    states(&w, FinWait1, CloseWait);
    assert_eq!(w.ep(C).state_ts, ms(7), "its FIN's give-up timer is not restarted");
    mibs(&w, ACTIVE, PASSIVE);
}

#[test]
fn one_sided_inference_gives_way_when_the_silent_side_speaks() {
    // The capture lost only the SYN-ACK: the server's later segments are seen.
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(10).at(ms(2)));
    states(&w, Established, Established);
    assert!(w.conn().one_sided());
    // Then the SYN-ACK itself, late (two interfaces merged): the first time it is on
    // the wire, so no retransmission.
    let out = w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(2)));
    assert!(!out.sender.has(Event::Retransmit));
    assert!(!w.conn().one_sided());
    states(&w, Established, Established);
    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 11).data(100).at(ms(3)));
    assert_eq!(Tx::of(w.counts(S)), tx(2, 0, 0, 2));
    // From here the ordinary rules: an ACK by one is no guess any more.
    w.feed(t.c().seq(ISN_C + 11).ack(ISN_S + 101).at(ms(4)));
    w.feed(t.c().seq(ISN_C + 11).ack(ISN_S + 102).at(ms(5)));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
}

#[test]
fn one_way_traffic_picked_up_mid_stream_infers_nothing() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(10).at(ms(0)));
    w.feed(t.c().seq(ISN_C + 11).ack(ISN_S + 2).at(ms(1)));
    states(&w, Unknown, Unknown);
    assert!(!w.conn().one_sided() && !w.conn().has_rows());
}

#[test]
fn shard_marks_one_sided_rows_counts_the_connections_and_lists_the_inferred_listener() {
    let t = Tuple::v4();
    let u = Tuple::new("10.0.0.1", 40001, "10.0.0.2", 80);
    let mut sh = linux_shard();
    process(
        &mut sh,
        &[
            t.c().syn().seq(ISN_C).at(ms(0)),
            t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(50)),
            // A second connection whose SYN-ACK only is missing: it becomes two-sided.
            u.c().syn().seq(ISN_C).at(ms(60)),
            u.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(61)),
        ],
    );
    assert_eq!(sh.stats().one_sided, 2);
    process(&mut sh, &[u.s().seq(ISN_S + 1).ack(ISN_C + 1).data(5).at(ms(62))]);
    assert_eq!(sh.stats().one_sided, 1);

    let srv = view(&sh, t.server);
    assert_eq!(srv.listeners, [(t.server, 80)], "the SYN-ACK the client acknowledged came from a listener");
    let marks: Vec<(u16, bool)> = srv.rows.iter().map(|(_, r)| (r.foreign_port, r.one_sided)).collect();
    assert_eq!(marks, [(40000, true), (40001, false)]);
    assert!(view(&sh, t.client).rows.iter().all(|(_, r)| r.one_sided == (r.local_port == 40000)));

    // Forgotten, it stays counted: the capture still lacked a direction.
    process(&mut sh, &[t.c().rst().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(70))]);
    sh.advance(ms(70) + 20 * SEC);
    assert!(sh.conn(t.client, t.cport, t.server, t.sport).is_none());
    assert_eq!(sh.stats().one_sided, 1);
}

// ---------------------------------------------------------------------------
// Handshakes out of file order, TCP Fast Open, PAWS, the handshake ACK's window
// ---------------------------------------------------------------------------

#[test]
fn syn_after_its_synack_in_file_order_is_still_the_active_open() {
    // handshake-reorder.pcap: the SYN-ACK comes first in the file.
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(0)));
    states(&w, Unknown, SynRcvd);
    let out = w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    assert!(out.sender.has(Event::ActiveOpen));
    assert!(!out.sender.has(Event::Retransmit));
    // It already got the SYN-ACK.
    states(&w, Established, SynRcvd);
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(1)));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
    assert_eq!(Tx::of(w.counts(C)), tx(2, 0, 0, 2));
    assert!(!w.conn().one_sided() && !w.conn().midstream());
}

#[test]
fn synack_answering_a_syn_before_the_capture_then_the_clients_ack_completes_it() {
    // Two-sided capture that starts between the SYN and the SYN-ACK: no open for the client.
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(0)));
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(20).at(ms(1)));
    states(&w, Established, Established);
    mibs(&w, NONE, PASSIVE);
    assert!(!w.conn().one_sided());
    assert_eq!(w.ep(C).payload_bytes(), Some(20), "its sequence space starts at the ISN the SYN-ACK acknowledged");
}

#[test]
fn fast_open_synack_acknowledging_the_syns_data_completes_the_handshake() {
    // sv-tcp-fastopen.pcap: the SYN carries 86 bytes, the SYN-ACK acknowledges ISN+87.
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).data(86).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 87).at(ms(1)));
    states(&w, Established, SynRcvd);
    w.feed(t.c().seq(ISN_C + 87).ack(ISN_S + 1).at(ms(2)));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
    // The server did not take the data (no cookie): it acknowledges the SYN only,
    // and the client sends the data again.
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).data(86).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)));
    states(&w, Established, SynRcvd);
    // Beyond what the SYN carried it acknowledges nothing sent: unacceptable.
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).data(86).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 88).at(ms(1)));
    states(&w, SynSent, SynRcvd);
}

#[test]
fn rst_that_paws_rejected_in_syn_sent_is_withdrawn_when_the_handshake_goes_on() {
    // sv-linux-evasion-timestamps.pcap: an injected RST and FIN, both acknowledging
    // the SYN; Linux's PAWS check drops them (their timestamp echo predates the SYN),
    // answering the FIN with a RST at its snd_nxt, and the real SYN-ACK completes it.
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.s().rst().seq(ISN_S.wrapping_sub(26175)).ack(ISN_C + 1).at(ms(61)));
    // Without timestamps the RST looks acceptable.
    states(&w, Closed, Closed);
    mibs(&w, Mib { active: 1, fails: 1, ..NONE }, NONE);
    w.feed(t.s().fin().seq(ISN_S.wrapping_sub(26175)).ack(ISN_C + 1).at(ms(62)));
    w.feed(t.c().rst().seq(ISN_C + 1).at(ms(63)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(64)));
    states(&w, Closed, SynRcvd);

    // A closed socket would answer the SYN-ACK with a RST; this one acknowledges it.
    let out = w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(65)));
    assert!(out.sender.has(Event::AttemptRevived));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
    w.feed(t.c().seq(ISN_C + 1).ack(ISN_S + 1).data(338).at(ms(66)));
    w.feed(t.s().seq(ISN_S + 1).ack(ISN_C + 339).data(79).at(ms(180)));
    states(&w, Established, Established);
}

#[test]
fn syn_sent_closed_by_its_own_rst_is_revived_by_its_syn_resent_without_a_second_open() {
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.c().rst().seq(ISN_C + 1).at(ms(1)));
    states(&w, Closed, Unknown);
    let out = w.feed(t.c().syn().seq(ISN_C).at(ms(1000)));
    assert!(out.sender.has(Event::Retransmit) && !out.sender.has(Event::ActiveOpen));
    states(&w, SynSent, Unknown);
    mibs(&w, ACTIVE, NONE);
}

#[test]
fn handshake_ack_outside_the_request_window_leaves_syn_rcvd() {
    // sv-3whs-wrong-seq-ack.pcap: the final ACK's sequence number is 100000 past rcv_nxt.
    let t = Tuple::v4();
    let mut w = Wire::new();
    w.feed(t.c().syn().seq(ISN_C).at(ms(0)));
    w.feed(t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(0)));
    w.feed(t.c().seq(ISN_C + 100_001).ack(ISN_S + 1).data(11).at(ms(0)));
    states(&w, Established, SynRcvd);
    mibs(&w, ACTIVE, NONE);
    // Inside the window (even past rcv_nxt, the bytes before it lost) it completes.
    w.feed(t.c().seq(ISN_C + 1001).ack(ISN_S + 1).data(11).at(ms(1)));
    states(&w, Established, Established);
    mibs(&w, ACTIVE, PASSIVE);
}

// ---------------------------------------------------------------------------
// A FIN that never reached its receiver; the orphan's FIN give-up timer
// ---------------------------------------------------------------------------

#[test]
fn closing_whose_later_segments_never_ack_the_peer_fin_is_fin_wait_1() {
    // pppoe-over-qinq.pcap: the server's FIN, 235 s after the client's, acknowledges
    // up to the client's FIN only, and so do its 4 retransmissions.
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    states(&w, FinWait1, CloseWait);
    w.feed(t.s().fin().seq(ISN_S + 1).ack(ISN_C + 1).data(31).at(ms(235_000)));
    // One FIN that does not cover the peer's: they may have crossed. (The client
    // takes the server's FIN; on the host, its own give-up timer ended it first.)
    states(&w, Closing, Closing);
    let out = w.feed(t.s().fin().seq(ISN_S + 1).ack(ISN_C + 1).data(31).at(ms(235_300)));
    assert!(out.sender.has(Event::PeerFinLost));
    states(&w, Closing, FinWait1);
    assert_eq!(w.ep(S).state_ts, ms(235_000), "its FIN give-up timer runs from its FIN");
    w.feed(t.s().fin().seq(ISN_S + 1).ack(ISN_C + 1).data(31).at(ms(235_900)));
    states(&w, Closing, FinWait1);

    // Had the client resent its FIN, acknowledging the server's, the server would
    // have taken it now.
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 33).at(ms(236_000)));
    states(&w, Closing, TimeWait);
    w.feed(t.s().seq(ISN_S + 33).ack(ISN_C + 2).at(ms(236_001)));
    states(&w, TimeWait, TimeWait);
    mibs(&w, ACTIVE, PASSIVE);
}

#[test]
fn crossing_fins_stay_closing_when_the_next_ack_covers_the_peer_fin() {
    // sv-tls-last-ack.pcap: the server's FIN acknowledges 917, its next ACK 918.
    let (mut w, t) = established();
    w.feed(t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(10)));
    w.feed(t.s().fin().seq(ISN_S + 1).ack(ISN_C + 1).at(ms(11)));
    states(&w, Closing, Closing);
    w.feed(t.s().seq(ISN_S + 2).ack(ISN_C + 2).at(ms(12)));
    states(&w, TimeWait, Closing);
    // Its FIN resent with the ACK of the client's: still CLOSING, awaiting its own ACK.
    w.feed(t.s().fin().seq(ISN_S + 1).ack(ISN_C + 2).at(ms(300)));
    states(&w, TimeWait, Closing);
}

#[test]
fn shard_orphan_fin_never_acknowledged_gives_up_after_204_4s() {
    let t = Tuple::v4();
    let mut sh = linux_shard();
    let fin = ms(10);
    process(
        &mut sh,
        &[
            t.c().syn().seq(ISN_C).at(ms(0)),
            t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)),
            t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(2)),
            t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(fin),
            // The FIN resent: the timer keeps running from the first one.
            t.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(fin + SEC),
        ],
    );
    sh.advance(fin + 204_400 * MS - 1);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, FinWait1)]);
    assert_eq!(rows(&view(&sh, t.server)), [(80, 40000, CloseWait)]);
    sh.advance(fin + 204_400 * MS);
    let cli = view(&sh, t.client);
    assert!(rows(&cli).is_empty(), "the orphan gave up on its FIN");
    assert_eq!(cli.tcp_v4.reset_connections + cli.tcp_v4.failed_connection_attempts, 0, "counted as neither");
    assert_eq!(rows(&view(&sh, t.server)), [(80, 40000, CloseWait)], "the peer never hears of it");

    // LAST_ACK and CLOSING (timed from the FIN, not from the crossing FIN's arrival) too.
    let u = Tuple::new("10.0.0.1", 40001, "10.0.0.2", 80);
    let mut sh = linux_shard();
    let close = T0 + 1000 * SEC;
    process(
        &mut sh,
        &[
            u.c().syn().seq(ISN_C).at(close),
            u.s().syn().seq(ISN_S).ack(ISN_C + 1).at(close + MS),
            u.c().seq(ISN_C + 1).ack(ISN_S + 1).at(close + 2 * MS),
            u.c().fin().seq(ISN_C + 1).ack(ISN_S + 1).at(close + 10 * SEC),
            u.s().fin().seq(ISN_S + 1).ack(ISN_C + 1).at(close + 11 * SEC),
        ],
    );
    assert_eq!(rows(&view(&sh, u.client)), [(40001, 80, Closing)]);
    sh.advance(close + 10 * SEC + 204_400 * MS - 1);
    assert_eq!(rows(&view(&sh, u.client)), [(40001, 80, Closing)]);
    sh.advance(close + 10 * SEC + 204_400 * MS);
    assert!(rows(&view(&sh, u.client)).is_empty());
    assert_eq!(rows(&view(&sh, u.server)), [(80, 40001, Closing)]);
    sh.advance(close + 11 * SEC + 204_400 * MS);
    assert!(rows(&view(&sh, u.server)).is_empty());
}

#[test]
fn shard_windows_orphan_fin_gives_up_after_189s() {
    let t = Tuple::v4();
    let mut sh = Shard::new(Profile::new(Os::Windows), Interest::All, 1 << 16);
    let segs = [
        t.c().syn().seq(ISN_C).at(ms(0)),
        t.s().syn().seq(ISN_S).ack(ISN_C + 1).at(ms(1)),
        t.c().seq(ISN_C + 1).ack(ISN_S + 1).at(ms(2)),
        t.s().fin().seq(ISN_S + 1).ack(ISN_C + 1).at(ms(10)),
        t.c().seq(ISN_C + 1).ack(ISN_S + 2).at(ms(11)),
        t.c().fin().seq(ISN_C + 1).ack(ISN_S + 2).at(ms(20)),
    ];
    process(&mut sh, &segs);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, LastAck)]);
    sh.advance(ms(20) + 189 * SEC - 1);
    assert_eq!(rows(&view(&sh, t.client)), [(40000, 80, LastAck)]);
    sh.advance(ms(20) + 189 * SEC);
    assert!(rows(&view(&sh, t.client)).is_empty());
}

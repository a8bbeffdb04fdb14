//! One TCP connection as seen from the wire: two endpoints, each with its own
//! state machine (RFC 9293 §3.3.2) driven by the segments it sends and the
//! segments it receives. The capture point sees what a host sends after its
//! kernel sent it and what it receives before its kernel processes it; what a
//! host receives is assumed delivered.
//!
//! Acceptance checks follow Linux, the oracle: a RST is accepted only at
//! `rcv_nxt` (RFC 5961), an ACK moves FIN_WAIT_1 on only if it covers the FIN,
//! a request socket accepts only the ACK of its SYN-ACK, in its window.
//!
//! What the capture lacks is inferred only where the captured segments prove
//! it: a side never seen sending (a one-sided capture) gets the segments its
//! peer's ACKs prove (`infer_from_one_side`); a socket taken as closed that
//! completes its handshake was still connecting (`revive`); a host whose own
//! segments never acknowledge a FIN never got it.
//!
//! It counts nothing: what each segment did is returned as [`SegEvents`] for
//! the analyzers (the MIB counters among them) to act on.

use super::events::{Event, Events, SegEvents};
use super::state::TcpState;
use crate::decode::{Packet, flag};
use crate::os::Profile;
use crate::seq::{after, before, between};

/// Endpoint flag bits.
mod f {
    /// `snd_nxt` holds a sequence number this endpoint sent.
    pub const SEQ_SET: u16 = 0x01;
    /// `rcv_nxt` holds what this endpoint expects next.
    pub const RCV_SET: u16 = 0x02;
    /// `isn` holds this endpoint's SYN sequence number (or, mid-stream, its first sequence number).
    pub const ISN_SET: u16 = 0x04;
    /// This endpoint has sent its FIN (at `snd_nxt - 1`).
    pub const FIN_SENT: u16 = 0x08;
    /// The peer's FIN (at the peer's `snd_nxt - 1`) arrived out of order; it counts once the gap is filled.
    pub const PEER_FIN_PENDING: u16 = 0x10;
    /// This endpoint sent something other than a RST.
    pub const SENT: u16 = 0x20;
    /// SYN_RCVD as a listener's request socket (its completion is a passive open).
    pub const PASSIVE: u16 = 0x40;
    /// Closed while connecting with no failed attempt counted: by an ICMP error Linux
    /// only records as a soft error, or by its own RST at `snd_nxt`, which a socket
    /// that is gone sends and so does one whose PAWS check rejected a segment. Its
    /// SYN resent, or its ACK of the peer's SYN-ACK, shows it still connecting.
    pub const SOFT_CLOSE: u16 = 0x80;
    /// The connection was picked up without its handshake (set on both sides).
    pub const MIDSTREAM: u16 = 0x100;
    /// `isn` is the first sequence number seen, not a SYN's.
    pub const BASE_ONLY: u16 = 0x200;
    /// This side sent its FIN before the peer sent one (the active closer).
    pub const FIRST_FIN: u16 = 0x400;
    /// A connecting socket answered a crossing SYN with its SYN-ACK (simultaneous
    /// open): Linux's tcp_send_synack counts that one in neither OutSegs nor RetransSegs.
    pub const SIMUL_SYNACK: u16 = 0x800;
    /// This endpoint sent a segment, RSTs included.
    pub const SEEN: u16 = 0x1000;
    /// This endpoint has resent sequence space.
    pub const RESENT: u16 = 0x2000;
    /// Closed while connecting with a failed attempt counted (refused, unreachable,
    /// given up). Its ACK of the peer's SYN-ACK would show the attempt went on.
    pub const FAIL_CLOSE: u16 = 0x4000;
}

/// Most a request socket's receive window can be: its SYN-ACK's window field,
/// which is never scaled (RFC 7323 §2.2).
const MAX_SYN_WINDOW: u32 = 65535;

/// The state of side `x` of a connection picked up mid-stream, from what the
/// capture showed of the close so far (`y` is its peer).
fn picked_up_state(x: &Endpoint, y: &Endpoint) -> TcpState {
    let x_fin = x.has(f::FIN_SENT);
    let x_fin_acked = x_fin && y.has(f::RCV_SET) && !before(y.rcv_nxt, x.snd_nxt);
    let y_fin_in = y.has(f::FIN_SENT) && x.has(f::RCV_SET) && !before(x.rcv_nxt, y.snd_nxt);
    let first = x.has(f::FIRST_FIN);
    match (x_fin, x_fin_acked, y_fin_in) {
        (false, _, false) => TcpState::Established,
        (false, _, true) => TcpState::CloseWait,
        (true, false, false) => TcpState::FinWait1,
        (true, true, false) => TcpState::FinWait2,
        (true, false, true) if first => TcpState::Closing,
        (true, false, true) => TcpState::LastAck,
        (true, true, true) if first => TcpState::TimeWait,
        (true, true, true) => TcpState::Closed,
    }
}

/// One side of a connection: its inferred state and sequence space (24 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub state: TcpState,
    flags: u16,
    pub isn: u32,
    /// Highest sequence number sent plus one (the end of the sequence space used).
    pub snd_nxt: u32,
    /// Next sequence number this endpoint expects from its peer.
    pub rcv_nxt: u32,
    /// Capture time the current state was entered (TIME_WAIT: last re-armed).
    pub state_ts: u64,
}

impl Endpoint {
    fn has(&self, bit: u16) -> bool {
        self.flags & bit != 0
    }

    fn set(&mut self, bit: u16) {
        self.flags |= bit;
    }

    /// Payload bytes this endpoint sent, from its sequence space as Zeek
    /// counts them (retransmissions once); `None` before it sent anything.
    pub fn payload_bytes(&self) -> Option<u32> {
        if !self.has(f::ISN_SET) || !self.has(f::SEQ_SET) {
            return None;
        }
        let span = self.snd_nxt.wrapping_sub(self.isn);
        let syn = !self.has(f::BASE_ONLY) as u32;
        Some(span.saturating_sub(syn + self.has(f::FIN_SENT) as u32))
    }

    fn enter(&mut self, s: TcpState, now: u64) {
        self.state = s;
        self.state_ts = now;
    }

    /// Linux's Send-Q (`write_seq - snd_una`) as far as the wire shows it:
    /// sequence space sent and not yet acknowledged (`acked`: the peer's
    /// highest ACK), SYN and FIN one each. Request sockets (SYN_RCVD) and
    /// TIME_WAIT report 0, as /proc/net/tcp does; 0 too when the start of the
    /// space is unknown (mid-stream, nothing acknowledged yet).
    pub fn send_q(&self, acked: Option<u32>) -> u32 {
        let base = match acked {
            Some(a) => a,
            None if self.has(f::ISN_SET) && !self.has(f::BASE_ONLY) => self.isn,
            None => return 0,
        };
        let request_or_tw = matches!(self.state, TcpState::SynRcvd | TcpState::TimeWait);
        // An ACK past what was seen sent: the capture missed segments.
        if request_or_tw || !self.has(f::SEQ_SET) || after(base, self.snd_nxt) {
            0
        } else {
            self.snd_nxt.wrapping_sub(base)
        }
    }

    /// Whether segment `s` falls in the receive window, as tcp_check_req decides
    /// for a handshake's ACK (`tcp_in_window`): at `rcv_nxt`, or overlapping
    /// the window, whose size the SYN-ACK's unscaled field bounds.
    fn in_window(&self, s: &Packet) -> bool {
        let end = s.seq.wrapping_add(s.seq_len());
        !self.has(f::RCV_SET)
            || s.seq == self.rcv_nxt
            || (after(end, self.rcv_nxt) && before(s.seq, self.rcv_nxt.wrapping_add(MAX_SYN_WINDOW)))
    }

    /// Whether the peer has acknowledged everything this endpoint sent, FIN included.
    fn fin_acked_by(&self, ack: u32) -> bool {
        self.has(f::FIN_SENT) && !before(ack, self.snd_nxt)
    }

    /// RFC 5961 §3.2 as Linux applies it: exactly `rcv_nxt`, or `rcv_nxt - 1`
    /// once the peer's FIN is in (`tcp_reset_check`).
    fn accepts_rst(&self, seq: u32) -> bool {
        if !self.has(f::RCV_SET) || seq == self.rcv_nxt {
            return true;
        }
        seq == self.rcv_nxt.wrapping_sub(1)
            && matches!(self.state, TcpState::CloseWait | TcpState::LastAck | TcpState::Closing)
    }

    /// The peer's FIN has been taken in order (RFC 9293 "eighth, check the FIN bit").
    fn fin_arrived(&mut self, now: u64) {
        self.flags &= !f::PEER_FIN_PENDING;
        match self.state {
            TcpState::SynRcvd | TcpState::Established => self.enter(TcpState::CloseWait, now),
            // Its FIN give-up timer keeps running from its FIN.
            TcpState::FinWait1 => self.state = TcpState::Closing,
            TcpState::FinWait2 | TcpState::TimeWait => self.enter(TcpState::TimeWait, now),
            _ => {}
        }
    }

    /// `rcv_nxt` moved: a FIN waiting behind a hole (at `peer_fin`) may now be in order.
    fn check_pending_fin(&mut self, peer_fin: Option<u32>, now: u64) {
        let Some(peer_fin) = peer_fin else { return };
        if self.has(f::PEER_FIN_PENDING) && !before(self.rcv_nxt, peer_fin) {
            if !after(self.rcv_nxt, peer_fin) {
                self.rcv_nxt = peer_fin.wrapping_add(1);
            }
            self.fin_arrived(now);
        }
    }
}

/// A connection: endpoint 0 and 1 are the two sides of the flow key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conn {
    pub ep: [Endpoint; 2],
}

impl Conn {
    /// A connection whose first captured segment is `s`.
    pub fn first(s: &Packet) -> Conn {
        let mut c = Conn::default();
        if !s.has(flag::SYN) {
            c.ep[0].set(f::MIDSTREAM);
            c.ep[1].set(f::MIDSTREAM);
        }
        c
    }

    /// Picked up without its handshake: no opens are counted for it.
    pub fn midstream(&self) -> bool {
        self.ep[0].has(f::MIDSTREAM)
    }

    /// Seen from one side only, its rows inferred from that side: a side the
    /// capture never showed sending has a state (only inference gives it one).
    pub fn one_sided(&self) -> bool {
        !self.midstream() && self.ep.iter().any(|e| !e.has(f::SEEN) && e.state != TcpState::Unknown)
    }

    pub fn has_rows(&self) -> bool {
        self.ep[0].state.has_row() || self.ep[1].state.has_row()
    }

    /// Whether a SYN from side `d` opens a new connection on a reused 4-tuple
    /// rather than belonging to this one (both sides done with the old one,
    /// and not a retransmission of the sender's own SYN).
    pub fn is_new_incarnation(&self, d: usize, s: &Packet) -> bool {
        if !s.has(flag::SYN) || s.has(flag::ACK) || s.has(flag::RST) {
            return false;
        }
        let (snd, rcv) = (&self.ep[d], &self.ep[1 - d]);
        if snd.has(f::ISN_SET) && snd.isn == s.seq {
            return false;
        }
        let done = |e: &Endpoint| matches!(e.state, TcpState::Unknown | TcpState::Closed | TcpState::TimeWait);
        done(snd) && done(rcv) && (snd.has(f::SEEN) || rcv.has(f::SEEN))
    }

    /// Applies segment `s`, sent by side `d`, to both endpoints.
    pub fn segment(&mut self, d: usize, s: &Packet, now: u64) -> SegEvents {
        let [a, b] = &mut self.ep;
        let (snd, rcv) = if d == 0 { (a, b) } else { (b, a) };
        let mut out = SegEvents::default();
        let rst = s.has(flag::RST);

        // Mid-stream pickup: traffic both ways means both sides are synchronized,
        // and the FINs seen so far say how far each side has closed.
        if snd.has(f::MIDSTREAM)
            && !rst
            && snd.state == TcpState::Unknown
            && rcv.state == TcpState::Unknown
            && rcv.has(f::SENT)
        {
            let (a, b) = (picked_up_state(snd, rcv), picked_up_state(rcv, snd));
            snd.enter(a, now);
            rcv.enter(b, now);
        }
        if !rst && s.has(flag::ACK) {
            if !rcv.has(f::SEEN) && !snd.has(f::MIDSTREAM) {
                Self::infer_from_one_side(snd, rcv, s, now, &mut out);
            } else if snd.state == TcpState::Closed && snd.has(f::SOFT_CLOSE | f::FAIL_CLOSE) {
                Self::revive(snd, rcv, s, now, &mut out.sender);
            }
        }
        Self::apply(snd, rcv, s, now, &mut out);
        out
    }

    /// Segment `s` of `snd` to `rcv`: what it does to both.
    #[inline(always)]
    fn apply(snd: &mut Endpoint, rcv: &mut Endpoint, s: &Packet, now: u64, out: &mut SegEvents) {
        if s.has(flag::FIN) && !snd.has(f::FIN_SENT) && !rcv.has(f::FIN_SENT) {
            snd.set(f::FIRST_FIN);
        }
        // A FIN is the last sequence number its sender uses: the peer's FIN
        // position is its snd_nxt - 1, so it need not be stored.
        let fin_of = |e: &Endpoint| e.has(f::FIN_SENT).then(|| e.snd_nxt.wrapping_sub(1));
        Self::sent(snd, s, fin_of(rcv), now, &mut out.sender);
        Self::received(rcv, s, fin_of(snd), now, &mut out.receiver);
    }

    /// One-sided capture (an asymmetric mirror, a tap port that lost a
    /// direction): `silent` has sent nothing the capture shows, and segment `s`
    /// of `seen` proves a segment of `silent` that the capture lacks. That
    /// segment is applied first, as if it had been captured; it is not counted
    /// as a segment, and `silent` stays unseen. What is proven:
    /// - a connecting socket's ACK (of the peer's ISN) proves the peer's SYN-ACK;
    /// - a request socket's data or FIN (it sends neither before a child socket
    ///   takes over), or its ACK of data, proves the handshake's ACK;
    /// - an ACK that moves by exactly one proves the peer's FIN (one byte of data
    ///   moves it by one too: if a later ACK moves on, the FIN is withdrawn).
    #[cold]
    #[inline(never)]
    fn infer_from_one_side(seen: &mut Endpoint, silent: &mut Endpoint, s: &Packet, now: u64, out: &mut SegEvents) {
        if s.has(flag::SYN) {
            return;
        }
        match seen.state {
            TcpState::SynSent => {
                let synack = synthetic(s, flag::SYN | flag::ACK, s.ack.wrapping_sub(1), seen.isn.wrapping_add(1));
                Self::from_silent(silent, seen, &synack, now, out);
            }
            TcpState::SynRcvd
                if seen.has(f::PASSIVE)
                    && silent.state == TcpState::Unknown
                    && (s.payload_len > 0 || s.has(flag::FIN) || after(s.ack, seen.rcv_nxt)) =>
            {
                let ack = synthetic(s, flag::ACK, seen.rcv_nxt, seen.isn.wrapping_add(1));
                Self::from_silent(silent, seen, &ack, now, out);
            }
            _ => {}
        }
        if silent.has(f::FIN_SENT) && after(s.ack, silent.snd_nxt) {
            Self::withdraw_fin(seen, silent, now);
            out.receiver.add(Event::InferenceWithdrawn);
        }
        let closable = matches!(seen.state, TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2)
            && matches!(silent.state, TcpState::Established | TcpState::CloseWait);
        if closable && !silent.has(f::FIN_SENT) && seen.has(f::RCV_SET) && s.ack == seen.rcv_nxt.wrapping_add(1) {
            let fin = synthetic(s, flag::FIN | flag::ACK, seen.rcv_nxt, silent.rcv_nxt);
            Self::from_silent(silent, seen, &fin, now, out);
        }
    }

    /// Applies `seg`, which `silent` sent and the capture lacks, to both sides;
    /// its events join those of the captured segment (whose receiver `silent` is).
    fn from_silent(silent: &mut Endpoint, seen: &mut Endpoint, seg: &Packet, now: u64, out: &mut SegEvents) {
        let mut ev = SegEvents::default();
        Self::apply(silent, seen, seg, now, &mut ev);
        silent.flags &= !f::SEEN;
        out.receiver.merge(ev.sender);
        out.receiver.add(Event::Inferred);
        out.sender.merge(ev.receiver);
    }

    /// The FIN inferred for `silent` was a byte of data: both sides go back to
    /// where they were without it.
    fn withdraw_fin(seen: &mut Endpoint, silent: &mut Endpoint, now: u64) {
        silent.flags &= !(f::FIN_SENT | f::FIRST_FIN);
        let got_fin = seen.has(f::FIN_SENT) && silent.has(f::RCV_SET) && !before(silent.rcv_nxt, seen.snd_nxt);
        silent.enter(if got_fin { TcpState::CloseWait } else { TcpState::Established }, now);
        if seen.has(f::FIN_SENT) {
            // Its own FIN was the first; its give-up timer keeps running.
            seen.set(f::FIRST_FIN);
            seen.state = TcpState::FinWait1;
        } else {
            seen.enter(TcpState::Established, now);
        }
    }

    /// `e` was taken as closed while connecting, and its segment `s` is an ACK:
    /// if it acknowledges the peer's SYN-ACK in the attempt's own sequence
    /// space, the socket was still connecting (a closed one would have answered
    /// the SYN-ACK with a RST), and has now completed its handshake. So Linux
    /// does when its PAWS check rejects a RST or FIN that looked acceptable: it
    /// answers with a RST at its `snd_nxt` and keeps connecting.
    #[cold]
    #[inline(never)]
    fn revive(e: &mut Endpoint, peer: &Endpoint, s: &Packet, now: u64, ev: &mut Events) {
        let acks_synack = peer.state == TcpState::SynRcvd && s.ack == peer.isn.wrapping_add(1);
        let same_attempt = e.has(f::ISN_SET) && !e.has(f::BASE_ONLY) && after(s.seq, e.isn) && !after(s.seq, e.snd_nxt);
        if s.has(flag::SYN) || !acks_synack || !same_attempt {
            return;
        }
        if e.has(f::FAIL_CLOSE) {
            ev.add(Event::AttemptRevived);
        }
        e.flags &= !(f::SOFT_CLOSE | f::FAIL_CLOSE);
        e.rcv_nxt = s.ack;
        e.set(f::RCV_SET);
        e.enter(TcpState::Established, now);
    }

    /// The sender's side of segment `s`: sequence accounting and the
    /// transitions its own segments cause (RFC 9293 event "SEND", "CLOSE", "ABORT").
    fn sent(e: &mut Endpoint, s: &Packet, peer_fin: Option<u32>, now: u64, ev: &mut Events) {
        // A SYN-ACK to it came before any segment of its own (see `received`):
        // the end of the peer's SYN, if so.
        let synack_in = (e.state == TcpState::Unknown && e.has(f::ISN_SET) && e.has(f::RCV_SET) && !e.has(f::SEQ_SET))
            .then_some(e.rcv_nxt);
        let synack_isn = e.isn;
        // Its first captured segment after segments of it were inferred (one-sided
        // so far): sequence space it re-covers was never on the wire before.
        let inferred = !e.has(f::SEEN) && e.has(f::SENT);
        e.set(f::SEEN);
        let syn = s.has(flag::SYN);
        let ack = s.has(flag::ACK);
        let rst = s.has(flag::RST);

        // Retransmission by the sequence rule Linux's OutSegs uses: a segment
        // carrying sequence space that ends at or before what was already sent.
        let len = s.seq_len();
        if len > 0 {
            let end = s.seq.wrapping_add(len);
            if e.has(f::SEQ_SET) && !after(end, e.snd_nxt) && !inferred {
                e.set(f::RESENT);
                ev.add(Event::Retransmit);
                if syn && ack {
                    // Did this side open with a SYN of its own (a full socket)?
                    let connecting = !e.has(f::PASSIVE) && e.has(f::ISN_SET) && !e.has(f::BASE_ONLY);
                    if !connecting {
                        // A request socket's SYN-ACKs all count in OutSegs (tcp_make_synack).
                        ev.add(Event::SynAckResent);
                    } else if !e.has(f::SIMUL_SYNACK) {
                        // A full socket re-sends its SYN with ACK set: the first time
                        // (tcp_send_synack) is counted nowhere, later ones as retransmissions.
                        e.set(f::SIMUL_SYNACK);
                        ev.add(Event::SimulSynAck);
                    }
                }
            } else {
                if !e.has(f::SEQ_SET) && !syn && !e.has(f::ISN_SET) {
                    // Picked up mid-stream: sequence space is counted from here.
                    e.isn = s.seq;
                    e.set(f::ISN_SET | f::BASE_ONLY);
                }
                if !e.has(f::SEQ_SET) || after(end, e.snd_nxt) {
                    e.snd_nxt = end;
                }
                e.set(f::SEQ_SET);
            }
        }
        // In CLOSING, a segment whose ACK still does not cover the peer's FIN shows
        // that FIN never reached it (each segment carries its current rcv_nxt).
        if e.state == TcpState::Closing && ack && !rst && peer_fin.is_some_and(|p| !after(s.ack, p)) {
            e.rcv_nxt = s.ack;
            e.state = TcpState::FinWait1;
            ev.add(Event::PeerFinLost);
        }
        if ack && !rst && (!e.has(f::RCV_SET) || after(s.ack, e.rcv_nxt)) {
            let fin_out = peer_fin.is_some_and(|p| !e.has(f::RCV_SET) || !after(e.rcv_nxt, p));
            e.rcv_nxt = s.ack;
            e.set(f::RCV_SET);
            if e.has(f::PEER_FIN_PENDING) {
                e.check_pending_fin(peer_fin, now);
            } else if fin_out && peer_fin.is_some_and(|p| after(s.ack, p)) {
                // Its ACK covers the peer's FIN, which it had not taken: it has now.
                e.fin_arrived(now);
            }
        }

        if rst {
            match e.state {
                // A socket aborting its connection resets with ACK (Linux's
                // tcp_send_active_reset, BSD's tcp_outflags). A bare RST answers a segment
                // for which the host has no socket (tcp_v4_send_reset): there was no
                // connection to reset, as when the SYN-ACK we took as delivered never came.
                TcpState::Established | TcpState::CloseWait if !ack => e.enter(TcpState::Closed, now),
                TcpState::Established | TcpState::CloseWait => {
                    ev.add(Event::EstabReset);
                    e.enter(TcpState::Closed, now);
                }
                // A connecting socket resets only an unacceptable SYN-ACK, at that one's ACK
                // number, and stays connecting. A RST at its own snd_nxt answers an
                // acceptable one, so its socket is gone (a close() in SYN_SENT counts nothing).
                TcpState::SynSent if !ack && s.seq == e.snd_nxt => {
                    e.set(f::SOFT_CLOSE);
                    e.enter(TcpState::Closed, now)
                }
                TcpState::SynSent => {}
                // A bare RST elsewhere in the sequence space answers an unacceptable ACK
                // (a listener's for its request socket, or tcp_rcv_state_process's in a
                // simultaneous open); the handshake waits on.
                TcpState::SynRcvd if !ack && s.seq != e.snd_nxt => {}
                TcpState::Closed => {}
                _ => e.enter(TcpState::Closed, now),
            }
            return;
        }
        e.set(f::SENT);

        if syn && !ack {
            match e.state {
                TcpState::Closed if e.has(f::SOFT_CLOSE) && e.isn == s.seq => {
                    // The soft ICMP error or the RST did not end the attempt: connect() is still retrying.
                    e.flags &= !f::SOFT_CLOSE;
                    e.enter(TcpState::SynSent, now);
                }
                TcpState::Unknown | TcpState::Closed => {
                    e.isn = s.seq;
                    // A FIN sent before its SYN belonged to no connection of it.
                    e.flags &= !(f::BASE_ONLY | f::SOFT_CLOSE | f::FAIL_CLOSE | f::FIN_SENT | f::FIRST_FIN);
                    e.set(f::ISN_SET);
                    ev.add(Event::ActiveOpen);
                    e.enter(TcpState::SynSent, now);
                    if synack_in.is_some() && synack_isn == s.seq {
                        // Its SYN-ACK was captured before this SYN (they crossed the capture
                        // point out of order, or the file's order is not the wire's).
                        e.enter(TcpState::Established, now);
                    }
                }
                // The SYN-ACK we took as delivered never arrived: it is still connecting.
                TcpState::Established if e.isn == s.seq && e.snd_nxt == e.isn.wrapping_add(1) => {
                    ev.add(Event::SynAckLost);
                    e.enter(TcpState::SynSent, e.state_ts);
                }
                _ => {}
            }
        } else if syn {
            match e.state {
                TcpState::Unknown | TcpState::Closed => {
                    e.isn = s.seq;
                    e.flags &= !(f::BASE_ONLY | f::FIN_SENT | f::FIRST_FIN);
                    e.set(f::ISN_SET | f::PASSIVE);
                    e.enter(TcpState::SynRcvd, now);
                    ev.add(Event::Listener);
                }
                // Simultaneous open: our SYN crossed theirs.
                TcpState::SynSent => {
                    e.enter(TcpState::SynRcvd, now);
                }
                _ => {}
            }
        } else if let Some(peer_syn_end) = synack_in
            && ack
            && !before(s.ack, peer_syn_end)
        {
            // Its SYN was not captured, but it acknowledges the SYN-ACK it got.
            e.enter(TcpState::Established, now);
        }

        if s.has(flag::FIN) && !e.has(f::FIN_SENT) {
            e.set(f::FIN_SENT);
            match e.state {
                TcpState::Established | TcpState::SynRcvd => e.enter(TcpState::FinWait1, now),
                // Its FIN does not acknowledge the peer's: it closed before that FIN
                // reached it (simultaneous close), so it was in FIN_WAIT_1 when it did.
                TcpState::CloseWait if ack && before(s.ack, e.rcv_nxt) => e.enter(TcpState::Closing, now),
                TcpState::CloseWait => e.enter(TcpState::LastAck, now),
                _ => {}
            }
        }
    }

    /// The receiver's side of segment `s` (RFC 9293 "SEGMENT ARRIVES").
    fn received(e: &mut Endpoint, s: &Packet, peer_fin: Option<u32>, now: u64, ev: &mut Events) {
        let syn = s.has(flag::SYN);
        let ack = s.has(flag::ACK);

        if s.has(flag::RST) {
            match e.state {
                // Only a RST that acknowledges our SYN is acceptable.
                TcpState::SynSent if ack && s.ack == e.snd_nxt => {
                    ev.add(Event::AttemptFailed);
                    e.set(f::FAIL_CLOSE);
                    e.enter(TcpState::Closed, now);
                }
                TcpState::SynRcvd => {
                    // tcp_check_req: in window, and if it has an ACK, the right one.
                    let ack_ok = !ack || s.ack == e.isn.wrapping_add(1);
                    if ack_ok && between(s.seq, e.rcv_nxt, e.rcv_nxt.wrapping_add(65535)) {
                        ev.add(Event::AttemptFailed);
                        e.enter(TcpState::Closed, now);
                    }
                }
                TcpState::Established | TcpState::CloseWait if e.accepts_rst(s.seq) => {
                    ev.add(Event::EstabReset);
                    e.enter(TcpState::Closed, now);
                }
                TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing | TcpState::LastAck
                    if e.accepts_rst(s.seq) =>
                {
                    e.enter(TcpState::Closed, now);
                }
                TcpState::Established
                | TcpState::CloseWait
                | TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::Closing
                | TcpState::LastAck => ev.add(Event::RstIgnored),
                TcpState::TimeWait if s.seq == e.rcv_nxt => e.enter(TcpState::Closed, now),
                TcpState::Unknown if e.has(f::SENT) => e.enter(TcpState::Closed, now),
                _ => {}
            }
            return;
        }

        let len = s.seq_len();
        let in_order = !e.has(f::RCV_SET) || !after(s.seq, e.rcv_nxt);

        if syn && !ack {
            match e.state {
                TcpState::Unknown | TcpState::Closed => {
                    e.rcv_nxt = s.seq.wrapping_add(1);
                    e.set(f::RCV_SET);
                }
                TcpState::SynSent => {
                    // Simultaneous open (RFC 9293 §3.5, figure 7).
                    e.rcv_nxt = s.seq.wrapping_add(1);
                    e.set(f::RCV_SET);
                    e.enter(TcpState::SynRcvd, now);
                }
                TcpState::SynRcvd => {
                    let dup = s.seq.wrapping_add(1) == e.rcv_nxt;
                    if !dup && between(s.seq, e.rcv_nxt, e.rcv_nxt.wrapping_add(65535)) {
                        // A SYN that is not the one we answered kills the request socket.
                        ev.add(Event::AttemptFailed);
                        ev.add(Event::RequestKilled);
                        e.enter(TcpState::Closed, now);
                    }
                }
                _ => {}
            }
            return;
        }
        if syn {
            match e.state {
                // It acknowledges our SYN, and with TCP Fast Open the data the SYN carried.
                TcpState::SynSent | TcpState::SynRcvd if ack && after(s.ack, e.isn) && !after(s.ack, e.snd_nxt) => {
                    e.rcv_nxt = s.seq.wrapping_add(1);
                    e.set(f::RCV_SET);
                    e.enter(TcpState::Established, now);
                }
                // A SYN-ACK to a SYN the capture has not shown: nothing proves this side
                // has a socket (the SYN may be spoofed, the SYN-ACK's answer lost). Noted,
                // so that its own SYN or ACK, if it comes, completes its handshake.
                TcpState::Unknown if ack => {
                    e.isn = s.ack.wrapping_sub(1);
                    e.set(f::ISN_SET);
                    e.rcv_nxt = s.seq.wrapping_add(1);
                    e.set(f::RCV_SET);
                }
                _ => {}
            }
            return;
        }

        if ack {
            match e.state {
                // tcp_check_req drops the ACK if its sequence number is out of the window.
                TcpState::SynRcvd if s.ack == e.isn.wrapping_add(1) && e.in_window(s) => {
                    if e.has(f::PASSIVE) {
                        ev.add(Event::PassiveOpen);
                    }
                    e.enter(TcpState::Established, now);
                }
                TcpState::FinWait1 if e.fin_acked_by(s.ack) => e.enter(TcpState::FinWait2, now),
                TcpState::Closing if e.fin_acked_by(s.ack) => e.enter(TcpState::TimeWait, now),
                TcpState::LastAck if e.fin_acked_by(s.ack) => e.enter(TcpState::Closed, now),
                // Every ACK-bearing segment re-arms the 2MSL timer (tcp_timewait_state_process).
                TcpState::TimeWait => e.state_ts = now,
                _ => {}
            }
        }

        if len > 0 {
            let end = s.seq.wrapping_add(len);
            if in_order && (!e.has(f::RCV_SET) || after(end, e.rcv_nxt)) {
                e.rcv_nxt = end;
                e.set(f::RCV_SET);
            }
            if s.has(flag::FIN) {
                if in_order {
                    e.fin_arrived(now);
                } else {
                    e.set(f::PEER_FIN_PENDING);
                    ev.add(Event::FinOutOfOrder);
                }
            } else {
                e.check_pending_fin(peer_fin, now);
            }
        }
    }

    /// An ICMP error quoting a segment that side `d` sent (`s.seq` is the
    /// quoted sequence number). Linux's tcp_v4_err/tcp_v6_err end a connection
    /// still in its handshake on a hard error; later states only note it.
    pub fn icmp_error(&mut self, d: usize, s: &Packet, now: u64, p: &Profile) -> Events {
        let mut ev = Events::default();
        let hard = if s.v6 {
            matches!(s.icmp_type, 1 | 3 | 4)
        } else {
            matches!(s.icmp_type, 11 | 12) || (s.icmp_type == 3 && s.icmp_code != 4)
        };
        let e = &mut self.ep[d];
        if !hard || !e.has(f::ISN_SET) || s.seq != e.isn {
            return ev;
        }
        match e.state {
            TcpState::SynSent => {
                let first_syn_only = !e.has(f::RESENT);
                if first_syn_only && now.saturating_sub(e.state_ts) < p.icmp_soft_window {
                    e.set(f::SOFT_CLOSE);
                    ev.add(Event::SoftIcmpError);
                } else {
                    ev.add(Event::HardIcmpError);
                    ev.add(Event::AttemptFailed);
                    e.set(f::FAIL_CLOSE);
                }
                e.enter(TcpState::Closed, now);
            }
            // A request socket is dropped only on the errors Linux calls fatal for it
            // (tcp_req_err): v4 parameter problem, time exceeded, net/host unreachable;
            // v6 the fatal ones of icmpv6_err_convert (port unreachable, prohibited, ...).
            TcpState::SynRcvd if request_fatal(s) => {
                ev.add(Event::HardIcmpError);
                e.enter(TcpState::Closed, now);
            }
            _ => {}
        }
        ev
    }

    /// Runs side `d`'s state timer if it is due at `now`: what it did, if anything.
    pub fn expire(&mut self, d: usize, now: u64, p: &Profile) -> Events {
        let mut ev = Events::default();
        let e = &mut self.ep[d];
        let Some(limit) = state_timeout(e.state, p) else { return ev };
        if now < e.state_ts.saturating_add(limit) {
            return ev;
        }
        ev.add(Event::TimerExpired);
        if e.state == TcpState::SynSent {
            // connect() gave up: tcp_done() from SYN_SENT is a failed attempt.
            ev.add(Event::AttemptFailed);
            e.set(f::FAIL_CLOSE);
        }
        e.enter(TcpState::Closed, now);
        ev
    }
}

/// A segment the capture lacks, built from the captured one `s` (addresses
/// and time are not read by the state machine).
fn synthetic(s: &Packet, flags: u8, seq: u32, ack: u32) -> Packet {
    Packet { flags, seq, ack, payload_len: 0, ..*s }
}

fn request_fatal(s: &Packet) -> bool {
    if s.v6 {
        match s.icmp_type {
            1 => matches!(s.icmp_code, 1 | 4 | 5 | 6),
            4 => true,
            _ => false,
        }
    } else {
        matches!(s.icmp_type, 11 | 12) || (s.icmp_type == 3 && matches!(s.icmp_code, 0 | 1))
    }
}

/// How long side `e`'s current state may last under profile `p`, if it is timed.
pub fn state_timeout(state: TcpState, p: &Profile) -> Option<u64> {
    super::timers::TimerKind::of(state).map(|k| p.timer_len(k))
}

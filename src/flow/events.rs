//! What a segment, a timer or an ICMP error did to a connection, as facts the
//! state machine decides once: analyzers count them (the MIB), list them (the
//! handshake audit) or keep them (connection records); the state machine
//! itself counts nothing.

/// One thing that happened to one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Event {
    /// It sent a SYN from CLOSED: connect() (Active Opens).
    ActiveOpen,
    /// Its request socket's handshake completed (Passive Opens).
    PassiveOpen,
    /// SYN_SENT or SYN_RCVD ended in CLOSED: refused, reset, unreachable,
    /// killed by a new SYN, or given up on its timer (Failed Connection Attempts).
    AttemptFailed,
    /// A RST, sent or received, closed it from ESTABLISHED or CLOSE_WAIT (Reset Connections).
    EstabReset,
    /// It sent sequence space (data, SYN or FIN) it had sent before.
    Retransmit,
    /// The retransmission was a request socket's SYN-ACK: Linux counts every
    /// SYN-ACK in Segments Sent, resent or not.
    SynAckResent,
    /// The retransmission was a connecting socket's first SYN-ACK in a
    /// simultaneous open (tcp_send_synack): counted in neither Segments Sent
    /// nor Segments Retransmitted.
    SimulSynAck,
    /// It answered a SYN with a SYN-ACK as a listener: it listens on its port.
    Listener,
    /// It received a RST that its kernel does not accept (RFC 5961: not at
    /// `rcv_nxt`): a challenge ACK is due, nothing changes.
    RstIgnored,
    /// It sent its SYN again after the peer's SYN-ACK was taken as delivered:
    /// the SYN-ACK never reached it, and it is still connecting.
    SynAckLost,
    /// A SYN that is not the one it answered killed its request socket.
    RequestKilled,
    /// An ICMP error its kernel only notes (the socket was busy in connect()).
    SoftIcmpError,
    /// An ICMP error ended its handshake.
    HardIcmpError,
    /// A state timer ran out (TIME_WAIT over, SYN give-up, orphaned FIN_WAIT_2).
    TimerExpired,
    /// The peer's FIN arrived ahead of a hole in the sequence space; it counts once the hole fills.
    FinOutOfOrder,
    /// One-sided capture: a segment of this endpoint that the capture lacks was
    /// inferred from what its peer sent (its SYN-ACK from the peer's ACK of its
    /// ISN, its handshake ACK from the peer's data, its FIN from an ACK that
    /// moved by exactly one). The endpoint sent nothing the capture shows.
    Inferred,
    /// An inferred FIN turned out to be a byte of data (the peer acknowledged
    /// more after it): both endpoints are back where they were without it.
    InferenceWithdrawn,
    /// A connection attempt taken as failed went on: the host completed the
    /// handshake in the same sequence space (a RST its PAWS check rejected, a
    /// give-up timer or ICMP error it outlived). The failed attempt is withdrawn.
    AttemptRevived,
    /// Its own later segment does not acknowledge the peer's FIN, which the
    /// capture showed: that FIN never reached it (lost past the capture point).
    PeerFinLost,
}

/// A set of [`Event`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events(u32);

impl Events {
    #[inline]
    pub fn add(&mut self, e: Event) {
        self.0 |= 1 << e as u8;
    }

    #[inline]
    pub fn has(self, e: Event) -> bool {
        self.0 & (1 << e as u8) != 0
    }

    /// Adds every event of `o`.
    #[inline]
    pub fn merge(&mut self, o: Events) {
        self.0 |= o.0;
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set as bits, `1 << event` each: for counting several events at once.
    #[inline]
    pub fn bits(self) -> u32 {
        self.0
    }
}

/// What one segment did to the endpoint that sent it and to the one that received it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegEvents {
    pub sender: Events,
    pub receiver: Events,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_holds_what_was_added() {
        let mut e = Events::default();
        assert!(e.is_empty());
        e.add(Event::Retransmit);
        e.add(Event::FinOutOfOrder);
        assert!(e.has(Event::Retransmit) && e.has(Event::FinOutOfOrder));
        assert!(!e.has(Event::ActiveOpen));
    }
}

//! Per-host MIB counters (RFC 1213 / RFC 4022 as Linux implements them).

use crate::flow::{Conn, Endpoint};

/// The eight TCP figures of `netstat -s -p TCP`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpCounters {
    pub active_opens: u64,
    pub passive_opens: u64,
    pub failed_connection_attempts: u64,
    pub reset_connections: u64,
    pub current_connections: u64,
    pub segments_received: u64,
    pub segments_sent: u64,
    pub segments_retransmitted: u64,
}

impl TcpCounters {
    pub fn add(&mut self, o: &TcpCounters) {
        self.active_opens += o.active_opens;
        self.passive_opens += o.passive_opens;
        self.failed_connection_attempts += o.failed_connection_attempts;
        self.reset_connections += o.reset_connections;
        self.current_connections += o.current_connections;
        self.segments_received += o.segments_received;
        self.segments_sent += o.segments_sent;
        self.segments_retransmitted += o.segments_retransmitted;
    }

    /// What side `side` of `c` contributes to its host's counters; the gauge
    /// (current connections) only while `live`.
    pub fn of_endpoint(c: &Conn, side: usize, live: bool) -> TcpCounters {
        let e: &Endpoint = &c.ep[side];
        let peer = &c.ep[1 - side];
        TcpCounters {
            active_opens: e.active_opens as u64,
            passive_opens: e.passive_opens as u64,
            failed_connection_attempts: e.attempt_fails as u64,
            reset_connections: e.estab_resets as u64,
            current_connections: (live && e.state.is_current()) as u64,
            // Every segment the peer sent reaches this host's stack (InSegs).
            segments_received: peer.segments as u64,
            segments_sent: e.out_segs(),
            segments_retransmitted: e.retrans_segs(),
        }
    }

    pub const NAMES: [&'static str; 8] = [
        "active_opens",
        "passive_opens",
        "failed_connection_attempts",
        "reset_connections",
        "current_connections",
        "segments_received",
        "segments_sent",
        "segments_retransmitted",
    ];

    pub fn values(&self) -> [u64; 8] {
        [
            self.active_opens,
            self.passive_opens,
            self.failed_connection_attempts,
            self.reset_connections,
            self.current_connections,
            self.segments_received,
            self.segments_sent,
            self.segments_retransmitted,
        ]
    }
}

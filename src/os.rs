//! Operating-system profiles: the timers a host's TCP stack runs, which decide
//! when a connection leaves its table on capture time.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Os {
    Linux,
    Windows,
}

/// Timer lengths in nanoseconds of capture time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// 2MSL: how long TIME_WAIT lasts (re-armed by every ACK-bearing segment received in it).
    pub time_wait: u64,
    /// How long connect() keeps retransmitting its SYN before it gives up (counts a failed attempt).
    pub syn_sent_timeout: u64,
    /// How long a request socket (SYN_RCVD) lives without the handshake's final ACK.
    pub syn_rcvd_timeout: u64,
    /// How long an orphaned FIN_WAIT_2 waits for the peer's FIN.
    pub fin_wait2_timeout: u64,
    /// How long after its FIN an orphan whose FIN is never acknowledged
    /// (FIN_WAIT_1, CLOSING, LAST_ACK) is dropped, after its last retransmission.
    pub fin_give_up: u64,
    /// How long a connection with no row left is remembered, so that its late
    /// segments (retransmissions, a last ACK) are not mistaken for a new connection.
    pub linger: u64,
    /// Drop connections idle this long (0 = never; an idle ESTABLISHED
    /// connection is still in the host's table, so this is off by default).
    pub idle_timeout: u64,
    /// An ICMP error this soon after a connection's first SYN reaches Linux
    /// while connect() still holds the socket lock: it is only a soft error.
    pub icmp_soft_window: u64,
}

const SEC: u64 = 1_000_000_000;

impl Default for Profile {
    fn default() -> Self {
        Profile::new(Os::Linux)
    }
}

impl Profile {
    pub fn new(os: Os) -> Self {
        match os {
            // tcp_syn_retries=6: SYNs at 0,1,3,7,15,31,63 s, give-up at 127 s;
            // tcp_synack_retries=5: request dropped after 63 s; tcp_fin_timeout=60 s.
            // tcp_orphan_retries=0 means 8 retransmissions: an orphan gives up at the
            // first retransmission timer to fire once 102.2 s (0.2 s * (2^9 - 1),
            // retransmits_timed_out's bound at TCP_RTO_MIN) have passed since its FIN;
            // with its RTO doubling from r, that is r * (2^k - 1) for the first such k:
            // 102.2 s at the 0.2 s minimum RTO, up to about 205 s for RTOs under a few
            // seconds. Taken: 204.4 s (twice the bound), by when the socket is gone for
            // any usual RTO; on a LAN (RTO ~0.2 s) the host drops it near 102 s, so such
            // a row can outlive the host's by up to ~100 s.
            Os::Linux => Profile {
                time_wait: 60 * SEC,
                syn_sent_timeout: 127 * SEC,
                syn_rcvd_timeout: 63 * SEC,
                fin_wait2_timeout: 60 * SEC,
                fin_give_up: 204_400_000_000,
                linger: 10 * SEC,
                idle_timeout: 0,
                icmp_soft_window: 100_000,
            },
            // TcpMaxSynRetransmissions=2 (3 s, 6 s, 12 s): give-up at 21 s; TcpTimedWaitDelay=240 s.
            // TcpMaxDataRetransmissions=5: a FIN is resent 5 times, the RTO doubling each
            // time, and the socket dropped one more RTO later: 63 RTOs after the FIN, from
            // ~19 s (300 ms minimum RTO) to 189 s (a 3 s RTO, the initial one). Taken:
            // 189 s, the upper bound, as for Linux.
            Os::Windows => Profile {
                time_wait: 240 * SEC,
                syn_sent_timeout: 21 * SEC,
                syn_rcvd_timeout: 21 * SEC,
                fin_wait2_timeout: 120 * SEC,
                fin_give_up: 189 * SEC,
                linger: 10 * SEC,
                idle_timeout: 0,
                icmp_soft_window: 0,
            },
        }
    }

    /// How long a timer of kind `k` runs.
    pub fn timer_len(&self, k: crate::flow::timers::TimerKind) -> u64 {
        use crate::flow::timers::TimerKind::*;
        match k {
            TimeWait => self.time_wait,
            SynSent => self.syn_sent_timeout,
            SynRcvd => self.syn_rcvd_timeout,
            FinWait2 => self.fin_wait2_timeout,
            FinGiveUp => self.fin_give_up,
            Linger => self.linger,
        }
    }

    pub fn with_idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d.map_or(0, |d| d.as_nanos() as u64);
        self
    }
}

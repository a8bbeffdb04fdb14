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
            Os::Linux => Profile {
                time_wait: 60 * SEC,
                syn_sent_timeout: 127 * SEC,
                syn_rcvd_timeout: 63 * SEC,
                fin_wait2_timeout: 60 * SEC,
                linger: 10 * SEC,
                idle_timeout: 0,
                icmp_soft_window: 100_000,
            },
            // TcpMaxSynRetransmissions=2 (3 s, 6 s, 12 s): give-up at 21 s; TcpTimedWaitDelay=240 s.
            Os::Windows => Profile {
                time_wait: 240 * SEC,
                syn_sent_timeout: 21 * SEC,
                syn_rcvd_timeout: 21 * SEC,
                fin_wait2_timeout: 120 * SEC,
                linger: 10 * SEC,
                idle_timeout: 0,
                icmp_soft_window: 0,
            },
        }
    }

    pub fn with_idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d.map_or(0, |d| d.as_nanos() as u64);
        self
    }
}

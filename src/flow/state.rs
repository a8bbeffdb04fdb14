//! The TCP connection states of RFC 9293, as netstat names them.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum TcpState {
    /// Nothing known yet: the side that received a SYN and has not answered,
    /// or a connection picked up mid-stream with traffic seen one way only.
    #[default]
    Unknown,
    /// The connection is gone for this endpoint (it has no row).
    Closed,
    /// Only a view's LISTEN rows: a connection's endpoints never enter it
    /// (the netstat analyzer infers listening sockets from SYN-ACKs).
    Listen,
    SynSent,
    SynRcvd,
    Established,
    FinWait1,
    FinWait2,
    Closing,
    CloseWait,
    LastAck,
    TimeWait,
}

impl TcpState {
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Unknown => "UNKNOWN",
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRcvd => "SYN_RCVD",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::Closing => "CLOSING",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
        }
    }

    /// Whether the host's connection table shows a row for this state.
    pub fn has_row(self) -> bool {
        !matches!(self, TcpState::Unknown | TcpState::Closed | TcpState::Listen)
    }

    /// The MIB's tcpCurrEstab counts ESTABLISHED and CLOSE_WAIT (RFC 1213;
    /// Linux does the same since 6.10).
    pub fn is_current(self) -> bool {
        matches!(self, TcpState::Established | TcpState::CloseWait)
    }
}

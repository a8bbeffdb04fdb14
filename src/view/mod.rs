//! Rendering published host views: netstat's text layout and the JSON
//! contract. Both write straight to the output, row by row: a busy server's
//! table is never held as text in memory.

pub mod json;
pub mod text;

use crate::flow::TcpState;
use crate::report::HostView;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `-p`: which protocol family a view is limited to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    TcpV6,
}

impl Proto {
    pub fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Some(Proto::Tcp),
            "TCPV6" => Some(Proto::TcpV6),
            _ => None,
        }
    }

    fn admits(p: Option<Proto>, v6: bool) -> bool {
        match p {
            None => true,
            Some(Proto::Tcp) => !v6,
            Some(Proto::TcpV6) => v6,
        }
    }
}

/// Which views were asked for.
#[derive(Clone, Copy, Debug, Default)]
pub struct ViewOpts {
    /// The connection table (`-n`, or implied).
    pub table: bool,
    /// `-a`: listening sockets too.
    pub all: bool,
    /// `-s`: protocol statistics.
    pub stats: bool,
    pub proto: Option<Proto>,
}

/// `addr:port` as netstat prints it, IPv6 in brackets; formats without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ep(pub IpAddr, pub u16);

impl fmt::Display for Ep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// One row of the table as printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    pub local: Ep,
    pub foreign: Ep,
    pub state: TcpState,
}

impl Line {
    pub fn v6(&self) -> bool {
        self.local.0.is_ipv6()
    }

    pub fn proto(&self) -> &'static str {
        if self.v6() { "TCPv6" } else { "TCP" }
    }
}

/// The host's table rows in netstat order (TCP before TCPv6, then by local
/// address and port, then foreign), listeners included with `-a`.
pub fn lines(h: &HostView, o: &ViewOpts) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::with_capacity(h.rows.len() + if o.all { h.listeners.len() } else { 0 });
    if o.all {
        for &(a, p) in &h.listeners {
            let any = if a.is_ipv6() { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
            out.push(Line { local: Ep(a, p), foreign: Ep(any, 0), state: TcpState::Listen });
        }
    }
    out.extend(h.rows.iter().map(|&(a, r)| Line {
        local: Ep(a, r.local_port),
        foreign: Ep(r.foreign, r.foreign_port),
        state: r.state,
    }));
    out.retain(|l| Proto::admits(o.proto, l.v6()));
    out.sort_by_key(|l| (l.v6(), l.local, l.foreign));
    out
}

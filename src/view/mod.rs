//! Rendering published host views: netstat's text layout and the JSON contract.

pub mod json;
pub mod text;

use crate::addr::endpoint;
use crate::flow::TcpState;
use crate::report::HostView;
use std::net::IpAddr;

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

    fn admits_v6(p: Option<Proto>, v6: bool) -> bool {
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

/// A row ready to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub v6: bool,
    pub local: String,
    pub foreign: String,
    pub state: TcpState,
}

impl Line {
    pub fn proto(&self) -> &'static str {
        if self.v6 { "TCPv6" } else { "TCP" }
    }
}

/// The host's table rows in netstat order (TCP before TCPv6, then by local
/// address), listeners included with `-a`.
pub fn lines(h: &HostView, o: &ViewOpts) -> Vec<Line> {
    // Sort key: family, local address and port, foreign address and port.
    type SortKey = (bool, IpAddr, u16, IpAddr, u16);
    let mut keyed: Vec<(SortKey, Line)> = Vec::new();
    if o.all {
        for &(a, p) in &h.listeners {
            let any: IpAddr = if a.is_ipv6() { "::".parse().unwrap() } else { "0.0.0.0".parse().unwrap() };
            keyed.push((
                (a.is_ipv6(), a, p, any, 0),
                Line { v6: a.is_ipv6(), local: endpoint(a, p), foreign: endpoint(any, 0), state: TcpState::Listen },
            ));
        }
    }
    for &(a, r) in &h.rows {
        keyed.push((
            (a.is_ipv6(), a, r.local_port, r.foreign, r.foreign_port),
            Line {
                v6: a.is_ipv6(),
                local: endpoint(a, r.local_port),
                foreign: endpoint(r.foreign, r.foreign_port),
                state: r.state,
            },
        ));
    }
    keyed.retain(|(k, _)| Proto::admits_v6(o.proto, k.0));
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, l)| l).collect()
}

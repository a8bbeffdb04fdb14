//! Rendering published host views: netstat's text layout and the JSON
//! contract. A host's view is written row by row; many hosts are rendered in
//! parallel, a bounded round of rows at a time (`rounds`).

pub mod json;
pub mod rounds;
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

    pub fn admits(p: Option<Proto>, v6: bool) -> bool {
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

impl Ep {
    /// Formats into `buf` without going through `fmt` (row rendering is the
    /// last serial step of a replay, so it is kept cheap); returns the text.
    pub fn render<'a>(&self, buf: &'a mut [u8; 56]) -> &'a str {
        let mut n = 0;
        let mut put = |b: &[u8], n: &mut usize| {
            buf[*n..*n + b.len()].copy_from_slice(b);
            *n += b.len();
        };
        match self.0 {
            IpAddr::V4(a) => {
                for (i, o) in a.octets().iter().enumerate() {
                    if i > 0 {
                        put(b".", &mut n);
                    }
                    put(decimal(*o as u32, &mut [0u8; 10]), &mut n);
                }
            }
            IpAddr::V6(a) => {
                use std::io::Write;
                put(b"[", &mut n);
                let mut tmp = [0u8; 48];
                let mut c = std::io::Cursor::new(&mut tmp[..]);
                let _ = write!(c, "{a}");
                let len = c.position() as usize;
                put(&tmp[..len], &mut n);
                put(b"]", &mut n);
            }
        }
        put(b":", &mut n);
        put(decimal(self.1 as u32, &mut [0u8; 10]), &mut n);
        // Only ASCII digits, dots, colons, hex letters and brackets were written.
        std::str::from_utf8(&buf[..n]).unwrap_or("")
    }
}

fn decimal(mut v: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// One row of the table as printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    pub local: Ep,
    pub foreign: Ep,
    pub state: TcpState,
    pub midstream: bool,
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
            out.push(Line { local: Ep(a, p), foreign: Ep(any, 0), state: TcpState::Listen, midstream: false });
        }
    }
    out.extend(h.rows.iter().map(|&(a, r)| Line {
        local: Ep(a, r.local_port),
        foreign: Ep(r.foreign, r.foreign_port),
        state: r.state,
        midstream: r.midstream,
    }));
    out.retain(|l| Proto::admits(o.proto, l.v6()));
    // A busy server has hundreds of thousands of rows, sorted on one thread
    // after the replay, in place, on integer keys (IpAddr compares slowly).
    out.sort_unstable_by_key(|l| (l.v6(), bits(l.local.0), l.local.1, bits(l.foreign.0), l.foreign.1));
    out
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => a.to_bits() as u128,
        IpAddr::V6(a) => a.to_bits(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_in_netstat_order() {
        use crate::report::Row;
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (a4, b4, a6) = (ip("10.0.0.2"), ip("10.0.0.10"), ip("fd00::1"));
        let row = |lp: u16, f: &str, fp: u16| Row {
            local_port: lp,
            foreign: ip(f),
            foreign_port: fp,
            state: TcpState::Established,
            midstream: false,
        };
        let h = HostView {
            addrs: vec![b4, a4, a6],
            rows: vec![
                (a6, row(443, "fd00::9", 5000)),
                (b4, row(80, "10.0.0.1", 3000)),
                (a4, row(80, "192.168.0.1", 1)),
                (a4, row(80, "10.0.0.200", 65535)),
                (a4, row(22, "10.0.0.1", 40000)),
                (a6, row(22, "fd00::2", 1)),
                (a4, row(80, "10.0.0.200", 2)),
            ],
            listeners: vec![(a4, 80), (a6, 443), (b4, 8)],
            tcp_v4: Default::default(),
            tcp_v6: Default::default(),
        };
        let o = ViewOpts { table: true, all: true, stats: false, proto: None };
        let got: Vec<String> = lines(&h, &o).iter().map(|l| format!("{} {}", l.local, l.foreign)).collect();
        assert_eq!(
            got,
            [
                "10.0.0.2:22 10.0.0.1:40000",
                "10.0.0.2:80 0.0.0.0:0",
                "10.0.0.2:80 10.0.0.200:2",
                "10.0.0.2:80 10.0.0.200:65535",
                "10.0.0.2:80 192.168.0.1:1",
                "10.0.0.10:8 0.0.0.0:0",
                "10.0.0.10:80 10.0.0.1:3000",
                "[fd00::1]:22 [fd00::2]:1",
                "[fd00::1]:443 [::]:0",
                "[fd00::1]:443 [fd00::9]:5000",
            ]
        );
    }

    #[test]
    fn render_matches_display() {
        for (ip, port) in
            [("10.201.0.1", 0u16), ("255.0.9.100", 65535), ("fd00:201::1", 80), ("::", 0), ("2001:db8::ffff:1:2", 443)]
        {
            let ep = Ep(ip.parse().unwrap(), port);
            let mut buf = [0u8; 56];
            assert_eq!(ep.render(&mut buf), ep.to_string());
        }
        let mut buf = [0u8; 56];
        let long = Ep("1111:2222:3333:4444:5555:6666:7777:8888".parse().unwrap(), 65535);
        assert_eq!(long.render(&mut buf), "[1111:2222:3333:4444:5555:6666:7777:8888]:65535");
    }
}

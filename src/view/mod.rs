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
    /// `-l`: listening sockets only.
    pub listening: bool,
    /// `-u` without `-t`: only UDP was asked for, which is not tracked, so no TCP is shown.
    pub no_tcp: bool,
    /// Text in Linux netstat's layout rather than Windows'.
    pub linux: bool,
    /// Linux's `-p`: a PID/Program name column (always `-`: the wire does not carry it).
    pub program: bool,
}

impl ViewOpts {
    /// Whether TCP of this family is shown.
    pub fn admits(&self, v6: bool) -> bool {
        !self.no_tcp && Proto::admits(self.proto, v6)
    }
}

/// Capture time `ns` (nanoseconds since the epoch) as a UTC date and time to
/// the microsecond, `2026-11-24 20:02:41.107788` (`sep` between date and
/// time: ' ' for text, 'T' for ISO 8601).
pub fn utc(ns: u64, sep: char) -> String {
    let secs = ns / 1_000_000_000;
    let (y, m, d) = civil_from_days(secs / 86_400);
    let t = secs % 86_400;
    let us = ns % 1_000_000_000 / 1000;
    format!("{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}.{us:06}", t / 3600, t / 60 % 60, t % 60)
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
/// Counted from 0000-03-01 instead, a 400-year era always has 146097 days
/// and the leap day falls at the end of each counted year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    const DAYS_0000_03_01_TO_1970: u64 = 719_468;
    let z = days + DAYS_0000_03_01_TO_1970;
    let (era, doe) = (z / 146_097, z % 146_097);
    // Year of the era: 365 days a year, minus the leap days gone by.
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    // Months from March have lengths 31,30,31,30,31 repeating: 153 days per 5 months.
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + (month <= 2) as u64;
    (year, month, day)
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
    /// How many characters `render` writes, without formatting: the text
    /// table measures every IPv6 endpoint to size its columns.
    pub fn text_len(&self) -> usize {
        let digits = |v: u32| {
            if v >= 10_000 {
                5
            } else if v >= 1000 {
                4
            } else if v >= 100 {
                3
            } else if v >= 10 {
                2
            } else {
                1
            }
        };
        let port = 1 + digits(self.1 as u32);
        match self.0 {
            IpAddr::V4(a) => a.octets().iter().map(|&o| digits(o as u32)).sum::<usize>() + 3 + port,
            IpAddr::V6(a) => 2 + v6_text_len(a) + port,
        }
    }

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

/// The length of an IPv6 address as `Display` writes it (RFC 5952): an
/// IPv4-mapped address ends in a dotted quad; otherwise the longest run of two
/// or more zero groups (the first, on a tie) becomes `::`, and each other
/// group is hex without leading zeros.
fn v6_text_len(a: Ipv6Addr) -> usize {
    if let Some(v4) = a.to_ipv4_mapped() {
        return "::ffff:".len() + Ep(IpAddr::V4(v4), 0).text_len() - 2;
    }
    let g = a.segments();
    let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
    for (i, &x) in g.iter().enumerate() {
        if x == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best, best_len) = (run, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    let hex = |x: u16| {
        if x >= 0x1000 {
            4
        } else if x >= 0x100 {
            3
        } else if x >= 0x10 {
            2
        } else {
            1
        }
    };
    if best_len < 2 {
        return g.iter().map(|&x| hex(x)).sum::<usize>() + 7;
    }
    let (head, tail) = (&g[..best], &g[best + best_len..]);
    let part = |s: &[u16]| s.iter().map(|&x| hex(x)).sum::<usize>() + s.len().saturating_sub(1);
    part(head) + 2 + part(tail)
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
    pub one_sided: bool,
    pub send_q: u32,
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
/// address and port, then foreign), listeners included with `-a`; with `-l`
/// only the listeners.
pub fn lines(h: &HostView, o: &ViewOpts) -> Vec<Line> {
    let listeners = o.all || o.listening;
    let rows = if o.listening { &[][..] } else { &h.rows[..] };
    let mut out: Vec<Line> = Vec::with_capacity(rows.len() + if listeners { h.listeners.len() } else { 0 });
    if listeners {
        for &(a, p) in &h.listeners {
            let any = if a.is_ipv6() { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
            out.push(Line {
                local: Ep(a, p),
                foreign: Ep(any, 0),
                state: TcpState::Listen,
                midstream: false,
                one_sided: false,
                send_q: 0,
            });
        }
    }
    out.extend(rows.iter().map(|&(a, r)| Line {
        local: Ep(a, r.local_port),
        foreign: Ep(r.foreign, r.foreign_port),
        state: r.state,
        midstream: r.midstream,
        one_sided: r.one_sided,
        send_q: r.send_q,
    }));
    out.retain(|l| o.admits(l.v6()));
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
            one_sided: false,
            send_q: 0,
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
        let o = ViewOpts { table: true, all: true, ..Default::default() };
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
    fn utc_dates() {
        let s = |secs: u64, us: u64| utc(secs * 1_000_000_000 + us * 1000 + 999, ' ');
        assert_eq!(s(0, 0), "1970-01-01 00:00:00.000000");
        assert_eq!(s(951_782_400, 1), "2000-02-29 00:00:00.000001");
        assert_eq!(s(951_868_799, 999_999), "2000-02-29 23:59:59.999999");
        assert_eq!(s(1_709_251_199, 0), "2024-02-29 23:59:59.000000");
        assert_eq!(s(4_107_542_400, 0), "2100-03-01 00:00:00.000000");
        assert_eq!(s(1_795_550_561, 107_788), "2026-11-24 20:02:41.107788");
        assert_eq!(s(u32::MAX as u64, 0), "2106-02-07 06:28:15.000000");
        assert_eq!(utc(86_399_000_000_000, 'T'), "1970-01-01T23:59:59.000000");
        // Every day of 1970..2110 against a plain day-by-day count.
        let mut ymd = (1970u64, 1u64, 1u64);
        for day in 0..51_500u64 {
            assert_eq!(civil_from_days(day), ymd, "day {day}");
            let leap = ymd.0.is_multiple_of(4) && (!ymd.0.is_multiple_of(100) || ymd.0.is_multiple_of(400));
            let len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][ymd.1 as usize - 1];
            ymd = if ymd.2 < len {
                (ymd.0, ymd.1, ymd.2 + 1)
            } else if ymd.1 < 12 {
                (ymd.0, ymd.1 + 1, 1)
            } else {
                (ymd.0 + 1, 1, 1)
            };
        }
    }

    #[test]
    fn text_len_matches_display() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000 {
            // Mostly zero groups, so runs of zeros of every length and position occur.
            let mut g = [0u16; 8];
            for s in g.iter_mut() {
                let r = next();
                *s = if r % 3 == 0 { (r >> 8) as u16 >> (r % 16) } else { 0 };
            }
            let a = match i % 5 {
                0 => IpAddr::V4(std::net::Ipv4Addr::from(next() as u32)),
                1 => IpAddr::V6(std::net::Ipv4Addr::from(next() as u32).to_ipv6_mapped()),
                _ => IpAddr::V6(Ipv6Addr::from(g)),
            };
            let ep = Ep(a, (next() % 70_000) as u16);
            assert_eq!(ep.text_len(), ep.to_string().len(), "{ep}");
        }
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

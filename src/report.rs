//! What workers publish at a snapshot barrier and views read: per-address
//! connection rows, listeners and TCP counters, gathered in a `DashMap` that
//! every shard merges into concurrently.

use crate::flow::TcpState;
use dashmap::DashMap;
use std::net::IpAddr;

counter_group! {
    /// The eight TCP figures of `netstat -s -p TCP`, per address family (RFC
    /// 1213 / RFC 4022 as Linux implements them).
    pub struct TcpCounters {
        active_opens: "active_opens", "Active Opens", "active connection openings";
        passive_opens: "passive_opens", "Passive Opens", "passive connection openings";
        failed_connection_attempts: "failed_connection_attempts", "Failed Connection Attempts",
            "failed connection attempts";
        reset_connections: "reset_connections", "Reset Connections", "connection resets received";
        current_connections: "current_connections", "Current Connections", "connections established";
        segments_received: "segments_received", "Segments Received", "segments received";
        segments_sent: "segments_sent", "Segments Sent", "segments sent out";
        segments_retransmitted: "segments_retransmitted", "Segments Retransmitted", "segments retransmitted";
    }
}

/// One row of an address's connection table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub local_port: u16,
    pub foreign: IpAddr,
    pub foreign_port: u16,
    pub state: TcpState,
    /// Picked up without its handshake.
    pub midstream: bool,
    /// Inferred from one side's segments: the capture never showed the other side sending.
    pub one_sided: bool,
    /// Sequence space the local side sent that the peer has not acknowledged (Linux's Send-Q).
    pub send_q: u32,
}

/// Everything published about one address.
#[derive(Clone, Debug, Default)]
pub struct AddrView {
    pub rows: Vec<Row>,
    pub listen_ports: Vec<u16>,
    pub tcp: TcpCounters,
}

impl AddrView {
    /// Lines of its table: connection rows, and listening sockets with `-a`.
    pub fn table_lines(&self, listeners: bool) -> usize {
        self.rows.len() + if listeners { self.listen_ports.len() } else { 0 }
    }

    pub fn merge(&mut self, o: AddrView) {
        // Take the other's vector whole when this one is empty: no copy.
        if self.rows.is_empty() {
            self.rows = o.rows;
        } else {
            self.rows.extend(o.rows);
        }
        // Several workers may have seen the same listening socket.
        self.listen_ports.extend(o.listen_ports);
        self.listen_ports.sort_unstable();
        self.listen_ports.dedup();
        self.tcp.add(&o.tcp);
    }
}

pub type Store = DashMap<IpAddr, AddrView>;

/// CPU time (user + system) of the calling thread, from /proc (Linux).
pub fn thread_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else { return 0.0 };
    // Fields after the parenthesised name: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Capture-wide health figures: what was read, what could not be decoded,
/// what memory pressure dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// Capture time the views describe, nanoseconds since the epoch.
    pub snapshot_ns: u64,
    /// INTERVAL views just before this one that were not shown, being the same as the one before them.
    pub repeated: Option<crate::pipeline::Repeated>,
    /// Times of the earliest and latest frame read so far (nanoseconds); `None` before any.
    pub frame_span: Option<(u64, u64)>,
    pub decode: crate::decode::DecodeStats,
    /// Exact duplicate frames dropped before tracking (a SPAN session's second copies).
    pub duplicates: u64,
    /// What a live capture received and lost; `None` when reading files.
    pub live: Option<crate::capture::LiveStats>,
    pub flows_tracked: u64,
    pub flows_evicted: u64,
    pub flows_idle_expired: u64,
    /// Connections seen from one side only (an incomplete mirror): their rows are inferred.
    pub one_sided_connections: u64,
    /// Per-address entries (retired counters, listeners) not kept: the bound `--max-flows` sets.
    pub host_entries_dropped: u64,
    /// Without `--host`, with `--top N`: the hosts left out of the views (set by the caller).
    pub hosts_omitted: Option<crate::analysis::top::Omitted>,
    pub read_errors: Vec<String>,
    /// Bytes allocated for the workers' tables and timer queues, for `WIRESTAT_THREAD_TIMES`.
    pub table_bytes: u64,
    /// CPU seconds of the reader thread and of each worker, for `WIRESTAT_THREAD_TIMES`.
    pub reader_cpu: f64,
    pub worker_cpu: Vec<f64>,
}

/// A host: one or more addresses seen as one machine.
#[derive(Clone, Debug, PartialEq)]
pub struct HostView {
    pub addrs: Vec<IpAddr>,
    /// Connection rows: (local address, row), sorted.
    pub rows: Vec<(IpAddr, Row)>,
    /// Listening sockets: (address, port), sorted.
    pub listeners: Vec<(IpAddr, u16)>,
    pub tcp_v4: TcpCounters,
    pub tcp_v6: TcpCounters,
}

impl HostView {
    /// Gathers the view of a host made of `addrs` from the published store.
    pub fn build(store: &Store, addrs: &[IpAddr]) -> HostView {
        let mut h = HostView {
            addrs: addrs.to_vec(),
            rows: Vec::new(),
            listeners: Vec::new(),
            tcp_v4: TcpCounters::default(),
            tcp_v6: TcpCounters::default(),
        };
        for a in addrs {
            let Some(v) = store.get(a) else { continue };
            h.rows.extend(v.rows.iter().map(|r| (*a, *r)));
            h.listeners.extend(v.listen_ports.iter().map(|p| (*a, *p)));
            if a.is_ipv4() {
                h.tcp_v4.add(&v.tcp);
            } else {
                h.tcp_v6.add(&v.tcp);
            }
        }
        // Rows are put in netstat order when they are rendered (view::lines).
        h.listeners.sort_by_key(|&(a, p)| (a.is_ipv6(), a, p));
        h.listeners.dedup();
        h
    }

    /// Hosts for a capture with no `--host`: every address with something to
    /// show, each its own host, the busiest first. A table shows an address's
    /// connection rows (and with `listeners`, its listening sockets); with
    /// `stats`, every address that took part in TCP has counters to show, even
    /// once all its connections are closed. Views are built one at a time from
    /// this list, so a mirror port with a million hosts never holds a million
    /// views at once.
    /// `v6_only`: with `-p`, only addresses of that family (`Some(true)`: IPv6).
    pub fn busiest(store: &Store, listeners: bool, stats: bool, v6_only: Option<bool>) -> Vec<IpAddr> {
        let mut addrs: Vec<(usize, u64, IpAddr)> = store
            .iter()
            .filter(|e| v6_only.is_none_or(|v6| e.key().is_ipv6() == v6))
            .filter_map(|e| {
                let v = e.value();
                let rows = v.table_lines(listeners);
                let segs = v.tcp.segments_received + v.tcp.segments_sent;
                (rows > 0 || (stats && segs > 0)).then_some((rows, segs, *e.key()))
            })
            .collect();
        addrs.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then((a.2.is_ipv6(), a.2).cmp(&(b.2.is_ipv6(), b.2))));
        addrs.into_iter().map(|(_, _, a)| a).collect()
    }
}

//! Windows netstat's text layout: `Active Connections` and
//! `TCP Statistics for IPv4/IPv6`.

use super::{Proto, ViewOpts, lines};
use crate::report::{Health, HostView};
use crate::stats::TcpCounters;
use std::fmt::Write;

pub fn render(h: &HostView, o: &ViewOpts, header: bool) -> String {
    let mut s = String::new();
    if header {
        let names: Vec<String> = h.addrs.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(s, "\nHost {}", names.join(", "));
    }
    if o.table {
        s.push_str("\nActive Connections\n\n  Proto  Local Address          Foreign Address        State\n");
        for l in lines(h, o) {
            let _ = writeln!(s, "  {:<6} {:<22} {:<22} {}", l.proto(), l.local, l.foreign, l.state.name());
        }
    }
    if o.stats {
        if o.proto != Some(Proto::TcpV6) {
            stats_block(&mut s, "IPv4", &h.tcp_v4);
        }
        if o.proto != Some(Proto::Tcp) {
            stats_block(&mut s, "IPv6", &h.tcp_v6);
        }
    }
    s
}

fn stats_block(s: &mut String, family: &str, c: &TcpCounters) {
    let _ = writeln!(s, "\nTCP Statistics for {family}\n");
    let rows = [
        ("Active Opens", c.active_opens),
        ("Passive Opens", c.passive_opens),
        ("Failed Connection Attempts", c.failed_connection_attempts),
        ("Reset Connections", c.reset_connections),
        ("Current Connections", c.current_connections),
        ("Segments Received", c.segments_received),
        ("Segments Sent", c.segments_sent),
        ("Segments Retransmitted", c.segments_retransmitted),
    ];
    for (name, v) in rows {
        let _ = writeln!(s, "  {name:<36}= {v}");
    }
}

/// The capture-health lines for stderr: what could not be read or decoded,
/// what memory pressure evicted. Nothing when all is well.
pub fn health_lines(h: &Health) -> Vec<String> {
    let mut out = h.read_errors.clone();
    let d = &h.decode;
    if d.undecodable > 0 {
        out.push(format!("{} frames undecodable (bad or cut-off headers), skipped", d.undecodable));
    }
    if d.unknown_link > 0 {
        out.push(format!("{} frames of an unsupported link type, skipped", d.unknown_link));
    }
    if h.flows_evicted > 0 {
        out.push(format!("{} flows evicted", h.flows_evicted));
    }
    out
}

//! Windows netstat's text layout: `Active Connections` and
//! `TCP Statistics for IPv4/IPv6`.

use super::{Proto, ViewOpts, lines};
use crate::report::{Health, HostView};
use crate::stats::TcpCounters;
use std::io::{self, Write};

pub fn write(out: &mut dyn Write, h: &HostView, o: &ViewOpts, header: bool) -> io::Result<()> {
    if header {
        let names: Vec<String> = h.addrs.iter().map(|a| a.to_string()).collect();
        writeln!(out, "\nHost {}", names.join(", "))?;
    }
    if o.table {
        out.write_all(b"\nActive Connections\n\n  Proto  Local Address          Foreign Address        State\n")?;
        let mut buf = [0u8; 56];
        let mut row: Vec<u8> = Vec::with_capacity(160);
        for l in lines(h, o) {
            // Columns as Windows netstat pads them, assembled by hand: this loop
            // runs once per row of a busy server, after the replay, on one thread.
            row.clear();
            row.extend_from_slice(b"  ");
            pad(&mut row, l.proto(), 7);
            pad(&mut row, l.local.render(&mut buf), 23);
            pad(&mut row, l.foreign.render(&mut buf), 23);
            row.extend_from_slice(l.state.name().as_bytes());
            row.push(b'\n');
            out.write_all(&row)?;
        }
    }
    if o.stats {
        if Proto::admits(o.proto, false) {
            stats_block(out, "IPv4", &h.tcp_v4)?;
        }
        if Proto::admits(o.proto, true) {
            stats_block(out, "IPv6", &h.tcp_v6)?;
        }
    }
    Ok(())
}

/// Appends `s` left-aligned in `width` columns, always followed by at least one space.
fn pad(row: &mut Vec<u8>, s: &str, width: usize) {
    row.extend_from_slice(s.as_bytes());
    row.resize(row.len() + width.saturating_sub(s.len()).max(1), b' ');
}

fn stats_block(out: &mut dyn Write, family: &str, c: &TcpCounters) -> io::Result<()> {
    writeln!(out, "\nTCP Statistics for {family}\n")?;
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
        writeln!(out, "  {name:<36}= {v}")?;
    }
    Ok(())
}

/// The capture-health lines for stderr: what could not be read or decoded,
/// what memory pressure evicted. Nothing when all is well.
pub fn health_lines(h: &Health) -> Vec<String> {
    let d = &h.decode;
    let counted = [
        (d.undecodable, "frames undecodable (bad or cut-off headers), skipped"),
        (d.bad_timestamps, "frames with a timestamp far ahead of the capture, tracked at the capture's time"),
        (d.unknown_link, "frames of an unsupported link type, skipped"),
        (h.flows_evicted, "flows evicted"),
        (h.duplicates, "duplicate frames dropped (exact copies within 1 ms, as a SPAN session delivers them)"),
        (
            h.host_entries_dropped,
            "counter or listener entries of forgotten addresses not kept (use --host to follow specific hosts)",
        ),
    ];
    let mut out = h.read_errors.clone();
    out.extend(counted.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")));
    out
}

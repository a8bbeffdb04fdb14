//! The machine-readable contract: one JSON object per host, on one line (see
//! design.md). Written directly, row by row; every string in it is an address,
//! a state or a fixed key, none of which needs escaping except read errors.

use super::{Proto, ViewOpts, lines};
use crate::report::{Health, HostView};
use crate::stats::TcpCounters;
use std::io::{self, Write};

/// Capture time as seconds with microseconds, like tcpdump's timestamps.
pub fn seconds(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000_000, ns % 1_000_000_000 / 1000)
}

fn counters(out: &mut dyn Write, c: &TcpCounters) -> io::Result<()> {
    out.write_all(b"{")?;
    for (i, (k, v)) in TcpCounters::NAMES.iter().zip(c.values()).enumerate() {
        write!(out, "{}\"{k}\":{v}", if i > 0 { "," } else { "" })?;
    }
    out.write_all(b"}")
}

pub fn write(out: &mut dyn Write, h: &HostView, o: &ViewOpts, health: &Health) -> io::Result<()> {
    out.write_all(b"{\"host\":[")?;
    for (i, a) in h.addrs.iter().enumerate() {
        write!(out, "{}\"{a}\"", if i > 0 { "," } else { "" })?;
    }
    // `connections` and `tcp_stats` are always present; LISTEN rows only with -a.
    write!(out, "],\"time\":{}", seconds(health.snapshot_ns))?;
    out.write_all(b",\"connections\":[")?;
    let mut buf = [0u8; 56];
    for (i, l) in lines(h, o).iter().enumerate() {
        out.write_all(if i > 0 { b",{\"proto\":\"" } else { b"{\"proto\":\"" })?;
        out.write_all(l.proto().as_bytes())?;
        out.write_all(b"\",\"local\":\"")?;
        out.write_all(l.local.render(&mut buf).as_bytes())?;
        out.write_all(b"\",\"foreign\":\"")?;
        out.write_all(l.foreign.render(&mut buf).as_bytes())?;
        out.write_all(b"\",\"state\":\"")?;
        out.write_all(l.state.name().as_bytes())?;
        // Only connections whose handshake was not captured carry the marker.
        out.write_all(if l.midstream { b"\",\"midstream\":true}" } else { b"\"}" })?;
    }
    out.write_all(b"],\"tcp_stats\":{")?;
    let mut sep = "";
    if Proto::admits(o.proto, false) {
        out.write_all(b"\"ipv4\":")?;
        counters(out, &h.tcp_v4)?;
        sep = ",";
    }
    if Proto::admits(o.proto, true) {
        write!(out, "{sep}\"ipv6\":")?;
        counters(out, &h.tcp_v6)?;
    }
    let d = &health.decode;
    write!(
        out,
        "}},\"capture\":{{\"frames\":{},\"bytes\":{},\"tcp_segments\":{},\"icmp_errors_quoting_tcp\":{},\
         \"non_ip\":{},\"other_protocols\":{},\"fragments\":{},\"undecodable\":{},\"unknown_link_type\":{},\"bad_timestamps\":{},\
         \"flows_tracked\":{},\"flows_evicted\":{},\"flows_idle_expired\":{},\"host_entries_dropped\":{},\
         \"read_errors\":{},\"duplicates\":{}",
        d.frames,
        d.bytes,
        d.tcp,
        d.icmp_errors,
        d.non_ip,
        d.other_protocol,
        d.fragments,
        d.undecodable,
        d.unknown_link,
        d.bad_timestamps,
        health.flows_tracked,
        health.flows_evicted,
        health.flows_idle_expired,
        health.host_entries_dropped,
        serde_json::Value::from(health.read_errors.clone()),
        health.duplicates
    )?;
    if let Some(l) = &health.live {
        write!(
            out,
            ",\"packets_received\":{},\"packets_dropped_kernel\":{},\"packets_dropped_interface\":{},\
             \"packets_dropped_pipeline\":{},\"late_frames\":{}",
            l.packets_received, l.dropped_kernel, l.dropped_interface, l.dropped_pipeline, l.late_frames
        )?;
    }
    out.write_all(b"}}\n")
}

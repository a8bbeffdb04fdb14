//! The machine-readable contract: one JSON object per host, on one line (keys
//! and meanings listed in the README's "JSON contract"). Written directly, row
//! by row; every string in it is an address, a state or a fixed key, none of
//! which needs escaping except read errors.

use super::{ViewOpts, lines, utc};
use crate::pipeline::Repeated;
use crate::report::TcpCounters;
use crate::report::{Health, HostView};
use std::io::{self, Write};

/// Capture time as seconds with microseconds, like tcpdump's timestamps.
pub fn seconds(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000_000, ns % 1_000_000_000 / 1000)
}

/// The time of the first or last frame read (`pick`), as seconds or as an
/// ISO 8601 string; `null` when no frame was read.
fn span_time(health: &Health, pick: fn((u64, u64)) -> u64, iso: bool) -> String {
    match health.frame_span.map(pick) {
        None => "null".into(),
        Some(ns) if iso => format!("\"{}Z\"", utc(ns, 'T')),
        Some(ns) => seconds(ns),
    }
}

/// The INTERVAL views not written before a view because they equal the one
/// written before them: one line in their place, an object without a `host`
/// key (so that a reader taking the lines with one picks only the views).
pub fn repeated(out: &mut dyn Write, r: &Repeated) -> io::Result<()> {
    writeln!(
        out,
        "{{\"repeated_views\":{},\"from\":{},\"to\":{},\"from_utc\":\"{}Z\",\"to_utc\":\"{}Z\"}}",
        r.views,
        seconds(r.from),
        seconds(r.to),
        utc(r.from, 'T'),
        utc(r.to, 'T')
    )
}

fn counters(out: &mut dyn Write, c: &TcpCounters) -> io::Result<()> {
    out.write_all(b"{")?;
    for (i, (k, _, v)) in c.entries().enumerate() {
        write!(out, "{}\"{k}\":{v}", if i > 0 { "," } else { "" })?;
    }
    out.write_all(b"}")
}

pub fn write(out: &mut dyn Write, h: &HostView, o: &ViewOpts, health: &Health) -> io::Result<()> {
    out.write_all(b"{\"host\":[")?;
    for (i, a) in h.addrs.iter().enumerate() {
        write!(out, "{}\"{a}\"", if i > 0 { "," } else { "" })?;
    }
    // `connections` and `tcp_stats` are always present; LISTEN rows only with -a or -l.
    write!(out, "],\"time\":{},\"time_utc\":\"{}Z\"", seconds(health.snapshot_ns), utc(health.snapshot_ns, 'T'))?;
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
        // Only connections whose handshake was not captured, or seen from one side, carry a marker.
        out.write_all(if l.midstream { b"\",\"midstream\":true" } else { b"\"" })?;
        out.write_all(if l.one_sided { b",\"one_sided\":true}" } else { b"}" })?;
    }
    out.write_all(b"],\"tcp_stats\":{")?;
    let mut sep = "";
    if o.admits(false) {
        out.write_all(b"\"ipv4\":")?;
        counters(out, &h.tcp_v4)?;
        sep = ",";
    }
    if o.admits(true) {
        write!(out, "{sep}\"ipv6\":")?;
        counters(out, &h.tcp_v6)?;
    }
    out.write_all(b"},\"capture\":{")?;
    for (k, _, v) in health.decode.entries() {
        write!(out, "\"{k}\":{v},")?;
    }
    write!(
        out,
        "\"flows_tracked\":{},\"flows_evicted\":{},\"flows_idle_expired\":{},\"one_sided_connections\":{},\
         \"host_entries_dropped\":{},\"read_errors\":{},\"first_frame_time\":{},\"last_frame_time\":{},\"first_frame_time_utc\":{},\
         \"last_frame_time_utc\":{},\"duplicates\":{}",
        health.flows_tracked,
        health.flows_evicted,
        health.flows_idle_expired,
        health.one_sided_connections,
        health.host_entries_dropped,
        serde_json::Value::from(health.read_errors.clone()),
        span_time(health, |(first, _)| first, false),
        span_time(health, |(_, last)| last, false),
        span_time(health, |(first, _)| first, true),
        span_time(health, |(_, last)| last, true),
        health.duplicates
    )?;
    if let Some(o) = &health.hosts_omitted {
        write!(out, ",\"hosts_omitted\":{},\"hosts_omitted_syn_only\":{}", o.hosts, o.syn_only)?;
    }
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

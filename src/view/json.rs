//! The machine-readable contract: one JSON object per host (see design.md).

use super::{Proto, ViewOpts, lines};
use crate::report::{Health, HostView};
use crate::stats::TcpCounters;
use serde_json::{Map, Value, json};

fn counters(c: &TcpCounters) -> Value {
    let mut m = Map::new();
    for (k, v) in TcpCounters::NAMES.iter().zip(c.values()) {
        m.insert((*k).into(), v.into());
    }
    Value::Object(m)
}

pub fn render(h: &HostView, o: &ViewOpts, health: &Health) -> Value {
    // `connections` and `tcp_stats` are always present; LISTEN rows only with -a.
    let conns: Vec<Value> = lines(h, o)
        .into_iter()
        .map(|l| json!({"proto": l.proto(), "local": l.local, "foreign": l.foreign, "state": l.state.name()}))
        .collect();
    let mut stats = Map::new();
    if o.proto != Some(Proto::TcpV6) {
        stats.insert("ipv4".into(), counters(&h.tcp_v4));
    }
    if o.proto != Some(Proto::Tcp) {
        stats.insert("ipv6".into(), counters(&h.tcp_v6));
    }
    let d = &health.decode;
    json!({
        "host": h.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "connections": conns,
        "tcp_stats": Value::Object(stats),
        "capture": {
            "frames": d.frames,
            "bytes": d.bytes,
            "tcp_segments": d.tcp,
            "icmp_errors_quoting_tcp": d.icmp_errors,
            "non_ip": d.non_ip,
            "other_protocols": d.other_protocol,
            "fragments": d.fragments,
            "undecodable": d.undecodable,
            "unknown_link_type": d.unknown_link,
            "flows_tracked": health.flows_tracked,
            "flows_evicted": health.flows_evicted,
            "flows_idle_expired": health.flows_idle_expired,
            "read_errors": health.read_errors,
        }
    })
}

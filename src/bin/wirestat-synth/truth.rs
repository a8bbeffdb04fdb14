//! Ground-truth JSON rendering (keys in a fixed, documented order; one line
//! per listening socket / connection so big truths stay greppable).

use std::io::Write;

use serde_json::{Value, json};

use crate::model::{self, Gen, LIST_LIMIT, LISTEN_PORTS, OUTCOMES, SSTATES, SState, TIME_WAIT_US, TcpCounters};

/// Minimal ordered JSON tree (serde_json's `Map` sorts keys).
enum J {
    /// Any serde value, rendered compactly.
    V(Value),
    /// Object rendered over several lines.
    Obj(Vec<(&'static str, J)>),
    /// Array rendered one element per line.
    Arr(Vec<J>),
    /// Object rendered on one line.
    Line(Vec<(&'static str, Value)>),
}

fn render(j: &J, ind: usize, out: &mut String) {
    let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
    match j {
        J::V(v) => out.push_str(&v.to_string()),
        J::Line(kv) => {
            out.push('{');
            for (i, (k, v)) in kv.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&format!("{}: {v}", Value::from(*k)));
            }
            out.push('}');
        }
        J::Obj(kv) if kv.is_empty() => out.push_str("{}"),
        J::Arr(items) if items.is_empty() => out.push_str("[]"),
        J::Obj(kv) => {
            out.push_str("{\n");
            for (i, (k, v)) in kv.iter().enumerate() {
                pad(out, ind + 2);
                out.push_str(&format!("{}: ", Value::from(*k)));
                render(v, ind + 2, out);
                out.push_str(if i + 1 < kv.len() { ",\n" } else { "\n" });
            }
            pad(out, ind);
            out.push('}');
        }
        J::Arr(items) => {
            out.push_str("[\n");
            for (i, v) in items.iter().enumerate() {
                pad(out, ind + 2);
                render(v, ind + 2, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(out, ind);
            out.push(']');
        }
    }
}

fn tcp_json(c: &TcpCounters, current: u64) -> J {
    J::Obj(vec![
        ("active_opens", J::V(json!(0))),
        ("passive_opens", J::V(json!(c.passive_opens))),
        ("failed_connection_attempts", J::V(json!(0))),
        ("reset_connections", J::V(json!(c.reset_connections))),
        ("current_connections", J::V(json!(current))),
        ("segments_received", J::V(json!(c.segments_received))),
        ("segments_sent", J::V(json!(c.segments_sent))),
        ("segments_retransmitted", J::V(json!(c.segments_retransmitted))),
    ])
}

/// Seconds as a JSON number; f64 resolves ~0.24 µs at this magnitude, so
/// the value is exact to the microsecond.
fn ts_secs(us: u64) -> J {
    J::V(json!(us as f64 / 1e6))
}

/// Run parameters echoed into the truth.
pub struct Meta {
    pub seed: u64,
    pub args: String,
    pub snaplen: u32,
    pub file_bytes: u64,
}

/// Renders the ground truth for the server host as pretty JSON text.
pub fn render_truth<W: Write>(g: &Gen<W>, meta: &Meta) -> String {
    let t = &g.truth;
    let last = t.last_ts_us;
    let tw_alive = |at: u64| last < at + TIME_WAIT_US;

    let mut states = t.states;
    for (st, tw) in states.iter_mut().zip(&t.time_wait) {
        st[SState::TimeWait as usize] = tw.iter().filter(|&&at| tw_alive(at)).count() as u64;
    }
    let state_counts = SSTATES
        .iter()
        .map(|&s| (s, states[0][s as usize] + states[1][s as usize]))
        .filter(|&(s, n)| s != SState::Closed && n > 0)
        .map(|(s, n)| (s.name(), J::V(json!(n))))
        .collect();
    let current = |fam: usize| states[fam][SState::Established as usize] + states[fam][SState::CloseWait as usize];
    let mut sum = TcpCounters::default();
    for c in &t.tcp {
        sum.passive_opens += c.passive_opens;
        sum.reset_connections += c.reset_connections;
        sum.segments_received += c.segments_received;
        sum.segments_sent += c.segments_sent;
        sum.segments_retransmitted += c.segments_retransmitted;
    }

    let proto = |v6: bool| json!(if v6 { "TCPv6" } else { "TCP" });
    let mut listening = Vec::new();
    for v6 in [false, true] {
        for (i, &port) in LISTEN_PORTS.iter().enumerate() {
            if t.listening[usize::from(v6)][i] {
                listening.push(J::Line(vec![
                    ("proto", proto(v6)),
                    ("local", json!(model::server_endpoint(v6, port))),
                    ("state", json!("LISTEN")),
                ]));
            }
        }
    }
    let by_outcome = OUTCOMES.iter().map(|&o| (o.name(), J::V(json!(t.by_outcome[o as usize])))).collect();

    let mut top = vec![
        ("generator", J::V(json!("wirestat-synth"))),
        ("seed", J::V(json!(meta.seed))),
        ("args", J::V(json!(meta.args))),
        ("packets", J::V(json!(g.w.packets))),
        ("flows", J::V(json!(t.flows))),
        ("bytes", J::V(json!(meta.file_bytes))),
        ("wire_bytes", J::V(json!(g.w.wire_bytes))),
        ("snaplen", J::V(json!(meta.snaplen))),
        ("first_ts", ts_secs(t.first_ts_us.unwrap_or(0))),
        ("last_ts", ts_secs(last)),
        ("host", J::V(json!(["10.0.0.1", "fd00::1"]))),
        ("flows_by_outcome", J::Obj(by_outcome)),
        ("flood_syns", J::V(json!(t.flood_syns))),
        (
            "retransmissions",
            J::Obj(vec![("client", J::V(json!(t.retx_client))), ("server", J::V(json!(t.retx_server)))]),
        ),
        ("server_state_counts", J::Obj(state_counts)),
        ("listening", J::Arr(listening)),
        ("tcp", tcp_json(&sum, current(0) + current(1))),
        (
            "tcp_by_family",
            J::Obj(vec![("ipv4", tcp_json(&t.tcp[0], current(0))), ("ipv6", tcp_json(&t.tcp[1], current(1)))]),
        ),
    ];
    if let Some(rows) = &t.rows {
        debug_assert!(t.flows <= LIST_LIMIT);
        let mut rows: Vec<_> = rows.iter().filter(|r| r.state != SState::TimeWait || tw_alive(r.tw_at_us)).collect();
        rows.sort_by_key(|r| r.id);
        let conns = rows
            .iter()
            .map(|r| {
                let (ip, port) = model::client_addr(r.id, r.v6, g.cfg.clients);
                J::Line(vec![
                    ("proto", proto(r.v6)),
                    ("local", json!(model::server_endpoint(r.v6, r.port))),
                    ("foreign", json!(model::fmt_endpoint(&ip, port, r.v6))),
                    ("state", json!(r.state.name())),
                ])
            })
            .collect();
        top.push(("connections", J::Arr(conns)));
    }
    let mut out = String::new();
    render(&J::Obj(top), 0, &mut out);
    out.push('\n');
    out
}

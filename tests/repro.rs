//! Reproductions of defects (fixtures/repro/, copies of ../shared/repro/ and
//! corpus traces), run through the `wirestat` binary: what each capture must
//! give now that the defect is fixed.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// `wirestat -r FILE -a -n -s --format json ARGS...`: the JSON documents
/// (one per host shown) and stderr; the run must succeed.
fn run(rel: &str, args: &[&str]) -> (Vec<Value>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_wirestat"))
        .arg("-r")
        .arg(fixture(rel))
        .args(["-a", "-n", "-s", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(o.status.success(), "{rel}: {err}");
    let out = String::from_utf8(o.stdout).unwrap();
    (out.lines().map(|l| serde_json::from_str(l).unwrap()).collect(), err)
}

/// The one view of `host`.
fn view(rel: &str, host: &str) -> (Value, String) {
    let (mut v, err) = run(rel, &["--host", host]);
    assert_eq!(v.len(), 1);
    (v.remove(0), err)
}

/// A view's rows as (local, foreign, state, marked one-sided).
fn rows(v: &Value) -> Vec<(String, String, String, bool)> {
    v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_string();
            (s("local"), s("foreign"), s("state"), c["one_sided"] == Value::Bool(true))
        })
        .collect()
}

fn row(local: &str, foreign: &str, state: &str, one_sided: bool) -> (String, String, String, bool) {
    (local.into(), foreign.into(), state.into(), one_sided)
}

fn tcp(v: &Value, key: &str) -> u64 {
    v["tcp_stats"]["ipv4"][key].as_u64().unwrap()
}

const MIRROR_NOTE: &str = "connections seen from one side only: the mirror looks incomplete";

#[test]
fn onesided_client_ack_of_the_peer_isn_is_not_syn_sent() {
    // SYN, ACK of the peer's ISN, data, an ACK of 499 bytes, FIN: the replies were not mirrored.
    let (v, err) = view("repro/onesided.pcap", "10.0.0.1");
    assert_eq!(rows(&v), [row("10.0.0.1:40000", "10.0.0.2:80", "FIN_WAIT_1", true)]);
    assert_eq!(tcp(&v, "active_opens"), 1);
    assert_eq!(tcp(&v, "failed_connection_attempts"), 0);
    assert_eq!(v["capture"]["one_sided_connections"], 1);
    assert!(err.contains(&format!("1 {MIRROR_NOTE}")), "{err}");

    // The peer: its SYN-ACK is proven, so it listens; it got the FIN.
    let (v, _) = view("repro/onesided.pcap", "10.0.0.2");
    assert_eq!(
        rows(&v),
        [row("10.0.0.2:80", "0.0.0.0:0", "LISTEN", false), row("10.0.0.2:80", "10.0.0.1:40000", "CLOSE_WAIT", true)]
    );
    assert_eq!(tcp(&v, "passive_opens"), 1);
}

#[test]
fn client_only_half_of_http_get_ends_in_time_wait() {
    let (v, _) = view("repro/http-get-client-only.pcap", "141.142.228.5");
    assert_eq!(rows(&v), [row("141.142.228.5:59856", "192.150.187.43:80", "TIME_WAIT", true)]);
    // The server closed second: the client's last ACK ended its LAST_ACK.
    let (v, _) = view("repro/http-get-client-only.pcap", "192.150.187.43");
    assert_eq!(rows(&v), [row("192.150.187.43:80", "0.0.0.0:0", "LISTEN", false)]);
}

#[test]
fn client_only_half_200_s_later_has_no_row_and_no_failed_attempt() {
    let (v, err) = view("repro/http-get-client-only-late.pcap", "141.142.228.5");
    assert!(rows(&v).is_empty(), "TIME_WAIT is over: {:?}", rows(&v));
    assert_eq!(tcp(&v, "active_opens"), 1);
    assert_eq!(tcp(&v, "failed_connection_attempts"), 0);
    // Forgotten, the connection still counts as seen one-sided.
    assert_eq!(v["capture"]["one_sided_connections"], 1);
    assert!(err.contains(MIRROR_NOTE), "{err}");
}

#[test]
fn server_only_half_of_http_get_shows_the_client_closed_first() {
    // The server's FIN acknowledges the client's FIN: client TIME_WAIT; the server's
    // last ACK is not in this half, so it is in LAST_ACK.
    let (v, _) = view("repro/http-get-server-only.pcap", "192.150.187.43");
    assert_eq!(
        rows(&v),
        [
            row("192.150.187.43:80", "0.0.0.0:0", "LISTEN", false),
            row("192.150.187.43:80", "141.142.228.5:59856", "LAST_ACK", true)
        ]
    );
    assert_eq!(tcp(&v, "passive_opens"), 1);
    let (v, _) = view("repro/http-get-server-only.pcap", "141.142.228.5");
    assert_eq!(rows(&v), [row("141.142.228.5:59856", "192.150.187.43:80", "TIME_WAIT", true)]);
    // Its SYN was not captured: no open is counted for it.
    assert_eq!(tcp(&v, "active_opens"), 0);
}

#[test]
fn two_sided_captures_have_no_one_sided_rows_nor_warning() {
    let (v, err) = run("oracle/mixed-s1/capture.pcap", &["--host", "10.201.0.1", "--host", "fd00:201::1"]);
    assert_eq!(v[0]["capture"]["one_sided_connections"], 0);
    assert!(v[0]["connections"].as_array().unwrap().iter().all(|c| c.get("one_sided").is_none()));
    assert!(!err.contains(MIRROR_NOTE), "{err}");
}

#[test]
fn syn_captured_after_its_synack_still_counts_the_active_open() {
    // handshake-reorder.pcap: the SYN-ACK is the first frame, the SYN the second.
    let (v, _) = view("corpus/zeek/handshake-reorder.pcap", "141.142.228.5");
    assert_eq!(tcp(&v, "active_opens"), 1);
    assert_eq!(rows(&v), [row("141.142.228.5:59856", "192.150.187.43:80", "TIME_WAIT", false)]);
    let (v, _) = view("corpus/zeek/handshake-reorder.pcap", "192.150.187.43");
    assert_eq!(tcp(&v, "passive_opens"), 1);
    assert_eq!(tcp(&v, "segments_retransmitted"), 0);

    // ipv6-http-atomic-frag.pcap: the first connection's SYN is stamped before, and
    // filed after, its SYN-ACK; four connections, four opens.
    let (v, _) = run("corpus/zeek/ipv6-http-atomic-frag.pcap", &["--host", "2001:db8:1::2"]);
    assert_eq!(v[0]["tcp_stats"]["ipv6"]["active_opens"], 4);
    assert_eq!(v[0]["tcp_stats"]["ipv6"]["segments_retransmitted"], 0);
}

#[test]
fn linux_layout_shows_no_send_q_for_a_one_sided_row() {
    let o = Command::new(env!("CARGO_BIN_EXE_wirestat"))
        .arg("-r")
        .arg(fixture("repro/http-get-server-only.pcap"))
        .args(["--host", "192.150.187.43", "-tan"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    let row = out.lines().find(|l| l.contains("LAST_ACK")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(row.split_whitespace().take(3).collect::<Vec<_>>(), ["tcp", "-", "-"], "{out}");
    assert!(out.contains("-: seen from one side only"), "{out}");
}

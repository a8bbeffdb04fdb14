//! Synthetic captures from `wirestat-synth`, which writes its own ground truth:
//! wirestat's view of the server must equal it, and the output must not depend
//! on how many workers share the connections.

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wirestat-synth-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn generate(name: &str, args: &[&str]) -> (PathBuf, Value) {
    let pcap = tmp(&format!("{name}.pcap"));
    let truth = tmp(&format!("{name}.json"));
    let t = common::synth::generate(&pcap, &truth, args);
    (pcap, t)
}

fn wirestat(pcap: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wirestat")).arg("-r").arg(pcap).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Compares wirestat's view of the synthetic server with the generator's truth.
fn check_server_view(pcap: &Path, truth: &Value, workers: &str) {
    let out = wirestat(
        pcap,
        &["--host", "10.0.0.1", "--host", "fd00::1", "-a", "-s", "--format", "json", "--workers", workers],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    let mut listen = 0;
    for c in v["connections"].as_array().unwrap() {
        let s = c["state"].as_str().unwrap();
        if s == "LISTEN" {
            listen += 1;
        } else {
            *states.entry(s.to_string()).or_default() += 1;
        }
    }
    let want: BTreeMap<String, u64> = truth["server_state_counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(states, want, "rows by state");
    assert_eq!(listen, truth["listening"].as_array().unwrap().len(), "listeners");
    for fam in ["ipv4", "ipv6"] {
        for (k, want) in truth["tcp_by_family"][fam].as_object().unwrap() {
            assert_eq!(v["tcp_stats"][fam][k].as_u64(), want.as_u64(), "{fam} {k}");
        }
    }
    if let Some(conns) = truth["connections"].as_array() {
        let mut got: Vec<(String, String, String, String)> = v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["state"] != "LISTEN")
            .map(|c| {
                let f = |k: &str| c[k].as_str().unwrap().to_string();
                (f("proto"), f("local"), f("foreign"), f("state"))
            })
            .collect();
        let mut want: Vec<(String, String, String, String)> = conns
            .iter()
            .map(|c| {
                let f = |k: &str| c[k].as_str().unwrap().to_string();
                (f("proto"), f("local"), f("foreign"), f("state"))
            })
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "connection rows");
    }
}

#[test]
fn server_view_matches_generator_truth() {
    let (pcap, truth) =
        generate("truth", &["--flows", "3000", "--concurrency", "300", "--seed", "11", "--retrans", "0.03"]);
    check_server_view(&pcap, &truth, "2");
}

#[test]
fn header_only_capture_matches_truth() {
    let (pcap, truth) = generate(
        "snap",
        &["--flows", "2000", "--concurrency", "500", "--seed", "5", "--snaplen", "96", "--v6-ratio", "0.5"],
    );
    check_server_view(&pcap, &truth, "3");
}

#[test]
fn shipped_fixture_matches_its_truth() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("synth-small.truth.json")).unwrap()).unwrap();
    check_server_view(&dir.join("synth-small.pcap"), &truth, "1");
}

#[test]
fn output_is_identical_for_one_and_many_workers() {
    // Thousands of flows, every host's views (--top 0): any dependence on sharding shows up here.
    let (pcap, _) =
        generate("workers", &["--flows", "6000", "--concurrency", "2000", "--seed", "3", "--v6-ratio", "0.4"]);
    let one = wirestat(&pcap, &["-a", "-s", "--format", "json", "--workers", "1", "--top", "0"]);
    let rows: usize =
        one.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["connections"].as_array().unwrap().len()).sum();
    assert!(one.lines().count() > 10 && rows > 2000, "{} host views, {rows} rows", one.lines().count());
    for n in ["2", "5", "8"] {
        let many = wirestat(&pcap, &["-a", "-s", "--format", "json", "--workers", n, "--top", "0"]);
        assert!(one == many, "output differs between 1 and {n} workers");
        // The busiest hosts are picked by the workers together: the same whatever their number.
        let top1 = wirestat(&pcap, &["-a", "-s", "--format", "json", "--workers", "1", "--top", "7"]);
        let top = wirestat(&pcap, &["-a", "-s", "--format", "json", "--workers", n, "--top", "7"]);
        assert!(top1 == top, "the busiest hosts differ between 1 and {n} workers");
    }
    let text1 = wirestat(&pcap, &["-a", "-s", "--workers", "1"]);
    let text4 = wirestat(&pcap, &["-a", "-s", "--workers", "4"]);
    assert_eq!(text1, text4);
}

#[test]
fn max_flows_bounds_the_table_and_counts_evictions() {
    // A flood of half-open connections (SYNs nobody answers) against a small table.
    let (pcap, truth) =
        generate("flood", &["--flows", "4000", "--concurrency", "4000", "--mix", "unanswered=1", "--seed", "9"]);
    assert_eq!(truth["flows_by_outcome"]["unanswered"].as_u64(), Some(4000));
    let out = Command::new(env!("CARGO_BIN_EXE_wirestat"))
        .arg("-r")
        .arg(&pcap)
        .args(["--max-flows", "500", "--workers", "2", "--format", "json", "-a"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let line = stderr.lines().find(|l| l.ends_with(" flows evicted")).expect("an eviction report on stderr");
    let n: u64 = line.trim_start_matches("wirestat: ").split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 3500, "{line}");
    let first: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["capture"]["flows_evicted"].as_u64(), Some(n));
    assert!(first["capture"]["flows_tracked"].as_u64().unwrap() <= 500);
    // Without the bound nothing is evicted and every attempt is still SYN_SENT.
    let all = wirestat(&pcap, &["--format", "json", "--top", "0"]);
    let rows: usize =
        all.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["connections"].as_array().unwrap().len()).sum();
    assert_eq!(rows, 4000);
}

#[test]
fn no_progress_line_when_stderr_is_not_a_terminal() {
    // The progress line is for people watching a terminal; piped, a clean run says nothing on stderr.
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/synth-small.pcap");
    let out =
        Command::new(env!("CARGO_BIN_EXE_wirestat")).arg("-r").arg(&pcap).args(["-a", "-n", "-s"]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.is_empty());
}

#[test]
fn idle_timeout_forgets_quiet_connections_only_when_asked() {
    // Connections that stay open, spread over ~100 s of capture time.
    let (pcap, truth) = generate(
        "idle",
        &["--flows", "300", "--concurrency", "300", "--mix", "open=1", "--duration-hint", "100", "--seed", "4"],
    );
    let open = truth["server_state_counts"]["ESTABLISHED"].as_u64().unwrap();
    let rows = |args: &[&str]| -> (u64, u64) {
        let mut a = vec!["--host", "10.0.0.1", "--host", "fd00::1", "--format", "json"];
        a.extend_from_slice(args);
        let v: Value = serde_json::from_str(&wirestat(&pcap, &a)).unwrap();
        let n = v["connections"].as_array().unwrap().iter().filter(|c| c["state"] == "ESTABLISHED").count();
        (n as u64, v["capture"]["flows_idle_expired"].as_u64().unwrap())
    };
    // By default an idle ESTABLISHED connection stays, as it does on the host.
    assert_eq!(rows(&[]), (open, 0));
    // With a short idle timeout the quiet ones are forgotten, and counted.
    let (left, expired) = rows(&["--idle-timeout", "5"]);
    // (A forgotten connection that speaks again is picked up mid-stream, so one
    // connection can expire more than once.)
    assert!(expired > 0 && left < open, "left {left} of {open}, expired {expired}");
}

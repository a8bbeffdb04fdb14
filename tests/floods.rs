//! Many hosts and SYN floods: one memory bound for everything (`--max-flows`),
//! the flooded server's counters exact whatever was evicted, and views of the
//! busiest hosts only (`--top`), in text and JSON. Captures come from
//! `wirestat-synth` (`--flood` adds spoofed SYNs, each from a source of its
//! own, to 10.0.0.1:80), small enough for CI.

mod common;

use common::tmp::TestDir;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn generate(dir: &TestDir, name: &str, args: &[&str]) -> (PathBuf, Value) {
    let (pcap, truth) = (dir.file(&format!("{name}.pcap")), dir.file(&format!("{name}.json")));
    let t = common::synth::generate(&pcap, &truth, args);
    (pcap, t)
}

fn wirestat(pcap: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_wirestat")).arg("-r").arg(pcap).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json_lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The figure before `what` on a stderr line (`wirestat: N what`).
fn reported(o: &Output, what: &str) -> Option<u64> {
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err.lines().find(|l| l.contains(what))?;
    line.trim_start_matches("wirestat: ").split(' ').next()?.parse().ok()
}

fn capture(v: &Value, key: &str) -> u64 {
    v["capture"][key].as_u64().unwrap_or_else(|| panic!("capture.{key} in {}", v["capture"]))
}

/// 100,000 spoofed SYNs to the server among 300 ordinary connections.
fn flood(dir: &TestDir) -> (PathBuf, Value) {
    let (pcap, truth) = generate(
        dir,
        "flood",
        &["--flows", "300", "--concurrency", "100", "--flood", "100000", "--snaplen", "96", "--seed", "5"],
    );
    assert_eq!(truth["flood_syns"], 100_000);
    (pcap, truth)
}

#[test]
fn a_flood_stays_within_max_flows_and_the_flooded_servers_counters_stay_exact() {
    let dir = TestDir::new("flood-bound");
    let (pcap, truth) = flood(&dir);
    let want = &truth["tcp_by_family"]["ipv4"];
    for host in [true, false] {
        let mut args = vec!["--max-flows", "2000", "--workers", "2", "-a", "-s", "--format", "json"];
        if host {
            args.extend(["--host", "10.0.0.1"]);
        }
        let o = wirestat(&pcap, &args);
        let views = json_lines(&o);
        let server = views.iter().find(|v| v["host"][0] == "10.0.0.1").expect("the flooded server is shown");
        // Every segment counter exactly, Segments Received (100,000 SYNs and the rest) first.
        let got = &server["tcp_stats"]["ipv4"];
        assert_eq!(got["segments_received"], want["segments_received"], "--host {host}");
        for k in ["segments_sent", "segments_retransmitted", "active_opens", "reset_connections", "current_connections"]
        {
            assert_eq!(got[k], want[k], "{k}, --host {host}");
        }
        // A legitimate request socket evicted before its handshake's last ACK
        // loses its Passive Open (the ACK then opens an unknown connection);
        // the flood's own sockets are evicted first, so at most a few are.
        let (p, w) = (got["passive_opens"].as_u64().unwrap(), want["passive_opens"].as_u64().unwrap());
        assert!(p <= w && p + w / 50 >= w, "passive opens {p} of {w}, --host {host}");
        // The bound held, and what it dropped is counted, on stderr and in JSON alike.
        let c = &views[0];
        let evicted = reported(&o, " flows evicted").expect("evictions on stderr");
        assert!(evicted >= 98_000, "{evicted}");
        assert_eq!(capture(c, "flows_evicted"), evicted);
        assert!(capture(c, "flows_tracked") <= 2000);
        if host {
            // Only the --host address keeps counters: nothing to drop, no host left out.
            assert_eq!(capture(c, "host_entries_dropped"), 0);
            assert!(c["capture"].get("hosts_omitted").is_none());
            assert_eq!(views.len(), 1);
        } else {
            // Each spoofed source would keep an entry: the bound keeps the busiest.
            let dropped = reported(&o, "per-address entries not kept").expect("dropped entries on stderr");
            assert!(dropped > 80_000, "{dropped}");
            assert_eq!(capture(c, "host_entries_dropped"), dropped);
            assert_eq!(views.len(), 10, "the 10 busiest hosts by default");
            let (omitted, syn_only) = (capture(c, "hosts_omitted"), capture(c, "hosts_omitted_syn_only"));
            assert!(omitted > 1000 && syn_only * 2 > omitted, "{omitted} omitted, {syn_only} SYN-only");
        }
    }
}

/// Half of a flood over IPv6: both families of the server stay exact under
/// the same bound (each family has its own table; eviction takes from both).
#[test]
fn a_flood_over_both_families_keeps_both_families_counters_exact() {
    let dir = TestDir::new("flood-v6");
    let (pcap, truth) = generate(
        &dir,
        "flood6",
        &["--flows", "300", "--concurrency", "100", "--flood", "40000", "--flood-v6-ratio", "0.5", "--seed", "6"],
    );
    assert_eq!(truth["flood_syns"], 40_000);
    let args =
        ["--max-flows", "2000", "--workers", "2", "-s", "--format", "json", "--host", "10.0.0.1", "--host", "fd00::1"];
    let o = wirestat(&pcap, &args);
    let view = json_lines(&o).pop().expect("one view");
    for fam in ["ipv4", "ipv6"] {
        let (got, want) = (&view["tcp_stats"][fam], &truth["tcp_by_family"][fam]);
        // Each family received about half of the flood.
        assert!(want["segments_received"].as_u64().unwrap() > 15_000, "{fam}: {want}");
        for k in ["segments_received", "segments_sent", "segments_retransmitted", "active_opens", "reset_connections"] {
            assert_eq!(got[k], want[k], "{fam} {k}");
        }
    }
    let evicted = reported(&o, " flows evicted").expect("evictions on stderr");
    assert!(evicted >= 37_000, "{evicted}");
    assert!(capture(&view, "flows_tracked") <= 2000);
}

#[test]
fn the_bound_on_host_entries_does_not_change_a_flood_free_capture() {
    // Without a flood the per-address entries fit: the same views as with every host.
    let dir = TestDir::new("flood-free");
    let (pcap, _) = generate(&dir, "plain", &["--flows", "3000", "--concurrency", "500", "--seed", "6"]);
    let all = wirestat(&pcap, &["-a", "-s", "--top", "0", "--format", "json"]);
    let top = wirestat(&pcap, &["-a", "-s", "--top", "4", "--format", "json", "--workers", "3"]);
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("capture");
        v
    };
    let (all, top) = (json_lines(&all), json_lines(&top));
    assert_eq!(top.len(), 4);
    assert_eq!(top.iter().map(strip).collect::<Vec<_>>(), all[..4].iter().map(strip).collect::<Vec<_>>());
    assert_eq!(capture(&top[0], "hosts_omitted"), all.len() as u64 - 4);
    assert_eq!(capture(&top[0], "host_entries_dropped"), 0);
    assert!(all[0]["capture"].get("hosts_omitted").is_none(), "--top 0 leaves nothing out");
}

#[test]
fn top_in_text_shows_the_busiest_and_counts_the_rest_in_one_line() {
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/synth-small.pcap");
    let all = String::from_utf8(wirestat(&pcap, &["-a", "-s", "--top", "0"]).stdout).unwrap();
    let hosts = all.lines().filter(|l| l.starts_with("Host ")).count();
    assert!(hosts > 3, "{hosts}");
    let two = String::from_utf8(wirestat(&pcap, &["-a", "-s", "--top", "2"]).stdout).unwrap();
    let shown: Vec<&str> = two.lines().filter(|l| l.starts_with("Host ")).collect();
    let first: Vec<&str> = all.lines().filter(|l| l.starts_with("Host ")).take(2).collect();
    assert_eq!(shown, first);
    let last = two.lines().last().unwrap();
    assert_eq!(
        last,
        format!("{} more hosts not shown: --top 0 shows every host, --host ADDR one host in full", hosts - 2)
    );
    // The default is 10; --top 0 has no such line.
    let default = String::from_utf8(wirestat(&pcap, &["-a", "-s"]).stdout).unwrap();
    assert_eq!(default.lines().filter(|l| l.starts_with("Host ")).count(), hosts.min(10));
    assert!(!all.contains("not shown"));
    // With --host the contract is unchanged: one view, no count.
    let one = String::from_utf8(wirestat(&pcap, &["-a", "-s", "--host", "10.0.0.1", "--top", "1"]).stdout).unwrap();
    assert!(!one.contains("not shown") && !one.contains("Host "), "{one}");
}

#[test]
fn top_text_says_when_the_rest_only_sent_unanswered_syns() {
    let dir = TestDir::new("flood-text");
    let (pcap, _) = flood(&dir);
    let o = wirestat(&pcap, &["--max-flows", "2000", "-a", "-s", "--top", "3"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().filter(|l| l.starts_with("Host ")).count(), 3);
    assert!(out.lines().any(|l| l == "Host 10.0.0.1"), "the flooded server is among the busiest");
    let last = out.lines().last().unwrap();
    assert!(last.contains("more hosts not shown") && last.contains("only sent SYNs nobody answered"), "{last}");
    assert!(last.contains("--host ADDR") && last.contains("wirestat audit"), "{last}");
    assert!(last.contains(" per-address entries not kept within --max-flows"), "{last}");
}

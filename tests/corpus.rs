//! Public real-world traces (fixtures/corpus/, from Zeek's and Suricata's test
//! suites) checked against tshark's analysis of the same files: every TCP
//! frame tshark saw, wirestat decodes, except where a documented difference
//! says who is right and why. Every trace also replays without an error and
//! gives the same views with 1 and 3 workers. And every endpoint of every TCP
//! connection gets the row the wire proves (fixtures/corpus/expected_rows.tsv),
//! except the differences of the current build listed, with their causes, in
//! fixtures/corpus/known_row_differences.tsv.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Traces where wirestat's TCP frame count differs from tshark's, on purpose.
const EXPECTED_DIFFERENCES: [(&str, u64, &str); 3] = [
    ("ipv4-fragmented-4.pcap", 2, "tshark reassembles IP fragments; wirestat counts fragments, not tracked"),
    ("ipv4-fragmented-syn.pcap", 0, "the only TCP segment is in IP fragments"),
    ("reassembly.pcap", 112, "5 frames' IP length runs past the frame: dropped like Zeek (truncated_IP_len) and Linux"),
];

/// Traces wirestat cannot read to their end: it exits 1 on them (the views
/// of what was read are printed), and 0 on every other. (None since its own
/// pcapng reader takes the files libpcap refuses.)
const READ_IN_PART: [&str; 0] = [];

fn corpus() -> Vec<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus");
    let mut out = Vec::new();
    for dir in ["zeek", "suricata"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let tsv = e.unwrap().path();
            let Some(name) = tsv.to_str().and_then(|s| s.strip_suffix(".tshark.tsv")) else { continue };
            let pcap = [".pcap", ".pcapng"].iter().map(|x| PathBuf::from(format!("{name}{x}"))).find(|p| p.exists());
            out.push((pcap.unwrap_or_else(|| panic!("no capture for {}", tsv.display())), tsv));
        }
    }
    out.sort();
    out
}

/// TCP frames tshark counted in its per-stream table.
fn tshark_tcp_frames(tsv: &Path) -> u64 {
    let text = std::fs::read_to_string(tsv).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (ab, ba) = (col("pkts_ab"), col("pkts_ba"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            f[ab].parse::<u64>().unwrap() + f[ba].parse::<u64>().unwrap()
        })
        .sum()
}

/// Runs wirestat on `pcap`: stdout, stderr, and whether it exited as it
/// should (1 for the traces read in part, 0 for the rest).
fn wirestat(pcap: &Path, args: &[&str]) -> (String, String, bool) {
    let o = Command::new(env!("CARGO_BIN_EXE_wirestat")).arg("-r").arg(pcap).args(args).output().unwrap();
    let in_part = READ_IN_PART.iter().any(|n| pcap.ends_with(n));
    let ok = o.status.code() == Some(if in_part { 1 } else { 0 });
    (String::from_utf8(o.stdout).unwrap(), String::from_utf8(o.stderr).unwrap(), ok)
}

#[test]
fn every_tcp_frame_tshark_sees_is_decoded() {
    let traces = corpus();
    assert_eq!(traces.len(), 87);
    let mut differ = Vec::new();
    for (pcap, tsv) in &traces {
        let name = pcap.file_name().unwrap().to_str().unwrap();
        // A host absent from every trace: exactly one view, carrying the capture's health.
        let (out, err, ok) = wirestat(pcap, &["--host", "192.0.2.254", "--format", "json"]);
        assert!(ok, "{name}: {err}");
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        let got = v["capture"]["tcp_segments"].as_u64().unwrap();
        let want = tshark_tcp_frames(tsv);
        match EXPECTED_DIFFERENCES.iter().find(|d| d.0 == name) {
            Some((_, expect, why)) => assert_eq!(got, *expect, "{name} (tshark {want}; {why})"),
            None if got != want => differ.push(format!("{name}: tshark {want}, wirestat {got}")),
            None => {}
        }
    }
    assert!(differ.is_empty(), "TCP frame counts differ from tshark:\n  {}", differ.join("\n  "));
}

#[test]
fn every_trace_gives_the_same_views_with_1_and_3_workers() {
    for (pcap, _) in corpus() {
        let p = pcap.to_str().unwrap();
        let run = |w: &str| {
            let (out, err, ok) = wirestat(&pcap, &["-a", "-n", "-s", "--format", "json", "--workers", w]);
            assert!(ok && !err.contains("panicked"), "{p}: {err}");
            // The health figures name the workers' own bookkeeping; the views must agree.
            out.lines().map(|l| l.split(",\"capture\"").next().unwrap().to_string()).collect::<Vec<_>>()
        };
        assert_eq!(run("1"), run("3"), "{p}");
    }
}

/// Why a known row differs today, and whether the rules the team decided
/// (fixtures/README.md, "Public traces") fix it once they are built.
const CAUSES: [(&str, bool, &str); 10] = [
    ("one-sided", true, "one direction captured: infer what the seen side proves"),
    ("time-jump", true, "a forward jump of more than a day that later frames confirm is real time"),
    ("route0-hoa", true, "IPv6 type-0 routing header / Home Address: the address the TCP checksum covers"),
    ("paws", true, "a RST or FIN that Linux's timestamp check (PAWS) rejects in SYN_SENT changes nothing"),
    ("fast-open", true, "a SYN with data whose SYN-ACK acknowledges the data completes the handshake"),
    ("two-snaplens", true, "a pcapng whose interfaces differ in snaplen is read"),
    ("ip-fragments", false, "TCP inside IP fragments is not tracked until reassembly exists"),
    ("fin-give-up", true, "an orphan holding an unacknowledged FIN is gone within 204.4 s (tcp_orphan_retries)"),
    ("handshake-window", true, "a handshake ACK whose sequence number is outside the window is dropped"),
    ("unacked-fin", true, "a FIN that the receiver's later segments never acknowledge did not arrive"),
];

/// A row the current build gets wrong: what it prints instead, and why.
struct Known {
    now: String,
    causes: Vec<String>,
}

/// Data rows of one of fixtures/corpus/*.tsv: `#` comments, a header, then tab-separated fields.
fn tsv(name: &str) -> Vec<BTreeMap<String, String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), header.len(), "{name}: {l}");
            header.iter().zip(f).map(|(h, v)| (h.to_string(), v.to_string())).collect()
        })
        .collect()
}

type Row = (String, String, String);

/// Every row wirestat prints for a trace, keyed by (trace, local, foreign).
fn wirestat_rows(pcap: &Path, top: bool) -> BTreeMap<Row, String> {
    let name = pcap.file_name().unwrap().to_str().unwrap();
    let mut args = vec!["-a", "-n", "--format", "json"];
    if top {
        args.extend(["--top", "0"]);
    }
    let (out, err, ok) = wirestat(pcap, &args);
    assert!(ok, "{name}: {err}");
    let mut rows = BTreeMap::new();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
        for c in v["connections"].as_array().unwrap() {
            let key = (name.to_string(), c["local"].as_str().unwrap().into(), c["foreign"].as_str().unwrap().into());
            let state = c["state"].as_str().unwrap().to_string();
            assert!(rows.insert(key.clone(), state).is_none(), "{name}: row {key:?} printed twice");
        }
    }
    rows
}

#[test]
fn every_connection_gets_the_rows_the_wire_proves() {
    let mut want: BTreeMap<Row, String> = BTreeMap::new();
    let mut conns: BTreeMap<(String, String), Vec<Row>> = BTreeMap::new();
    for r in tsv("expected_rows.tsv") {
        let key = (r["trace"].clone(), r["local"].clone(), r["foreign"].clone());
        assert!(!r["reason"].is_empty(), "{key:?}: no reason");
        assert!(want.insert(key.clone(), r["state"].clone()).is_none(), "{key:?} expected twice");
        if r["conn"] != "L" {
            conns.entry((r["trace"].clone(), r["conn"].clone())).or_default().push(key);
        }
    }
    let mut known: BTreeMap<Row, Known> = BTreeMap::new();
    for r in tsv("known_row_differences.tsv") {
        let key = (r["trace"].clone(), r["local"].clone(), r["foreign"].clone());
        let causes: Vec<String> = r["causes"].split('+').map(String::from).collect();
        for c in &causes {
            assert!(CAUSES.iter().any(|k| k.0 == c), "{key:?}: unknown cause {c}");
        }
        let expected = want.get(&key).map_or("-", |s| s.as_str());
        assert_eq!(r["expected"], expected, "{key:?}: known_row_differences.tsv disagrees with expected_rows.tsv");
        let k = Known { now: r["now"].clone(), causes };
        assert!(known.insert(key.clone(), k).is_none(), "{key:?} listed twice");
    }

    let traces = corpus();
    let names: BTreeSet<String> =
        traces.iter().map(|(p, _)| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
    let covered: BTreeSet<String> = want.keys().map(|k| k.0.clone()).collect();
    assert_eq!(names, covered, "every trace, and only those, has expected rows");

    // `--top N` limits the hosts shown without --host; 0 asks for all of them.
    let help = Command::new(env!("CARGO_BIN_EXE_wirestat")).arg("--help").output().unwrap();
    let top = String::from_utf8_lossy(&help.stdout).contains("--top");
    let mut got = BTreeMap::new();
    for (pcap, _) in &traces {
        got.extend(wirestat_rows(pcap, top));
    }

    let mut failures = Vec::new();
    let mut differ = BTreeSet::new();
    let keys: BTreeSet<&Row> = want.keys().chain(got.keys()).chain(known.keys()).collect();
    for key in keys {
        let w = want.get(key).map_or("-", |s| s.as_str());
        let g = got.get(key).map_or("-", |s| s.as_str());
        let row = format!("{} {} -> {}", key.0, key.1, key.2);
        match known.get(key) {
            None if w == g => {}
            None if !want.contains_key(key) => {
                failures.push(format!("{row}: extra row {g} that no expectation mentions"))
            }
            None => failures.push(format!("{row}: expected {w}, wirestat prints {g}")),
            Some(k) if w == g => failures.push(format!(
                "{row}: now correct ({w}), remove from KNOWN (known_row_differences.tsv, {})",
                k.causes.join("+")
            )),
            Some(k) if k.now != g => failures.push(format!(
                "{row}: known as {} ({}), wirestat now prints {g}; expected {w}",
                k.now,
                k.causes.join("+")
            )),
            Some(_) => {
                differ.insert(key.clone());
            }
        }
    }

    // How far the build is from the expectations, and how much of that the decided rules
    // close (shown with --nocapture).
    let matching = conns.values().filter(|rows| rows.iter().all(|r| !differ.contains(r))).count();
    eprintln!(
        "{} connections in {} traces, {matching} with both endpoints' rows right today",
        conns.len(),
        names.len()
    );
    let mut by_cause: BTreeMap<String, usize> = BTreeMap::new();
    for key in &differ {
        *by_cause.entry(known[key].causes.join("+")).or_default() += 1;
    }
    for (cause, n) in &by_cause {
        eprintln!("  {n:3} known rows: {cause}");
    }
    let fixed =
        differ.iter().filter(|k| known[*k].causes.iter().all(|c| CAUSES.iter().any(|x| x.0 == c && x.1))).count();
    eprintln!("  {fixed} of {} known rows are fixed by the team's decided rules", differ.len());

    assert!(failures.is_empty(), "{} row differences:\n  {}", failures.len(), failures.join("\n  "));
}

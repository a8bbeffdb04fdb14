//! Bad input gets a clear error: a missing or unreadable file, a file that is
//! not a capture, a bad filter or argument is one line on stderr that says
//! what is wrong and what to do, and a non-zero exit; a truncated, corrupt or
//! hostile capture never panics — what could not be decoded is counted and
//! reported, and the rest is still read.

mod common;

use common::cli::{
    capture_category_sum, capture_count, connection_rows, json_for_hosts, run_wirestat, stderr_of, stdout_of,
};
use common::craft::*;
use common::pcapfile::{
    Rec, pcap_bytes, pcap_global_header, pcap_record_header, pcap_record_offsets, pcapng_bytes, recs_1ms_apart,
    write_pcap,
};
use common::tmp::TestDir;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/oracle/client-s1/capture.pcap");
const FIXTURE_HOST: &str = "10.201.0.1";

/// Asserts a failed run with exactly one line on stderr, starting with
/// `wirestat:` and containing every one of `needles`; returns that line.
fn assert_one_line_error(o: &Output, needles: &[&str]) -> String {
    let err = stderr_of(o);
    assert!(!o.status.success(), "expected failure, got {:?}; stderr: {err}", o.status);
    assert_ne!(o.status.code(), Some(101), "a panic is not an error report: {err}");
    assert!(o.status.code().is_some(), "killed by a signal: {err}");
    assert_eq!(err.lines().count(), 1, "exactly one line on stderr, got: {err:?}");
    assert!(err.starts_with("wirestat: "), "{err:?}");
    for n in needles {
        assert!(err.contains(n), "stderr should mention {n:?}: {err:?}");
    }
    assert!(stdout_of(o).is_empty(), "nothing on stdout: {}", stdout_of(o));
    err
}

fn run_file(path: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["-r", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_wirestat(&args)
}

// ---------------------------------------------------------------------------
// Files that cannot be read at all
// ---------------------------------------------------------------------------

#[test]
fn missing_file() {
    let dir = TestDir::new("missing");
    let p = dir.file("no-such-capture.pcap");
    let o = run_file(&p, &["--format", "json"]);
    assert_one_line_error(&o, &["no-such-capture.pcap", "no such file", "check the path"]);
}

#[test]
fn text_file_is_not_a_capture() {
    let dir = TestDir::new("text");
    let p = dir.file("notes.txt");
    std::fs::write(&p, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\nthis is not a capture at all\n").unwrap();
    let o = run_file(&p, &[]);
    assert_one_line_error(&o, &["notes.txt", "not a pcap or pcapng", "tcpdump -w"]);
}

#[test]
fn empty_and_short_files() {
    let dir = TestDir::new("empty");
    let p = dir.file("empty.pcap");
    std::fs::write(&p, b"").unwrap();
    assert_one_line_error(&run_file(&p, &[]), &["empty.pcap", "not a pcap or pcapng"]);
    // A pcap magic number and nothing else.
    let p = dir.file("magic-only.pcap");
    std::fs::write(&p, &pcap_global_header(1, 65535)[..6]).unwrap();
    assert_one_line_error(&run_file(&p, &[]), &["magic-only.pcap", "not a pcap or pcapng"]);
}

#[test]
fn directory_is_not_a_capture() {
    let dir = TestDir::new("dir");
    let sub = dir.file("captures.d");
    std::fs::create_dir(&sub).unwrap();
    let o = run_file(&sub, &[]);
    assert_one_line_error(&o, &["captures.d", "directory"]);
}

#[test]
fn corrupt_file_headers_are_not_captures() {
    let dir = TestDir::new("badheader");
    // Unsupported pcap version.
    let mut h = pcap_global_header(1, 65535);
    h[4..8].copy_from_slice(&[9, 0, 9, 0]);
    let p = dir.file("version.pcap");
    std::fs::write(&p, &h).unwrap();
    let err = assert_one_line_error(&run_file(&p, &[]), &["version.pcap", "not a pcap or pcapng"]);
    assert!(!err.contains("check the path"), "the path is fine, the contents are not: {err}");
    // pcapng with an unsupported version, and one whose first packet has no interface.
    let ng = pcapng_bytes(1, 65535, &recs_1ms_apart(vec![eth_with(0x0806, &[0; 28])]));
    let mut bad = ng.clone();
    bad[12] = 9;
    let p = dir.file("version.pcapng");
    std::fs::write(&p, &bad).unwrap();
    assert_one_line_error(&run_file(&p, &[]), &["version.pcapng", "not a pcap or pcapng"]);
    let shb_len = 28;
    let idb_len = 20;
    let mut no_idb = ng[..shb_len].to_vec();
    no_idb.extend_from_slice(&ng[shb_len + idb_len..]);
    let p = dir.file("no-idb.pcapng");
    std::fs::write(&p, &no_idb).unwrap();
    assert_one_line_error(&run_file(&p, &[]), &["no-idb.pcapng", "not a pcap or pcapng"]);
}

#[test]
fn one_bad_file_among_several_fails_before_reading() {
    let dir = TestDir::new("multi-missing");
    let missing = dir.file("gone.pcap");
    let o = run_wirestat(&["-r", FIXTURE, "-r", missing.to_str().unwrap(), "--format", "json"]);
    assert_one_line_error(&o, &["gone.pcap", "no such file"]);
}

// ---------------------------------------------------------------------------
// Bad arguments
// ---------------------------------------------------------------------------

#[test]
fn standard_input_twice_is_a_usage_error() {
    let o = run_wirestat(&["-r", "-", "-r", "-"]);
    assert_one_line_error(&o, &["-r -", "once"]);
}

#[test]
fn bad_bpf_filter() {
    let o = run_wirestat(&["-r", FIXTURE, "-f", "tcp port", "--format", "json"]);
    assert_one_line_error(&o, &["filter", "tcp port", "pcap-filter"]);
    let o = run_wirestat(&["-r", FIXTURE, "-f", "host 999.1.2.3"]);
    assert_one_line_error(&o, &["filter", "999.1.2.3"]);
}

#[test]
fn good_bpf_filter_is_applied() {
    let (all, _) = json_for_hosts(Path::new(FIXTURE), &[FIXTURE_HOST]);
    let o = run_wirestat(&["-r", FIXTURE, "-f", "arp", "--format", "json", "--host", FIXTURE_HOST]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    let v: Value = serde_json::from_str(stdout_of(&o).trim()).unwrap();
    assert_eq!(capture_count(&v, "frames"), capture_count(&all, "non_ip"));
    assert_eq!(capture_count(&v, "tcp_segments"), 0);
}

#[test]
fn unsupported_protocol_is_a_usage_error() {
    let o = run_wirestat(&["-r", FIXTURE, "-p", "UDP"]);
    let err = assert_one_line_error(&o, &["-p UDP", "TCP"]);
    assert!(err.contains("TCPv6"), "says what -p accepts: {err}");
}

#[test]
fn bad_host_address_is_a_clap_error() {
    let o = run_wirestat(&["-r", FIXTURE, "--host", "notanaddress"]);
    let err = stderr_of(&o);
    assert!(!o.status.success());
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("notanaddress") && err.contains("--host"), "{err}");
    assert!(stdout_of(&o).is_empty());
}

#[test]
fn bad_interval_and_timeout_are_usage_errors() {
    let cases: [(&[&str], &[&str]); 8] = [
        (&["0"], &["INTERVAL 0", "positive number of seconds"]),
        (&["-5"], &["INTERVAL -5", "positive number of seconds"]),
        (&["1e-9"], &["INTERVAL", "shortest is"]),
        (&["1e12"], &["INTERVAL", "at most 1000000000 seconds"]),
        (&["--idle-timeout", "0"], &["--idle-timeout 0", "positive number of seconds"]),
        (&["--idle-timeout", "NaN"], &["--idle-timeout NaN", "positive number of seconds"]),
        (&["--idle-timeout", "inf"], &["--idle-timeout inf", "positive number of seconds"]),
        // Past what a Duration holds: was a panic.
        (&["--idle-timeout", "2e19"], &["--idle-timeout", "at most 1000000000 seconds"]),
    ];
    for (args, needles) in cases {
        let mut a = vec!["-r", FIXTURE, "--format", "json"];
        a.extend(args.iter());
        let o = run_wirestat(&a);
        assert_one_line_error(&o, needles);
        assert_eq!(o.status.code(), Some(2), "{args:?}: a usage error");
    }
}

// ---------------------------------------------------------------------------
// Captures cut off or corrupt part way
// ---------------------------------------------------------------------------

/// Runs wirestat on `path` for the fixture host, asserting exit 0 and one
/// JSON document.
fn json_ok(path: &Path) -> (Value, String) {
    json_for_hosts(path, &[FIXTURE_HOST])
}

/// Runs wirestat on a capture that cannot be read to its end, for `hosts`:
/// asserts exit status 1 (the views of what was read are still printed) and
/// one JSON document; returns it and stderr.
fn json_partly_read(path: &Path, hosts: &[&str]) -> (Value, String) {
    let mut args = vec!["-r", path.to_str().unwrap(), "--format", "json", "-a", "-s"];
    for h in hosts {
        args.extend(["--host", h]);
    }
    let o = run_wirestat(&args);
    let (out, err) = (stdout_of(&o), stderr_of(&o));
    assert_eq!(o.status.code(), Some(1), "{args:?}: a capture read in part exits 1; stderr: {err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    (serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}")), err)
}

/// stderr without the line that says why the views are empty.
fn without_empty_note(err: &str) -> String {
    err.lines().filter(|l| !l.ends_with("nothing to show")).map(|l| format!("{l}\n")).collect()
}

/// The JSON document without `capture.read_errors`, for comparing a cut-off
/// capture with the clean prefix of it.
fn without_read_errors(mut v: Value) -> Value {
    v["capture"].as_object_mut().unwrap().remove("read_errors");
    v
}

#[test]
fn capture_cut_off_mid_record() {
    let dir = TestDir::new("cutoff");
    let full = std::fs::read(FIXTURE).unwrap();
    let recs = pcap_record_offsets(&full);
    assert!(recs.len() > 200, "fixture has {} records", recs.len());
    for k in [1usize, 150, recs.len() - 1] {
        let (at, caplen) = recs[k];
        assert!(caplen > 2);
        // In the middle of record k's data, in the middle of its header, and
        // cleanly after record k-1 (the reference).
        let cut_data = &full[..at + 16 + caplen / 2];
        let cut_header = &full[..at + 7];
        let clean = &full[..at];
        let p_clean = dir.file(&format!("clean-{k}.pcap"));
        std::fs::write(&p_clean, clean).unwrap();
        let (reference, ref_err) = json_ok(&p_clean);
        // The first frame is not TCP: a capture of it alone has nothing to show, and says so.
        let ref_err = without_empty_note(&ref_err);
        assert!(ref_err.is_empty(), "{ref_err}");
        assert_eq!(capture_count(&reference, "frames"), k as u64);

        for (what, bytes) in [("data", cut_data), ("header", cut_header)] {
            let name = format!("cut-{what}-{k}.pcap");
            let p = dir.file(&name);
            std::fs::write(&p, bytes).unwrap();
            let (v, err) = json_partly_read(&p, &[FIXTURE_HOST]);
            assert_eq!(capture_count(&v, "frames"), k as u64, "{name}: the frames before the cut");
            assert_eq!(capture_category_sum(&v), k as u64);
            assert_eq!(without_read_errors(v.clone()), without_read_errors(reference.clone()), "{name}");
            let read_errors = v["capture"]["read_errors"].as_array().unwrap();
            assert_eq!(read_errors.len(), 1, "{name}: {read_errors:?}");
            let err = without_empty_note(&err);
            assert_eq!(err.lines().count(), 1, "{name}: one line on stderr: {err:?}");
            assert!(err.starts_with("wirestat: "), "{err}");
            assert!(err.contains(&name) && err.contains("cut off"), "{name}: {err}");
            assert!(err.contains(&format!("after {k} frames")), "{name}: {err}");
        }
    }
}

#[test]
fn cut_off_file_merged_with_a_good_one() {
    let dir = TestDir::new("cutoff-merge");
    let full = std::fs::read(FIXTURE).unwrap();
    let recs = pcap_record_offsets(&full);
    let (at, caplen) = recs[100];
    let p = dir.file("cut.pcap");
    std::fs::write(&p, &full[..at + 16 + caplen - 1]).unwrap();
    let o = run_wirestat(&["-r", p.to_str().unwrap(), "-r", FIXTURE, "--format", "json", "--host", FIXTURE_HOST]);
    assert_eq!(o.status.code(), Some(1), "one of the files was read in part: {}", stderr_of(&o));
    let v: Value = serde_json::from_str(stdout_of(&o).trim()).unwrap();
    assert_eq!(capture_count(&v, "frames"), 100 + recs.len() as u64);
    assert_eq!(capture_category_sum(&v), 100 + recs.len() as u64);
    // The cut file's frames are exact copies of the good file's first 100, at the same times.
    assert_eq!(capture_count(&v, "duplicates"), 100);
    let err = stderr_of(&o);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.contains("cut.pcap") && err.contains("after 100 frames"), "{err}");
    assert!(err.contains("100 duplicate frames dropped"), "{err}");
}

#[test]
fn hostile_record_lengths() {
    let dir = TestDir::new("hostile");
    let good = eth(&tcp_ip(&Seg::new(false, SYN, 1000, 0, 0)));
    let arp = eth_with(0x0806, &[0; 28]);
    // caplen far beyond any snaplen: libpcap refuses the record; the frames
    // before it still count, the rest of the file is unreadable.
    for (name, caplen, orig) in [("huge", 0xffff_fff0u32, 0xffff_fff0u32), ("over-max", 300_000, 300_000)] {
        let mut b = pcap_bytes(1, 65535, &recs_1ms_apart(vec![good.clone(), arp.clone()]));
        b.extend(pcap_record_header(1_700_000_001, 0, caplen, orig));
        b.extend(std::iter::repeat_n(0x41u8, 4096));
        b.extend(pcap_record_header(1_700_000_002, 0, good.len() as u32, good.len() as u32));
        b.extend_from_slice(&good);
        let file = format!("{name}.pcap");
        let p = dir.file(&file);
        std::fs::write(&p, &b).unwrap();
        let (v, err) = json_partly_read(&p, &[V4_CLIENT_STR]);
        assert_eq!(capture_count(&v, "frames"), 2, "{name}");
        assert_eq!(capture_count(&v, "tcp_segments"), 1, "{name}");
        assert_eq!(capture_count(&v, "non_ip"), 1, "{name}");
        assert_eq!(v["tcp_stats"]["ipv4"]["active_opens"], 1);
        assert_eq!(err.lines().count(), 1, "{name}: {err:?}");
        assert!(err.contains(&file) && err.contains("corrupt") && err.contains(&caplen.to_string()), "{err}");
    }
    // caplen above the file's snaplen but sane, caplen above the wire
    // length, zero-length records, a snaplen of 0 or 2^32-1 in the file
    // header: read without complaint, decoded as far as they go.
    let mut b = pcap_global_header(1, 100);
    let big = eth(&tcp_ip(&Seg::new(false, PSH | ACK, 1001, 5001, 400)));
    b.extend(pcap_record_header(1_700_000_000, 0, big.len() as u32, big.len() as u32));
    b.extend_from_slice(&big);
    b.extend(pcap_record_header(1_700_000_000, 1, good.len() as u32, 20));
    b.extend_from_slice(&good);
    b.extend(pcap_record_header(1_700_000_000, 2, 0, 0));
    b.extend(pcap_record_header(1_700_000_000, 3, 0, 1500));
    let p = dir.file("lies.pcap");
    std::fs::write(&p, &b).unwrap();
    let (v, err) = json_for_hosts(&p, &[V4_CLIENT_STR]);
    assert_eq!(capture_count(&v, "frames"), 4);
    assert_eq!(capture_count(&v, "tcp_segments"), 2);
    assert_eq!(capture_count(&v, "undecodable"), 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("2 frames undecodable"), "{err}");
    for snaplen in [0u32, u32::MAX] {
        let p = dir.file(&format!("snaplen-{snaplen}.pcap"));
        write_pcap(&p, 1, snaplen, &recs_1ms_apart(vec![good.clone()]));
        let (v, err) = json_for_hosts(&p, &[V4_CLIENT_STR]);
        assert_eq!(capture_count(&v, "tcp_segments"), 1, "snaplen {snaplen}");
        assert!(err.is_empty(), "{err}");
    }
    // A header with no records.
    let p = dir.file("no-records.pcap");
    std::fs::write(&p, pcap_global_header(1, 65535)).unwrap();
    let (v, err) = json_for_hosts(&p, &[V4_CLIENT_STR]);
    assert_eq!(capture_count(&v, "frames"), 0);
    assert!(connection_rows(&v).is_empty());
    assert_eq!(err, "wirestat: the capture holds no frames: nothing to show\n");
}

#[test]
fn hostile_pcapng_blocks() {
    let dir = TestDir::new("hostile-ng");
    let good = eth(&tcp_ip(&Seg::new(false, SYN, 1000, 0, 0)));
    let ng = pcapng_bytes(1, 65535, &recs_1ms_apart(vec![good.clone(), good.clone()]));
    let first_epb = 28 + 20;
    let second_epb = first_epb + (ng.len() - first_epb) / 2;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // A block length of 4 GiB.
    let mut b = ng.clone();
    b[second_epb + 4..second_epb + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    cases.push(("huge-block", b));
    // A packet captured length beyond its block.
    let mut b = ng.clone();
    b[second_epb + 20..second_epb + 24].copy_from_slice(&5000u32.to_le_bytes());
    cases.push(("caplen-past-block", b));
    // A packet on an interface that was never described.
    let mut b = ng.clone();
    b[second_epb + 8..second_epb + 12].copy_from_slice(&7u32.to_le_bytes());
    cases.push(("no-such-interface", b));
    // Cut off in the second block.
    cases.push(("cut", ng[..ng.len() - 10].to_vec()));
    for (name, bytes) in cases {
        let file = format!("{name}.pcapng");
        let p = dir.file(&file);
        std::fs::write(&p, &bytes).unwrap();
        let (v, err) = json_partly_read(&p, &[V4_CLIENT_STR]);
        assert_eq!(capture_count(&v, "frames"), 1, "{name}");
        assert_eq!(capture_count(&v, "tcp_segments"), 1, "{name}");
        assert_eq!(err.lines().count(), 1, "{name}: {err:?}");
        assert!(err.starts_with("wirestat: ") && err.contains(&file), "{name}: {err}");
    }
}

#[test]
fn hostile_timestamps_with_an_interval() {
    // Seconds past 2038 (negative as libpcap reads them), a fraction past one
    // second: no arithmetic overflow on capture time, with or without INTERVAL.
    let dir = TestDir::new("hostile-ts");
    let good = eth(&tcp_ip(&Seg::new(false, SYN, 1000, 0, 0)));
    for (i, (sec, usec)) in
        [(u32::MAX, 0u32), (u32::MAX - 1, 999_999), (0x8000_0000, u32::MAX), (0, u32::MAX)].into_iter().enumerate()
    {
        let p = dir.file(&format!("ts-{i}.pcap"));
        write_pcap(&p, 1, 65535, &[Rec::new(sec, usec, good.clone())]);
        for interval in ["1", "0.001", "7", "1000000"] {
            let o = run_wirestat(&["-r", p.to_str().unwrap(), "--format", "json", "--host", V4_CLIENT_STR, interval]);
            assert!(o.status.success(), "ts {sec}.{usec} interval {interval}: {}", stderr_of(&o));
            let out = stdout_of(&o);
            for line in out.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                assert!(capture_count(&v, "frames") <= 1);
            }
            let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
            assert_eq!(capture_count(&last, "tcp_segments"), 1);
        }
    }
}

// ---------------------------------------------------------------------------
// Garbage headers: counted exactly
// ---------------------------------------------------------------------------

fn set_ipv4_total_len(ip: &mut [u8], total: u16) {
    ip[2..4].copy_from_slice(&total.to_be_bytes());
}

#[test]
fn garbage_headers_are_counted() {
    let dir = TestDir::new("garbage");
    let syn = tcp_ip(&Seg::new(false, SYN, 1000, 0, 0));
    let ack = tcp_ip(&Seg { syn_opts: false, ..Seg::new(false, ACK, 1001, 1, 0) });
    let v6 = tcp_ip(&Seg::new(true, SYN, 1000, 0, 0));
    let (ok, bad, non_ip, other, frag) = ("tcp_segments", "undecodable", "non_ip", "other_protocols", "fragments");

    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![("valid SYN", eth(&syn), ok)];
    // Fixed "random" bytes after an IPv4 ethertype: version nibble 0xa.
    cases.push(("random bytes as IPv4", eth_with(0x0800, &[0xa7, 0x13, 0x5c, 0xe2, 0x09, 0x4f, 0x88, 0x31]), bad));
    let mut p = syn.clone();
    p[0] = 0x43;
    cases.push(("IPv4 IHL 3", eth(&p), bad));
    let mut p = syn.clone();
    set_ipv4_total_len(&mut p, 12);
    cases.push(("IPv4 total length 12 < header 20", eth(&p), bad));
    let mut p = ack.clone();
    set_ipv4_total_len(&mut p, 1500);
    cases.push(("IPv4 total length 1500 in a whole frame of 74 bytes", eth(&p), bad));
    let mut p = v6.clone();
    p[4..6].copy_from_slice(&1460u16.to_be_bytes());
    cases.push(("IPv6 payload length 1460 in a whole frame", eth(&p), bad));
    let mut p = ack.clone();
    p[20 + 12] = 0x30;
    cases.push(("TCP data offset 3", eth(&p), bad));
    let mut p = ack.clone();
    p[20 + 12] = 0xf0;
    cases.push(("TCP data offset 15, beyond the IP payload", eth(&p), bad));
    cases.push(("IPv6 header cut at 30 bytes", eth(&v6[..30]), bad));
    let mut p = ipv6_with_exts(&v6, &[(60, ipv6_padn_ext())]);
    p[41] = 200; // the extension header claims 1608 bytes
    cases.push(("IPv6 extension header longer than the payload", eth(&p), bad));
    let mut p = v6.clone();
    p[4..6].copy_from_slice(&10u16.to_be_bytes());
    cases.push(("IPv6 payload length shorter than TCP", eth(&p), bad));
    let mut nested = syn.clone();
    for _ in 0..7 {
        let mut g = gre_header(ETH_IPV4);
        g.extend_from_slice(&nested);
        nested = outer_ip(false, 47, &g);
    }
    cases.push(("7 nested GRE tunnels", eth(&nested), bad));
    cases.push(("10-byte runt", vec![0xff; 10], bad));
    cases.push(("empty frame", Vec::new(), bad));
    cases.push(("802.1Q tag cut short", eth_with(0x8100, &[0x00]), bad));
    cases.push(("bogus ethertype", eth_with(0x1234, &syn), non_ip));
    cases.push(("ARP", eth_with(0x0806, &[0; 28]), non_ip));
    let random = vec![0x5d, 0xc4, 0x91, 0x0e, 0x77, 0x2a, 0xb3, 0x68, 0x1f, 0xe0, 0x3c, 0x85, 0xde, 0xad, 0x42];
    cases.push(("random bytes, ethertype 0xdead", random, non_ip));
    cases.push(("UDP", eth(&udp_ip(false, 5353, 53, b"query")), other));
    cases.push(("ICMP echo", eth(&icmp_echo_ip(false)), other));
    cases.push(("ICMP error quoting garbage", eth(&icmp_error_ip(false, 3, 3, &[0x45; 12], 12)), other));
    cases.push(("IPv4 fragment", eth(&ipv4_set_fragment(&syn, true, 0)), frag));

    // Each frame alone lands in its category...
    for (i, (name, f, want)) in cases.iter().enumerate() {
        let p = dir.file(&format!("case-{i}.pcap"));
        write_pcap(&p, 1, 65535, &recs_1ms_apart(vec![f.clone()]));
        let (v, _) = json_for_hosts(&p, &[V4_CLIENT_STR]);
        assert_eq!(capture_count(&v, want), 1, "{name}: {}", v["capture"]);
        assert_eq!(capture_category_sum(&v), 1, "{name}: {}", v["capture"]);
    }
    // ... and all together add up exactly.
    let n = cases.len() as u64;
    let count = |k: &str| cases.iter().filter(|c| c.2 == k).count() as u64;
    let p = dir.file("garbage.pcap");
    write_pcap(&p, 1, 65535, &recs_1ms_apart(cases.iter().map(|c| c.1.clone()).collect()));
    let (v, err) = json_for_hosts(&p, &[V4_CLIENT_STR]);
    let c = &v["capture"];
    assert_eq!(capture_count(&v, "frames"), n);
    for k in [ok, bad, non_ip, other, frag] {
        assert_eq!(capture_count(&v, k), count(k), "{k}: {c}");
    }
    assert_eq!((count(ok), count(bad), count(non_ip), count(other), count(frag)), (1, 14, 3, 3, 1));
    assert_eq!(capture_count(&v, "icmp_errors_quoting_tcp"), 0, "{c}");
    assert_eq!(capture_count(&v, "unknown_link_type"), 0, "{c}");
    assert_eq!(capture_category_sum(&v), n);
    // The valid SYN is still tracked, and the undecodable frames reported in one line.
    assert_eq!(v["tcp_stats"]["ipv4"]["active_opens"], 1);
    assert_eq!(connection_rows(&v).len(), 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("wirestat: 14 frames undecodable"), "{err}");
}

#[test]
fn garbage_on_raw_ip_and_null_links_is_counted() {
    let dir = TestDir::new("garbage-raw");
    let syn = tcp_ip(&Seg::new(false, SYN, 1000, 0, 0));
    let syn6 = tcp_ip(&Seg::new(true, SYN, 1000, 0, 0));
    let mut ihl = syn.clone();
    ihl[0] = 0x44;
    let frames = vec![
        syn.clone(),
        syn6.clone(),
        vec![0x55; 40],    // version 5
        vec![],            // nothing
        ihl,               // IHL 4
        syn6[..39].into(), // IPv6 header cut
        udp_ip(true, 1, 2, b"x"),
    ];
    let p = dir.file("raw.pcap");
    write_pcap(&p, 101, 65535, &recs_1ms_apart(frames));
    let (v, err) = json_for_hosts(&p, &[V4_CLIENT_STR, V6_CLIENT_STR]);
    assert_eq!(capture_count(&v, "frames"), 7);
    assert_eq!(capture_count(&v, "tcp_segments"), 2);
    assert_eq!(capture_count(&v, "undecodable"), 4);
    assert_eq!(capture_count(&v, "other_protocols"), 1);
    assert!(err.contains("4 frames undecodable"), "{err}");

    // NULL: an unknown family is not IP; a family cut short is undecodable.
    let mut unknown_fam = 17u32.to_le_bytes().to_vec();
    unknown_fam.extend_from_slice(&syn);
    let frames = vec![null(&syn, false), unknown_fam, vec![2, 0]];
    let p = dir.file("null.pcap");
    write_pcap(&p, 0, 65535, &recs_1ms_apart(frames));
    let (v, _) = json_for_hosts(&p, &[V4_CLIENT_STR]);
    assert_eq!(capture_count(&v, "tcp_segments"), 1);
    assert_eq!(capture_count(&v, "non_ip"), 1);
    assert_eq!(capture_count(&v, "undecodable"), 1);
}

#[test]
fn unsupported_link_type_is_counted_and_reported() {
    let dir = TestDir::new("linktype");
    let syn = eth(&tcp_ip(&Seg::new(false, SYN, 1000, 0, 0)));
    let p = dir.file("user0.pcap");
    // LINKTYPE_USER0 (147): whatever is inside, wirestat cannot know.
    write_pcap(&p, 147, 65535, &recs_1ms_apart(vec![syn.clone(), syn.clone(), syn]));
    let (v, err) = json_for_hosts(&p, &[V4_CLIENT_STR]);
    assert_eq!(capture_count(&v, "frames"), 3);
    assert_eq!(capture_count(&v, "unknown_link_type"), 3);
    assert_eq!(capture_category_sum(&v), 3);
    // Why the views are empty, then what could not be read.
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.contains("none of the 3 frames read is a TCP segment"), "{err}");
    assert!(err.contains("3 frames of an unsupported link type"), "{err}");
}

// ---------------------------------------------------------------------------
// Seeded random garbage
// ---------------------------------------------------------------------------

/// xorshift64*: small, fixed-seed, good enough to spray bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// IP packets worth mutating: every shape the decoder has a path for.
fn ip_seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for v6 in [false, true] {
        v.extend(conversation(v6).into_iter().take(4));
        let syn = tcp_ip(&Seg::new(v6, SYN, 1000, 0, 0));
        v.push(icmp_error_ip(v6, if v6 { 1 } else { 3 }, 3, &syn, syn.len()));
        v.push(udp_ip(v6, 1, 4789, &[0x08, 0, 0, 0, 0, 0, 1, 0]));
        let mut g = gre_header(0x88be);
        g.extend_from_slice(&eth(&syn));
        v.push(outer_ip(v6, 47, &g));
        v.push(outer_ip(v6, 4, &tcp_ip(&Seg::new(false, SYN, 1, 0, 0))));
    }
    let syn6 = tcp_ip(&Seg::new(true, SYN, 1000, 0, 0));
    v.push(ipv6_with_exts(&syn6, &[(0, ipv6_padn_ext()), (60, ipv6_padn_ext()), (44, ipv6_frag_ext(0, false, 1))]));
    v.push(ipv4_with_options(&tcp_ip(&Seg::new(false, SYN, 1, 0, 0)), &[1; 8]));
    v
}

/// Ethernet frames worth mutating.
fn eth_seeds() -> Vec<Vec<u8>> {
    let ips = ip_seeds();
    let syn = &ips[0];
    let mut v: Vec<Vec<u8>> = ips.iter().map(|p| eth(p)).collect();
    v.extend([
        eth_vlan(syn),
        eth_qinq(syn),
        gre_ip(syn),
        erspan2(&eth(syn)),
        erspan3(&eth(syn), true),
        vxlan(&eth(syn)),
        mpls(syn),
        pppoe(syn),
    ]);
    v
}

/// One garbage frame: pure random bytes, a seed with random bytes
/// overwritten, a seed cut short, or a valid prefix with random bytes after.
fn garbage(r: &mut Rng, seeds: &[Vec<u8>]) -> (Vec<u8>, u32) {
    let seed = &seeds[r.below(seeds.len())];
    match r.below(4) {
        0 => {
            let n = r.below(200);
            (r.bytes(n), n as u32)
        }
        1 => {
            let mut f = seed.clone();
            for _ in 0..1 + r.below(6) {
                let i = r.below(f.len());
                f[i] = r.next() as u8;
            }
            let n = f.len() as u32;
            (f, n)
        }
        2 => {
            let cut = r.below(seed.len() + 1);
            // A header-only capture: the wire length is the whole frame.
            (seed[..cut].to_vec(), seed.len() as u32)
        }
        _ => {
            let keep = r.below(seed.len() + 1);
            let mut f = seed[..keep].to_vec();
            let n = r.below(100);
            f.extend(r.bytes(n));
            let len = f.len() as u32;
            (f, len)
        }
    }
}

#[test]
fn seeded_random_garbage_through_the_binary() {
    let dir = TestDir::new("fuzz");
    for (linktype, seeds, seed) in [(1u32, eth_seeds(), 0x5eed_0001u64), (101, ip_seeds(), 0x5eed_0002)] {
        let mut r = Rng(seed);
        let recs: Vec<Rec> = (0..2000)
            .map(|i| {
                let (data, orig_len) = garbage(&mut r, &seeds);
                Rec { sec: 1_700_000_000 + i / 100, usec: (i % 100) * 10_000, data, orig_len }
            })
            .collect();
        let p = dir.file(&format!("fuzz-{linktype}.pcap"));
        write_pcap(&p, linktype, 65535, &recs);
        // Every host's view (no --host) and one host's view.
        let o = run_wirestat(&["-r", p.to_str().unwrap(), "--format", "json", "-a", "-s"]);
        assert!(o.status.success(), "linktype {linktype}: {:?} {}", o.status, stderr_of(&o));
        for line in stdout_of(&o).lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON ({e}): {line}"));
            assert_eq!(capture_count(&v, "frames"), 2000);
            assert_eq!(capture_category_sum(&v), 2000, "{}", v["capture"]);
        }
        let (v, err) = json_for_hosts(&p, &[V4_CLIENT_STR, V6_CLIENT_STR]);
        assert_eq!(capture_count(&v, "frames"), 2000);
        assert_eq!(capture_category_sum(&v), 2000, "{}", v["capture"]);
        assert_eq!(capture_count(&v, "unknown_link_type"), 0);
        assert!(capture_count(&v, "tcp_segments") > 0, "some seeds survive: {}", v["capture"]);
        assert!(capture_count(&v, "undecodable") > 0, "{}", v["capture"]);
        assert!(err.lines().all(|l| l.starts_with("wirestat: ")), "{err}");
        assert!(err.lines().count() <= 2, "{err}");
    }
}

#[test]
fn seeded_random_garbage_through_decode() {
    use wirestat::decode::{DecodeStats, Packet, decode, link};
    let links = [
        link::NULL,
        link::ETHERNET,
        link::RAW_DLT,
        link::RAW_OPENBSD,
        link::RAW,
        link::LOOP,
        link::LINUX_SLL,
        link::IPV4,
        link::IPV6,
        link::NFLOG,
        link::LINUX_SLL2,
        147,
    ];
    let eth = eth_seeds();
    let ip = ip_seeds();
    let mut r = Rng(0x00dd_ba11);
    let mut stats = DecodeStats::default();
    for _ in 0..200_000 {
        let lt = links[r.below(links.len())];
        let seeds = if lt == link::ETHERNET { &eth } else { &ip };
        let (f, _) = garbage(&mut r, seeds);
        // Give the other link types a plausible header to get past.
        let mut frame = match lt {
            link::NULL | link::LOOP => vec![0, 0, 0, 2],
            link::LINUX_SLL => sll(&[0x45])[..16].to_vec(),
            link::LINUX_SLL2 => sll2(&[0x45])[..20].to_vec(),
            _ => Vec::new(),
        };
        frame.extend(f);
        let mut s = Packet::default();
        stats.frames += 1;
        stats.count(decode(lt, &frame, &mut s));
    }
    let sum = stats.tcp
        + stats.icmp_errors
        + stats.non_ip
        + stats.other_protocol
        + stats.fragments
        + stats.undecodable
        + stats.unknown_link;
    assert_eq!(sum, stats.frames);
    assert!(stats.tcp > 0 && stats.undecodable > 0 && stats.unknown_link > 0, "{stats:?}");
}

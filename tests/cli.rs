//! The command line as the people who use it type it: exit statuses for
//! scripts, input limits, Linux netstat's flags and layout, tcpdump's trailing
//! filter and `-c`, capture times in UTC, and empty results that say why.
//! Every test runs the real binary.

mod common;

use common::cli::{capture_count, connection_rows, run_wirestat, stderr_of, stdout_of};
use common::craft::*;
use common::pcapfile::{recs_1ms_apart, write_pcap};
use common::tmp::TestDir;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/oracle/mixed-s1/capture.pcap");
const SYNTH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/synth-small.pcap");
const H4: &str = "10.201.0.1";
const H6: &str = "fd00:201::1";

/// `wirestat -r FILE ARGS...`.
fn run(file: &Path, args: &[&str]) -> Output {
    let mut a = vec!["-r", file.to_str().unwrap()];
    a.extend_from_slice(args);
    run_wirestat(&a)
}

fn fixture() -> &'static Path {
    Path::new(FIXTURE)
}

/// Asserts exit status 0 and returns stdout.
fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr_of(o));
    stdout_of(o)
}

/// Asserts a usage error: exit 2, one line on stderr naming every needle, nothing on stdout.
fn usage_error(o: &Output, needles: &[&str]) {
    let err = stderr_of(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("wirestat: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr should mention {n:?}: {err}");
    }
    assert!(stdout_of(o).is_empty(), "{}", stdout_of(o));
}

/// The one JSON document of a `--host` run.
fn json(o: &Output) -> Value {
    let out = ok(o);
    assert_eq!(out.lines().count(), 1, "{out}");
    serde_json::from_str(out.trim()).unwrap()
}

// ---------------------------------------------------------------------------
// Crafted captures
// ---------------------------------------------------------------------------

/// Client 192.0.2.1 and server 198.51.100.2, frames 1 ms apart from
/// 2023-11-14 22:13:20 UTC:
/// - 40000→80: handshake, 100 bytes from the client the server has not
///   acknowledged, 30 bytes from the server the client has not either;
/// - 40001→22: a SYN, unanswered (client SYN_SENT);
/// - 40002→443: handshake, then the client's FIN, unacknowledged (client
///   FIN_WAIT_1, server CLOSE_WAIT).
fn send_q_segs() -> Vec<Seg> {
    let c = |sport: u16, dport: u16, flags, seq, ack, payload| Seg {
        sport,
        dport,
        ..Seg::new(false, flags, seq, ack, payload)
    };
    let s = |sport: u16, dport: u16, flags, seq, ack, payload| Seg {
        from_client: false,
        sport,
        dport,
        ..Seg::new(false, flags, seq, ack, payload)
    };
    vec![
        c(40000, 80, SYN, 1000, 0, 0),
        s(80, 40000, SYN | ACK, 5000, 1001, 0),
        c(40000, 80, ACK, 1001, 5001, 0),
        c(40000, 80, PSH | ACK, 1001, 5001, 100),
        s(80, 40000, PSH | ACK, 5001, 1001, 30),
        c(40001, 22, SYN, 7000, 0, 0),
        c(40002, 443, SYN, 9000, 0, 0),
        s(443, 40002, SYN | ACK, 3000, 9001, 0),
        c(40002, 443, ACK, 9001, 3001, 0),
        c(40002, 443, FIN | ACK, 9001, 3001, 0),
    ]
}

fn send_q_capture(dir: &TestDir) -> PathBuf {
    let p = dir.file("sendq.pcap");
    let frames = send_q_segs().iter().map(|s| eth(&tcp_ip(s))).collect();
    write_pcap(&p, 1, 65535, &recs_1ms_apart(frames));
    p
}

/// A handshake and a data segment between two IPv6 addresses given in full,
/// long enough to outgrow the 23-character address columns.
fn v6_frames(client: [u8; 16], server: [u8; 16], sport: u16) -> Vec<Vec<u8>> {
    let seg = |from_client: bool, flags: u8, seq: u32, ack: u32, len: usize| {
        let (a, b, sp, dp) = if from_client { (client, server, sport, 80) } else { (server, client, 80, sport) };
        let mut t = etherparse::PacketBuilder::ipv6(a, b, 64).tcp(sp, dp, seq, 64240);
        if flags & SYN != 0 {
            t = t.syn();
        }
        if flags & ACK != 0 {
            t = t.ack(ack);
        }
        let mut out = Vec::new();
        t.write(&mut out, &vec![7u8; len]).unwrap();
        eth(&out)
    };
    vec![
        seg(true, SYN, 100, 0, 0),
        seg(false, SYN | ACK, 900, 101, 0),
        seg(true, ACK, 101, 901, 0),
        seg(true, ACK, 101, 901, 10),
    ]
}

fn v6(words: [u16; 8]) -> [u8; 16] {
    let mut b = [0u8; 16];
    for (i, w) in words.iter().enumerate() {
        b[2 * i..2 * i + 2].copy_from_slice(&w.to_be_bytes());
    }
    b
}

// ---------------------------------------------------------------------------
// 1. Exit statuses
// ---------------------------------------------------------------------------

#[test]
fn a_closed_pipe_exits_0_quietly() {
    // Far more output than a pipe holds (a snapshot every 0.1 s of capture
    // time): wirestat is still writing when the reader goes away.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wirestat"))
        .args(["-r", SYNTH, "-an", "0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 4096];
    child.stdout.as_mut().unwrap().read_exact(&mut head).unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr_of(&o));
    assert!(o.stderr.is_empty(), "nothing to say about a reader that had enough: {}", stderr_of(&o));
    assert!(String::from_utf8_lossy(&head).contains("Active Connections"));
}

#[test]
fn a_capture_cut_off_exits_1_with_its_views_printed() {
    let dir = TestDir::new("cli-cut");
    let full = std::fs::read(FIXTURE).unwrap();
    let p = dir.file("cut.pcap");
    std::fs::write(&p, &full[..full.len() / 2 + 5]).unwrap();
    for format in ["text", "json"] {
        let o = run(&p, &["--host", H4, "-an", "--format", format]);
        assert_eq!(o.status.code(), Some(1), "{format}: {}", stderr_of(&o));
        let out = stdout_of(&o);
        assert!(out.contains("10.201.0.1:"), "{format}: the rows read before the cut: {out}");
        assert!(stderr_of(&o).contains("cut off"), "{}", stderr_of(&o));
    }
    // stderr gone before wirestat reports the damage (`2>&1 | head`): no panic, the status still tells.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wirestat"))
        .args(["-r", p.to_str().unwrap(), "-an"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    // Merged with a whole file: still read in part.
    let o = run_wirestat(&["-r", p.to_str().unwrap(), "-r", SYNTH, "-s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr_of(&o));
}

#[test]
fn usage_and_file_errors_exit_2_and_success_exits_0() {
    // clap's own message, several lines with a usage summary.
    let o = run(fixture(), &["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr_of(&o).contains("--no-such-flag") && stdout_of(&o).is_empty());
    usage_error(&run_wirestat(&["-r", "/nonexistent/x.pcap"]), &["x.pcap", "no such file"]);
    usage_error(&run_wirestat(&["-r", concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")]), &["not a pcap"]);
    let o = run(fixture(), &["-an"]);
    ok(&o);
    assert!(stderr_of(&o).is_empty(), "{}", stderr_of(&o));
    // --help says what the statuses mean.
    let help = ok(&run_wirestat(&["--help"]));
    assert!(help.contains("Exit status: 0"), "{help}");
}

// ---------------------------------------------------------------------------
// 2. Input limits
// ---------------------------------------------------------------------------

#[test]
fn input_limits_are_usage_errors_not_panics() {
    usage_error(&run(fixture(), &["--workers", "20000"]), &["--workers 20000", "at most 1024"]);
    usage_error(&run(fixture(), &["--workers", "0"]), &["--workers", "at least 1"]);
    usage_error(&run(fixture(), &["--max-flows", "0"]), &["--max-flows", "at least 1"]);
    usage_error(&run(fixture(), &["--max-flows", "2147483648"]), &["--max-flows 2147483648", "at most 2147483647"]);
    usage_error(&run(fixture(), &["--idle-timeout", "2e19"]), &["--idle-timeout", "at most"]);
    usage_error(&run(fixture(), &["-c", "0"]), &["-c", "at least 1"]);
    // The largest values allowed run.
    let o = run(fixture(), &["--workers", "1024", "--max-flows", "2147483647", "--idle-timeout", "1e9", "-s"]);
    let many = ok(&o);
    assert_eq!(many, ok(&run(fixture(), &["-s"])), "the output does not depend on the workers");
}

#[test]
fn max_flows_below_one_per_worker_says_what_it_tracks() {
    let o = run(fixture(), &["--max-flows", "1", "--workers", "2", "--host", H4, "-s"]);
    ok(&o);
    let err = stderr_of(&o);
    assert!(err.contains("--max-flows 1") && err.contains("up to 2 in all"), "{err}");
    // Enough for every worker: nothing to say.
    let o = run(fixture(), &["--max-flows", "2", "--workers", "2", "--host", H4, "-s"]);
    ok(&o);
    assert!(!stderr_of(&o).contains("--max-flows"), "{}", stderr_of(&o));
}

// ---------------------------------------------------------------------------
// 3. Linux netstat's habits
// ---------------------------------------------------------------------------

/// Table lines of Linux layout output, split into columns.
fn linux_rows(out: &str) -> Vec<Vec<String>> {
    out.lines().filter(|l| l.starts_with("tcp")).map(|l| l.split_whitespace().map(str::to_string).collect()).collect()
}

#[test]
fn linux_layout_with_tan() {
    let out = ok(&run(fixture(), &["--host", H4, "--host", H6, "-tan"]));
    assert!(out.contains("\nActive Internet connections (servers and established)\n"), "{out}");
    assert!(out.contains("\nProto Recv-Q Send-Q Local Address           Foreign Address         State\n"), "{out}");
    let rows = linux_rows(&out);
    // The same rows as the Windows layout, in the same order.
    let windows: Vec<Vec<String>> = ok(&run(fixture(), &["--host", H4, "--host", H6, "-an"]))
        .lines()
        .filter(|l| l.starts_with("  TCP"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), windows.len());
    assert_eq!(rows.len(), 23);
    for (l, w) in rows.iter().zip(&windows) {
        assert_eq!(l[0], if w[0] == "TCPv6" { "tcp6" } else { "tcp" });
        assert_eq!(l[1], "-", "Recv-Q is not on the wire");
        assert!(l[2].parse::<u32>().is_ok(), "Send-Q: {l:?}");
        assert_eq!(l[3], w[1]);
        let state = match w[3].as_str() {
            "SYN_RCVD" => "SYN_RECV",
            "FIN_WAIT_1" => "FIN_WAIT1",
            "FIN_WAIT_2" => "FIN_WAIT2",
            s => s,
        };
        assert_eq!(l[5], state);
        if state == "LISTEN" {
            assert_eq!(l[4], if l[0] == "tcp6" { "[::]:*" } else { "0.0.0.0:*" });
            assert_eq!(l[2], "0");
        } else {
            assert_eq!(l[4], w[2]);
        }
    }
    assert!(out.contains("\nRecv-Q  -: not on the wire"), "footnote: {out}");
    // Columns line up: the Send-Q column ends where the header's does.
    let header = out.lines().find(|l| l.starts_with("Proto")).unwrap();
    let send_q_end = header.find("Send-Q").unwrap() + "Send-Q".len();
    for l in out.lines().filter(|l| l.starts_with("tcp")) {
        assert_eq!(&l[send_q_end..send_q_end + 1], " ", "{l}");
        assert_ne!(&l[send_q_end - 1..send_q_end], " ", "{l}");
        assert!(l[20..].starts_with("10.") || l[20..].starts_with("[fd00"), "local address at column 20: {l}");
    }
}

#[test]
fn send_q_is_what_the_peer_has_not_acknowledged() {
    let dir = TestDir::new("cli-sendq");
    let p = send_q_capture(&dir);
    let client = ok(&run(&p, &["--host", V4_CLIENT_STR, "-tn"]));
    let got: Vec<(String, String, String)> =
        linux_rows(&client).into_iter().map(|r| (r[3].clone(), r[2].clone(), r[5].clone())).collect();
    let want = [
        ("192.0.2.1:40000", "100", "ESTABLISHED"),
        ("192.0.2.1:40001", "1", "SYN_SENT"),
        ("192.0.2.1:40002", "1", "FIN_WAIT1"),
    ];
    assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())), "{client}");
    let server = ok(&run(&p, &["--host", V4_SERVER_STR, "-tan"]));
    let got: Vec<(String, String, String)> =
        linux_rows(&server).into_iter().map(|r| (r[3].clone(), r[2].clone(), r[5].clone())).collect();
    let want = [
        ("198.51.100.2:80", "0", "LISTEN"),
        ("198.51.100.2:80", "30", "ESTABLISHED"),
        ("198.51.100.2:443", "0", "LISTEN"),
        ("198.51.100.2:443", "0", "CLOSE_WAIT"),
    ];
    assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())), "{server}");
}

#[test]
fn tulpn_says_once_what_the_wire_cannot_show() {
    let o = run(fixture(), &["--host", H4, "-tulpn"]);
    let out = ok(&o);
    let err = stderr_of(&o);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.contains("-u: UDP sockets are not tracked yet (showing TCP only)"), "{err}");
    assert!(err.contains("-p: the process that owns a socket is not visible on the wire"), "{err}");
    assert!(out.contains("(only servers)"), "{out}");
    assert!(out.contains("State       PID/Program name\n"), "{out}");
    let rows = linux_rows(&out);
    assert_eq!(rows.len(), 3, "{out}");
    for r in &rows {
        assert_eq!(r[5], "LISTEN");
        assert_eq!(r[6], "-", "no process on the wire: {r:?}");
    }
    // -tlp and -anp are Linux's -p too; the views are the same as without it.
    for flags in [["-tlp"], ["-tlnp"]] {
        let o = run(fixture(), &["--host", H4, flags[0]]);
        assert_eq!(linux_rows(&ok(&o)).len(), 3);
        assert!(stderr_of(&o).contains("-p: the process"), "{flags:?}");
    }
    let o = run(fixture(), &["--host", H4, "-anp"]);
    assert!(stderr_of(&o).contains("-p: the process"));
    assert!(ok(&o).contains("\nActive Internet connections (servers and established)\n"));
}

#[test]
fn windows_p_proto_keeps_working() {
    let only_v4 = |out: &str| {
        let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("  TCP")).collect();
        assert!(!rows.is_empty(), "{out}");
        assert!(rows.iter().all(|l| l.starts_with("  TCP    ")), "{out}");
    };
    for args in [&["-an", "-p", "TCP"][..], &["-anp", "tcp"], &["-an", "-pTCP"], &["-p", "tcp", "-an"]] {
        let mut a = vec!["--host", H4, "--host", H6];
        a.extend_from_slice(args);
        let o = run(fixture(), &a);
        only_v4(&ok(&o));
        assert!(stderr_of(&o).is_empty(), "{args:?}: {}", stderr_of(&o));
    }
    let out = ok(&run(fixture(), &["--host", H4, "--host", H6, "-anp", "TCPv6"]));
    assert!(out.lines().filter(|l| l.starts_with("  TCP")).all(|l| l.starts_with("  TCPv6")), "{out}");
    // Not a protocol wirestat has: still a usage error.
    usage_error(&run(fixture(), &["-p", "UDP"]), &["-p UDP", "TCPv6"]);
}

#[test]
fn l_shows_listeners_only_and_combined_flags_work() {
    let json_rows = |args: &[&str]| {
        let mut a = vec!["--host", H4, "--host", H6, "--format", "json"];
        a.extend_from_slice(args);
        connection_rows(&json(&run(fixture(), &a)))
    };
    let listeners = json_rows(&["-l"]);
    assert_eq!(listeners.len(), 5);
    assert!(listeners.iter().all(|r| r.3 == "LISTEN"), "{listeners:?}");
    let all = json_rows(&["-an"]);
    assert_eq!(all.iter().filter(|r| r.3 == "LISTEN").cloned().collect::<Vec<_>>(), listeners);
    // -an -s and -ans, -tan and -t -a -n: the same.
    let text = |args: &[&str]| {
        let mut a = vec!["--host", H4];
        a.extend_from_slice(args);
        ok(&run(fixture(), &a))
    };
    assert_eq!(text(&["-ans"]), text(&["-a", "-n", "-s"]));
    assert_eq!(text(&["-tan"]), text(&["-t", "-a", "-n"]));
    // -s alone in the Linux layout: Linux's Tcp: block, both families together.
    let s = text(&["-ts"]);
    assert!(!s.contains("Active Internet"), "-s alone: statistics only: {s}");
    assert!(s.contains("\nTcp:\n    7 active connection openings\n    6 passive connection openings\n"), "{s}");
    // --layout windows keeps Windows' layout with Linux flags.
    let w = text(&["-tan", "--layout", "windows"]);
    assert!(w.contains("\nActive Connections\n"), "{w}");
    assert_eq!(w, text(&["-an"]));
    // Without --host, -l shows only the hosts with listeners.
    let out = ok(&run(fixture(), &["-l"]));
    let hosts: Vec<&str> = out.lines().filter(|l| l.starts_with("Host ")).collect();
    assert_eq!(hosts, ["Host 10.201.0.1", "Host 10.201.0.2", "Host fd00:201::1", "Host fd00:201::2"], "{out}");
    assert!(out.lines().filter(|l| l.starts_with("tcp")).all(|l| l.ends_with("LISTEN")), "{out}");
}

#[test]
fn u_alone_shows_nothing_and_says_why() {
    let o = run(fixture(), &["-u"]);
    let out = ok(&o);
    assert!(!out.contains("Host "), "{out}");
    assert!(!out.contains("tcp"), "{out}");
    assert_eq!(stderr_of(&o), "wirestat: -u: UDP sockets are not tracked yet (nothing to show without -t)\n");
    let v = json(&run(fixture(), &["-u", "--host", H4, "-s", "--format", "json"]));
    assert_eq!(connection_rows(&v).len(), 0);
    assert_eq!(v["tcp_stats"], serde_json::json!({}));
}

// ---------------------------------------------------------------------------
// 4. tcpdump's habits
// ---------------------------------------------------------------------------

#[test]
fn a_trailing_filter_expression_works_as_in_tcpdump() {
    let words = json(&run(fixture(), &["--host", H4, "-a", "--format", "json", "tcp", "port", "7837"]));
    let f = json(&run(fixture(), &["--host", H4, "-a", "--format", "json", "-f", "tcp port 7837"]));
    assert_eq!(words, f);
    let rows = connection_rows(&words);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.1.ends_with(":7837")), "{rows:?}");
    // One quoted word is a filter too.
    assert_eq!(json(&run(fixture(), &["--host", H4, "-a", "--format", "json", "tcp port 7837"])), f);
    // A filter and an INTERVAL: the filter goes in -f.
    let o = run(fixture(), &["--host", H4, "--format", "json", "-f", "tcp port 7837", "1"]);
    assert!(ok(&o).lines().count() > 1, "one document per interval");
    // A single number is INTERVAL.
    let o = run(fixture(), &["--host", H4, "--format", "json", "1"]);
    assert!(ok(&o).lines().count() > 1);
}

#[test]
fn filter_mistakes_name_f() {
    let o = run(fixture(), &["-f", "tcp", "port", "80"]);
    usage_error(&o, &["-f \"tcp\"", "\"port 80\"", "give it once"]);
    // Words and a number: all of it is a filter, which does not parse.
    let o = run(fixture(), &["tcp", "port", "80", "5"]);
    usage_error(&o, &["invalid filter \"tcp port 80 5\"", "-f"]);
}

#[test]
fn c_stops_after_count_frames() {
    let v = json(&run(fixture(), &["--host", H4, "--format", "json", "-c", "25"]));
    assert_eq!(capture_count(&v, "frames"), 25);
    let v = json(&run(fixture(), &["--host", H4, "--format", "json", "--count", "1000000"]));
    assert_eq!(capture_count(&v, "frames"), 2421, "the whole capture");
    // The same as a capture cut cleanly after 25 frames.
    let dir = TestDir::new("cli-count");
    let full = std::fs::read(FIXTURE).unwrap();
    let (at, _) = common::pcapfile::pcap_record_offsets(&full)[25];
    let p = dir.file("first25.pcap");
    std::fs::write(&p, &full[..at]).unwrap();
    let cut = run(&p, &["--host", H4, "-an"]);
    assert_eq!(ok(&run(fixture(), &["--host", H4, "-an", "-c", "25"])), ok(&cut));
}

// ---------------------------------------------------------------------------
// 5. Capture time in UTC, aligned IPv6 columns
// ---------------------------------------------------------------------------

#[test]
fn views_state_their_capture_time_in_utc() {
    let dir = TestDir::new("cli-utc");
    let p = send_q_capture(&dir);
    // Frames from 1_700_000_000 (2023-11-14 22:13:20 UTC), 1 ms apart: 10 frames.
    let out = ok(&run(&p, &["--host", V4_CLIENT_STR]));
    assert!(
        out.starts_with(
            "\nCapture time   2023-11-14 22:13:20.009000 UTC\n\
             Frames read    10, from 2023-11-14 22:13:20.000000 UTC to 2023-11-14 22:13:20.009000 UTC\n\
             \nActive Connections\n"
        ),
        "{out}"
    );
    let v = json(&run(&p, &["--host", V4_CLIENT_STR, "--format", "json"]));
    assert_eq!(v["time"].as_f64(), Some(1_700_000_000.009));
    assert_eq!(v["time_utc"], "2023-11-14T22:13:20.009000Z");
    let c = &v["capture"];
    assert_eq!(c["first_frame_time"].as_f64(), Some(1_700_000_000.0));
    assert_eq!(c["last_frame_time"].as_f64(), Some(1_700_000_000.009));
    assert_eq!(c["first_frame_time_utc"], "2023-11-14T22:13:20.000000Z");
    assert_eq!(c["last_frame_time_utc"], "2023-11-14T22:13:20.009000Z");
    // With INTERVAL, every snapshot says its own time.
    let out = ok(&run(&p, &["--host", V4_CLIENT_STR, "0.005"]));
    let times: Vec<&str> = out.lines().filter(|l| l.starts_with("Capture time")).collect();
    assert_eq!(
        times,
        ["Capture time   2023-11-14 22:13:20.005000 UTC", "Capture time   2023-11-14 22:13:20.009000 UTC"],
        "{out}"
    );
    // No frames: no time to state.
    let empty = dir.file("empty.pcap");
    write_pcap(&empty, 1, 65535, &[]);
    let out = ok(&run(&empty, &["--host", V4_CLIENT_STR]));
    assert!(out.starts_with("\nCapture time   none: no frames read\n"), "{out}");
    let v = json(&run(&empty, &["--host", V4_CLIENT_STR, "--format", "json"]));
    assert_eq!(v["capture"]["first_frame_time"], Value::Null);
    assert_eq!(v["capture"]["last_frame_time_utc"], Value::Null);
}

#[test]
fn long_ipv6_addresses_keep_the_columns_aligned() {
    let dir = TestDir::new("cli-v6");
    let server = v6([0x2001, 0xdb8, 0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666]);
    let short = v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 9]);
    let long = v6([0x2001, 0xdb8, 0xaaaa, 0xbbbb, 0xcccc, 0xdddd, 0xeeee, 0xffff]);
    let mut frames = v6_frames(short, server, 40000);
    frames.extend(v6_frames(long, server, 40001));
    frames.extend(send_q_segs().iter().map(|s| eth(&tcp_ip(s))));
    let p = dir.file("v6.pcap");
    write_pcap(&p, 1, 65535, &recs_1ms_apart(frames));
    let host = "2001:db8:1111:2222:3333:4444:5555:6666";
    for (layout, prefix) in [("windows", "  TCP"), ("linux", "tcp")] {
        let out = ok(&run(&p, &["--host", host, "--host", V4_SERVER_STR, "-an", "--layout", layout]));
        let table: Vec<&str> = out.lines().filter(|l| l.starts_with(prefix) || l.contains("Local Address")).collect();
        // The header, 4 IPv4 lines (2 listeners), 3 IPv6 lines (1 listener).
        assert_eq!(table.len(), 1 + 4 + 3, "{out}");
        let header = table[0];
        let (foreign_at, state_at) = (header.find("Foreign Address").unwrap(), header.find("State").unwrap());
        for l in &table[1..] {
            // The foreign address and the state start under their headings on every row.
            assert_eq!(&l[foreign_at - 1..foreign_at], " ", "{layout}: {l}\n{out}");
            assert_ne!(&l[foreign_at..foreign_at + 1], " ", "{layout}: {l}\n{out}");
            assert_eq!(&l[state_at - 1..state_at], " ", "{layout}: {l}\n{out}");
            assert!(l[state_at..].starts_with(['E', 'L', 'C', 'F', 'S']), "{layout}: {l}\n{out}");
        }
    }
    // Short addresses only: the usual widths, as before.
    let out = ok(&run(&p, &["--host", V4_SERVER_STR, "-an"]));
    assert!(out.contains("\n  Proto  Local Address          Foreign Address        State\n"), "{out}");
}

// ---------------------------------------------------------------------------
// 6. Nothing silent
// ---------------------------------------------------------------------------

#[test]
fn a_host_absent_from_the_capture_is_named() {
    let o = run(fixture(), &["--host", "192.0.2.77", "--host", H4, "-an"]);
    ok(&o);
    assert_eq!(stderr_of(&o), "wirestat: --host 192.0.2.77: no TCP segment to or from this address in the capture\n");
}

#[test]
fn a_capture_without_tcp_says_so() {
    let dir = TestDir::new("cli-notcp");
    let p = dir.file("udp.pcap");
    let frames = (0..3).map(|i| eth(&udp_ip(false, 5000 + i, 53, b"query"))).collect();
    write_pcap(&p, 1, 65535, &recs_1ms_apart(frames));
    let o = run(&p, &["-an"]);
    ok(&o);
    assert_eq!(stderr_of(&o), "wirestat: none of the 3 frames read is a TCP segment: nothing to show\n");
    let o = run(fixture(), &["-an", "-f", "arp"]);
    ok(&o);
    assert!(stderr_of(&o).contains("is a TCP segment (after the filter): nothing to show"), "{}", stderr_of(&o));
    let o = run(fixture(), &["-an", "port", "1"]);
    ok(&o);
    assert_eq!(stderr_of(&o), "wirestat: no frame passed the filter \"port 1\": nothing to show\n");
}

#[test]
fn no_host_to_show_says_why() {
    let dir = TestDir::new("cli-closed");
    let p = dir.file("closed.pcap");
    // One connection that opens and resets: no row left at the end.
    let segs = [
        Seg::new(false, SYN, 1000, 0, 0),
        Seg { from_client: false, sport: 80, dport: 40000, ..Seg::new(false, SYN | ACK, 5000, 1001, 0) },
        Seg::new(false, ACK, 1001, 5001, 0),
        Seg::new(false, RST | ACK, 1001, 5001, 0),
    ];
    write_pcap(&p, 1, 65535, &recs_1ms_apart(segs.iter().map(|s| eth(&tcp_ip(s))).collect()));
    let o = run(&p, &["-n"]);
    assert_eq!(ok(&o).lines().filter(|l| l.starts_with("Host")).count(), 0);
    assert!(stderr_of(&o).contains("no host has a connection at the end of the capture (-a adds"), "{}", stderr_of(&o));
    // The same with --host: the host's table is empty, and stderr says why.
    let o = run(&p, &["--host", V4_SERVER_STR, "-n"]);
    assert!(!ok(&o).contains("198.51.100.2:"));
    assert_eq!(
        stderr_of(&o),
        "wirestat: the host has no connection at the end of the capture (-a adds listening sockets, -s its TCP \
         counters)\n"
    );
    // With -s its counters are there to show: nothing to say.
    let o = run(&p, &["--host", V4_SERVER_STR, "-n", "-s"]);
    assert!(ok(&o).contains("Passive Opens                       = 1"));
    assert!(stderr_of(&o).is_empty(), "{}", stderr_of(&o));
    // With -a the server's listener is there to show: nothing to say.
    let o = run(&p, &["-an"]);
    assert!(ok(&o).contains("Host 198.51.100.2"));
    assert!(stderr_of(&o).is_empty(), "{}", stderr_of(&o));
}

#[test]
fn the_same_file_twice_is_refused() {
    let dir = TestDir::new("cli-twice");
    let p = dir.file("a.pcap");
    std::fs::copy(FIXTURE, &p).unwrap();
    let link = dir.file("b.pcap");
    std::fs::hard_link(&p, &link).unwrap();
    let sym = dir.file("c.pcap");
    std::os::unix::fs::symlink(&p, &sym).unwrap();
    let a = p.to_str().unwrap();
    usage_error(&run_wirestat(&["-r", a, "-r", a]), &["a.pcap is given twice", "count twice"]);
    for other in [&link, &sym] {
        let o = run_wirestat(&["-r", a, "-r", other.to_str().unwrap()]);
        usage_error(&o, &["a.pcap", other.file_name().unwrap().to_str().unwrap(), "the same file"]);
    }
    // A copy is another file (merging it is the user's call).
    let copy = dir.file("copy.pcap");
    std::fs::copy(FIXTURE, &copy).unwrap();
    ok(&run_wirestat(&["-r", a, "-r", copy.to_str().unwrap(), "-s"]));
}

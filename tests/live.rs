//! Live capture: wirestat as a real process on a veth between two network
//! namespaces this test creates, real TCP traffic between them, stopped
//! with SIGINT; its final JSON must equal the namespace's own `ss -tan`
//! table and `/proc/net/snmp` Tcp counters. Also: the capture clock moving
//! on without packets (ticks), `-w` replaying to the same views, SPAN
//! duplicates, and the messages for a missing interface and no permission.
//!
//! Namespaces need root: without it (or without `ip netns`) those tests say
//! so on stderr and pass, so the rest of the suite still runs.

mod common;

use common::cli::{run_wirestat, stderr_of, stdout_of};
use common::netns::in_ns;
use common::ticking::{Ticking, live_config};
use common::tmp::TestDir;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wirestat::pipeline::{self, Reading};
use wirestat::report::HostView;

const A4: &str = "10.203.0.1";
const B4: &str = "10.203.0.2";
const A6: &str = "fd00:203::1";
const B6: &str = "fd00:203::2";

fn sh(args: &[&str]) -> Result<String, String> {
    let o = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{}: {e}", args[0]))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!("{}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim()))
    }
}

/// Three namespaces: `a` (the observed host) and `b`, joined through a
/// bridge in `m`, whose two ports see the link as a tap or a mirror port
/// would. Removed on drop, also when the test fails.
struct Netns {
    a: String,
    m: String,
    b: String,
    veth_a: String,
    /// The bridge's ports towards `a` and towards `b`.
    port_a: String,
    port_b: String,
}

impl Netns {
    fn create(tag: &str) -> Result<Netns, String> {
        let id = std::process::id();
        let ns = |x: &str| format!("ws{tag}{id}{x}");
        let dev = |x: &str| format!("w{tag}{id}{x}");
        let n = Netns { a: ns("a"), m: ns("m"), b: ns("b"), veth_a: dev("a"), port_a: dev("ma"), port_b: dev("mb") };
        let veth_b = dev("b");
        for x in [&n.a, &n.m, &n.b] {
            sh(&["ip", "netns", "add", x])?;
        }
        sh(&["ip", "link", "add", &n.veth_a, "netns", &n.a, "type", "veth", "peer", "name", &n.port_a, "netns", &n.m])?;
        sh(&["ip", "link", "add", &veth_b, "netns", &n.b, "type", "veth", "peer", "name", &n.port_b, "netns", &n.m])?;
        sh(&["ip", "-n", &n.m, "link", "add", "br0", "type", "bridge"])?;
        for port in [&n.port_a, &n.port_b] {
            sh(&["ip", "-n", &n.m, "link", "set", port, "master", "br0"])?;
            sh(&["ip", "-n", &n.m, "link", "set", port, "up"])?;
            let _ = sh(&["ip", "netns", "exec", &n.m, "ethtool", "-K", port, "tso", "off", "gso", "off", "gro", "off"]);
        }
        sh(&["ip", "-n", &n.m, "link", "set", "br0", "up"])?;
        for (ns, dev, v4, v6) in [(&n.a, &n.veth_a, A4, A6), (&n.b, &veth_b, B4, B6)] {
            sh(&["ip", "-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev])?;
            sh(&["ip", "-n", ns, "addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"])?;
            sh(&["ip", "-n", ns, "link", "set", dev, "up"])?;
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            // One segment per frame, as the kernel counts them (no TSO/GSO/GRO).
            let _ = sh(&["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off"]);
        }
        Ok(n)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for x in [&self.a, &self.m, &self.b] {
            let _ = sh(&["ip", "netns", "del", x]);
        }
    }
}

/// A wirestat process, killed if the test ends before it did.
struct Live {
    child: Child,
    stderr: std::sync::mpsc::Receiver<String>,
    err_lines: Vec<String>,
}

impl Live {
    /// Starts wirestat in `ns` and waits until it listens.
    fn start(ns: &str, args: &[&str]) -> Live {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_wirestat")])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wirestat");
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut live = Live { child, stderr: rx, err_lines: Vec::new() };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !live.err_lines.iter().any(|l| l.contains("listening on")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match live.stderr.recv_timeout(left) {
                Ok(l) => live.err_lines.push(l),
                Err(_) => panic!("wirestat did not start listening: {:?}", live.err_lines),
            }
        }
        live
    }

    /// `signal`, then the exit status, stdout and stderr; panics past `limit`.
    fn stop(mut self, signal: i32, limit: Duration) -> (i32, String, Vec<String>, Duration) {
        let t = Instant::now();
        // SAFETY: kill with a pid we own; `ip netns exec` became wirestat (exec).
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(t.elapsed() < limit, "wirestat still running {limit:?} after SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = t.elapsed();
        let mut out = String::new();
        self.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(500)) {
            self.err_lines.push(l);
        }
        (status.code().unwrap_or(-1), out, std::mem::take(&mut self.err_lines), took)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().unwrap(), port)
}

/// Sends `n` bytes and reads `n` back (the peer echoes).
fn round_trip(s: &mut TcpStream, n: usize) {
    s.write_all(&vec![7u8; n]).unwrap();
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
}

/// Accepts one connection on `l` and echoes what it reads until EOF, on a thread;
/// the accepted socket is handed back (still open) through the join handle.
fn echo_one(l: &TcpListener, close_after: bool) -> std::thread::JoinHandle<TcpStream> {
    let l = l.try_clone().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => s.write_all(&buf[..n]).unwrap(),
            }
        }
        if close_after {
            let _ = s.shutdown(Shutdown::Write);
        }
        s
    })
}

/// netstat's name for an `ss` state.
fn netstat_state(ss: &str) -> String {
    match ss {
        "ESTAB" => "ESTABLISHED",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RCVD",
        "FIN-WAIT-1" => "FIN_WAIT_1",
        "FIN-WAIT-2" => "FIN_WAIT_2",
        "TIME-WAIT" => "TIME_WAIT",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "LAST-ACK" => "LAST_ACK",
        "CLOSING" => "CLOSING",
        "LISTEN" => "LISTEN",
        other => other,
    }
    .to_string()
}

type Rows = BTreeMap<(String, String, String), String>;

/// The kernel's view in `ns`: (rows, listening (proto, port), Tcp MIB by wirestat's key names).
fn kernel_view(ns: &str) -> (Rows, BTreeSet<(String, u16)>, BTreeMap<String, u64>) {
    let ss = sh(&["ip", "netns", "exec", ns, "ss", "-tanH"]).unwrap();
    let (mut rows, mut listen) = (Rows::new(), BTreeSet::new());
    for l in ss.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (state, local, peer) = (netstat_state(f[0]), f[3].to_string(), f[4].to_string());
        let proto = if local.starts_with('[') { "TCPv6" } else { "TCP" };
        if state == "LISTEN" {
            listen.insert((proto.to_string(), local.rsplit(':').next().unwrap().parse().unwrap()));
        } else {
            rows.insert((proto.to_string(), local, peer), state);
        }
    }
    let snmp = sh(&["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"]).unwrap();
    let tcp: Vec<Vec<&str>> =
        snmp.lines().filter(|l| l.starts_with("Tcp:")).map(|l| l.split_whitespace().collect()).collect();
    let names = [
        ("ActiveOpens", "active_opens"),
        ("PassiveOpens", "passive_opens"),
        ("AttemptFails", "failed_connection_attempts"),
        ("EstabResets", "reset_connections"),
        ("CurrEstab", "current_connections"),
        ("InSegs", "segments_received"),
        ("OutSegs", "segments_sent"),
        ("RetransSegs", "segments_retransmitted"),
    ];
    let mut mib = BTreeMap::new();
    for (kernel, ours) in names {
        let i = tcp[0].iter().position(|n| *n == kernel).unwrap();
        mib.insert(ours.to_string(), tcp[1][i].parse().unwrap());
    }
    (rows, listen, mib)
}

/// wirestat's view from its JSON: rows, listeners and the counters (both families summed,
/// as Linux's Tcp MIB counts them).
fn tool_view(v: &Value) -> (Rows, BTreeSet<(String, u16)>, BTreeMap<String, u64>) {
    let (mut rows, mut listen) = (Rows::new(), BTreeSet::new());
    for c in v["connections"].as_array().unwrap() {
        let s = |k: &str| c[k].as_str().unwrap().to_string();
        if s("state") == "LISTEN" {
            listen.insert((s("proto"), s("local").rsplit(':').next().unwrap().parse().unwrap()));
        } else {
            rows.insert((s("proto"), s("local"), s("foreign")), s("state"));
        }
    }
    let mut mib = BTreeMap::new();
    for (k, _) in v["tcp_stats"]["ipv4"].as_object().unwrap() {
        let sum = ["ipv4", "ipv6"].iter().map(|f| v["tcp_stats"][f][k].as_u64().unwrap()).sum();
        mib.insert(k.clone(), sum);
    }
    (rows, listen, mib)
}

/// Real TCP between the namespaces leaving the observed host `a` with
/// ESTABLISHED, TIME_WAIT, CLOSE_WAIT and FIN_WAIT_2 rows in both families,
/// listeners, and a refused connection. Returns the sockets to keep open.
fn drive_traffic(n: &Netns) -> (Vec<TcpStream>, Vec<TcpListener>) {
    let (b_l4, b_l6) =
        in_ns(&n.b, || (TcpListener::bind(addr(B4, 6001)).unwrap(), TcpListener::bind(addr(B6, 6001)).unwrap()));
    let (a_l4, a_l6) =
        in_ns(&n.a, || (TcpListener::bind(addr(A4, 7001)).unwrap(), TcpListener::bind(addr(A6, 7001)).unwrap()));
    let mut keep = Vec::new();
    // a → b, kept open: ESTABLISHED (v4).
    let peer = echo_one(&b_l4, false);
    let mut s = in_ns(&n.a, || TcpStream::connect(addr(B4, 6001)).unwrap());
    for _ in 0..5 {
        round_trip(&mut s, 300);
    }
    keep.push(s);
    drop(peer); // the echo thread keeps its socket open while it waits for data
    // a → b, a closes first: TIME_WAIT (v6).
    let peer = echo_one(&b_l6, true);
    let mut s = in_ns(&n.a, || TcpStream::connect(addr(B6, 6001)).unwrap());
    round_trip(&mut s, 1000);
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    drop(s);
    keep.push(peer.join().unwrap());
    // a → b, a half-closes, b never does: FIN_WAIT_2 (v4).
    let peer = std::thread::spawn({
        let l = b_l4.try_clone().unwrap();
        move || l.accept().unwrap().0
    });
    let s = in_ns(&n.a, || TcpStream::connect(addr(B4, 6001)).unwrap());
    s.shutdown(Shutdown::Write).unwrap();
    keep.push(s);
    keep.push(peer.join().unwrap());
    // b → a, b closes and a does not: CLOSE_WAIT (v4).
    let acc = std::thread::spawn({
        let l = a_l4.try_clone().unwrap();
        move || l.accept().unwrap().0
    });
    let c = in_ns(&n.b, || TcpStream::connect(addr(A4, 7001)).unwrap());
    let mut accepted = acc.join().unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(accepted.read(&mut buf).unwrap(), 0);
    keep.extend([accepted, c]);
    // b → a, kept open with data: ESTABLISHED (v6).
    let acc = echo_one(&a_l6, false);
    let mut c = in_ns(&n.b, || TcpStream::connect(addr(A6, 7001)).unwrap());
    for _ in 0..3 {
        round_trip(&mut c, 50);
    }
    keep.push(c);
    drop(acc);
    // a → a closed port of b: refused (RST), a failed attempt (v4 and v6).
    for ip in [B4, B6] {
        let r = in_ns(&n.a, move || TcpStream::connect(addr(ip, 6999)));
        assert!(r.is_err());
    }
    // The listeners stay open until the snapshot, as in a real host.
    (keep, vec![b_l4, b_l6, a_l4, a_l6])
}

#[test]
fn live_capture_matches_the_kernel() {
    if !common::netns::skip_unless_usable("live_capture_matches_the_kernel", &[]) {
        return;
    }
    let started = Instant::now();
    let dir = TestDir::new("live");
    let saved = dir.file("live.pcap");
    let n = Netns::create("l").expect("create namespaces");
    let hosts = ["--host", A4, "--host", A6];
    let mut args: Vec<&str> = vec!["-i", &n.veth_a];
    args.extend(hosts);
    args.extend(["-a", "-s", "--format", "json", "-w", saved.to_str().unwrap()]);
    let live = Live::start(&n.a, &args);
    // A second one beside it, like `netstat -s 0.5`: a JSON document every half second.
    let every = Live::start(&n.a, &["-i", &n.veth_a, "--host", A4, "-s", "--format", "json", "0.5"]);
    let every_started = Instant::now();
    // The bridge's two ports as a tap delivers them, each direction on its own
    // port (only frames entering the bridge there), merged by time.
    let mut tap_args = vec!["-i", &n.port_a, "-i", &n.port_b, "-f", "inbound"];
    tap_args.extend(hosts);
    tap_args.extend(["-a", "-s", "--format", "json"]);
    let tap = Live::start(&n.m, &tap_args);
    // Both ports both ways, as a SPAN session mirroring both ports: every frame twice.
    let mut span_args = vec!["-i", &n.port_a, "-i", &n.port_b];
    span_args.extend(hosts);
    span_args.extend(["-a", "-s", "--format", "json"]);
    let span = Live::start(&n.m, &span_args);
    let keep = drive_traffic(&n);
    // Quiet: nothing in flight when the kernel is read and wirestat stopped.
    std::thread::sleep(Duration::from_millis(300));
    let kernel = kernel_view(&n.a);
    let (code, out, err, took) = live.stop(libc::SIGINT, Duration::from_secs(5));
    // Long enough for two interval boundaries at least.
    std::thread::sleep(Duration::from_millis(1100).saturating_sub(every_started.elapsed()));
    let (every_code, every_out, _, _) = every.stop(libc::SIGTERM, Duration::from_secs(5));
    let (tap_code, tap_out, tap_err, _) = tap.stop(libc::SIGINT, Duration::from_secs(5));
    let (span_code, span_out, span_err, _) = span.stop(libc::SIGINT, Duration::from_secs(5));
    drop(keep);
    for (what, code, out, err) in [("tap", tap_code, &tap_out, &tap_err), ("span", span_code, &span_out, &span_err)] {
        assert_eq!(code, 0, "{what}: {err:?}");
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        let t = tool_view(&v);
        assert_eq!(
            (&t.0, &t.1, &t.2),
            (&kernel.0, &kernel.1, &kernel.2),
            "{what} (two interfaces merged) vs the kernel"
        );
        let dups = v["capture"]["duplicates"].as_u64().unwrap();
        let tcp = v["capture"]["tcp_segments"].as_u64().unwrap();
        if what == "span" {
            // Every TCP frame twice (the bridge's own chatter goes out once per port).
            assert!(2 * dups >= tcp, "span: every frame twice: {}", v["capture"]);
        } else {
            assert_eq!(dups, 0, "tap: {}", v["capture"]);
        }
    }
    assert_eq!(every_code, 0);
    let times: Vec<f64> =
        every_out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["time"].as_f64().unwrap()).collect();
    assert!(times.len() >= 2 && times.windows(2).all(|w| w[0] <= w[1]), "one document per interval: {every_out}");
    assert_eq!(code, 0, "exit status; stderr: {err:?}");
    assert!(took < Duration::from_secs(3), "took {took:?} to stop");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON document: {out}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    let tool = tool_view(&v);
    assert_eq!(tool.0, kernel.0, "rows (wirestat vs ss)");
    assert_eq!(tool.1, kernel.1, "listeners (wirestat vs ss)");
    assert_eq!(tool.2, kernel.2, "Tcp MIB (wirestat vs /proc/net/snmp)");
    // The traffic built what it meant to.
    let states: BTreeSet<&str> = kernel.0.values().map(|s| s.as_str()).collect();
    for s in ["ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT", "FIN_WAIT_2"] {
        assert!(states.contains(s), "no {s} row: {:?}", kernel.0);
    }
    assert!(kernel.2["failed_connection_attempts"] >= 2);
    // Capture health: in JSON and on stderr, nothing lost.
    let cap = &v["capture"];
    assert!(cap["packets_received"].as_u64().unwrap() > 0, "{cap}");
    for k in ["packets_dropped_kernel", "packets_dropped_interface", "packets_dropped_pipeline", "duplicates"] {
        assert_eq!(cap[k].as_u64(), Some(0), "{k}: {cap}");
    }
    assert!(err.iter().any(|l| l.contains("packets received by the capture")), "{err:?}");

    // -w: the saved file replays to the same views.
    let o = run_wirestat(&["-r", saved.to_str().unwrap(), "--host", A4, "--host", A6, "-a", "-s", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    let replay: Value = serde_json::from_str(stdout_of(&o).trim()).unwrap();
    assert_eq!(replay["connections"], v["connections"], "-w replay: rows");
    assert_eq!(replay["tcp_stats"], v["tcp_stats"], "-w replay: counters");
    assert_eq!(replay["capture"]["frames"], v["capture"]["frames"], "-w replay: frames");
    eprintln!("live_capture_matches_the_kernel: {:?}; kernel {kernel:?}", started.elapsed());
}

#[test]
fn missing_interface_lists_the_interfaces() {
    let o = run_wirestat(&["-i", "no-such-if0", "-a"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr_of(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no interface named no-such-if0") && err.contains(" lo"), "{err}");
    assert!(stdout_of(&o).is_empty());
    // -D lists the same names, numbered.
    let d = run_wirestat(&["-D"]);
    assert!(d.status.success());
    assert!(stdout_of(&d).lines().any(|l| l.contains(".lo")), "{}", stdout_of(&d));
}

#[test]
fn no_permission_says_how_to_fix_it() {
    // As root, drop to an unprivileged user for the one run.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let exe = env!("CARGO_BIN_EXE_wirestat");
    let o = if root {
        match Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", exe, "-i", "lo"])
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                eprintln!("\n*** no_permission_says_how_to_fix_it: SKIPPED: no setpriv ({e}) ***\n");
                return;
            }
        }
    } else {
        Command::new(exe).args(["-i", "lo"]).output().unwrap()
    };
    let err = stderr_of(&o);
    if err.contains("Permission denied") && err.contains("setpriv") || err.contains(exe) && err.contains("os error 13")
    {
        eprintln!("\n*** no_permission_says_how_to_fix_it: SKIPPED: the unprivileged user cannot run {exe} ***\n");
        return;
    }
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no permission to capture on lo"), "{err}");
    assert!(err.contains("setcap cap_net_raw,cap_net_admin=eip") && err.contains("root"), "{err}");
}

/// The duplicates fixture: the kernel-truth case mixed-s1 with every frame
/// delivered twice, 7 µs apart, as a SPAN session mirroring both ports does.
#[test]
fn span_duplicates_give_the_views_of_the_original() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dup = root.join("fixtures/repro/span-duplicates.pcap");
    let orig = root.join("fixtures/oracle/mixed-s1/capture.pcap");
    let json = |p: &Path, extra: &[&str]| -> Value {
        let mut args = vec!["-r", p.to_str().unwrap(), "--host", "10.201.0.1", "--host", "fd00:201::1", "-a", "-s"];
        args.extend(["--format", "json"]);
        args.extend(extra);
        let o = run_wirestat(&args);
        assert!(o.status.success(), "{}", stderr_of(&o));
        serde_json::from_str(stdout_of(&o).trim()).unwrap()
    };
    let (d, o) = (json(&dup, &[]), json(&orig, &[]));
    assert_eq!(d["connections"], o["connections"]);
    assert_eq!(d["tcp_stats"], o["tcp_stats"]);
    assert_eq!(d["capture"]["duplicates"], 2421);
    assert_eq!(d["capture"]["frames"], 2 * 2421);
    // The counters are the kernel's (fixtures/oracle/mixed-s1/truth.json).
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("fixtures/oracle/mixed-s1/truth.json")).unwrap())
            .unwrap();
    for (k, want) in truth["tcp"].as_object().unwrap() {
        let got: u64 = ["ipv4", "ipv6"].iter().map(|f| d["tcp_stats"][f][k].as_u64().unwrap()).sum();
        assert_eq!(Some(got), want.as_u64(), "{k}");
    }
    // Kept, they double the segments.
    let k = json(&dup, &["--keep-duplicates"]);
    assert_eq!(k["capture"]["duplicates"], 0);
    assert_ne!(k["tcp_stats"], o["tcp_stats"]);
    // On stderr, plainly.
    let o = run_wirestat(&["-r", dup.to_str().unwrap(), "--host", "10.201.0.1", "-s"]);
    assert!(stderr_of(&o).contains("2421 duplicate frames dropped"), "{}", stderr_of(&o));
}

/// Byte-identical retransmissions exist on real hosts (IPv6 fast
/// retransmissions 35 µs after the original in these captures): none of them
/// may be taken for a duplicate.
#[test]
fn real_retransmissions_are_never_duplicates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/oracle");
    for case in ["loss-s1", "loss-s2", "loss-s3", "loss-s4", "mixed-s1", "mixed-s2", "mixed-s3", "mixed-s4"] {
        let p = root.join(case).join("capture.pcap");
        let o = run_wirestat(&["-r", p.to_str().unwrap(), "--host", "10.201.0.1", "-s", "--format", "json"]);
        let v: Value = serde_json::from_str(stdout_of(&o).trim()).unwrap();
        assert_eq!(v["capture"]["duplicates"], 0, "{case}");
    }
}

#[test]
fn the_clock_moves_on_a_quiet_link() {
    const S: u64 = 1_000_000_000;
    let t0 = 1_700_000_000 * S;
    // Ticks every 100 ms for 70 s: the client's TIME_WAIT (60 s) must end on them.
    let ticks: Vec<u64> = (1..=700).map(|i| t0 + i * S / 10).collect();
    let client: IpAddr = common::craft::V4_CLIENT_STR.parse().unwrap();
    let cfg = live_config();
    let mut seen: Vec<(u64, Vec<String>)> = Vec::new();
    let reading = Reading { interval: 10 * S, ..Reading::default() };
    pipeline::run(Ticking::conversation(t0, ticks), &reading, &cfg, |store, _h, at| {
        let h = HostView::build(store, &[client]);
        seen.push((at, h.rows.iter().map(|(_, r)| r.state.name().to_string()).collect()));
        Ok(())
    })
    .unwrap();
    // A view at every 10 s boundary of the quiet minute, then the last one at the last tick.
    let times: Vec<u64> = seen.iter().map(|(t, _)| (t - t0) / S).collect();
    assert_eq!(times, vec![10, 20, 30, 40, 50, 60, 70, 70], "{seen:?}");
    let tw = |i: usize| seen[i].1.iter().filter(|s| *s == "TIME_WAIT").count();
    assert_eq!(tw(4), 1, "TIME_WAIT at 50 s: {seen:?}");
    assert_eq!(tw(6), 0, "TIME_WAIT gone at 70 s: {seen:?}");
    assert_eq!(seen.last().unwrap().1, vec!["ESTABLISHED"], "{seen:?}");
}

//! Regression tests for the review fixes that show only end to end, through
//! the `wirestat` binary (and `decode()`): eviction across both address
//! families, frames with corrupt timestamps, a repeated `--host`, and IPv4
//! datagrams with a total length of 0 (TCP segmentation offload), and which
//! hosts get a view without `--host`.

mod common;

use common::cli::{capture_count, connection_rows, json_for_hosts, run_wirestat, stderr_of, stdout_of};
use common::craft::*;
use common::pcapfile::{Rec, write_pcap};
use common::tmp::TestDir;
use serde_json::Value;
use wirestat::decode::{Kind, Packet, decode, link};

const ETHERNET: u32 = 1;

/// A client segment on its own source port.
fn client(v6: bool, sport: u16, flags: u8, seq: u32, ack: u32, payload: usize) -> Seg {
    Seg { sport, ..Seg::new(v6, flags, seq, ack, payload) }
}

/// A server segment back to the client's port `cport`.
fn server(v6: bool, cport: u16, flags: u8, seq: u32, ack: u32, payload: usize) -> Seg {
    Seg { from_client: false, sport: 80, dport: cport, ..Seg::new(v6, flags, seq, ack, payload) }
}

/// A record at `ms` milliseconds of capture time.
fn at_ms(ms: u64, frame: Vec<u8>) -> Rec {
    Rec::new((ms / 1000) as u32, (ms % 1000) as u32 * 1000, frame)
}

/// `wirestat -r FILE --format json -a -s --host H... EXTRA...`: asserts
/// success and returns the one JSON document.
fn json_with(file: &std::path::Path, hosts: &[&str], extra: &[&str]) -> Value {
    let mut args = vec!["-r", file.to_str().unwrap(), "--format", "json", "-a", "-s"];
    for h in hosts {
        args.extend(["--host", h]);
    }
    args.extend_from_slice(extra);
    let o = run_wirestat(&args);
    assert!(o.status.success(), "wirestat {args:?} failed: {:?}\nstderr: {}", o.status, stderr_of(&o));
    let out = stdout_of(&o);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

fn row(proto: &str, local: &str, foreign: &str, state: &str) -> (String, String, String, String) {
    (proto.into(), local.into(), foreign.into(), state.into())
}

#[test]
fn eviction_ranks_both_families_together_and_keeps_an_established_ipv6_connection() {
    let dir = TestDir::new("evict-families");
    let file = dir.file("mixed.pcap");
    // 16 half-open IPv4 connections fill the table (--max-flows 16)...
    let mut recs: Vec<Rec> =
        (0..16u16).map(|i| at_ms(1000 + i as u64, eth(&tcp_ip(&client(false, 40000 + i, SYN, 1000, 0, 0))))).collect();
    // ...then one full IPv6 handshake, then a new IPv6 SYN.
    recs.push(at_ms(2000, eth(&tcp_ip(&client(true, 40000, SYN, 100, 0, 0)))));
    recs.push(at_ms(2100, eth(&tcp_ip(&server(true, 40000, SYN | ACK, 500, 101, 0)))));
    recs.push(at_ms(2200, eth(&tcp_ip(&client(true, 40000, ACK, 101, 501, 0)))));
    recs.push(at_ms(3000, eth(&tcp_ip(&client(true, 40001, SYN, 700, 0, 0)))));
    write_pcap(&file, ETHERNET, 65535, &recs);

    let v = json_with(&file, &[V6_CLIENT_STR, V4_CLIENT_STR], &["--workers", "1", "--max-flows", "16"]);
    let rows = connection_rows(&v);
    assert!(
        rows.contains(&row("TCPv6", "[2001:db8::1]:40000", "[2001:db8::2]:80", "ESTABLISHED")),
        "the ESTABLISHED IPv6 connection was evicted before half-open IPv4 ones: {rows:?}"
    );
    assert!(rows.contains(&row("TCPv6", "[2001:db8::1]:40001", "[2001:db8::2]:80", "SYN_SENT")), "{rows:?}");
    assert_eq!(v["tcp_stats"]["ipv6"]["current_connections"], 1);

    // Two evictions made room, both among the half-open IPv4 connections (the oldest).
    assert_eq!(capture_count(&v, "flows_evicted"), 2);
    let v4_half_open: Vec<&str> =
        rows.iter().filter(|r| r.0 == "TCP" && r.3 == "SYN_SENT").map(|r| r.1.as_str()).collect();
    assert_eq!(v4_half_open.len(), 14, "{rows:?}");
    assert!(!v4_half_open.contains(&"192.0.2.1:40000") && !v4_half_open.contains(&"192.0.2.1:40001"), "{rows:?}");
}

#[test]
fn frame_stamped_far_in_the_future_does_not_fire_timers_or_end_the_capture_there() {
    // The far-future frame is an ARP in one capture, a TCP segment in the other.
    let arp = eth_with(0x0806, &[0u8; 28]);
    let dup_ack = eth(&tcp_ip(&client(false, 40001, ACK, 1001, 5001, 0)));
    for (what, stray) in [("ARP", arp), ("TCP", dup_ack)] {
        let dir = TestDir::new("bad-ts");
        let file = dir.file("future.pcap");
        let recs = vec![
            at_ms(100_000, eth(&tcp_ip(&client(false, 40000, SYN, 1000, 0, 0)))),
            at_ms(100_500, eth(&tcp_ip(&client(false, 40001, SYN, 1000, 0, 0)))),
            at_ms(100_600, eth(&tcp_ip(&server(false, 40001, SYN | ACK, 5000, 1001, 0)))),
            at_ms(100_700, eth(&tcp_ip(&client(false, 40001, ACK, 1001, 5001, 0)))),
            Rec::new(4_000_000_000, 0, stray),
            at_ms(101_000, eth(&tcp_ip(&client(false, 40001, PSH | ACK, 1001, 5001, 2)))),
        ];
        write_pcap(&file, ETHERNET, 65535, &recs);

        let (v, _) = json_for_hosts(&file, &[V4_CLIENT_STR]);
        let rows = connection_rows(&v);
        assert_eq!(
            rows,
            [
                row("TCP", "192.0.2.1:40000", "198.51.100.2:80", "SYN_SENT"),
                row("TCP", "192.0.2.1:40001", "198.51.100.2:80", "ESTABLISHED"),
            ],
            "{what}: a connect() 1 s old must still be trying"
        );
        assert_eq!(v["tcp_stats"]["ipv4"]["failed_connection_attempts"], 0, "{what}");
        assert_eq!(v["time"].as_f64(), Some(101.0), "{what}: the capture ends at its last real timestamp");
        assert_eq!(capture_count(&v, "bad_timestamps"), 1, "{what}");
        assert_eq!(capture_count(&v, "frames"), 6, "{what}");
    }
}

#[test]
fn repeated_host_gives_the_same_view_as_naming_it_once() {
    let dir = TestDir::new("host-twice");
    let file = dir.file("conv.pcap");
    let frames: Vec<Vec<u8>> = conversation(false).iter().map(|p| eth(p)).collect();
    let recs: Vec<Rec> = frames.into_iter().enumerate().map(|(i, f)| at_ms(1000 + i as u64, f)).collect();
    write_pcap(&file, ETHERNET, 65535, &recs);

    let (once, _) = json_for_hosts(&file, &[V4_CLIENT_STR]);
    let (twice, _) = json_for_hosts(&file, &[V4_CLIENT_STR, V4_CLIENT_STR]);
    // The conversation: client TIME_WAIT on 40000, ESTABLISHED on 40001, 2 active opens.
    assert_eq!(connection_rows(&twice).len(), 2, "rows doubled: {twice}");
    assert_eq!(twice["tcp_stats"]["ipv4"]["active_opens"], 2, "counters doubled: {twice}");
    assert_eq!(twice["tcp_stats"]["ipv4"]["segments_sent"], 9, "counters doubled: {twice}");
    assert_eq!(connection_rows(&twice), connection_rows(&once));
    assert_eq!(twice["tcp_stats"], once["tcp_stats"]);
    assert_eq!(twice["capture"], once["capture"]);
}

/// Sets an IPv4 packet's total length to 0, as a sender using TCP segmentation
/// offload hands it to the capture, and fixes the header checksum.
fn tso_total_length(ip: &[u8]) -> Vec<u8> {
    let mut p = ip.to_vec();
    assert_eq!(p[0], 0x45);
    p[2..4].fill(0);
    p[10..12].fill(0);
    let sum = p[..20].chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let folded = (folded & 0xffff) + (folded >> 16);
    p[10..12].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    p
}

#[test]
fn ipv4_total_length_zero_takes_the_captured_length() {
    let tso = eth(&tso_total_length(&tcp_ip(&client(false, 40000, PSH | ACK, 1001, 5001, 3000))));

    // decode(): a TCP segment whose payload is what the frame holds.
    let mut s = Packet::default();
    assert_eq!(decode(link::ETHERNET, &tso, &mut s), Ok(Kind::Tcp));
    assert_eq!((s.seq, s.ack, s.payload_len), (1001, 5001, 3000));

    // End to end: the segment is counted and tracked like any other.
    let dir = TestDir::new("tso");
    let file = dir.file("tso.pcap");
    let frames = vec![
        eth(&tcp_ip(&client(false, 40000, SYN, 1000, 0, 0))),
        eth(&tcp_ip(&server(false, 40000, SYN | ACK, 5000, 1001, 0))),
        eth(&tcp_ip(&client(false, 40000, ACK, 1001, 5001, 0))),
        tso,
        eth(&tcp_ip(&server(false, 40000, ACK, 5001, 4001, 0))),
        // The client closes right after the 3000 bytes.
        eth(&tcp_ip(&client(false, 40000, FIN | ACK, 4001, 5001, 0))),
        eth(&tcp_ip(&server(false, 40000, ACK, 5001, 4002, 0))),
    ];
    let recs: Vec<Rec> = frames.into_iter().enumerate().map(|(i, f)| at_ms(1000 + i as u64, f)).collect();
    write_pcap(&file, ETHERNET, 65535, &recs);

    let (v, _) = json_for_hosts(&file, &[V4_CLIENT_STR, V4_SERVER_STR]);
    assert_eq!(capture_count(&v, "undecodable"), 0);
    assert_eq!(capture_count(&v, "tcp_segments"), 7);
    let ipv4 = &v["tcp_stats"]["ipv4"];
    // Both hosts' counters together: 7 segments each way.
    assert_eq!(ipv4["segments_sent"], 7, "{v}");
    assert_eq!(ipv4["segments_received"], 7, "{v}");
    assert_eq!(ipv4["segments_retransmitted"], 0, "{v}");
    let conns: Vec<_> = connection_rows(&v).into_iter().filter(|r| r.3 != "LISTEN").collect();
    assert_eq!(
        conns,
        [
            row("TCP", "192.0.2.1:40000", "198.51.100.2:80", "FIN_WAIT_2"),
            row("TCP", "198.51.100.2:80", "192.0.2.1:40000", "CLOSE_WAIT"),
        ]
    );
}

/// The host of each JSON view `wirestat ARGS --format json` prints, in order.
fn hosts_shown(args: &[&str]) -> Vec<String> {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    let o = run_wirestat(&args);
    assert!(o.status.success(), "{}", stderr_of(&o));
    stdout_of(&o)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["host"][0].as_str().unwrap().to_string())
        .collect()
}

/// Without `--host`, which hosts get a view: a table shows the hosts with rows
/// (and, with `-a`, listeners); `-s` shows every host that took part in TCP,
/// also once all its connections are closed (netstat -s on a quiet host still
/// prints its counters).
#[test]
fn hosts_without_open_connections_still_get_their_counters_and_listeners() {
    let dir = TestDir::new("closed-hosts");
    let p = dir.file("closed.pcap");
    // One whole conversation: the client ends in TIME_WAIT, the server has no row left.
    let frames: Vec<Vec<u8>> = conversation_segs(false).iter().take(10).map(|s| eth(&tcp_ip(s))).collect();
    let recs: Vec<Rec> = frames.into_iter().enumerate().map(|(i, f)| at_ms(i as u64, f)).collect();
    write_pcap(&p, ETHERNET, 65535, &recs);
    let hosts = |extra: &[&str]| {
        let mut args = vec!["-r", p.to_str().unwrap()];
        args.extend_from_slice(extra);
        hosts_shown(&args)
    };
    assert_eq!(hosts(&["-n"]), [V4_CLIENT_STR], "only the client has a row (TIME_WAIT)");
    assert_eq!(hosts(&["-a", "-n"]), [V4_CLIENT_STR, V4_SERVER_STR], "the server still listens");
    assert_eq!(hosts(&["-s"]), [V4_CLIENT_STR, V4_SERVER_STR]);
    // The server's view under -s: no rows, its counters intact.
    let o = run_wirestat(&["-r", p.to_str().unwrap(), "--format", "json", "-s"]);
    let server: Value = serde_json::from_str(stdout_of(&o).lines().nth(1).unwrap()).unwrap();
    assert_eq!(connection_rows(&server).len(), 0);
    assert_eq!(server["tcp_stats"]["ipv4"]["passive_opens"], 1);
    assert_eq!(server["tcp_stats"]["ipv4"]["segments_received"], 6);
}

/// Host order without `--host` is the same on every run. Flows are spread over
/// workers by a hash seeded per process, so a listener seen by two workers
/// used to count twice in the busiest-first ranking on some runs only.
#[test]
fn host_order_is_the_same_on_every_run() {
    let f = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/oracle/mixed-s1/capture.pcap");
    let run = || stdout_of(&run_wirestat(&["-r", f, "-a", "-n", "-s", "--workers", "3"]));
    let first = run();
    assert!(first.matches("\nHost ").count() >= 4, "{first}");
    for _ in 0..12 {
        assert_eq!(run(), first);
    }
}

/// `-p TCP` / `-p TCPv6` without `--host` print only the addresses of that family.
#[test]
fn protocol_filter_picks_the_hosts_of_its_family() {
    let f = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/oracle/mixed-s1/capture.pcap");
    let hosts = |p: &str| hosts_shown(&["-r", f, "-a", "-s", "-p", p]);
    assert_eq!(hosts("TCP"), ["10.201.0.1", "10.201.0.2"]);
    assert_eq!(hosts("TCPv6"), ["fd00:201::1", "fd00:201::2"]);
}

//! Against a real kernel: TCP connections across a veth pair between two
//! network namespaces, captured by tcpdump on one end. The capture must hold
//! the handshakes, and wirestat must read the states the kernel left.
//! Needs root, iproute2 and tcpdump; skipped (loudly) otherwise.

mod common;

use common::netns::{self, A4, A6, B4, B6, VethPair};
use common::tmp::TestDir;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(5);

/// TCP frames of a classic Ethernet pcap as (src, sport, dst, dport, flags).
fn tcp_frames(pcap: &[u8]) -> Vec<(IpAddr, u16, IpAddr, u16, u8)> {
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "a little-endian µs pcap");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= pcap.len() {
        let incl = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
        let f = &pcap[off + 16..off + 16 + incl];
        off += 16 + incl;
        let (src, dst, l4): (IpAddr, IpAddr, &[u8]) = match u16::from_be_bytes([f[12], f[13]]) {
            0x0800 if f[23] == 6 => {
                let ihl = (f[14] & 0x0f) as usize * 4;
                let a = |i: usize| IpAddr::from(<[u8; 4]>::try_from(&f[i..i + 4]).unwrap());
                (a(26), a(30), &f[14 + ihl..])
            }
            0x86dd if f[20] == 6 => {
                let a = |i: usize| IpAddr::from(<[u8; 16]>::try_from(&f[i..i + 16]).unwrap());
                (a(22), a(38), &f[54..])
            }
            _ => continue,
        };
        let port = |i: usize| u16::from_be_bytes([l4[i], l4[i + 1]]);
        out.push((src, port(0), dst, port(2), l4[13]));
    }
    out
}

/// Accepts one connection (bounded), echoes what it reads reversed, and keeps
/// the socket open until the client closes.
fn serve_once(l: TcpListener) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        l.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + LIMIT;
        let mut s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        buf.reverse();
        s.write_all(&buf).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest); // until the client's FIN, then close
    })
}

fn talk(c: &mut TcpStream) {
    c.set_read_timeout(Some(LIMIT)).unwrap();
    c.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"olleh");
}

#[test]
fn tcp_across_a_veth_is_captured_and_its_states_read_back() {
    if !netns::skip_unless_usable("tcp_across_a_veth_is_captured_and_its_states_read_back", &["tcpdump"]) {
        return;
    }
    let dir = TestDir::new("netns");
    let pair = VethPair::new().expect("namespaces and veth");
    let pcap = dir.file("a.pcap");
    let mut tcpdump = pair
        .spawn(
            &pair.a,
            &[
                "tcpdump",
                "-i",
                &pair.a_if,
                "-U",
                "--immediate-mode",
                "-n",
                "-s",
                "160",
                "-Z",
                "root",
                "-w",
                pcap.to_str().unwrap(),
            ],
            Stdio::null(),
            Stdio::piped(),
        )
        .expect("start tcpdump");
    let deadline = Instant::now() + LIMIT;
    while std::fs::metadata(&pcap).map(|m| m.len() < 24).unwrap_or(true) {
        assert!(Instant::now() < deadline, "tcpdump did not open its capture");
        std::thread::sleep(Duration::from_millis(10));
    }

    // b listens on both families; a connects to each. The IPv4 client closes
    // first (TIME_WAIT in a); the IPv6 one stays open (ESTABLISHED).
    let (l4, l6) = pair.in_ns(&pair.b, || {
        (TcpListener::bind((B4, 0)).expect("bind v4 in b"), TcpListener::bind((B6, 0)).expect("bind v6 in b"))
    });
    let (p4, p6) = (l4.local_addr().unwrap().port(), l6.local_addr().unwrap().port());
    let (s4, s6) = (serve_once(l4), serve_once(l6));
    let (mut c4, mut c6) = pair.in_ns(&pair.a, || {
        let to = |ip: &str, port| SocketAddr::new(ip.parse().unwrap(), port);
        (
            TcpStream::connect_timeout(&to(B4, p4), LIMIT).expect("connect over IPv4"),
            TcpStream::connect_timeout(&to(B6, p6), LIMIT).expect("connect over IPv6"),
        )
    });
    talk(&mut c4);
    talk(&mut c6);
    let (a4, a6) = (c4.local_addr().unwrap(), c6.local_addr().unwrap());
    drop(c4);
    s4.join().expect("IPv4 server");
    let deadline = Instant::now() + LIMIT; // until a's kernel has the IPv4 connection in TIME_WAIT
    while !pair.exec(&pair.a, &["ss", "-tanH", "state", "time-wait"]).unwrap_or_default().contains(&a4.to_string()) {
        assert!(Instant::now() < deadline, "no TIME_WAIT in a");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let st = tcpdump.signal_and_wait(libc::SIGINT, LIMIT);
    assert!(st.success(), "tcpdump: {st:?}");
    drop(c6);
    s6.join().expect("IPv6 server");

    let frames = tcp_frames(&std::fs::read(&pcap).unwrap());
    let (syn, ack, fin) = (0x02u8, 0x10u8, 0x01u8);
    for (client, server) in
        [(a4, SocketAddr::new(B4.parse().unwrap(), p4)), (a6, SocketAddr::new(B6.parse().unwrap(), p6))]
    {
        let (c, s) = ((client.ip(), client.port()), (server.ip(), server.port()));
        let has = |from: (IpAddr, u16), to: (IpAddr, u16), want: u8| {
            frames.iter().any(|&(a, ap, b, bp, fl)| (a, ap) == from && (b, bp) == to && fl & (syn | ack) == want)
        };
        assert!(has(c, s, syn), "no SYN {client} -> {server} in the capture: {frames:?}");
        assert!(has(s, c, syn | ack), "no SYN-ACK {server} -> {client}");
        assert!(has(c, s, ack), "no ACK {client} -> {server}");
    }
    assert!(
        frames.iter().any(|&(a, ap, _, _, fl)| (a, ap) == (a4.ip(), a4.port()) && fl & fin != 0),
        "no FIN from a over IPv4"
    );

    let out =
        common::cli::run_wirestat(&["-r", pcap.to_str().unwrap(), "--host", A4, "--host", A6, "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = common::cli::connection_rows(&v);
    let row = |local: SocketAddr, foreign: String| {
        rows.iter().find(|r| r.1 == local.to_string() && r.2 == foreign).map(|r| r.3.clone())
    };
    assert_eq!(row(a4, format!("{B4}:{p4}")).as_deref(), Some("TIME_WAIT"), "{rows:?}");
    assert_eq!(row(a6, format!("[{B6}]:{p6}")).as_deref(), Some("ESTABLISHED"), "{rows:?}");
    for fam in ["ipv4", "ipv6"] {
        assert_eq!(v["tcp_stats"][fam]["active_opens"], 1, "{fam}: {}", v["tcp_stats"]);
    }
}

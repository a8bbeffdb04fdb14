//! Captures in the forms they come in: pcapng files that libpcap 1.10 refuses
//! (read by wirestat's own pcapng reader, filter included), and gzip or zstd
//! compressed captures, recognised by their magic bytes, from files or
//! standard input.

mod common;

use common::cli::{capture_count, run_wirestat, stderr_of, stdout_of};
use common::craft::*;
use common::pcapfile::Rec;
use common::tmp::TestDir;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MIXED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/oracle/mixed-s1/capture.pcap");
const TWO_IDB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pcapng/two-idb.pcapng");
const LDAP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/corpus/zeek/ldap-gap-data-missing.pcapng");
/// A host in none of the captures: the one JSON view carries the capture's health.
const NOBODY: &str = "192.0.2.254";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

fn write(dir: &TestDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.file(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `wirestat -r FILE -f FILTER` for a host in none of the files: (frames, TCP
/// segments, read errors).
fn counts(file: &Path, filter: Option<&str>) -> (u64, u64, Vec<String>) {
    let mut args = vec!["-r", file.to_str().unwrap(), "--host", NOBODY, "--format", "json"];
    if let Some(f) = filter {
        args.extend(["-f", f]);
    }
    let o = run_wirestat(&args);
    let v: serde_json::Value = serde_json::from_str(stdout_of(&o).trim()).unwrap();
    let errors: Vec<String> = v["capture"]["read_errors"].as_array().unwrap().iter().map(|e| e.to_string()).collect();
    // Exit status 1 says the capture was read in part, and only that.
    let want = if errors.is_empty() { 0 } else { 1 };
    assert_eq!(o.status.code(), Some(want), "{args:?}: {}", stderr_of(&o));
    (capture_count(&v, "frames"), capture_count(&v, "tcp_segments"), errors)
}

/// Runs wirestat with `bytes` on its standard input.
fn run_with_stdin(args: &[&str], bytes: Vec<u8>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wirestat"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    o
}

/// `wirestat -r -` for a host in none of the files, fed `bytes`: (frames, read errors).
fn counts_stdin(bytes: Vec<u8>, filter: Option<&str>) -> (u64, Vec<String>) {
    let mut args = vec!["-r", "-", "--host", NOBODY, "--format", "json"];
    if let Some(f) = filter {
        args.extend(["-f", f]);
    }
    let o = run_with_stdin(&args, bytes);
    let v: serde_json::Value = serde_json::from_str(stdout_of(&o).trim()).unwrap();
    let errors: Vec<String> = v["capture"]["read_errors"].as_array().unwrap().iter().map(|e| e.to_string()).collect();
    // Exit status 1 says the capture was read in part, and only that.
    assert_eq!(o.status.code(), Some(if errors.is_empty() { 0 } else { 1 }), "{args:?}: {}", stderr_of(&o));
    (capture_count(&v, "frames"), errors)
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len().next_multiple_of(4)) as u32;
    let mut b = [kind.to_le_bytes(), len.to_le_bytes()].concat();
    b.extend(body);
    b.resize(len as usize - 4, 0);
    b.extend(len.to_le_bytes());
    b
}

fn shb() -> Vec<u8> {
    block(0x0a0d_0d0a, &[&0x1a2b_3c4du32.to_le_bytes()[..], &[1, 0, 0, 0], &[0xff; 8]].concat())
}

fn idb(linktype: u16, snaplen: u32) -> Vec<u8> {
    block(1, &[&linktype.to_le_bytes()[..], &[0, 0], &snaplen.to_le_bytes()].concat())
}

fn epb(if_id: u32, r: &Rec) -> Vec<u8> {
    let ts = r.sec as u64 * 1_000_000 + r.usec as u64;
    let words = [if_id, (ts >> 32) as u32, ts as u32, r.data.len() as u32, r.orig_len];
    block(6, &[words.iter().flat_map(|w| w.to_le_bytes()).collect(), r.data.clone()].concat())
}

/// TCP frames to `dport`, 1 ms apart from `start` ms.
fn frames_to(dports: &[u16], start: usize) -> Vec<Rec> {
    dports
        .iter()
        .enumerate()
        .map(|(i, &dport)| {
            let seg = Seg { dport, ..Seg::new(false, SYN, 1000 + i as u32, 0, 0) };
            Rec::new(1_700_000_000, ((start + i) * 1000) as u32, eth(&tcp_ip(&seg)))
        })
        .collect()
}

#[test]
fn pcapng_files_libpcap_refuses_read_like_tshark() {
    // tshark 4.0 -Y tcp: 8 and 18 frames.
    assert_eq!(counts(Path::new(TWO_IDB), None), (8, 8, vec![]));
    assert_eq!(counts(Path::new(LDAP), None), (18, 18, vec![]));
}

#[test]
fn the_filter_applies_to_frames_read_without_libpcap() {
    let p = Path::new(TWO_IDB);
    // tshark: 7 VLAN-tagged IPv6 frames on 58307<->80 (interface 0), 3 of
    // them from port 80, and one untagged IPv4 frame from 48777 (interface 1).
    // As with libpcap, "tcp" alone does not look inside a VLAN tag.
    assert_eq!(counts(p, Some("vlan and tcp port 58307")).0, 7);
    assert_eq!(counts(p, Some("tcp port 58307")).0, 0);
    assert_eq!(counts(p, Some("tcp port 48777")).0, 1);
    assert_eq!(counts(p, Some("vlan and src port 80")).0, 3);
    assert_eq!(counts(p, Some("udp or (vlan and udp)")).0, 0);
    // Lengths on the wire: 6 frames of 78 bytes, one of 227, one of 54.
    assert_eq!(counts(p, Some("greater 78")).0, 7);
    assert_eq!(counts(p, Some("greater 100")).0, 1);
    let o = run_wirestat(&["-r", TWO_IDB, "-f", "tcp port", "--host", NOBODY]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
    assert!(stderr_of(&o).contains("invalid filter"), "{}", stderr_of(&o));
}

#[test]
fn libpcap_refusing_in_mid_file_hands_over_after_the_frames_it_delivered() {
    let dir = TestDir::new("ng-midway");
    // libpcap delivers the first three frames, then refuses the second
    // interface (another snapshot length) and the frames on it.
    let mut f = [shb(), idb(1, 65535)].concat();
    for r in frames_to(&[80, 81, 80], 0) {
        f.extend(epb(0, &r));
    }
    f.extend(idb(1, 128));
    for (i, r) in frames_to(&[81, 80, 81], 3).iter().enumerate() {
        f.extend(epb(i as u32 % 2, r));
    }
    let p = write(&dir, "midway.pcapng", &f);
    assert_eq!(counts(&p, None), (6, 6, vec![]));
    assert_eq!(counts(&p, Some("tcp dst port 81")), (3, 3, vec![]));
    assert_eq!(counts(&p, Some("tcp dst port 80")), (3, 3, vec![]));
    // Cut off: corrupt for both readers; the frames before the cut are read.
    let cut = write(&dir, "midway-cut.pcapng", &f[..f.len() - 10]);
    let (frames, _, errors) = counts(&cut, None);
    assert_eq!((frames, errors.len()), (5, 1), "{errors:?}");
    assert!(errors[0].contains("after 5 frames"), "{errors:?}");
    // The same compressed, and on standard input, which cannot be opened
    // again: its start is kept while libpcap reads it.
    let gz = write(&dir, "midway.pcapng.gz", &gzip(&f));
    assert_eq!(counts(&gz, Some("tcp dst port 81")), (3, 3, vec![]));
    assert_eq!(counts_stdin(f.clone(), Some("tcp dst port 81")), (3, vec![]));
    assert_eq!(counts_stdin(gzip(&f), None), (6, vec![]));
    let (frames, errors) = counts_stdin(f[..f.len() - 10].to_vec(), None);
    assert_eq!((frames, errors.len()), (5, 1), "{errors:?}");
}

#[test]
fn pcapng_files_libpcap_refuses_on_standard_input() {
    for (path, n) in [(TWO_IDB, 8), (LDAP, 18)] {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(counts_stdin(bytes.clone(), None), (n, vec![]), "{path}");
        assert_eq!(counts_stdin(zstd(&bytes), None), (n, vec![]), "{path}");
    }
}

#[test]
fn a_pcapng_libpcap_refuses_to_open() {
    // libpcap 1.10 knows pcapng versions 1.0 and 1.2 only; a minor version
    // changes nothing a reader needs.
    let dir = TestDir::new("ng-open");
    let mut f = [shb(), idb(1, 65535)].concat();
    f[14] = 1;
    for r in frames_to(&[80, 81], 0) {
        f.extend(epb(0, &r));
    }
    let p = write(&dir, "v1.1.pcapng", &f);
    assert_eq!(counts(&p, None), (2, 2, vec![]));
    assert_eq!(counts(&p, Some("tcp dst port 81")), (1, 1, vec![]));
    assert_eq!(counts_stdin(f.clone(), Some("tcp dst port 81")), (1, vec![]));
    let o = run_wirestat(&["-r", p.to_str().unwrap(), "-f", "tcp port"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
    assert!(stderr_of(&o).contains("invalid filter"), "{}", stderr_of(&o));
    // Refused by both readers: libpcap's verdict.
    f[12] = 2;
    let p = write(&dir, "v2.1.pcapng", &f);
    let o = run_wirestat(&["-r", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
    assert!(stderr_of(&o).contains("unsupported pcapng savefile version 2.1"), "{}", stderr_of(&o));
}

#[test]
fn the_filter_sees_the_same_lengths_as_libpcaps() {
    let dir = TestDir::new("ng-lengths");
    // Frames cut to 60 bytes of 1500 on the wire.
    let recs: Vec<Rec> =
        frames_to(&[80, 81, 82, 83], 0).into_iter().map(|r| Rec { orig_len: 1500, ..r.cut(60) }).collect();
    let one_idb: Vec<u8> =
        [shb(), idb(1, 60)].into_iter().chain(recs.iter().map(|r| epb(0, r))).collect::<Vec<_>>().concat();
    let two_idb: Vec<u8> = [shb(), idb(1, 60), idb(1, 96)]
        .into_iter()
        .chain(recs.iter().enumerate().map(|(i, r)| epb(i as u32 % 2, r)))
        .collect::<Vec<_>>()
        .concat();
    let libpcap = write(&dir, "one-idb.pcapng", &one_idb);
    let own = write(&dir, "two-idb.pcapng", &two_idb);
    for filter in ["greater 1000", "less 100", "len = 1500", "tcp dst port 81 or tcp dst port 83"] {
        let want = counts(&libpcap, Some(filter));
        assert_eq!(counts(&own, Some(filter)), want, "{filter}");
        assert!(want.0 > 0 || filter == "less 100", "{filter}: {want:?}");
    }
}

#[test]
fn compressed_captures_give_the_same_views() {
    let dir = TestDir::new("compressed");
    let plain = std::fs::read(MIXED).unwrap();
    let args = |p: &str| {
        run_wirestat(&["-r", p, "--host", "10.201.0.1", "--host", "fd00:201::1", "-a", "-s", "--format", "json"])
    };
    let want = args(MIXED);
    assert!(want.status.success());
    // By magic, not by name.
    for (name, bytes) in [
        ("capture.pcap.gz", gzip(&plain)),
        ("capture.pcap.zst", zstd(&plain)),
        ("gzip-named.pcap", gzip(&plain)),
        ("zstd-no-extension", zstd(&plain)),
    ] {
        let p = write(&dir, name, &bytes);
        let got = args(p.to_str().unwrap());
        assert!(got.status.success(), "{name}: {}", stderr_of(&got));
        assert_eq!(stdout_of(&got), stdout_of(&want), "{name}");
        assert_eq!(stderr_of(&got), stderr_of(&want), "{name}");
    }
    // Standard input.
    for (name, bytes) in [("gzip", gzip(&plain)), ("zstd", zstd(&plain)), ("plain", plain.clone())] {
        let args = ["-r", "-", "--host", "10.201.0.1", "--host", "fd00:201::1", "-a", "-s", "--format", "json"];
        let got = run_with_stdin(&args, bytes);
        assert!(got.status.success(), "stdin {name}: {}", stderr_of(&got));
        assert_eq!(stdout_of(&got), stdout_of(&want), "stdin {name}");
    }
}

#[test]
fn compressed_pcapng_libpcap_refuses() {
    let dir = TestDir::new("compressed-ng");
    let ng = std::fs::read(TWO_IDB).unwrap();
    for (name, bytes) in [("two-idb.pcapng.gz", gzip(&ng)), ("two-idb.pcapng.zst", zstd(&ng))] {
        let p = write(&dir, name, &bytes);
        assert_eq!(counts(&p, None), (8, 8, vec![]), "{name}");
        assert_eq!(counts(&p, Some("tcp port 48777")).0, 1, "{name}");
    }
}

#[test]
fn cut_or_corrupt_compressed_files_are_read_errors() {
    let dir = TestDir::new("compressed-bad");
    let plain = std::fs::read(MIXED).unwrap();
    let (all, _, _) = counts(Path::new(MIXED), None);
    let gz = gzip(&plain);
    let zst = zstd(&plain);
    let mut flipped = gz.clone();
    flipped[gz.len() / 2] ^= 0x10;
    for (name, bytes, what) in [
        ("cut.pcap.gz", &gz[..gz.len() / 2], "gzip data cut off or corrupt"),
        ("cut.pcap.zst", &zst[..zst.len() / 2], "zstd data cut off or corrupt"),
        // The damage shows in the records before the checksum at the end can.
        ("flipped.pcap.gz", &flipped[..], "cut off or corrupt"),
    ] {
        let p = write(&dir, name, bytes);
        let o = run_wirestat(&["-r", p.to_str().unwrap(), "--host", NOBODY, "--format", "json"]);
        let err = stderr_of(&o);
        assert!(o.status.code() == Some(1) && !err.contains("panicked"), "{name}: {err}");
        let v: serde_json::Value = serde_json::from_str(stdout_of(&o).trim()).unwrap();
        let frames = capture_count(&v, "frames");
        assert!(frames > 0 && frames < all, "{name}: {frames} of {all} frames");
        assert!(err.contains(name) && err.contains(what) && err.contains(&format!("after {frames} frames")), "{err}");
    }
    // Cut inside the compressed header: nothing to read at all.
    let p = write(&dir, "header.pcap.gz", &gz[..6]);
    let o = run_wirestat(&["-r", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
    assert!(stderr_of(&o).contains("header.pcap.gz"), "{}", stderr_of(&o));
}

#[test]
fn a_compressed_file_left_unread_is_closed() {
    // One bad file among several fails before any is read: the compressed one
    // opened already is dropped unread (decompression runs on the reading
    // thread, so nothing is left waiting on it).
    let dir = TestDir::new("compressed-early");
    let gz = write(&dir, "a.pcap.gz", &gzip(&std::fs::read(MIXED).unwrap()));
    let missing = dir.file("missing.pcap");
    let o = run_wirestat(&["-r", gz.to_str().unwrap(), "-r", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
    assert!(stderr_of(&o).contains("missing.pcap"), "{}", stderr_of(&o));
}

//! Shared helpers for the integration tests.
//!
//! Each group lives in its own module so that helpers added later by other
//! tests do not collide: [`tmp`] (per-test temp dirs), [`pcapfile`] (writing
//! classic pcap and pcapng files by hand, well-formed or not), [`craft`]
//! (crafting frames: TCP conversations, link layers, tunnels, ICMP errors),
//! [`cli`] (running the `wirestat` binary), and [`netns`] (two network
//! namespaces and a veth pair, for tests against a real kernel; root only).
//!
//! Crafted packets use only documentation addresses (192.0.2.0/24,
//! 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).

#![allow(dead_code)]

pub mod netns;

/// Per-test temporary directories under `std::env::temp_dir()`.
pub mod tmp {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    static NEXT: AtomicU32 = AtomicU32::new(0);

    /// A fresh directory, unique per process and call, removed on drop
    /// (kept when `WIRESTAT_TEST_KEEP` is set, to look at the crafted files).
    pub struct TestDir(PathBuf);

    impl TestDir {
        pub fn new(tag: &str) -> TestDir {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("wirestat-test-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("create temp dir");
            TestDir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }

        pub fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            if std::env::var_os("WIRESTAT_TEST_KEEP").is_some() {
                return;
            }
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Capture files written byte by byte, so that tests control every field
/// (including the ones a hostile file gets wrong).
pub mod pcapfile {
    use std::path::Path;

    /// One captured frame: timestamp, the captured bytes, and the length the
    /// frame had on the wire (`orig_len >= data.len()` unless a test lies).
    #[derive(Clone, Debug)]
    pub struct Rec {
        pub sec: u32,
        pub usec: u32,
        pub data: Vec<u8>,
        pub orig_len: u32,
    }

    impl Rec {
        /// A whole frame.
        pub fn new(sec: u32, usec: u32, data: Vec<u8>) -> Rec {
            let orig_len = data.len() as u32;
            Rec { sec, usec, data, orig_len }
        }

        /// The same frame cut to `snaplen` bytes (the wire length is kept).
        pub fn cut(mut self, snaplen: usize) -> Rec {
            self.data.truncate(snaplen);
            self
        }
    }

    /// Frames one millisecond apart from a fixed start, in order.
    pub fn recs_1ms_apart(frames: Vec<Vec<u8>>) -> Vec<Rec> {
        frames
            .into_iter()
            .enumerate()
            .map(|(i, f)| Rec::new(1_700_000_000 + (i / 1000) as u32, (i % 1000) as u32 * 1000, f))
            .collect()
    }

    /// Classic little-endian microsecond pcap: 24-byte global header.
    pub fn pcap_global_header(linktype: u32, snaplen: u32) -> Vec<u8> {
        let mut b = Vec::with_capacity(24);
        b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        b.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        b.extend_from_slice(&snaplen.to_le_bytes());
        b.extend_from_slice(&linktype.to_le_bytes());
        b
    }

    /// A 16-byte record header with arbitrary (possibly lying) lengths.
    pub fn pcap_record_header(sec: u32, usec: u32, caplen: u32, orig_len: u32) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        for v in [sec, usec, caplen, orig_len] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// A whole classic pcap file in memory.
    pub fn pcap_bytes(linktype: u32, snaplen: u32, recs: &[Rec]) -> Vec<u8> {
        let mut b = pcap_global_header(linktype, snaplen);
        for r in recs {
            b.extend(pcap_record_header(r.sec, r.usec, r.data.len() as u32, r.orig_len));
            b.extend_from_slice(&r.data);
        }
        b
    }

    pub fn write_pcap(path: &Path, linktype: u32, snaplen: u32, recs: &[Rec]) {
        std::fs::write(path, pcap_bytes(linktype, snaplen, recs)).expect("write pcap");
    }

    fn pcapng_block(typ: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        let mut b = Vec::with_capacity(total as usize);
        b.extend_from_slice(&typ.to_le_bytes());
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&total.to_le_bytes());
        b
    }

    /// A little-endian pcapng file: a Section Header Block, one Interface
    /// Description Block (default microsecond resolution), and one Enhanced
    /// Packet Block per record.
    pub fn pcapng_bytes(linktype: u16, snaplen: u32, recs: &[Rec]) -> Vec<u8> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        let mut out = pcapng_block(0x0a0d_0d0a, &shb);

        let mut idb = Vec::new();
        idb.extend_from_slice(&linktype.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&snaplen.to_le_bytes());
        out.extend(pcapng_block(1, &idb));

        for r in recs {
            let ts = r.sec as u64 * 1_000_000 + r.usec as u64;
            let mut epb = Vec::new();
            epb.extend_from_slice(&0u32.to_le_bytes()); // interface 0
            epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
            epb.extend_from_slice(&(ts as u32).to_le_bytes());
            epb.extend_from_slice(&(r.data.len() as u32).to_le_bytes());
            epb.extend_from_slice(&r.orig_len.to_le_bytes());
            epb.extend_from_slice(&r.data);
            out.extend(pcapng_block(6, &epb));
        }
        out
    }

    pub fn write_pcapng(path: &Path, linktype: u16, snaplen: u32, recs: &[Rec]) {
        std::fs::write(path, pcapng_bytes(linktype, snaplen, recs)).expect("write pcapng");
    }

    /// Byte offsets of each record header in a classic little-endian
    /// microsecond pcap file, with each record's caplen.
    pub fn pcap_record_offsets(file: &[u8]) -> Vec<(usize, usize)> {
        assert_eq!(&file[..4], &0xa1b2_c3d4u32.to_le_bytes(), "expected a little-endian microsecond pcap");
        let mut out = Vec::new();
        let mut at = 24;
        while at + 16 <= file.len() {
            let caplen = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
            if at + 16 + caplen > file.len() {
                break;
            }
            out.push((at, caplen));
            at += 16 + caplen;
        }
        out
    }
}

/// Frames crafted with etherparse's `PacketBuilder` (IP and transport) and
/// hand-written link layers and tunnel headers around them.
pub mod craft {
    use etherparse::{IpNumber, PacketBuilder, TcpOptionElement};

    pub use wirestat::decode::flag::{ACK, FIN, PSH, RST, SYN};

    pub const V4_CLIENT: [u8; 4] = [192, 0, 2, 1];
    pub const V4_SERVER: [u8; 4] = [198, 51, 100, 2];
    pub const V4_OUTER_A: [u8; 4] = [203, 0, 113, 1];
    pub const V4_OUTER_B: [u8; 4] = [203, 0, 113, 2];
    pub const V6_CLIENT: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    pub const V6_SERVER: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    pub const V4_CLIENT_STR: &str = "192.0.2.1";
    pub const V4_SERVER_STR: &str = "198.51.100.2";
    pub const V6_CLIENT_STR: &str = "2001:db8::1";
    pub const V6_SERVER_STR: &str = "2001:db8::2";

    pub const ETH_IPV4: u16 = 0x0800;
    pub const ETH_IPV6: u16 = 0x86dd;

    pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

    /// One TCP segment to craft.
    #[derive(Clone, Copy, Debug)]
    pub struct Seg {
        pub v6: bool,
        /// Sent by the client (else by the server).
        pub from_client: bool,
        pub sport: u16,
        pub dport: u16,
        pub seq: u32,
        pub ack: u32,
        pub flags: u8,
        pub win: u16,
        pub payload: usize,
        /// SYN options (MSS 1460, SACK permitted, timestamps, window scale 7).
        pub syn_opts: bool,
        /// A timestamps option (12 bytes with padding), as Linux puts on every segment.
        pub ts_opt: bool,
    }

    impl Seg {
        pub fn new(v6: bool, flags: u8, seq: u32, ack: u32, payload: usize) -> Seg {
            Seg {
                v6,
                from_client: true,
                sport: 40000,
                dport: 80,
                seq,
                ack,
                flags,
                win: 64240,
                payload,
                syn_opts: flags & SYN != 0,
                ts_opt: false,
            }
        }
    }

    /// An IPv4 or IPv6 packet carrying the segment (no link layer).
    pub fn tcp_ip(s: &Seg) -> Vec<u8> {
        let b = match (s.v6, s.from_client) {
            (false, true) => PacketBuilder::ipv4(V4_CLIENT, V4_SERVER, 64),
            (false, false) => PacketBuilder::ipv4(V4_SERVER, V4_CLIENT, 64),
            (true, true) => PacketBuilder::ipv6(V6_CLIENT, V6_SERVER, 64),
            (true, false) => PacketBuilder::ipv6(V6_SERVER, V6_CLIENT, 64),
        };
        let mut t = b.tcp(s.sport, s.dport, s.seq, s.win);
        if s.flags & SYN != 0 {
            t = t.syn();
        }
        if s.flags & FIN != 0 {
            t = t.fin();
        }
        if s.flags & RST != 0 {
            t = t.rst();
        }
        if s.flags & PSH != 0 {
            t = t.psh();
        }
        if s.flags & ACK != 0 {
            t = t.ack(s.ack);
        }
        if s.syn_opts {
            t = t
                .options(&[
                    TcpOptionElement::MaximumSegmentSize(1460),
                    TcpOptionElement::SelectiveAcknowledgementPermitted,
                    TcpOptionElement::Timestamp(1000, 0),
                    TcpOptionElement::Noop,
                    TcpOptionElement::WindowScale(7),
                ])
                .unwrap();
        } else if s.ts_opt {
            t = t
                .options(&[TcpOptionElement::Noop, TcpOptionElement::Noop, TcpOptionElement::Timestamp(1001, 2002)])
                .unwrap();
        }
        let payload: Vec<u8> = (0..s.payload).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        t.write(&mut out, &payload).unwrap();
        out
    }

    /// A UDP datagram (no link layer).
    pub fn udp_ip(v6: bool, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let b = if v6 {
            PacketBuilder::ipv6(V6_CLIENT, V6_SERVER, 64)
        } else {
            PacketBuilder::ipv4(V4_CLIENT, V4_SERVER, 64)
        };
        let mut out = Vec::new();
        b.udp(sport, dport).write(&mut out, payload).unwrap();
        out
    }

    /// An ICMP echo request (no link layer).
    pub fn icmp_echo_ip(v6: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if v6 {
            PacketBuilder::ipv6(V6_CLIENT, V6_SERVER, 64).icmpv6_echo_request(1, 1).write(&mut out, b"ping").unwrap();
        } else {
            PacketBuilder::ipv4(V4_CLIENT, V4_SERVER, 64).icmpv4_echo_request(1, 1).write(&mut out, b"ping").unwrap();
        }
        out
    }

    /// An ICMP (v4) or ICMPv6 error of `typ`/`code` sent by the server to the
    /// client, quoting `quoted` (an IP packet) cut to `quote_len` bytes.
    pub fn icmp_error_ip(v6: bool, typ: u8, code: u8, quoted: &[u8], quote_len: usize) -> Vec<u8> {
        let q = &quoted[..quote_len.min(quoted.len())];
        let mut out = Vec::new();
        if v6 {
            PacketBuilder::ipv6(V6_SERVER, V6_CLIENT, 64).icmpv6_raw(typ, code, [0; 4]).write(&mut out, q).unwrap();
        } else {
            PacketBuilder::ipv4(V4_SERVER, V4_CLIENT, 64).icmpv4_raw(typ, code, [0; 4]).write(&mut out, q).unwrap();
        }
        out
    }

    /// An outer IP packet (203.0.113.1 → .2, or 2001:db8::a → ::b) with
    /// protocol `proto` around `payload`.
    pub fn outer_ip(v6: bool, proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if v6 {
            let mut a = V6_CLIENT;
            let mut b = V6_SERVER;
            a[15] = 0x0a;
            b[15] = 0x0b;
            PacketBuilder::ipv6(a, b, 64).write(&mut out, IpNumber(proto), payload).unwrap();
        } else {
            PacketBuilder::ipv4(V4_OUTER_A, V4_OUTER_B, 64).write(&mut out, IpNumber(proto), payload).unwrap();
        }
        out
    }

    fn ethertype_of(ip: &[u8]) -> u16 {
        if ip.first().map(|b| b >> 4) == Some(6) { ETH_IPV6 } else { ETH_IPV4 }
    }

    // ---- link layers -------------------------------------------------------

    /// Ethernet II around `payload` with the given ethertype.
    pub fn eth_with(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(14 + payload.len());
        f.extend_from_slice(&MAC_B);
        f.extend_from_slice(&MAC_A);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// Ethernet II around an IP packet.
    pub fn eth(ip: &[u8]) -> Vec<u8> {
        eth_with(ethertype_of(ip), ip)
    }

    /// Ethernet with one 802.1Q tag (VLAN 100).
    pub fn eth_vlan(ip: &[u8]) -> Vec<u8> {
        let mut tag = vec![0x00, 100];
        tag.extend_from_slice(&ethertype_of(ip).to_be_bytes());
        tag.extend_from_slice(ip);
        eth_with(0x8100, &tag)
    }

    /// Ethernet with QinQ: an 802.1ad (0x88a8) S-tag, then an 802.1Q C-tag.
    pub fn eth_qinq(ip: &[u8]) -> Vec<u8> {
        let mut tags = vec![0x00, 200, 0x81, 0x00, 0x00, 100];
        tags.extend_from_slice(&ethertype_of(ip).to_be_bytes());
        tags.extend_from_slice(ip);
        eth_with(0x88a8, &tags)
    }

    /// Linux cooked capture v1 (DLT 113): 16-byte header.
    pub fn sll(ip: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&0u16.to_be_bytes()); // packet type: to us
        f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
        f.extend_from_slice(&6u16.to_be_bytes());
        f.extend_from_slice(&MAC_A);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&ethertype_of(ip).to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    /// Linux cooked capture v2 (DLT 276): 20-byte header, protocol first.
    pub fn sll2(ip: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&ethertype_of(ip).to_be_bytes());
        f.extend_from_slice(&0u16.to_be_bytes()); // reserved
        f.extend_from_slice(&3u32.to_be_bytes()); // ifindex
        f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
        f.push(4); // packet type: outgoing
        f.push(6);
        f.extend_from_slice(&MAC_A);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(ip);
        f
    }

    /// BSD loopback (DLT_NULL, 0): the address family in the writer's byte
    /// order. AF_INET6 is 30 here (macOS).
    pub fn null(ip: &[u8], big_endian: bool) -> Vec<u8> {
        let fam: u32 = if ethertype_of(ip) == ETH_IPV6 { 30 } else { 2 };
        let mut f = if big_endian { fam.to_be_bytes().to_vec() } else { fam.to_le_bytes().to_vec() };
        f.extend_from_slice(ip);
        f
    }

    /// OpenBSD loopback (DLT_LOOP, 108): the family in network byte order
    /// (AF_INET6 is 24 on OpenBSD).
    pub fn loop_(ip: &[u8]) -> Vec<u8> {
        let fam: u32 = if ethertype_of(ip) == ETH_IPV6 { 24 } else { 2 };
        let mut f = fam.to_be_bytes().to_vec();
        f.extend_from_slice(ip);
        f
    }

    // ---- tunnels -----------------------------------------------------------

    /// Plain GRE (no optional fields) carrying `inner` of protocol type `proto`.
    pub fn gre_header(proto: u16) -> Vec<u8> {
        let mut g = vec![0x00, 0x00];
        g.extend_from_slice(&proto.to_be_bytes());
        g
    }

    /// Ethernet / outer IPv4 / GRE / the inner IP packet.
    pub fn gre_ip(ip: &[u8]) -> Vec<u8> {
        let mut g = gre_header(ethertype_of(ip));
        g.extend_from_slice(ip);
        eth(&outer_ip(false, 47, &g))
    }

    /// Ethernet / outer IPv4 / GRE with sequence number / ERSPAN type II
    /// header (8 bytes) / the mirrored Ethernet frame.
    pub fn erspan2(inner_frame: &[u8]) -> Vec<u8> {
        let mut g = vec![0x10, 0x00, 0x88, 0xbe];
        g.extend_from_slice(&7u32.to_be_bytes()); // GRE sequence number
        // ERSPAN II: ver 1, VLAN 0 | COS/En/T, session 5 | reserved, index.
        g.extend_from_slice(&[0x10, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x01]);
        g.extend_from_slice(inner_frame);
        eth(&outer_ip(false, 47, &g))
    }

    /// Ethernet / outer IPv4 / GRE (sequenced) / ERSPAN type III header (12
    /// bytes, plus the 8-byte platform subheader when `o_flag`) / the frame.
    pub fn erspan3(inner_frame: &[u8], o_flag: bool) -> Vec<u8> {
        let mut g = vec![0x10, 0x00, 0x22, 0xeb];
        g.extend_from_slice(&9u32.to_be_bytes());
        g.extend_from_slice(&[0x20, 0x00, 0x00, 0x05]); // ver 2, session 5
        g.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]); // timestamp
        g.extend_from_slice(&[0x00, 0x00, 0x00, if o_flag { 0x01 } else { 0x00 }]);
        if o_flag {
            g.extend_from_slice(&[0xaa; 8]);
        }
        g.extend_from_slice(inner_frame);
        eth(&outer_ip(false, 47, &g))
    }

    /// Ethernet / outer IPv4 / UDP to 4789 / VXLAN (I flag, VNI 42) / the frame.
    pub fn vxlan(inner_frame: &[u8]) -> Vec<u8> {
        let mut v = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        v.extend_from_slice(inner_frame);
        let mut out = Vec::new();
        PacketBuilder::ipv4(V4_OUTER_A, V4_OUTER_B, 64).udp(54321, 4789).write(&mut out, &v).unwrap();
        eth(&out)
    }

    /// Ethernet / MPLS (two labels, bottom of stack on the second) / the IP packet.
    pub fn mpls(ip: &[u8]) -> Vec<u8> {
        // label 16, TC 0, S 0, TTL 64; label 17, S 1, TTL 64.
        let mut m = vec![0x00, 0x01, 0x00, 0x40, 0x00, 0x01, 0x11, 0x40];
        m.extend_from_slice(ip);
        eth_with(0x8847, &m)
    }

    /// Ethernet / PPPoE session (0x8864) / PPP (IPv4 0x0021, IPv6 0x0057) / the packet.
    pub fn pppoe(ip: &[u8]) -> Vec<u8> {
        let ppp_proto: u16 = if ethertype_of(ip) == ETH_IPV6 { 0x0057 } else { 0x0021 };
        let mut p = vec![0x11, 0x00, 0x12, 0x34];
        p.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
        p.extend_from_slice(&ppp_proto.to_be_bytes());
        p.extend_from_slice(ip);
        eth_with(0x8864, &p)
    }

    // ---- IP header surgery -------------------------------------------------

    fn ipv4_fix_checksum(p: &mut [u8]) {
        let hl = ((p[0] & 0x0f) as usize) * 4;
        p[10] = 0;
        p[11] = 0;
        let mut sum = 0u32;
        for c in p[..hl].chunks(2) {
            sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }

    /// Inserts IPv4 options (a multiple of 4 bytes) after the fixed header.
    pub fn ipv4_with_options(pkt: &[u8], opts: &[u8]) -> Vec<u8> {
        assert_eq!(opts.len() % 4, 0);
        assert_eq!(pkt[0], 0x45);
        let mut p = pkt[..20].to_vec();
        p.extend_from_slice(opts);
        p.extend_from_slice(&pkt[20..]);
        p[0] = 0x40 | (5 + opts.len() / 4) as u8;
        let total = u16::from_be_bytes([p[2], p[3]]) + opts.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        ipv4_fix_checksum(&mut p);
        p
    }

    /// Sets the IPv4 flags and fragment offset (in 8-byte units).
    pub fn ipv4_set_fragment(pkt: &[u8], more_fragments: bool, offset8: u16) -> Vec<u8> {
        let mut p = pkt.to_vec();
        let v = (if more_fragments { 0x2000 } else { 0 }) | (offset8 & 0x1fff);
        p[6..8].copy_from_slice(&v.to_be_bytes());
        ipv4_fix_checksum(&mut p);
        p
    }

    /// An IPv6 extension header of 8 bytes: next header (patched later),
    /// length 0, and a PadN option filling the rest.
    pub fn ipv6_padn_ext() -> Vec<u8> {
        vec![0, 0, 0x01, 0x04, 0, 0, 0, 0]
    }

    /// An IPv6 fragment header (next header patched later).
    pub fn ipv6_frag_ext(offset8: u16, more: bool, id: u32) -> Vec<u8> {
        let mut e = vec![0, 0];
        e.extend_from_slice(&((offset8 << 3) | more as u16).to_be_bytes());
        e.extend_from_slice(&id.to_be_bytes());
        e
    }

    /// Inserts extension headers `(type, bytes)` between the IPv6 header and
    /// its payload, in order, chaining the next-header fields and fixing the
    /// payload length.
    pub fn ipv6_with_exts(pkt: &[u8], exts: &[(u8, Vec<u8>)]) -> Vec<u8> {
        assert_eq!(pkt[0] >> 4, 6);
        let upper = pkt[6];
        let mut p = pkt[..40].to_vec();
        let mut added = 0usize;
        for (i, (typ, bytes)) in exts.iter().enumerate() {
            if i == 0 {
                p[6] = *typ;
            }
            let mut e = bytes.clone();
            e[0] = exts.get(i + 1).map_or(upper, |x| x.0);
            added += e.len();
            p.extend_from_slice(&e);
        }
        p.extend_from_slice(&pkt[40..]);
        let plen = u16::from_be_bytes([pkt[4], pkt[5]]) + added as u16;
        p[4..6].copy_from_slice(&plen.to_be_bytes());
        p
    }

    // ---- whole conversations ------------------------------------------------

    /// Two TCP connections from the client to the server, as IP packets:
    /// port 40000→80 goes through handshake, data both ways, and an active
    /// close by the client (client TIME_WAIT, server CLOSED); port 40001→22
    /// opens, carries data and stays ESTABLISHED.
    ///
    /// Client: 2 active opens, 9 segments sent, 6 received, 1 current.
    /// Server: 2 passive opens, 6 sent, 9 received, 1 current, listening on 80 and 22.
    pub fn conversation(v6: bool) -> Vec<Vec<u8>> {
        conversation_segs(v6).iter().map(tcp_ip).collect()
    }

    pub fn conversation_segs(v6: bool) -> Vec<Seg> {
        let c = |flags, seq, ack, payload| Seg { ts_opt: true, ..Seg::new(v6, flags, seq, ack, payload) };
        let s = |flags, seq, ack, payload| Seg {
            from_client: false,
            sport: 80,
            dport: 40000,
            ts_opt: true,
            ..Seg::new(v6, flags, seq, ack, payload)
        };
        let mut segs = vec![
            c(SYN, 1000, 0, 0),
            s(SYN | ACK, 5000, 1001, 0),
            c(ACK, 1001, 5001, 0),
            c(PSH | ACK, 1001, 5001, 100),
            s(ACK, 5001, 1101, 0),
            s(PSH | ACK, 5001, 1101, 200),
            c(ACK, 1101, 5201, 0),
            c(FIN | ACK, 1101, 5201, 0),
            s(FIN | ACK, 5201, 1102, 0),
            c(ACK, 1102, 5202, 0),
        ];
        let second: Vec<Seg> = vec![
            c(SYN, 7000, 0, 0),
            s(SYN | ACK, 9000, 7001, 0),
            c(ACK, 7001, 9001, 0),
            c(PSH | ACK, 7001, 9001, 50),
            s(ACK, 9001, 7051, 0),
        ]
        .into_iter()
        .map(|mut g| {
            if g.from_client {
                g.sport = 40001;
                g.dport = 22;
            } else {
                g.sport = 22;
                g.dport = 40001;
            }
            g
        })
        .collect();
        segs.extend(second);
        segs
    }
}

/// Running the `wirestat` binary.
pub mod cli {
    use serde_json::Value;
    use std::path::Path;
    use std::process::{Command, Output};

    pub fn run_wirestat(args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wirestat")).args(args).output().expect("run wirestat")
    }

    pub fn stdout_of(o: &Output) -> String {
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn stderr_of(o: &Output) -> String {
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// `wirestat -r FILE --format json -a -s --host H...`: asserts success
    /// and returns the one JSON document and stderr.
    pub fn json_for_hosts(file: &Path, hosts: &[&str]) -> (Value, String) {
        let f = file.to_str().unwrap();
        let mut args = vec!["-r", f, "--format", "json", "-a", "-s"];
        for h in hosts {
            args.push("--host");
            args.push(h);
        }
        let o = run_wirestat(&args);
        let (out, err) = (stdout_of(&o), stderr_of(&o));
        assert!(o.status.success(), "wirestat {args:?} failed: {:?}\nstderr: {err}", o.status);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "with --host, stdout holds exactly one JSON object: {out}");
        let v: Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"));
        (v, err)
    }

    /// The `capture` counter `key` of a JSON document.
    pub fn capture_count(v: &Value, key: &str) -> u64 {
        v["capture"][key].as_u64().unwrap_or_else(|| panic!("capture.{key} missing in {v}"))
    }

    /// `connections` as (proto, local, foreign, state) tuples.
    pub fn connection_rows(v: &Value) -> Vec<(String, String, String, String)> {
        v["connections"]
            .as_array()
            .expect("connections array")
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap_or_else(|| panic!("row without {k}: {r}")).to_string();
                (s("proto"), s("local"), s("foreign"), s("state"))
            })
            .collect()
    }

    /// The sum of every per-frame category of `capture`: each frame lands in exactly one.
    pub fn capture_category_sum(v: &Value) -> u64 {
        [
            "tcp_segments",
            "icmp_errors_quoting_tcp",
            "non_ip",
            "other_protocols",
            "fragments",
            "undecodable",
            "unknown_link_type",
        ]
        .iter()
        .map(|k| capture_count(v, k))
        .sum()
    }
}

/// A packet source for pipeline tests: crafted frames, then ticks, as a live
/// capture's quiet link gives them.
pub mod ticking {
    use wirestat::analysis::Interest;
    use wirestat::capture::{Frame, Next, Source};
    use wirestat::os::{Os, Profile};
    use wirestat::pipeline::Config;

    pub struct Ticking {
        /// (capture time, Ethernet frame)
        pub frames: Vec<(u64, Vec<u8>)>,
        /// Clock readings once the frames are played.
        pub ticks: Vec<u64>,
        pub at: usize,
    }

    impl Ticking {
        /// The crafted IPv4 conversation, a frame a millisecond from `t0`,
        /// then the clock readings `ticks`.
        pub fn conversation(t0: u64, ticks: Vec<u64>) -> Ticking {
            let frames = super::craft::conversation(false)
                .into_iter()
                .enumerate()
                .map(|(i, f)| (t0 + i as u64 * 1_000_000, super::craft::eth(&f)))
                .collect();
            Ticking { frames, ticks, at: 0 }
        }
    }

    /// The pipeline as a live capture runs it: two workers, every host, the
    /// duplicate filter on.
    pub fn live_config() -> Config {
        Config {
            workers: 2,
            profile: Profile::new(Os::Linux),
            interest: Interest::All,
            max_flows: 1 << 16,
            dedup: true,
            ..Config::default()
        }
    }

    impl Source for Ticking {
        fn next<T>(&mut self, visit: impl FnOnce(Frame<'_>) -> T) -> Next<T> {
            let i = self.at;
            self.at += 1;
            if let Some((ts, f)) = self.frames.get(i) {
                return Next::Frame(visit(Frame { ts: *ts, if_id: 0, linktype: 1, orig_len: f.len() as u32, data: f }));
            }
            match self.ticks.get(i - self.frames.len()) {
                Some(t) => Next::Tick(*t),
                None => Next::End,
            }
        }
        fn errors(&self) -> &[String] {
            &[]
        }
        fn progress(&self) -> (u64, u64) {
            (0, 0)
        }
    }
}

/// Running the synthetic capture generator.
pub mod synth {
    use serde_json::Value;
    use std::path::Path;
    use std::process::Command;

    /// Writes `pcap` and its ground truth `truth` with `wirestat-synth ARGS`; returns the truth.
    pub fn generate(pcap: &Path, truth: &Path, args: &[&str]) -> Value {
        let st = Command::new(env!("CARGO_BIN_EXE_wirestat-synth"))
            .arg("--out")
            .arg(pcap)
            .arg("--truth")
            .arg(truth)
            .args(args)
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        serde_json::from_str(&std::fs::read_to_string(truth).unwrap()).unwrap()
    }
}

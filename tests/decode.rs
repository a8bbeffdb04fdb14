//! Decoding: link layers, tunnels, IPv4/IPv6 corner cases, TCP and ICMP
//! errors — through the library's `decode()` and end to end through the
//! binary, where every link type must give the same netstat view as Ethernet.

mod common;

use common::cli::{capture_category_sum, capture_count, connection_rows, json_for_hosts};
use common::craft::*;
use common::pcapfile::{Rec, recs_1ms_apart, write_pcap, write_pcapng};
use common::tmp::TestDir;
use serde_json::Value;
use wirestat::decode::{Kind, Packet, Skip, decode, flag, link};

// ---------------------------------------------------------------------------
// Library level
// ---------------------------------------------------------------------------

fn dec(linktype: i32, bytes: &[u8]) -> (Result<Kind, Skip>, Packet) {
    let mut s = Packet::default();
    let r = decode(linktype, bytes, &mut s);
    (r, s)
}

fn raw(a: &[u8]) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[..a.len()].copy_from_slice(a);
    r
}

/// Asserts that `s` describes segment `g` exactly.
fn assert_seg(s: &Packet, g: &Seg) {
    let (c, sv) = if g.v6 { (raw(&V6_CLIENT), raw(&V6_SERVER)) } else { (raw(&V4_CLIENT), raw(&V4_SERVER)) };
    let (src, dst) = if g.from_client { (c, sv) } else { (sv, c) };
    assert_eq!(s.kind, Kind::Tcp);
    assert_eq!(s.v6, g.v6, "v6");
    assert_eq!(s.src, src, "src");
    assert_eq!(s.dst, dst, "dst");
    assert_eq!((s.sport, s.dport), (g.sport, g.dport), "ports");
    assert_eq!(s.seq, g.seq, "seq");
    assert_eq!(s.ack, if g.flags & ACK != 0 { g.ack } else { 0 }, "ack");
    assert_eq!(s.flags, g.flags, "flags");
    assert_eq!(s.win, g.win, "window");
    assert_eq!(s.payload_len, g.payload as u32, "payload_len");
}

/// Decodes `frame` on `linktype`, expecting segment `g`.
fn expect_seg(linktype: i32, frame: &[u8], g: &Seg) {
    let (r, s) = dec(linktype, frame);
    assert_eq!(r, Ok(Kind::Tcp), "linktype {linktype}, frame {frame:02x?}");
    assert_seg(&s, g);
}

fn data_seg(v6: bool) -> Seg {
    Seg { ts_opt: true, ..Seg::new(v6, PSH | ACK, 1001, 5001, 300) }
}

fn syn_seg(v6: bool) -> Seg {
    Seg::new(v6, SYN, 1000, 0, 0)
}

#[test]
fn ethernet_syn_fields_and_options() {
    for v6 in [false, true] {
        let g = syn_seg(v6);
        let (r, s) = dec(link::ETHERNET, &eth(&tcp_ip(&g)));
        assert_eq!(r, Ok(Kind::Tcp));
        assert_seg(&s, &g);
        assert_eq!(s.ttl, 64);
        assert_eq!(s.syn_opts.mss, 1460);
        assert_eq!(s.syn_opts.wscale, 7);
        assert!(s.syn_opts.sack_ok);
        assert!(s.syn_opts.timestamps);
        assert_eq!(s.seq_len(), 1);
        assert!(s.has(flag::SYN) && !s.has(flag::ACK));
    }
    // A data segment: options are not parsed, sequence space = payload.
    let g = data_seg(false);
    let (_, s) = dec(link::ETHERNET, &eth(&tcp_ip(&g)));
    assert_seg(&s, &g);
    assert_eq!(s.seq_len(), 300);
    // FIN takes one more.
    let g = Seg::new(false, FIN | ACK, 1, 1, 10);
    let (_, s) = dec(link::ETHERNET, &eth(&tcp_ip(&g)));
    assert_eq!(s.seq_len(), 11);
}

#[test]
fn vlan_and_qinq() {
    for v6 in [false, true] {
        let g = data_seg(v6);
        let ip = tcp_ip(&g);
        expect_seg(link::ETHERNET, &eth_vlan(&ip), &g);
        expect_seg(link::ETHERNET, &eth_qinq(&ip), &g);
        // The old QinQ TPID 0x9100, and three stacked tags.
        let mut f = eth_qinq(&ip);
        f[12..14].copy_from_slice(&0x9100u16.to_be_bytes());
        expect_seg(link::ETHERNET, &f, &g);
        let mut tags = vec![0x00, 1, 0x88, 0xa8, 0x00, 2, 0x81, 0x00, 0x00, 3];
        tags.extend_from_slice(&(if v6 { ETH_IPV6 } else { ETH_IPV4 }).to_be_bytes());
        tags.extend_from_slice(&ip);
        expect_seg(link::ETHERNET, &eth_with(0x88a8, &tags), &g);
    }
    // etherparse's own double-VLAN frame agrees with ours.
    let g = data_seg(false);
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .double_vlan(etherparse::VlanId::try_new(10).unwrap(), etherparse::VlanId::try_new(20).unwrap())
        .ipv4(V4_CLIENT, V4_SERVER, 64)
        .tcp(g.sport, g.dport, g.seq, g.win)
        .psh()
        .ack(g.ack)
        .options(&[
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::Timestamp(1, 2),
        ])
        .unwrap()
        .write(&mut f, &[0u8; 300])
        .unwrap();
    expect_seg(link::ETHERNET, &f, &g);
    // A tag cut short.
    let f = eth_with(0x8100, &[0x00, 0x64]);
    assert_eq!(dec(link::ETHERNET, &f).0, Err(Skip::Undecodable));
}

#[test]
fn linux_cooked_sll_and_sll2() {
    for v6 in [false, true] {
        let g = data_seg(v6);
        let ip = tcp_ip(&g);
        expect_seg(link::LINUX_SLL, &sll(&ip), &g);
        expect_seg(link::LINUX_SLL2, &sll2(&ip), &g);
    }
    // SLL's protocol field names a non-IP protocol (ARP).
    let mut f = sll(&tcp_ip(&data_seg(false)));
    f[14..16].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(dec(link::LINUX_SLL, &f).0, Err(Skip::NonIp));
    // Headers cut short.
    assert_eq!(dec(link::LINUX_SLL, &[0u8; 15]).0, Err(Skip::Undecodable));
    assert_eq!(dec(link::LINUX_SLL2, &[0x08, 0x00, 0, 0, 0]).0, Err(Skip::Undecodable));
    assert_eq!(dec(link::LINUX_SLL2, &[]).0, Err(Skip::Undecodable));
}

#[test]
fn raw_ip_link_types() {
    for v6 in [false, true] {
        let g = data_seg(v6);
        let ip = tcp_ip(&g);
        for lt in [link::RAW, link::RAW_DLT, link::RAW_OPENBSD] {
            expect_seg(lt, &ip, &g);
        }
        expect_seg(if v6 { link::IPV6 } else { link::IPV4 }, &ip, &g);
    }
    assert_eq!(dec(link::RAW, &[]).0, Err(Skip::Undecodable));
    assert_eq!(dec(link::RAW, &[0x55; 40]).0, Err(Skip::Undecodable));
}

#[test]
fn null_both_byte_orders_and_loop() {
    for v6 in [false, true] {
        let g = data_seg(v6);
        let ip = tcp_ip(&g);
        expect_seg(link::NULL, &null(&ip, false), &g);
        expect_seg(link::NULL, &null(&ip, true), &g);
        expect_seg(link::LOOP, &loop_(&ip), &g);
    }
    // Every BSD's (and Linux's) AF_INET6, in either byte order.
    let g = data_seg(true);
    let ip = tcp_ip(&g);
    for fam in [10u32, 24, 28, 30] {
        for bytes in [fam.to_le_bytes(), fam.to_be_bytes()] {
            let mut f = bytes.to_vec();
            f.extend_from_slice(&ip);
            expect_seg(link::NULL, &f, &g);
        }
    }
    // DLT_LOOP is always network byte order: a little-endian family is not IP.
    let mut f = 2u32.to_le_bytes().to_vec();
    f.extend_from_slice(&tcp_ip(&data_seg(false)));
    assert_eq!(dec(link::LOOP, &f).0, Err(Skip::NonIp));
    // Another family (AF_APPLETALK 16) is not IP; a cut header is undecodable.
    let mut f = 16u32.to_le_bytes().to_vec();
    f.extend_from_slice(&[0; 40]);
    assert_eq!(dec(link::NULL, &f).0, Err(Skip::NonIp));
    assert_eq!(dec(link::NULL, &[2, 0, 0]).0, Err(Skip::Undecodable));
    assert_eq!(dec(link::LOOP, &[0, 0]).0, Err(Skip::Undecodable));
}

#[test]
fn ipv4_with_options_ihl_above_5() {
    let g = data_seg(false);
    // Record Route (7 bytes, room for one address) + End of options.
    let ip = ipv4_with_options(&tcp_ip(&g), &[7, 7, 4, 0, 0, 0, 0, 0]);
    assert_eq!(ip[0], 0x47);
    expect_seg(link::ETHERNET, &eth(&ip), &g);
    // The longest header: 40 bytes of options (NOPs).
    let ip = ipv4_with_options(&tcp_ip(&g), &[1; 40]);
    assert_eq!(ip[0], 0x4f);
    expect_seg(link::RAW, &ip, &g);
    // Options claimed but not captured.
    let (r, _) = dec(link::RAW, &ip[..30]);
    assert_eq!(r, Err(Skip::Undecodable));
}

#[test]
fn ipv6_hop_by_hop_and_destination_options() {
    let g = data_seg(true);
    let ip = ipv6_with_exts(&tcp_ip(&g), &[(0, ipv6_padn_ext()), (60, ipv6_padn_ext())]);
    assert_eq!(ip[6], 0, "hop-by-hop first");
    assert_eq!(ip[40], 60, "then destination options");
    assert_eq!(ip[48], 6, "then TCP");
    expect_seg(link::ETHERNET, &eth(&ip), &g);
    expect_seg(link::RAW, &ip, &g);
    // SYN options are read past the extension headers.
    let s = syn_seg(true);
    let ip = ipv6_with_exts(&tcp_ip(&s), &[(0, ipv6_padn_ext()), (60, ipv6_padn_ext())]);
    let (_, sum) = dec(link::RAW, &ip);
    assert_eq!(sum.syn_opts.mss, 1460);
    // A routing header (type 0, segments left 0) is skipped as well.
    let ip = ipv6_with_exts(&tcp_ip(&g), &[(43, vec![0, 0, 0, 0, 0, 0, 0, 0])]);
    expect_seg(link::RAW, &ip, &g);
    // Hop-by-hop not first is malformed.
    let ip = ipv6_with_exts(&tcp_ip(&g), &[(60, ipv6_padn_ext()), (0, ipv6_padn_ext())]);
    assert_eq!(dec(link::RAW, &ip).0, Err(Skip::Undecodable));
}

/// A routing header with segments left, and the Home Address option: the
/// connection is between the addresses the TCP checksum covers (the final
/// destination, the home address), not the next hop or the care-of address.
#[test]
fn ipv6_final_destination_and_home_address() {
    let g = data_seg(true);
    let hop = |last: u8| [0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last];
    let routing = |typ: u8, left: u8, addrs: &[[u8; 16]]| {
        let mut e = vec![0, (addrs.len() * 2) as u8, typ, left, 0, 0, 0, 0];
        addrs.iter().for_each(|a| e.extend_from_slice(a));
        e
    };
    // The IPv6 destination is the next hop (hop 9); the list ends with the server.
    let mut ip = tcp_ip(&g);
    ip[24..40].copy_from_slice(&hop(9));
    for (typ, list) in [(0u8, vec![hop(7), V6_SERVER]), (2, vec![V6_SERVER]), (4, vec![V6_SERVER, hop(7)])] {
        let f = ipv6_with_exts(&ip, &[(43, routing(typ, 1, &list))]);
        expect_seg(link::RAW, &f, &g);
        // Arrived (segments left 0): the destination field is the final one.
        let (r, s) = dec(link::RAW, &ipv6_with_exts(&ip, &[(43, routing(typ, 0, &list))]));
        assert_eq!((r, s.dst), (Ok(Kind::Tcp), hop(9)), "type {typ}");
    }
    // An unknown routing type, or a list cut short, leaves the destination alone.
    let (_, s) = dec(link::RAW, &ipv6_with_exts(&ip, &[(43, routing(3, 1, &[V6_SERVER]))]));
    assert_eq!(s.dst, hop(9));
    let (_, s) = dec(link::RAW, &ipv6_with_exts(&ip, &[(43, vec![0, 0, 0, 1, 0, 0, 0, 0])]));
    assert_eq!(s.dst, hop(9));

    // A mobile node sends from its care-of address (hop 5), its home address in
    // a destination option (after Pad1 and PadN, as senders align it).
    let mut ip = tcp_ip(&g);
    ip[8..24].copy_from_slice(&hop(5));
    let mut hao = vec![0, 2, 0, 0x01, 0x01, 0, 201, 16];
    hao.extend_from_slice(&V6_CLIENT);
    assert_eq!(hao.len(), 24);
    expect_seg(link::RAW, &ipv6_with_exts(&ip, &[(60, hao.clone())]), &g);
    expect_seg(link::ETHERNET, &eth(&ipv6_with_exts(&ip, &[(60, hao)])), &g);
    // Other destination options leave the source alone.
    let (_, s) = dec(link::RAW, &ipv6_with_exts(&ip, &[(60, ipv6_padn_ext())]));
    assert_eq!(s.src, hop(5));
}

#[test]
fn header_only_capture_takes_payload_length_from_ip() {
    for v6 in [false, true] {
        let g = Seg { ts_opt: true, ..Seg::new(v6, PSH | ACK, 1001, 5001, 1400) };
        let frame = eth(&tcp_ip(&g));
        // snaplen 96 keeps every header; 60 cuts the v4 timestamp option
        // (14 + 20 + 32 = 66), and leaves v6 only 6 bytes of TCP.
        expect_seg(link::ETHERNET, &frame[..96], &g);
        if v6 {
            assert_eq!(dec(link::ETHERNET, &frame[..60]).0, Err(Skip::Undecodable));
        } else {
            expect_seg(link::ETHERNET, &frame[..60], &g);
        }
        // Raw IP cut right after the fixed TCP header.
        let ip = tcp_ip(&g);
        let hl = if v6 { 40 } else { 20 };
        expect_seg(link::RAW, &ip[..hl + 20], &g);
        assert_eq!(dec(link::RAW, &ip[..hl + 19]).0, Err(Skip::Undecodable));
    }
}

#[test]
fn ethernet_padding_is_not_payload() {
    // A pure ACK: 14 + 20 + 20 = 54 bytes, padded to the 60-byte minimum.
    let g = Seg { syn_opts: false, ..Seg::new(false, ACK, 1001, 5001, 0) };
    let mut f = eth(&tcp_ip(&g));
    assert_eq!(f.len(), 54);
    f.resize(60, 0);
    expect_seg(link::ETHERNET, &f, &g);
    // Padding that is not zeros (some NICs leak buffer bytes) changes nothing.
    f[54..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x55, 0xaa]);
    expect_seg(link::ETHERNET, &f, &g);
    // A 1-byte segment padded: payload 1.
    let g = Seg { syn_opts: false, ..Seg::new(false, PSH | ACK, 1001, 5001, 1) };
    let mut f = eth(&tcp_ip(&g));
    f.resize(60, 0);
    expect_seg(link::ETHERNET, &f, &g);
    // Padding through VLAN and SLL too.
    let g = Seg { syn_opts: false, ..Seg::new(false, ACK, 1001, 5001, 0) };
    let mut f = eth_vlan(&tcp_ip(&g));
    f.resize(64, 0);
    expect_seg(link::ETHERNET, &f, &g);
}

#[test]
fn tcp_options_cut_by_snaplen() {
    let g = syn_seg(false);
    let f = eth(&tcp_ip(&g));
    assert_eq!(f.len(), 14 + 20 + 40);
    // Cut anywhere inside the options, the fixed header still decodes.
    for cut in 54..f.len() {
        let (r, s) = dec(link::ETHERNET, &f[..cut]);
        assert_eq!(r, Ok(Kind::Tcp), "cut at {cut}");
        assert_seg(&s, &g);
        assert_eq!(s.syn_opts.wscale, 0xff, "options not seen at cut {cut}");
    }
    // Inside the fixed header: nothing trustworthy.
    for cut in 34..54 {
        assert_eq!(dec(link::ETHERNET, &f[..cut]).0, Err(Skip::Undecodable), "cut at {cut}");
    }
}

#[test]
fn ipv4_fragments_are_counted_not_tracked() {
    let g = data_seg(false);
    let ip = tcp_ip(&g);
    // First fragment (MF, offset 0), a middle one, the last one.
    for (mf, off) in [(true, 0), (true, 100), (false, 185)] {
        let f = ipv4_set_fragment(&ip, mf, off);
        assert_eq!(dec(link::ETHERNET, &eth(&f)).0, Ok(Kind::Fragment), "MF {mf} offset {off}");
    }
    // DF alone is not fragmentation.
    let mut df = ip.clone();
    df[6] = 0x40;
    expect_seg(link::RAW, &df, &g);
}

#[test]
fn ipv6_fragments_are_counted_and_atomic_fragment_is_whole() {
    let g = data_seg(true);
    let ip = tcp_ip(&g);
    for (off, more) in [(0, true), (100, true), (185, false)] {
        let f = ipv6_with_exts(&ip, &[(44, ipv6_frag_ext(off, more, 0x1234))]);
        assert_eq!(dec(link::ETHERNET, &eth(&f)).0, Ok(Kind::Fragment), "offset {off} M {more}");
    }
    // RFC 6946: an atomic fragment (offset 0, M=0) is a whole datagram.
    let f = ipv6_with_exts(&ip, &[(44, ipv6_frag_ext(0, false, 0x1234))]);
    expect_seg(link::ETHERNET, &eth(&f), &g);
    // ... also behind a hop-by-hop header.
    let f = ipv6_with_exts(&ip, &[(0, ipv6_padn_ext()), (44, ipv6_frag_ext(0, false, 7))]);
    expect_seg(link::RAW, &f, &g);
}

#[test]
fn gre_tunnels() {
    for v6 in [false, true] {
        let g = data_seg(v6);
        let ip = tcp_ip(&g);
        expect_seg(link::ETHERNET, &gre_ip(&ip), &g);
        // Checksum, key and sequence fields present (4 bytes each).
        let et = if v6 { ETH_IPV6 } else { ETH_IPV4 };
        let mut gr = vec![0xb0, 0x00];
        gr.extend_from_slice(&et.to_be_bytes());
        gr.extend_from_slice(&[0; 12]);
        gr.extend_from_slice(&ip);
        expect_seg(link::ETHERNET, &eth(&outer_ip(false, 47, &gr)), &g);
        // GRE over IPv6.
        let mut gr = gre_header(et);
        gr.extend_from_slice(&ip);
        expect_seg(link::RAW, &outer_ip(true, 47, &gr), &g);
        // Transparent Ethernet bridging (0x6558).
        let mut gr = gre_header(0x6558);
        gr.extend_from_slice(&eth(&ip));
        expect_seg(link::RAW, &outer_ip(false, 47, &gr), &g);
        // IP in IP and 6in4 / 4in6.
        expect_seg(link::RAW, &outer_ip(false, if v6 { 41 } else { 4 }, &ip), &g);
        expect_seg(link::RAW, &outer_ip(true, if v6 { 41 } else { 4 }, &ip), &g);
    }
    // PPTP's enhanced GRE (version 1) carries PPP: another protocol.
    let mut gr = vec![0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0];
    gr.extend_from_slice(&tcp_ip(&data_seg(false)));
    assert_eq!(dec(link::RAW, &outer_ip(false, 47, &gr)).0, Ok(Kind::Other));
    // GRE cut short.
    assert_eq!(dec(link::RAW, &outer_ip(false, 47, &[0x00, 0x00])).0, Err(Skip::Undecodable));
    assert_eq!(dec(link::RAW, &outer_ip(false, 47, &[0xb0, 0x00, 0x08, 0x00, 0, 0])).0, Err(Skip::Undecodable));
}

#[test]
fn erspan_types_i_ii_iii() {
    for v6 in [false, true] {
        let g = data_seg(v6);
        let inner = eth_vlan(&tcp_ip(&g));
        expect_seg(link::ETHERNET, &erspan2(&inner), &g);
        expect_seg(link::ETHERNET, &erspan3(&inner, false), &g);
        expect_seg(link::ETHERNET, &erspan3(&inner, true), &g);
        // Type I: GRE 0x88be without a sequence number, no ERSPAN header.
        let mut gr = gre_header(0x88be);
        gr.extend_from_slice(&inner);
        expect_seg(link::ETHERNET, &eth(&outer_ip(false, 47, &gr)), &g);
    }
    // ERSPAN II header cut short.
    let gr = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0x00];
    assert_eq!(dec(link::RAW, &outer_ip(false, 47, &gr)).0, Err(Skip::Undecodable));
}

#[test]
fn vxlan_mpls_pppoe() {
    for v6 in [false, true] {
        let g = data_seg(v6);
        let ip = tcp_ip(&g);
        expect_seg(link::ETHERNET, &vxlan(&eth(&ip)), &g);
        expect_seg(link::ETHERNET, &vxlan(&eth_qinq(&ip)), &g);
        expect_seg(link::ETHERNET, &mpls(&ip), &g);
        expect_seg(link::ETHERNET, &pppoe(&ip), &g);
    }
    let g = data_seg(false);
    let ip = tcp_ip(&g);
    // VXLAN with the I flag clear is not VXLAN; another UDP port is just UDP.
    let mut f = vxlan(&eth(&ip));
    f[14 + 20 + 8] = 0;
    assert_eq!(dec(link::ETHERNET, &f).0, Ok(Kind::Udp));
    let mut f = vxlan(&eth(&ip));
    f[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&4790u16.to_be_bytes());
    assert_eq!(dec(link::ETHERNET, &f).0, Ok(Kind::Udp));
    // MPLS carrying an Ethernet pseudowire (no control word), multicast MPLS.
    let mut m = vec![0x00, 0x01, 0x01, 0x40];
    m.extend_from_slice(&eth(&ip));
    expect_seg(link::ETHERNET, &eth_with(0x8847, &m), &g);
    let mut f = mpls(&ip);
    f[12..14].copy_from_slice(&0x8848u16.to_be_bytes());
    expect_seg(link::ETHERNET, &f, &g);
    // A label stack with no bottom: undecodable.
    assert_eq!(dec(link::ETHERNET, &eth_with(0x8847, &[0x00, 0x01, 0x00, 0x40])).0, Err(Skip::Undecodable));
    // MPLS over VLAN.
    let mut tag = vec![0x00, 0x05, 0x88, 0x47, 0x00, 0x01, 0x01, 0x40];
    tag.extend_from_slice(&ip);
    expect_seg(link::ETHERNET, &eth_with(0x8100, &tag), &g);
    // PPPoE carrying LCP (0xc021) is not IP; PPPoE discovery (0x8863) neither.
    let mut f = pppoe(&ip);
    f[20..22].copy_from_slice(&0xc021u16.to_be_bytes());
    assert_eq!(dec(link::ETHERNET, &f).0, Err(Skip::NonIp));
    let mut f = pppoe(&ip);
    f[12..14].copy_from_slice(&0x8863u16.to_be_bytes());
    assert_eq!(dec(link::ETHERNET, &f).0, Err(Skip::NonIp));
    assert_eq!(dec(link::ETHERNET, &eth_with(0x8864, &[0x11, 0, 0, 1])).0, Err(Skip::Undecodable));
}

/// `depth` GRE tunnels around the segment, on raw IP.
fn nested_gre(ip: &[u8], depth: usize) -> Vec<u8> {
    let mut p = ip.to_vec();
    for _ in 0..depth {
        let mut gr = gre_header(if p[0] >> 4 == 6 { ETH_IPV6 } else { ETH_IPV4 });
        gr.extend_from_slice(&p);
        p = outer_ip(false, 47, &gr);
    }
    p
}

#[test]
fn tunnel_nesting_limit() {
    let g = data_seg(false);
    let ip = tcp_ip(&g);
    for depth in 0..=6 {
        expect_seg(link::RAW, &nested_gre(&ip, depth), &g);
    }
    for depth in [7, 8, 50] {
        assert_eq!(dec(link::RAW, &nested_gre(&ip, depth)).0, Err(Skip::Undecodable), "depth {depth}");
    }
    // Mixed: VXLAN in GRE in MPLS ... also bounded.
    let mut f = eth(&ip);
    for i in 0..20 {
        f = match i % 3 {
            0 => vxlan(&f),
            1 => mpls(&outer_ip(false, 4, &f[14..])),
            _ => eth(&outer_ip(false, 47, &{
                let mut gr = gre_header(0x6558);
                gr.extend_from_slice(&f);
                gr
            })),
        };
    }
    assert_eq!(dec(link::ETHERNET, &f).0, Err(Skip::Undecodable));
}

#[test]
fn icmp_port_unreachable_quoting_syn_v4() {
    let syn = syn_seg(false);
    let quoted = tcp_ip(&syn);
    // Linux quotes the whole SYN; routers may quote only the IP header + 8 bytes.
    for (quote, want_flags) in [(quoted.len(), SYN), (28, 0)] {
        let (r, s) = dec(link::ETHERNET, &eth(&icmp_error_ip(false, 3, 3, &quoted, quote)));
        assert_eq!(r, Ok(Kind::IcmpError), "quote {quote}");
        assert_eq!(s.kind, Kind::IcmpError);
        assert!(!s.v6);
        assert_eq!(s.src, raw(&V4_CLIENT), "the quoted segment's sender");
        assert_eq!(s.dst, raw(&V4_SERVER));
        assert_eq!((s.sport, s.dport, s.seq), (40000, 80, 1000));
        assert_eq!(s.flags, want_flags);
        assert_eq!((s.icmp_type, s.icmp_code), (3, 3));
        assert_eq!(s.payload_len, 0);
    }
    // Time exceeded quoting TCP is an ICMP error too.
    let (r, s) = dec(link::RAW, &icmp_error_ip(false, 11, 0, &quoted, 28));
    assert_eq!(r, Ok(Kind::IcmpError));
    assert_eq!((s.icmp_type, s.icmp_code), (11, 0));
    // Not quoting TCP, quoting too little, or not an error: counted as other.
    let udp = udp_ip(false, 5353, 53, b"q");
    assert_eq!(dec(link::RAW, &icmp_error_ip(false, 3, 3, &udp, 28)).0, Ok(Kind::Icmp));
    assert_eq!(dec(link::RAW, &icmp_error_ip(false, 3, 3, &quoted, 24)).0, Ok(Kind::Icmp));
    assert_eq!(dec(link::RAW, &icmp_echo_ip(false)).0, Ok(Kind::Icmp));
    // A quoted non-first fragment has no TCP header to read.
    let frag = ipv4_set_fragment(&quoted, false, 10);
    assert_eq!(dec(link::RAW, &icmp_error_ip(false, 3, 3, &frag, 28)).0, Ok(Kind::Icmp));
}

#[test]
fn icmpv6_destination_unreachable_quoting_syn() {
    let syn = syn_seg(true);
    let quoted = tcp_ip(&syn);
    for (quote, want_flags) in [(quoted.len(), SYN), (48, 0)] {
        let (r, s) = dec(link::ETHERNET, &eth(&icmp_error_ip(true, 1, 4, &quoted, quote)));
        assert_eq!(r, Ok(Kind::IcmpError), "quote {quote}");
        assert!(s.v6);
        assert_eq!(s.src, V6_CLIENT);
        assert_eq!(s.dst, V6_SERVER);
        assert_eq!((s.sport, s.dport, s.seq), (40000, 80, 1000));
        assert_eq!(s.flags, want_flags);
        assert_eq!((s.icmp_type, s.icmp_code), (1, 4));
    }
    // Packet too big (2) and time exceeded (3) are errors; echo is not.
    assert_eq!(dec(link::RAW, &icmp_error_ip(true, 2, 0, &quoted, 60)).0, Ok(Kind::IcmpError));
    assert_eq!(dec(link::RAW, &icmp_error_ip(true, 3, 0, &quoted, 60)).0, Ok(Kind::IcmpError));
    assert_eq!(dec(link::RAW, &icmp_echo_ip(true)).0, Ok(Kind::Icmp));
    assert_eq!(dec(link::RAW, &icmp_error_ip(true, 1, 4, &quoted, 44)).0, Ok(Kind::Icmp));
}

#[test]
fn non_ip_other_protocols_and_unknown_links() {
    // ARP.
    assert_eq!(dec(link::ETHERNET, &eth_with(0x0806, &[0; 28])).0, Err(Skip::NonIp));
    // 802.3 length field + LLC (STP).
    assert_eq!(dec(link::ETHERNET, &eth_with(0x0026, &[0x42, 0x42, 0x03, 0, 0])).0, Err(Skip::NonIp));
    // UDP (not VXLAN), and a protocol wirestat does not read (SCTP, 132).
    assert_eq!(dec(link::ETHERNET, &eth(&udp_ip(false, 5353, 53, b"hello"))).0, Ok(Kind::Udp));
    assert_eq!(dec(link::ETHERNET, &eth(&udp_ip(true, 5353, 53, b"hello"))).0, Ok(Kind::Udp));
    assert_eq!(dec(link::RAW, &outer_ip(false, 132, &[0; 12])).0, Ok(Kind::Other));
    // UDP header cut short.
    assert_eq!(dec(link::RAW, &outer_ip(false, 17, &[0; 4])).0, Ok(Kind::Other));
    // A link type wirestat cannot read (USER0, 147).
    assert_eq!(dec(147, &eth(&tcp_ip(&data_seg(false)))).0, Err(Skip::UnknownLinkType));
    // Ethernet header cut short.
    assert_eq!(dec(link::ETHERNET, &[0; 13]).0, Err(Skip::Undecodable));
}

#[test]
fn nflog() {
    let g = data_seg(false);
    let ip = tcp_ip(&g);
    // Header (family AF_INET, version 0, resource id), a prefix TLV, then the payload TLV.
    let mut f = vec![2, 0, 0, 0];
    f.extend_from_slice(&8u16.to_le_bytes());
    f.extend_from_slice(&10u16.to_le_bytes());
    f.extend_from_slice(b"abcd");
    f.extend_from_slice(&((ip.len() + 4) as u16).to_le_bytes());
    f.extend_from_slice(&9u16.to_le_bytes());
    f.extend_from_slice(&ip);
    expect_seg(link::NFLOG, &f, &g);
    // The logging rule's copy range cut the payload; NFLOG's record length is the
    // message's, so the capture cannot say what is missing: still a whole segment
    // (through the binary, where the record lengths are known).
    let mut cut = vec![2, 0, 0, 0];
    cut.extend_from_slice(&((52 + 4) as u16).to_le_bytes());
    cut.extend_from_slice(&9u16.to_le_bytes());
    cut.extend_from_slice(&ip[..52]);
    let dir = TestDir::new("nflog-range");
    let p = dir.file("nflog.pcap");
    write_pcap(&p, link::NFLOG as u32, 65535, &recs_1ms_apart(vec![cut]));
    let (v, _) = json_for_hosts(&p, &[V4_CLIENT_STR]);
    assert_eq!(capture_count(&v, "tcp_segments"), 1, "{}", v["capture"]);
    // A TLV claiming more than there is.
    let mut bad = vec![2, 0, 0, 0];
    bad.extend_from_slice(&200u16.to_le_bytes());
    bad.extend_from_slice(&9u16.to_le_bytes());
    assert_eq!(dec(link::NFLOG, &bad).0, Err(Skip::Undecodable));
}

/// The fields a consumer reads for each kind of result.
fn meaningful(r: Result<Kind, Skip>, s: &Packet) -> String {
    let ip = |s: &Packet| {
        format!(
            "{:?} {:?} {} ttl {} len {} id {} df {} mf {} off {} proto {} mac {:?} {:?}",
            s.src,
            s.dst,
            s.v6,
            s.ttl,
            s.ip_len,
            s.ip_id,
            s.dont_fragment,
            s.more_fragments,
            s.frag_offset,
            s.ip_proto,
            s.src_mac,
            s.dst_mac
        )
    };
    match r {
        Ok(Kind::Tcp) => format!(
            "tcp {} {} {} {} {} {} {} {} {:?}",
            ip(s),
            s.sport,
            s.dport,
            s.seq,
            s.ack,
            s.flags,
            s.win,
            s.payload_len,
            s.syn_opts
        ),
        Ok(Kind::IcmpError) => format!(
            "icmp error {:?} {:?} {} {} {} {} {} {} {} {}",
            s.src, s.dst, s.v6, s.sport, s.dport, s.seq, s.flags, s.payload_len, s.icmp_type, s.icmp_code
        ),
        Ok(Kind::Udp) => format!("udp {} {} {} {}", ip(s), s.sport, s.dport, s.payload_len),
        Ok(Kind::Icmp) => format!("icmp {} {} {}", ip(s), s.icmp_type, s.icmp_code),
        Ok(k @ (Kind::Fragment | Kind::Other)) => format!("{k:?} {}", ip(s)),
        Err(e) => format!("{e:?}"),
    }
}

/// What the IP header and link layer say travels with every packet, whatever
/// its transport: what the IP, ICMP, UDP and interface views will count.
#[test]
fn ip_metadata_and_transport_kinds() {
    let (r, s) = dec(link::ETHERNET, &eth(&udp_ip(false, 5353, 53, b"hello")));
    assert_eq!(r, Ok(Kind::Udp));
    assert_eq!((s.sport, s.dport, s.payload_len, s.ip_proto), (5353, 53, 5, 17));
    assert_eq!((s.ttl, s.ip_len, s.dont_fragment, s.more_fragments), (64, 20 + 8 + 5, true, false));
    assert_eq!((s.src_mac, s.dst_mac), (MAC_A, MAC_B));
    let (r, s) = dec(link::RAW, &udp_ip(true, 1000, 2000, b"abc"));
    assert_eq!(r, Ok(Kind::Udp));
    assert_eq!((s.sport, s.dport, s.payload_len, s.ip_len, s.v6), (1000, 2000, 3, 40 + 8 + 3, true));
    assert_eq!(s.src_mac, [0; 6], "raw IP has no MAC addresses");
    let (r, s) = dec(link::RAW, &icmp_echo_ip(false));
    assert_eq!((r, s.icmp_type, s.icmp_code, s.ip_proto), (Ok(Kind::Icmp), 8, 0, 1));
    let (r, s) = dec(link::RAW, &icmp_echo_ip(true));
    assert_eq!((r, s.icmp_type, s.ip_proto), (Ok(Kind::Icmp), 128, 58));
    let syn4 = tcp_ip(&syn_seg(false));
    let (r, s) = dec(link::RAW, &ipv4_set_fragment(&syn4, true, 3));
    assert_eq!((r, s.more_fragments, s.frag_offset, s.ip_proto), (Ok(Kind::Fragment), true, 3, 6));
    let syn6 = tcp_ip(&syn_seg(true));
    let (r, s) = dec(link::RAW, &ipv6_with_exts(&syn6, &[(44, ipv6_frag_ext(2, true, 0xabcdef))]));
    assert_eq!((r, s.ip_id, s.frag_offset, s.more_fragments), (Ok(Kind::Fragment), 0xabcdef, 2, true));
    let (r, s) = dec(link::RAW, &outer_ip(false, 132, &[0; 12]));
    assert_eq!((r, s.ip_proto), (Ok(Kind::Other), 132));
}

#[test]
fn decoding_into_a_reused_summary_matches_a_fresh_one() {
    // The replay loop decodes every frame into the same Packet: nothing a
    // previous frame left behind may leak into the next result.
    let syn4 = tcp_ip(&syn_seg(false));
    let syn6 = tcp_ip(&syn_seg(true));
    let frames: Vec<Vec<u8>> = vec![
        eth(&syn4),
        eth(&icmp_error_ip(false, 3, 3, &syn4, 28)),
        eth(&tcp_ip(&data_seg(true))),
        eth(&icmp_error_ip(true, 1, 4, &syn6, syn6.len())),
        eth(&tcp_ip(&Seg::new(false, ACK, 1, 2, 0)))[..54].to_vec(),
        eth(&syn6)[..70].to_vec(),
        eth_with(0x0806, &[0; 28]),
        eth(&udp_ip(false, 1, 2, b"x")),
        eth(&syn4),
        eth(&ipv4_set_fragment(&syn4, true, 0)),
        eth(&tcp_ip(&data_seg(false))),
    ];
    let mut reused = Packet::default();
    for (i, f) in frames.iter().enumerate() {
        let r = decode(link::ETHERNET, f, &mut reused);
        let (fresh_r, fresh) = dec(link::ETHERNET, f);
        assert_eq!(r, fresh_r, "frame {i}");
        assert_eq!(meaningful(r, &reused), meaningful(fresh_r, &fresh), "frame {i}");
    }
}

// ---------------------------------------------------------------------------
// End to end through the binary
// ---------------------------------------------------------------------------

/// What an end-to-end run shows for the client and the server hosts.
#[derive(Debug, PartialEq)]
struct Views {
    client_rows: Vec<(String, String, String, String)>,
    client_tcp: Value,
    server_rows: Vec<(String, String, String, String)>,
    server_tcp: Value,
    tcp_segments: u64,
}

/// The v4 then the v6 conversation, each packet wrapped by `wrap`, written
/// with `linktype` (pcap, or pcapng when `ng`), cut to `snaplen` if non-zero;
/// returns both hosts' views.
fn run_conversation(tag: &str, linktype: u32, wrap: &dyn Fn(&[u8]) -> Vec<u8>, snaplen: usize, ng: bool) -> Views {
    let dir = TestDir::new(tag);
    let mut frames: Vec<Vec<u8>> = conversation(false).iter().map(|p| wrap(p)).collect();
    frames.extend(conversation(true).iter().map(|p| wrap(p)));
    let n = frames.len() as u64;
    let mut recs = recs_1ms_apart(frames);
    if snaplen > 0 {
        recs = recs.into_iter().map(|r| r.cut(snaplen)).collect();
    }
    let file_snaplen = if snaplen > 0 { snaplen as u32 } else { 65535 };
    let path = dir.file(if ng { "conv.pcapng" } else { "conv.pcap" });
    if ng {
        write_pcapng(&path, linktype as u16, file_snaplen, &recs);
    } else {
        write_pcap(&path, linktype, file_snaplen, &recs);
    }
    let (c, c_err) = json_for_hosts(&path, &[V4_CLIENT_STR, V6_CLIENT_STR]);
    let (s, _) = json_for_hosts(&path, &[V4_SERVER_STR, V6_SERVER_STR]);
    assert_eq!(capture_count(&c, "frames"), n, "{tag}: frames");
    assert_eq!(capture_category_sum(&c), n, "{tag}: categories add up: {}", c["capture"]);
    assert_eq!(capture_count(&c, "undecodable"), 0, "{tag}: {}", c["capture"]);
    assert!(c_err.is_empty(), "{tag}: nothing to report on stderr, got {c_err}");
    Views {
        client_rows: connection_rows(&c),
        client_tcp: c["tcp_stats"].clone(),
        server_rows: connection_rows(&s),
        server_tcp: s["tcp_stats"].clone(),
        tcp_segments: capture_count(&c, "tcp_segments"),
    }
}

fn row(proto: &str, local: &str, foreign: &str, state: &str) -> (String, String, String, String) {
    (proto.into(), local.into(), foreign.into(), state.into())
}

fn tcp_stats(active: u64, passive: u64, current: u64, received: u64, sent: u64) -> Value {
    serde_json::json!({
        "active_opens": active, "passive_opens": passive, "failed_connection_attempts": 0,
        "reset_connections": 0, "current_connections": current, "segments_received": received,
        "segments_sent": sent, "segments_retransmitted": 0,
    })
}

fn ethernet_baseline() -> Views {
    let v = run_conversation("e2e-eth", 1, &|p| eth(p), 0, false);
    assert_eq!(
        v.client_rows,
        vec![
            row("TCP", "192.0.2.1:40000", "198.51.100.2:80", "TIME_WAIT"),
            row("TCP", "192.0.2.1:40001", "198.51.100.2:22", "ESTABLISHED"),
            row("TCPv6", "[2001:db8::1]:40000", "[2001:db8::2]:80", "TIME_WAIT"),
            row("TCPv6", "[2001:db8::1]:40001", "[2001:db8::2]:22", "ESTABLISHED"),
        ]
    );
    assert_eq!(
        v.server_rows,
        vec![
            row("TCP", "198.51.100.2:22", "0.0.0.0:0", "LISTEN"),
            row("TCP", "198.51.100.2:22", "192.0.2.1:40001", "ESTABLISHED"),
            row("TCP", "198.51.100.2:80", "0.0.0.0:0", "LISTEN"),
            row("TCPv6", "[2001:db8::2]:22", "[::]:0", "LISTEN"),
            row("TCPv6", "[2001:db8::2]:22", "[2001:db8::1]:40001", "ESTABLISHED"),
            row("TCPv6", "[2001:db8::2]:80", "[::]:0", "LISTEN"),
        ]
    );
    let client = tcp_stats(2, 0, 1, 6, 9);
    let server = tcp_stats(0, 2, 1, 9, 6);
    assert_eq!(v.client_tcp, serde_json::json!({"ipv4": client, "ipv6": client}));
    assert_eq!(v.server_tcp, serde_json::json!({"ipv4": server, "ipv6": server}));
    assert_eq!(v.tcp_segments, 30);
    v
}

#[test]
fn e2e_every_link_type_matches_ethernet() {
    let base = ethernet_baseline();
    type Wrap = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let cases: Vec<(&str, u32, Wrap)> =
        vec![
            ("vlan", 1, Box::new(eth_vlan)),
            ("qinq", 1, Box::new(eth_qinq)),
            ("sll", 113, Box::new(sll)),
            ("sll2", 276, Box::new(sll2)),
            ("raw101", 101, Box::new(|p| p.to_vec())),
            ("raw12", 12, Box::new(|p| p.to_vec())),
            ("null-le", 0, Box::new(|p| null(p, false))),
            ("null-be", 0, Box::new(|p| null(p, true))),
            ("loop", 108, Box::new(loop_)),
            ("gre", 1, Box::new(gre_ip)),
            ("erspan2", 1, Box::new(|p| erspan2(&eth(p)))),
            ("erspan3", 1, Box::new(|p| erspan3(&eth(p), true))),
            ("vxlan", 1, Box::new(|p| vxlan(&eth(p)))),
            ("mpls", 1, Box::new(mpls)),
            ("pppoe", 1, Box::new(pppoe)),
            (
                "eth-padded",
                1,
                Box::new(|p| {
                    let mut f = eth(p);
                    if f.len() < 60 {
                        f.resize(60, 0xee);
                    }
                    f
                }),
            ),
            // IPv4 options (IHL 6), IPv6 hop-by-hop + destination options.
            (
                "ip-options",
                1,
                Box::new(|p| {
                    eth(&if p[0] >> 4 == 4 {
                        ipv4_with_options(p, &[1, 1, 1, 0])
                    } else {
                        ipv6_with_exts(p, &[(0, ipv6_padn_ext()), (60, ipv6_padn_ext())])
                    })
                }),
            ),
            // IPv6 atomic fragments are whole datagrams (IPv4 left alone).
            (
                "v6-atomic-fragments",
                101,
                Box::new(|p| {
                    if p[0] >> 4 == 6 { ipv6_with_exts(p, &[(44, ipv6_frag_ext(0, false, 99))]) } else { p.to_vec() }
                }),
            ),
        ];
    for (tag, lt, wrap) in &cases {
        let v = run_conversation(&format!("e2e-{tag}"), *lt, wrap.as_ref(), 0, false);
        assert_eq!(v, base, "{tag} (linktype {lt}) differs from Ethernet");
    }
}

#[test]
fn e2e_header_only_captures_match_full() {
    let base = ethernet_baseline();
    // snaplen 96 keeps every header; below, TCP options get cut (on Ethernet,
    // v6 SYNs need 94 bytes, v6 segments with timestamps 86, v4 SYNs 74), down
    // to 74 where only v6's fixed TCP header is left.
    for snaplen in [96, 86, 80, 74] {
        let v = run_conversation(&format!("e2e-snap{snaplen}"), 1, &|p| eth(p), snaplen, false);
        assert_eq!(v, base, "snaplen {snaplen}");
    }
    // Raw IP, snaplen 60: room for IPv6 + the fixed TCP header.
    for snaplen in [60, 64] {
        let v = run_conversation(&format!("e2e-raw-snap{snaplen}"), 101, &|p| p.to_vec(), snaplen, false);
        assert_eq!(v, base, "raw snaplen {snaplen}");
    }
}

#[test]
fn e2e_pcapng_matches_pcap() {
    let base = ethernet_baseline();
    let v = run_conversation("e2e-pcapng", 1, &|p| eth(p), 0, true);
    assert_eq!(v, base, "pcapng");
    let v = run_conversation("e2e-pcapng-sll2", 276, &|p| sll2(p), 0, true);
    assert_eq!(v, base, "pcapng SLL2");
}

#[test]
fn e2e_icmp_port_unreachable_fails_the_connect() {
    let dir = TestDir::new("e2e-icmp");
    let mut frames = Vec::new();
    for v6 in [false, true] {
        let syn = tcp_ip(&syn_seg(v6));
        frames.push(eth(&syn));
        let (t, c) = if v6 { (1, 4) } else { (3, 3) };
        frames.push(eth(&icmp_error_ip(v6, t, c, &syn, syn.len())));
    }
    let path = dir.file("icmp.pcap");
    write_pcap(&path, 1, 65535, &recs_1ms_apart(frames));
    let (v, _) = json_for_hosts(&path, &[V4_CLIENT_STR, V6_CLIENT_STR]);
    assert_eq!(capture_count(&v, "tcp_segments"), 2);
    assert_eq!(capture_count(&v, "icmp_errors_quoting_tcp"), 2);
    assert!(connection_rows(&v).is_empty(), "the refused connects leave no row: {}", v["connections"]);
    for fam in ["ipv4", "ipv6"] {
        let t = &v["tcp_stats"][fam];
        assert_eq!(t["active_opens"], 1, "{fam}: {t}");
        assert_eq!(t["failed_connection_attempts"], 1, "{fam}: {t}");
        assert_eq!(t["current_connections"], 0, "{fam}: {t}");
    }
}

#[test]
fn e2e_fragments_counted_not_tracked() {
    let dir = TestDir::new("e2e-frag");
    let g4 = syn_seg(false);
    let g6 = syn_seg(true);
    let frames = vec![
        eth(&ipv4_set_fragment(&tcp_ip(&g4), true, 0)),
        eth(&ipv4_set_fragment(&tcp_ip(&g4), false, 8)),
        eth(&ipv6_with_exts(&tcp_ip(&g6), &[(44, ipv6_frag_ext(0, true, 1))])),
        // The atomic fragment is a whole SYN.
        eth(&ipv6_with_exts(&tcp_ip(&g6), &[(44, ipv6_frag_ext(0, false, 2))])),
    ];
    let path = dir.file("frag.pcap");
    write_pcap(&path, 1, 65535, &recs_1ms_apart(frames));
    let (v, _) = json_for_hosts(&path, &[V4_CLIENT_STR, V6_CLIENT_STR]);
    assert_eq!(capture_count(&v, "frames"), 4);
    assert_eq!(capture_count(&v, "fragments"), 3);
    assert_eq!(capture_count(&v, "tcp_segments"), 1);
    assert_eq!(v["tcp_stats"]["ipv4"]["active_opens"], 0);
    assert_eq!(v["tcp_stats"]["ipv6"]["active_opens"], 1);
    assert_eq!(connection_rows(&v), vec![row("TCPv6", "[2001:db8::1]:40000", "[2001:db8::2]:80", "SYN_SENT")]);
}

#[test]
fn e2e_frame_count_and_bytes_use_wire_length() {
    // Header-only records: `bytes` counts the wire length, not the captured one.
    let dir = TestDir::new("e2e-bytes");
    let g = Seg { ts_opt: true, ..Seg::new(false, PSH | ACK, 1, 1, 1000) };
    let f = eth(&tcp_ip(&g));
    let wire = f.len() as u64;
    let recs = vec![Rec::new(1_700_000_000, 0, f.clone()).cut(60), Rec::new(1_700_000_000, 1, f).cut(96)];
    let path = dir.file("bytes.pcap");
    write_pcap(&path, 1, 96, &recs);
    let (v, _) = json_for_hosts(&path, &[V4_CLIENT_STR]);
    assert_eq!(capture_count(&v, "frames"), 2);
    assert_eq!(capture_count(&v, "bytes"), 2 * wire);
    assert_eq!(capture_count(&v, "tcp_segments"), 2);
}

/// IPv6 over UDP (Teredo), recognised by content on any port: bare, behind an
/// origin indication, behind an authentication header. A UDP payload that
/// merely looks like IPv6 is plain UDP: a wrong length, no Teredo or
/// link-local address (a DNS query can pass the length test), IPv6 outside,
/// or a UDP length overrunning the IP payload.
#[test]
fn teredo_ipv6_over_udp() {
    let mut inner = tcp_ip(&data_seg(true));
    inner[8..12].copy_from_slice(&[0x20, 0x01, 0, 0]); // the client's Teredo address 2001:0::/32
    let (r, bare) = dec(link::ETHERNET, &eth(&inner));
    let want = meaningful(r, &bare);
    assert!(want.starts_with("tcp "), "{want}");
    let origin: Vec<u8> = vec![0, 0, 0x0d, 0x35, 0x3f, 0x57, 0x0e, 0x01];
    let mut auth: Vec<u8> = vec![0, 1, 2, 1, 0xa, 0xb, 0xc];
    auth.extend_from_slice(&[0x11; 8]); // nonce
    auth.push(0); // confirmation
    let mut both = auth.clone();
    both.extend_from_slice(&origin);
    for (prefix, sport, dport) in [(vec![], 3797, 32900), (origin, 3544, 3797), (auth, 3797, 3544), (both, 3544, 1)] {
        let mut payload = prefix.clone();
        payload.extend_from_slice(&inner);
        let (r, s) = dec(link::ETHERNET, &eth(&udp_ip(false, sport, dport, &payload)));
        assert_eq!(meaningful(r, &s), want, "prefix {prefix:02x?}");
    }
    let plain_udp = |payload: &[u8]| dec(link::ETHERNET, &eth(&udp_ip(false, 3797, 32900, payload))).0;
    let mut wrong = inner.clone();
    wrong[5] = wrong[5].wrapping_add(1); // payload length off by one
    assert_eq!(plain_udp(&wrong), Ok(Kind::Udp));
    assert_eq!(plain_udp(&tcp_ip(&data_seg(true))), Ok(Kind::Udp), "2001:db8:: is no Teredo address");
    // A DNS query: ID 0x6abc, one question; bytes 4-5 (QDCOUNT 1) + 40 = its 41 bytes.
    let mut dns = vec![0x6a, 0xbc, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    dns.extend_from_slice(b"\x07example\x03com\x00");
    dns.resize(41, 0);
    let (r, _) = dec(link::ETHERNET, &eth(&udp_ip(false, 53, 53, &dns)));
    assert_eq!(r, Ok(Kind::Udp));
    assert_eq!(dec(link::ETHERNET, &eth(&udp_ip(true, 3544, 3544, &inner))).0, Ok(Kind::Udp), "over IPv6");
    let mut long = udp_ip(false, 3544, 3544, &inner);
    let claimed = (long.len() - 20 + 100) as u16;
    long[24..26].copy_from_slice(&claimed.to_be_bytes()); // UDP length past the IP payload
    assert_eq!(dec(link::ETHERNET, &eth(&long)).0, Ok(Kind::Other), "a UDP length past the IP payload: malformed");
}

/// 802.11 data frames as Aruba controllers mirror them: GRE protocol 0x8200,
/// the MAC header (with QoS control, and a fourth address), LLC/SNAP, IP.
#[test]
fn aruba_gre_80211() {
    let g = data_seg(false);
    let ip = tcp_ip(&g);
    let snap = [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
    let frame = |fc: [u8; 2], extra: usize| {
        let mut w = vec![fc[0], fc[1], 0, 0];
        w.extend_from_slice(&[0x22; 18]); // three addresses
        w.extend_from_slice(&[0, 0]); // sequence control
        w.extend(std::iter::repeat_n(0u8, extra));
        w.extend_from_slice(&snap);
        w.extend_from_slice(&ip);
        let mut gre = gre_header(0x8200);
        gre.extend_from_slice(&w);
        eth(&outer_ip(false, 47, &gre))
    };
    expect_seg(link::ETHERNET, &frame([0x08, 0x01], 0), &g); // data, to DS
    expect_seg(link::ETHERNET, &frame([0x88, 0x02], 2), &g); // QoS data, from DS
    expect_seg(link::ETHERNET, &frame([0x88, 0x03], 8), &g); // QoS data, WDS: 4th address
    assert_eq!(dec(link::ETHERNET, &frame([0x88, 0x41], 2)).0, Ok(Kind::Other), "protected");
    assert_eq!(dec(link::ETHERNET, &frame([0x80, 0x00], 0)).0, Err(Skip::NonIp), "a beacon");
}

/// The one-pass path for Ethernet, IPv4 or IPv6, and TCP must give exactly
/// the packet the general path gives: every Ethernet frame of the fixtures
/// (kernel-truth, corpus, repro captures), decoded as captured and with an
/// 802.1Q tag inserted, which only the general path reads.
#[test]
fn the_one_pass_path_and_the_general_path_agree_on_every_fixture_frame() {
    use wirestat::capture::frames::FrameReader;
    fn captures(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                captures(&p, out);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    captures(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures")), &mut files);
    let (mut frames, mut tcp) = (0u64, 0u64);
    for path in &files {
        let Ok(mut r) = FrameReader::open(path, None) else { continue };
        while let Ok(Some(())) = r.next_frame(|f| {
            if f.linktype != link::ETHERNET || f.data.len() < 14 {
                return;
            }
            let mut plain = Packet { frame_len: f.orig_len, ..Packet::default() };
            let rp = decode(link::ETHERNET, f.data, &mut plain);
            let mut tagged_bytes = f.data[..12].to_vec();
            tagged_bytes.extend([0x81, 0x00, 0x00, 0x07]);
            tagged_bytes.extend(&f.data[12..]);
            let mut tagged = Packet { frame_len: f.orig_len + 4, ..Packet::default() };
            let rt = decode(link::ETHERNET, &tagged_bytes, &mut tagged);
            tagged.frame_len = plain.frame_len;
            assert_eq!(rp, rt, "{}: frame {}", path.display(), frames + 1);
            assert_eq!(format!("{plain:?}"), format!("{tagged:?}"), "{}: frame {}", path.display(), frames + 1);
            frames += 1;
            tcp += (rp == Ok(Kind::Tcp)) as u64;
        }) {}
    }
    assert!(frames > 10_000 && tcp > 10_000, "{frames} Ethernet frames, {tcp} TCP");
}

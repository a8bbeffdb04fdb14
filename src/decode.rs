//! Frame bytes → [`Packet`]: link layer, tunnels, IPv4/IPv6 (with the IP
//! metadata), then TCP, UDP, ICMP (and the TCP header an ICMP error quotes),
//! fragments and other protocols. Zero-copy over etherparse slices; nothing
//! here allocates. What cannot be decoded is counted in [`DecodeStats`], never
//! fatal.
//!
//! Lengths come from the IP header, not from the captured length: captures are
//! often cut to the headers, and Ethernet pads short frames.

use crate::addr::RawAddr;
use etherparse::{IpNumber, Ipv4HeaderSlice, Ipv6ExtensionSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice};

pub mod flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// libpcap link-layer types (DLT_* as `pcap_datalink` reports them, and the
/// LINKTYPE_* values that pcapng files may carry).
pub mod link {
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    pub const RAW_DLT: i32 = 12;
    pub const RAW_OPENBSD: i32 = 14;
    pub const RAW: i32 = 101;
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const NFLOG: i32 = 239;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;
}

/// What the transport layer of a decoded IP packet is; says which of the
/// [`Packet`] fields beyond the IP header are meaningful.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A TCP segment: ports, `seq`, `ack`, `win`, `flags`, `payload_len`, `syn_opts`.
    Tcp,
    /// An ICMP/ICMPv6 error quoting a TCP segment: `icmp_type`, `icmp_code`;
    /// the address, port, `seq` and `flags` fields describe the quoted segment
    /// as its sender sent it.
    IcmpError,
    /// A UDP datagram: ports, `payload_len`.
    Udp,
    /// Any other ICMP or ICMPv6 message: `icmp_type`, `icmp_code`.
    Icmp,
    /// A fragment of a fragmented datagram: `ip_proto`, `ip_id`, `frag_offset`, `more_fragments`.
    Fragment,
    /// Another IP protocol, or a transport header too short or inconsistent to read: `ip_proto`.
    Other,
}

/// TCP options of interest, parsed only on SYN segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynOptions {
    pub mss: u16,
    /// Window scale shift, 0xff when absent.
    pub wscale: u8,
    pub sack_ok: bool,
    pub timestamps: bool,
}

/// One decoded packet: small and `Copy`, so it travels in reused batches.
/// The IP fields always hold; which transport fields do depends on `kind`.
#[derive(Clone, Copy, Debug)]
pub struct Packet {
    /// Capture time, nanoseconds since the epoch.
    pub ts: u64,
    /// 1-based frame number in reading order.
    pub frame: u64,
    pub src: RawAddr,
    pub dst: RawAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// Transport payload bytes (TCP segment data, UDP datagram data).
    pub payload_len: u32,
    /// Length of the frame on the wire.
    pub frame_len: u32,
    /// Bytes of the frame the capture did not keep (the snaplen's cut), or
    /// `u32::MAX` when the link type cannot say (set by [`decode`]).
    pub uncaptured: u32,
    /// The datagram's length per its IP header (IPv4 total length, IPv6 40 + payload length).
    pub ip_len: u32,
    /// IPv4 identification, or the IPv6 fragment header's identification (0 without one).
    pub ip_id: u32,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    pub win: u16,
    pub flags: u8,
    pub kind: Kind,
    pub v6: bool,
    /// IPv4 don't-fragment bit.
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Protocol number of the transport header (after IPv6 extension headers).
    pub ip_proto: u8,
    /// For [`Kind::IcmpError`] and [`Kind::Icmp`]: ICMP type and code.
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub syn_opts: SynOptions,
    /// Ethernet addresses of the innermost Ethernet header (zero when the link has none).
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
}

impl Packet {
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// Sequence space the segment occupies: payload plus one each for SYN and FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload_len + (self.flags & flag::SYN != 0) as u32 + (self.flags & flag::FIN != 0) as u32
    }
}

/// Why a frame was not turned into a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not IP (ARP, LLDP, ...).
    NonIp,
    /// Headers that are cut short or inconsistent.
    Undecodable,
    /// A link type wirestat cannot read.
    UnknownLinkType,
}

counter_group! {
    /// What the reader made of the frames it read (the `capture` health figures).
    pub struct DecodeStats {
        frames: "frames", "frames read";
        bytes: "bytes", "bytes on the wire";
        tcp: "tcp_segments", "TCP segments";
        icmp_errors: "icmp_errors_quoting_tcp", "ICMP errors quoting TCP";
        non_ip: "non_ip", "frames that are not IP";
        other_protocol: "other_protocols", "IP packets of other protocols";
        fragments: "fragments", "IP fragments";
        undecodable: "undecodable", "frames undecodable (bad or cut-off headers), skipped";
        unknown_link: "unknown_link_type", "frames of an unsupported link type, skipped";
        /// Frames stamped more than a day ahead that the next frame did not
        /// confirm (tracked at the capture's time).
        bad_timestamps: "bad_timestamps", "frames with a timestamp far ahead of the capture that the next frame does not confirm, tracked at the capture's time";
        /// Frames stamped earlier than a frame before them (tracked at the capture's time).
        out_of_order: "out_of_order", "frames out of time order (earlier than a frame before them), tracked at the time of the latest frame";
    }
}

impl DecodeStats {
    /// Counts a frame read: `s` with its `frame_len`, and what it decoded to.
    #[inline]
    pub fn read(&mut self, s: &Packet, r: Result<Kind, Skip>) {
        self.frames += 1;
        self.bytes += s.frame_len as u64;
        self.count(r);
    }

    pub fn count(&mut self, r: Result<Kind, Skip>) {
        match r {
            Ok(Kind::Tcp) => self.tcp += 1,
            Ok(Kind::IcmpError) => self.icmp_errors += 1,
            Ok(Kind::Udp | Kind::Icmp | Kind::Other) => self.other_protocol += 1,
            Ok(Kind::Fragment) => self.fragments += 1,
            Err(Skip::NonIp) => self.non_ip += 1,
            Err(Skip::Undecodable) => self.undecodable += 1,
            Err(Skip::UnknownLinkType) => self.unknown_link += 1,
        }
    }
}

/// Nested tunnels deeper than this are treated as hostile input.
const MAX_DEPTH: u8 = 6;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE: u16 = 0x8864;
const ETH_TEB: u16 = 0x6558;
const ETH_ERSPAN2: u16 = 0x88be;
const ETH_ERSPAN3: u16 = 0x22eb;
const VXLAN_PORT: u16 = 4789;
/// GRE protocol type of Aruba's mirrored 802.11 frames.
const ARUBA_WLAN: u16 = 0x8200;

/// Decodes one frame into `out` (whose `ts`, `frame` and `frame_len` the
/// caller has already set).
pub fn decode(linktype: i32, data: &[u8], out: &mut Packet) -> Result<Kind, Skip> {
    // Only an Ethernet header sets them: a frame of another link must not keep the last one's.
    (out.src_mac, out.dst_mac) = ([0; 6], [0; 6]);
    let r = link_layer(linktype, data, out);
    if let Ok(k) = r {
        out.kind = k;
    }
    r
}

#[inline]
fn link_layer(linktype: i32, data: &[u8], out: &mut Packet) -> Result<Kind, Skip> {
    // NFLOG's record length is the message's, whose payload the logging rule's
    // copy range may have cut: how much is missing is unknown there.
    out.uncaptured = if linktype == link::NFLOG || out.frame_len == 0 {
        u32::MAX
    } else {
        out.frame_len.saturating_sub(data.len() as u32)
    };
    match linktype {
        link::ETHERNET => match plain_tcp(data, out) {
            Some(r) => r,
            None => ethernet(data, out, 0),
        },
        link::RAW | link::RAW_DLT | link::RAW_OPENBSD | link::IPV4 | link::IPV6 => ip(data, out, 0),
        link::NULL => {
            let b: [u8; 4] = data.get(..4).ok_or(Skip::Undecodable)?.try_into().unwrap();
            // DLT_NULL stores the family in the writer's byte order: accept either.
            let fam = u32::from_le_bytes(b).min(u32::from_be_bytes(b));
            null_family(fam, &data[4..], out)
        }
        link::LOOP => {
            let b: [u8; 4] = data.get(..4).ok_or(Skip::Undecodable)?.try_into().unwrap();
            null_family(u32::from_be_bytes(b), &data[4..], out)
        }
        link::LINUX_SLL => {
            let p = data.get(14..16).ok_or(Skip::Undecodable)?;
            ethertype(u16::from_be_bytes([p[0], p[1]]), &data[16..], out, 0)
        }
        link::LINUX_SLL2 => {
            let p = data.get(..2).ok_or(Skip::Undecodable)?;
            ethertype(u16::from_be_bytes([p[0], p[1]]), data.get(20..).ok_or(Skip::Undecodable)?, out, 0)
        }
        link::NFLOG => nflog(data, out),
        _ => Err(Skip::UnknownLinkType),
    }
}

/// Most frames in one pass: Ethernet, then IPv4 without options and not a
/// fragment, or IPv6 without extension headers, then TCP. Anything else, or
/// anything the general path would refuse, is left to it (`None`, nothing
/// written), so both give the same packet.
#[inline(always)]
fn plain_tcp(data: &[u8], out: &mut Packet) -> Option<Result<Kind, Skip>> {
    let h = data.get(..14)?;
    let ip = &data[14..];
    let r = match (h[12], h[13], ip.first()) {
        (0x08, 0x00, Some(0x45)) => {
            let b = ip.get(..20)?;
            let total = u16::from_be_bytes([b[2], b[3]]) as usize;
            let frag = u16::from_be_bytes([b[6], b[7]]);
            if total < 20 || total > on_wire(ip, out) || frag & 0x3fff != 0 || b[9] != 6 {
                return None;
            }
            ipv4_fields(b, total, out);
            out.ip_proto = 6;
            tcp(&ip[20..total.min(ip.len())], (total - 20) as u32, out)
        }
        (0x86, 0xdd, Some(&v)) if v >> 4 == 6 => {
            let b = ip.get(..40)?;
            let plen = u16::from_be_bytes([b[4], b[5]]) as usize;
            if plen == 0 || 40 + plen > on_wire(ip, out) || b[6] != 6 {
                return None;
            }
            ipv6_fields(b, plen, out);
            out.ip_proto = 6;
            tcp(&ip[40..(40 + plen).min(ip.len())], plen as u32, out)
        }
        _ => return None,
    };
    out.dst_mac.copy_from_slice(&h[..6]);
    out.src_mac.copy_from_slice(&h[6..12]);
    Some(r)
}

fn null_family(fam: u32, rest: &[u8], out: &mut Packet) -> Result<Kind, Skip> {
    match fam {
        2 => ip(rest, out, 0),
        // AF_INET6 differs per BSD: NetBSD/OpenBSD 24, FreeBSD 28, macOS 30; Linux 10.
        10 | 24 | 28 | 30 => ip(rest, out, 0),
        _ => Err(Skip::NonIp),
    }
}

fn nflog(data: &[u8], out: &mut Packet) -> Result<Kind, Skip> {
    // 4-byte header, then TLVs (little-endian length and type, padded to 4).
    let mut rest = data.get(4..).ok_or(Skip::Undecodable)?;
    while rest.len() >= 4 {
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        let typ = u16::from_le_bytes([rest[2], rest[3]]) & 0x7fff;
        if len < 4 || len > rest.len() {
            return Err(Skip::Undecodable);
        }
        if typ == 9 {
            return ip(&rest[4..len], out, 0);
        }
        rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Err(Skip::NonIp)
}

fn ethernet(data: &[u8], out: &mut Packet, depth: u8) -> Result<Kind, Skip> {
    let h = data.get(..14).ok_or(Skip::Undecodable)?;
    out.dst_mac.copy_from_slice(&h[..6]);
    out.src_mac.copy_from_slice(&h[6..12]);
    ethertype(u16::from_be_bytes([h[12], h[13]]), &data[14..], out, depth)
}

fn ethertype(mut et: u16, mut rest: &[u8], out: &mut Packet, depth: u8) -> Result<Kind, Skip> {
    if depth > MAX_DEPTH {
        return Err(Skip::Undecodable);
    }
    loop {
        match et {
            ETH_IPV4 | ETH_IPV6 => return ip(rest, out, depth),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                let t = rest.get(..4).ok_or(Skip::Undecodable)?;
                et = u16::from_be_bytes([t[2], t[3]]);
                rest = &rest[4..];
            }
            ETH_MPLS | ETH_MPLS_MC => {
                // Pop labels to the bottom of the stack, then guess the payload by its first nibble.
                loop {
                    let l = rest.get(..4).ok_or(Skip::Undecodable)?;
                    rest = &rest[4..];
                    if l[2] & 1 == 1 {
                        break;
                    }
                }
                return match rest.first().map(|b| b >> 4) {
                    Some(4) | Some(6) => ip(rest, out, depth + 1),
                    _ => ethernet(rest, out, depth + 1),
                };
            }
            ETH_PPPOE => {
                let h = rest.get(..8).ok_or(Skip::Undecodable)?;
                let proto = u16::from_be_bytes([h[6], h[7]]);
                return match proto {
                    0x0021 | 0x0057 => ip(&rest[8..], out, depth + 1),
                    _ => Err(Skip::NonIp),
                };
            }
            ETH_TEB => return ethernet(rest, out, depth + 1),
            _ => return Err(Skip::NonIp),
        }
    }
}

/// IP payload in hand: the transport-layer bytes plus the length the IP header claims for them.
struct IpPayload<'a> {
    proto: IpNumber,
    bytes: &'a [u8],
    len: u32,
    /// A piece of a fragmented datagram: its transport header is not (all) here.
    fragment: bool,
}

fn ip(data: &[u8], out: &mut Packet, depth: u8) -> Result<Kind, Skip> {
    if depth > MAX_DEPTH {
        return Err(Skip::Undecodable);
    }
    let p = match data.first().map(|b| b >> 4) {
        Some(4) => ipv4(data, out)?,
        Some(6) => ipv6(data, out)?,
        _ => return Err(Skip::Undecodable),
    };
    out.ip_proto = p.proto.0;
    if p.fragment {
        return Ok(Kind::Fragment);
    }
    match p.proto {
        IpNumber::TCP => tcp(p.bytes, p.len, out),
        IpNumber::ICMP if !out.v6 => icmp(p.bytes, out, false),
        IpNumber::IPV6_ICMP if out.v6 => icmp(p.bytes, out, true),
        IpNumber::GRE => gre(p.bytes, out, depth),
        IpNumber::IPV4 | IpNumber::IPV6 => ip(p.bytes, out, depth + 1),
        IpNumber::UDP => {
            let Some(u) = p.bytes.get(..8) else { return Ok(Kind::Other) };
            if u16::from_be_bytes([u[2], u[3]]) == VXLAN_PORT && p.bytes.len() >= 16 && p.bytes[8] & 0x08 != 0 {
                return ethernet(&p.bytes[16..], out, depth + 1);
            }
            // Linux drops a datagram whose UDP length overruns the IP payload.
            let udp_len = u16::from_be_bytes([u[4], u[5]]) as usize;
            if udp_len < 8 || udp_len > p.len as usize {
                return Ok(Kind::Other);
            }
            out.sport = u16::from_be_bytes([u[0], u[1]]);
            out.dport = u16::from_be_bytes([u[2], u[3]]);
            out.payload_len = udp_len as u32 - 8;
            if out.v6 {
                return Ok(Kind::Udp);
            }
            teredo(&p.bytes[8..], udp_len - 8, out, depth)
        }
        _ => Ok(Kind::Other),
    }
}

/// How many bytes from the start of `data` were on the wire: what was captured
/// plus what the snaplen cut. A datagram longer than that is corrupt (the
/// kernel drops it as truncated before TCP sees it).
fn on_wire(data: &[u8], out: &Packet) -> usize {
    data.len().saturating_add(out.uncaptured as usize)
}

fn ipv4<'a>(data: &'a [u8], out: &mut Packet) -> Result<IpPayload<'a>, Skip> {
    let h = Ipv4HeaderSlice::from_slice(data).map_err(|_| Skip::Undecodable)?;
    let hl = h.slice().len();
    // A total length of 0 is what a sender with TCP segmentation offload
    // hands to the capture: the frame itself is the datagram.
    let total = match h.total_len() as usize {
        0 => data.len(),
        n => n,
    };
    if total < hl || total > on_wire(data, out) {
        return Err(Skip::Undecodable);
    }
    let b = h.slice();
    let frag = ipv4_fields(b, total, out);
    let end = total.min(data.len());
    Ok(IpPayload {
        proto: IpNumber(b[9]),
        bytes: &data[hl..end.max(hl)],
        len: (total - hl) as u32,
        fragment: frag & 0x3fff != 0,
    })
}

/// The packet's IPv4 fields from the fixed header `b` (20 bytes at least) of a
/// datagram of `total` bytes; returns the flags and fragment offset word.
#[inline(always)]
fn ipv4_fields(b: &[u8], total: usize, out: &mut Packet) -> u16 {
    out.v6 = false;
    out.src = [0; 16];
    out.dst = [0; 16];
    out.src[..4].copy_from_slice(&b[12..16]);
    out.dst[..4].copy_from_slice(&b[16..20]);
    let frag = u16::from_be_bytes([b[6], b[7]]);
    out.ttl = b[8];
    out.ip_len = total as u32;
    out.ip_id = u16::from_be_bytes([b[4], b[5]]) as u32;
    out.dont_fragment = frag & 0x4000 != 0;
    out.more_fragments = frag & 0x2000 != 0;
    out.frag_offset = frag & 0x1fff;
    frag
}

/// The packet's IPv6 fields from the fixed header `b` (40 bytes) of a
/// datagram with `plen` payload bytes; fragment fields as for no fragment
/// header (`extension_headers` sets them if there is one).
#[inline(always)]
fn ipv6_fields(b: &[u8], plen: usize, out: &mut Packet) {
    out.v6 = true;
    out.src.copy_from_slice(&b[8..24]);
    out.dst.copy_from_slice(&b[24..40]);
    out.ttl = b[7];
    out.ip_len = 40 + plen as u32;
    out.dont_fragment = false;
    (out.ip_id, out.frag_offset, out.more_fragments) = (0, 0, false);
}

fn ipv6<'a>(data: &'a [u8], out: &mut Packet) -> Result<IpPayload<'a>, Skip> {
    let h = Ipv6HeaderSlice::from_slice(data).map_err(|_| Skip::Undecodable)?;
    let plen = h.payload_length() as usize;
    let body = &data[40..];
    // A zero payload length means a jumbogram: fall back to what was captured.
    let plen = if plen == 0 { body.len() } else { plen };
    if 40 + plen > on_wire(data, out) {
        return Err(Skip::Undecodable);
    }
    let body = &body[..plen.min(body.len())];
    let (exts, next, rest) = Ipv6ExtensionsSlice::from_slice(h.next_header(), body).map_err(|_| Skip::Undecodable)?;
    ipv6_fields(h.slice(), plen, out);
    // Most packets have none: no walk to set up.
    if !exts.slice().is_empty() {
        extension_headers(&exts, out);
    }
    let ext_len = exts.slice().len();
    let fragment = exts.is_fragmenting_payload();
    if !fragment && ext_len > plen {
        return Err(Skip::Undecodable);
    }
    Ok(IpPayload { proto: next, bytes: rest, len: plen.saturating_sub(ext_len) as u32, fragment })
}

/// What IPv6 extension headers say about the packet: its fragment fields,
/// and the addresses its transport checksum covers.
fn extension_headers(exts: &Ipv6ExtensionsSlice, out: &mut Packet) {
    for e in exts.clone() {
        match e {
            Ipv6ExtensionSlice::Fragment(f) => {
                (out.ip_id, out.frag_offset, out.more_fragments) =
                    (f.identification(), f.fragment_offset().value(), f.more_fragments());
            }
            // The connection is between the addresses the transport checksum
            // covers (RFC 8200 8.1): the final destination of a routing header
            // that still has segments to visit, and the home address a mobile
            // node puts in a destination option in place of its care-of source.
            Ipv6ExtensionSlice::Routing(r) => {
                if let Some(a) = routing_final_destination(r.payload()) {
                    out.dst = a;
                }
            }
            Ipv6ExtensionSlice::DestinationOptions(o) => {
                if let Some(a) = home_address(o.payload()) {
                    out.src = a;
                }
            }
            _ => {}
        }
    }
}

/// The final destination named by a routing header (its bytes after the next
/// header and length fields), if the packet has not reached it yet.
fn routing_final_destination(p: &[u8]) -> Option<RawAddr> {
    let (&typ, &left) = (p.first()?, p.get(1)?);
    if left == 0 {
        // Arrived: the IPv6 destination already is the final one.
        return None;
    }
    let at = match typ {
        // Type 0 (deprecated, RFC 5095) and type 2 (Mobile IPv6's home
        // address): after 4 reserved bytes, a list of addresses, the last one
        // the final destination.
        0 | 2 => {
            let n = p.len().checked_sub(6)? / 16;
            6 + 16 * n.checked_sub(1)?
        }
        // Type 4, the segment routing header (RFC 8754): the list is in
        // reverse order, Segment List[0] is the last segment.
        4 => 6,
        _ => return None,
    };
    p.get(at..at + 16)?.try_into().ok()
}

/// The Home Address destination option (RFC 6275, type 201) in a destination
/// options header (its bytes after the next header and length fields).
fn home_address(mut o: &[u8]) -> Option<RawAddr> {
    while let Some(&typ) = o.first() {
        if typ == 0 {
            o = &o[1..]; // Pad1
            continue;
        }
        let len = *o.get(1)? as usize;
        let data = o.get(2..2 + len)?;
        if typ == 201 && len == 16 {
            return data.try_into().ok();
        }
        o = &o[2 + len..];
    }
    None
}

#[inline]
fn tcp(bytes: &[u8], ip_payload_len: u32, out: &mut Packet) -> Result<Kind, Skip> {
    // Read by hand: the fixed header says all that is tracked, and it is there
    // even when a short snaplen cut the options.
    let b = bytes.get(..20).ok_or(Skip::Undecodable)?;
    let hl = (b[12] >> 4) as u32 * 4;
    if hl < 20 || ip_payload_len < hl {
        return Err(Skip::Undecodable);
    }
    out.sport = u16::from_be_bytes([b[0], b[1]]);
    out.dport = u16::from_be_bytes([b[2], b[3]]);
    out.seq = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    out.ack = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    out.win = u16::from_be_bytes([b[14], b[15]]);
    out.flags = b[13];
    out.syn_opts = match bytes.get(20..hl as usize) {
        Some(opts) if out.flags & flag::SYN != 0 => syn_options(opts),
        Some(_) => SynOptions::default(),
        None => SynOptions { wscale: 0xff, ..Default::default() },
    };
    out.payload_len = ip_payload_len - hl;
    Ok(Kind::Tcp)
}

fn syn_options(o: &[u8]) -> SynOptions {
    // The layout Linux sends (MSS, SACK permitted, timestamps, NOP, window
    // scale) read in one step; any other goes through the walk below.
    if let [2, 4, m0, m1, 4, 2, 8, 10, _, _, _, _, _, _, _, _, 1, 3, 3, ws] = *o {
        return SynOptions { mss: u16::from_be_bytes([m0, m1]), wscale: ws, sack_ok: true, timestamps: true };
    }
    walk_syn_options(o)
}

fn walk_syn_options(mut o: &[u8]) -> SynOptions {
    let mut s = SynOptions { wscale: 0xff, ..Default::default() };
    while let Some(&kind) = o.first() {
        match kind {
            0 => break,
            1 => o = &o[1..],
            _ => {
                let Some(&len) = o.get(1) else { break };
                let len = len as usize;
                if len < 2 || len > o.len() {
                    break;
                }
                match (kind, len) {
                    (2, 4) => s.mss = u16::from_be_bytes([o[2], o[3]]),
                    (3, 3) => s.wscale = o[2],
                    (4, 2) => s.sack_ok = true,
                    (8, 10) => s.timestamps = true,
                    _ => {}
                }
                o = &o[len..];
            }
        }
    }
    s
}

/// An ICMP or ICMPv6 message. Destination unreachable / time exceeded /
/// parameter problem (and their ICMPv6 counterparts) that quote a TCP segment
/// are handed to the quoted connection, as the kernel does; anything else is
/// an ICMP message of its own.
fn icmp(bytes: &[u8], out: &mut Packet, v6: bool) -> Result<Kind, Skip> {
    let Some(h) = bytes.get(..8) else { return Ok(Kind::Other) };
    (out.icmp_type, out.icmp_code) = (h[0], h[1]);
    Ok(quoted_tcp(&bytes[8..], out, v6).unwrap_or(Kind::Icmp))
}

/// The TCP segment an ICMP error quotes, if it quotes one.
fn quoted_tcp(quoted: &[u8], out: &mut Packet, v6: bool) -> Option<Kind> {
    let typ = out.icmp_type;
    let is_error = if v6 { matches!(typ, 1..=4) } else { matches!(typ, 3 | 11 | 12) };
    if !is_error {
        return None;
    }
    let (qsrc, qdst, rest) = if v6 {
        let q = Ipv6HeaderSlice::from_slice(quoted).ok()?;
        if q.next_header() != IpNumber::TCP {
            return None;
        }
        (q.source(), q.destination(), &quoted[40..])
    } else {
        let q = Ipv4HeaderSlice::from_slice(quoted).ok()?;
        if q.protocol() != IpNumber::TCP || q.fragments_offset().value() != 0 {
            return None;
        }
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s[..4].copy_from_slice(&q.source());
        d[..4].copy_from_slice(&q.destination());
        (s, d, &quoted[q.slice().len()..])
    };
    let t = rest.get(..8)?;
    out.src = qsrc;
    out.dst = qdst;
    out.v6 = v6;
    out.sport = u16::from_be_bytes([t[0], t[1]]);
    out.dport = u16::from_be_bytes([t[2], t[3]]);
    out.seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    out.ack = 0;
    out.flags = rest.get(13).copied().unwrap_or(0);
    out.payload_len = 0;
    Some(Kind::IcmpError)
}

/// IPv6 over UDP over IPv4 (Teredo, RFC 4380). Relays talk on any port once a
/// client is qualified, so it is recognised by content: after the optional
/// authentication and origin-indication headers, an IPv6 header whose payload
/// length accounts for exactly the rest of the datagram (`len` bytes on the
/// wire) and which has a Teredo (2001::/32) or link-local address, as every
/// Teredo packet does. Anything else is plain UDP, never a corrupt frame.
fn teredo(b: &[u8], len: usize, out: &mut Packet, depth: u8) -> Result<Kind, Skip> {
    let mut off = 0;
    if b.get(..2) == Some(&[0, 1]) {
        // Authentication: client id and auth value lengths, then an 8-byte nonce and a confirmation byte.
        let (Some(&id), Some(&au)) = (b.get(2), b.get(3)) else { return Ok(Kind::Udp) };
        off = 4 + id as usize + au as usize + 9;
    }
    if b.get(off..off + 2) == Some(&[0, 0]) {
        off += 8; // origin indication: port and address
    }
    let Some(inner) = b.get(off..) else { return Ok(Kind::Udp) };
    let teredo_addr = |a: &[u8]| a[..4] == [0x20, 0x01, 0, 0] || a[..8] == [0xfe, 0x80, 0, 0, 0, 0, 0, 0];
    let is_teredo = inner.len() >= 40
        && inner[0] >> 4 == 6
        && u16::from_be_bytes([inner[4], inner[5]]) as usize + 40 + off == len
        && (teredo_addr(&inner[8..24]) || teredo_addr(&inner[24..40]));
    if !is_teredo {
        return Ok(Kind::Udp);
    }
    // An inner packet that does not decode leaves a plain UDP datagram, as it was.
    let outer = *out;
    match ip(inner, out, depth + 1) {
        Err(Skip::Undecodable) => {
            *out = outer;
            Ok(Kind::Udp)
        }
        r => r,
    }
}

/// An IEEE 802.11 data frame (as Aruba controllers mirror them over GRE):
/// its MAC header, then LLC/SNAP naming the EtherType.
fn ieee80211(b: &[u8], out: &mut Packet, depth: u8) -> Result<Kind, Skip> {
    let fc = b.get(..2).ok_or(Skip::Undecodable)?;
    let (typ, subtype, flags) = ((fc[0] >> 2) & 0x3, fc[0] >> 4, fc[1]);
    // Data frames only, and not the "null" subtypes that carry no body.
    if typ != 2 || subtype & 0x4 != 0 {
        return Err(Skip::NonIp);
    }
    if flags & 0x40 != 0 {
        return Ok(Kind::Other); // protected: the body is encrypted
    }
    let mut hl = 24;
    if flags & 0x03 == 0x03 {
        hl += 6; // to and from the distribution system: a fourth address
    }
    if subtype & 0x8 != 0 {
        hl += 2; // QoS control
        if flags & 0x80 != 0 {
            hl += 4; // HT control
        }
    }
    let llc = b.get(hl..hl + 8).ok_or(Skip::Undecodable)?;
    // SNAP with an EtherType: RFC 1042's OUI 00-00-00, or 802.1H's 00-00-F8.
    if llc[..3] != [0xaa, 0xaa, 0x03] || !matches!(llc[3..6], [0, 0, 0] | [0, 0, 0xf8]) {
        return Err(Skip::NonIp);
    }
    ethertype(u16::from_be_bytes([llc[6], llc[7]]), &b[hl + 8..], out, depth + 1)
}

fn gre(bytes: &[u8], out: &mut Packet, depth: u8) -> Result<Kind, Skip> {
    let h = bytes.get(..4).ok_or(Skip::Undecodable)?;
    if h[1] & 0x07 != 0 {
        // Version 1 is PPTP's enhanced GRE, which carries PPP.
        return Ok(Kind::Other);
    }
    let seq_present = h[0] & 0x10 != 0;
    let hl = 4 + 4 * ((h[0] & 0x80 != 0) as usize + (h[0] & 0x20 != 0) as usize + seq_present as usize);
    let proto = u16::from_be_bytes([h[2], h[3]]);
    let rest = bytes.get(hl..).ok_or(Skip::Undecodable)?;
    match proto {
        ETH_IPV4 | ETH_IPV6 => ip(rest, out, depth + 1),
        ETH_TEB => ethernet(rest, out, depth + 1),
        ARUBA_WLAN => ieee80211(rest, out, depth + 1),
        // ERSPAN type I has no header of its own (and no GRE sequence number); type II has 8 bytes.
        ETH_ERSPAN2 if !seq_present => ethernet(rest, out, depth + 1),
        ETH_ERSPAN2 => ethernet(rest.get(8..).ok_or(Skip::Undecodable)?, out, depth + 1),
        ETH_ERSPAN3 => {
            let e = rest.get(..12).ok_or(Skip::Undecodable)?;
            // The O flag announces an 8-byte platform-specific subheader.
            let skip = if e[11] & 0x01 != 0 { 20 } else { 12 };
            ethernet(rest.get(skip..).ok_or(Skip::Undecodable)?, out, depth + 1)
        }
        _ => Ok(Kind::Other),
    }
}

impl Default for Packet {
    fn default() -> Self {
        Packet {
            ts: 0,
            frame: 0,
            src: [0; 16],
            dst: [0; 16],
            sport: 0,
            dport: 0,
            seq: 0,
            ack: 0,
            payload_len: 0,
            frame_len: 0,
            uncaptured: 0,
            win: 0,
            flags: 0,
            kind: Kind::Tcp,
            v6: false,
            ttl: 0,
            icmp_type: 0,
            icmp_code: 0,
            syn_opts: SynOptions::default(),
            ip_len: 0,
            ip_id: 0,
            frag_offset: 0,
            dont_fragment: false,
            more_fragments: false,
            ip_proto: 0,
            src_mac: [0; 6],
            dst_mac: [0; 6],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_syn_options_read_in_one_step_as_the_walk_reads_them() {
        let linux = [2, 4, 5, 180, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7];
        let s = syn_options(&linux);
        assert_eq!(s, walk_syn_options(&linux));
        assert_eq!((s.mss, s.wscale, s.sack_ok, s.timestamps), (1460, 7, true, true));
        // Another order, or one byte different, takes the walk.
        let mut other = linux;
        other[16] = 0;
        assert_eq!(syn_options(&other), walk_syn_options(&other));
        assert_eq!(syn_options(&other).wscale, 0xff);
    }
}

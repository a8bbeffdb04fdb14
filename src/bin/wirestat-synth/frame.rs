//! Classic pcap writer that builds Ethernet/IPv4|IPv6/TCP frames in place.
//!
//! Headers are assembled in one reusable stack buffer; the payload is a
//! fixed filler pattern whose checksum contribution is precomputed per
//! length, so writing a packet costs no allocation and no per-byte work
//! beyond the copy into the `BufWriter`.

use std::io::{self, Write};

pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Destination MAC used for frames to the dark (unanswering) address.
pub const DARK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x63];

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// Largest payload a single segment may carry (keeps IP lengths in u16).
pub const MAX_PAYLOAD: usize = 65_000;

/// Snaplen written in the global header when frames are not truncated.
const FULL_SNAPLEN: u32 = 262_144;

/// TCP options carried by a segment.
#[derive(Clone, Copy)]
pub enum Opts {
    /// No options (20-byte header), e.g. a RST answering a closed port.
    None,
    /// NOP, NOP, timestamps (12 bytes).
    Ts { val: u32, ecr: u32 },
    /// Linux SYN options: MSS 1460, SACK permitted, timestamps, NOP,
    /// window scale 7 (20 bytes).
    Syn { val: u32, ecr: u32 },
}

impl Opts {
    fn len(self) -> usize {
        match self {
            Opts::None => 0,
            Opts::Ts { .. } => 12,
            Opts::Syn { .. } => 20,
        }
    }
}

/// One TCP segment to be framed. IPv4 addresses use the first 4 bytes.
pub struct Seg {
    pub v6: bool,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: [u8; 16],
    pub dst_ip: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub opts: Opts,
    pub payload_len: usize,
}

pub struct PcapWriter<W: Write> {
    out: W,
    /// 16-byte record header + Ethernet + IP + TCP header (max 16+14+40+40).
    buf: [u8; 112],
    payload: Vec<u8>,
    /// `pay_sum[n]`: one's-complement partial sum of the first `n` payload bytes.
    pay_sum: Vec<u32>,
    snaplen: u32,
    ip_id: u16,
    pub packets: u64,
    pub file_bytes: u64,
    pub wire_bytes: u64,
}

/// Adds the big-endian 16-bit words of `data` (odd tail padded with zero).
#[inline]
fn sum_words(data: &[u8]) -> u64 {
    let mut s = 0u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        s += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u64::from(*last) << 8;
    }
    s
}

#[inline]
fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

impl<W: Write> PcapWriter<W> {
    /// Writes the pcap global header. `snaplen == 0` means whole frames.
    pub fn new(mut out: W, snaplen: u32, payload_max: usize) -> io::Result<Self> {
        let hdr_snaplen = if snaplen == 0 { FULL_SNAPLEN } else { snaplen };
        let mut gh = [0u8; 24];
        gh[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        gh[4..6].copy_from_slice(&2u16.to_le_bytes());
        gh[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone = 0, sigfigs = 0
        gh[16..20].copy_from_slice(&hdr_snaplen.to_le_bytes());
        gh[20..24].copy_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        out.write_all(&gh)?;

        const FILLER: &[u8] = b"wirestat-synth payload filler 0123456789 abcdefghijklmnopqrstuvwxyz\n";
        let payload: Vec<u8> = FILLER.iter().copied().cycle().take(payload_max).collect();
        // Running word sum: byte i is the high half of a word when i is even.
        let mut pay_sum = Vec::with_capacity(payload_max + 1);
        let mut acc = 0u32;
        pay_sum.push(acc);
        for (i, &byte) in payload.iter().enumerate() {
            acc += if i % 2 == 0 { u32::from(byte) << 8 } else { u32::from(byte) };
            pay_sum.push(acc);
        }
        Ok(PcapWriter {
            out,
            buf: [0u8; 112],
            payload,
            pay_sum,
            snaplen: if snaplen == 0 { u32::MAX } else { snaplen },
            ip_id: 0,
            packets: 0,
            file_bytes: 24,
            wire_bytes: 0,
        })
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Frames `s` and appends it as one pcap record at `ts_us` (µs since epoch).
    pub fn write(&mut self, ts_us: u64, s: &Seg) -> io::Result<()> {
        let b = &mut self.buf;
        let ip_hlen = if s.v6 { 40 } else { 20 };
        let tcp_hlen = 20 + s.opts.len();
        let tcp_len = tcp_hlen + s.payload_len;
        let frame_len = 14 + ip_hlen + tcp_len;
        let hdr_end = 16 + 14 + ip_hlen + tcp_hlen;

        // Ethernet.
        b[16..22].copy_from_slice(&s.dst_mac);
        b[22..28].copy_from_slice(&s.src_mac);
        let ip = 30;
        let tcp = ip + ip_hlen;
        let mut pseudo: u64;
        if s.v6 {
            b[28..30].copy_from_slice(&0x86ddu16.to_be_bytes());
            b[ip..ip + 4].copy_from_slice(&0x6000_0000u32.to_be_bytes());
            b[ip + 4..ip + 6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
            b[ip + 6] = 6; // next header: TCP
            b[ip + 7] = 64; // hop limit
            b[ip + 8..ip + 24].copy_from_slice(&s.src_ip);
            b[ip + 24..ip + 40].copy_from_slice(&s.dst_ip);
            pseudo = sum_words(&b[ip + 8..ip + 40]) + 6 + tcp_len as u64;
        } else {
            b[28..30].copy_from_slice(&0x0800u16.to_be_bytes());
            b[ip] = 0x45;
            b[ip + 1] = 0;
            b[ip + 2..ip + 4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            b[ip + 4..ip + 6].copy_from_slice(&self.ip_id.to_be_bytes());
            self.ip_id = self.ip_id.wrapping_add(1);
            b[ip + 6..ip + 8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
            b[ip + 8] = 64; // TTL
            b[ip + 9] = 6; // protocol: TCP
            b[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
            b[ip + 12..ip + 16].copy_from_slice(&s.src_ip[..4]);
            b[ip + 16..ip + 20].copy_from_slice(&s.dst_ip[..4]);
            let c = fold(sum_words(&b[ip..ip + 20]));
            b[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
            pseudo = sum_words(&b[ip + 12..ip + 20]) + 6 + tcp_len as u64;
        }

        // TCP.
        b[tcp..tcp + 2].copy_from_slice(&s.sport.to_be_bytes());
        b[tcp + 2..tcp + 4].copy_from_slice(&s.dport.to_be_bytes());
        b[tcp + 4..tcp + 8].copy_from_slice(&s.seq.to_be_bytes());
        b[tcp + 8..tcp + 12].copy_from_slice(&s.ack.to_be_bytes());
        b[tcp + 12] = ((tcp_hlen / 4) as u8) << 4;
        b[tcp + 13] = s.flags;
        b[tcp + 14..tcp + 16].copy_from_slice(&s.window.to_be_bytes());
        b[tcp + 16..tcp + 20].copy_from_slice(&[0, 0, 0, 0]); // checksum, urgent
        let o = tcp + 20;
        match s.opts {
            Opts::None => {}
            Opts::Ts { val, ecr } => {
                b[o..o + 4].copy_from_slice(&[1, 1, 8, 10]);
                b[o + 4..o + 8].copy_from_slice(&val.to_be_bytes());
                b[o + 8..o + 12].copy_from_slice(&ecr.to_be_bytes());
            }
            Opts::Syn { val, ecr } => {
                b[o..o + 8].copy_from_slice(&[2, 4, 0x05, 0xb4, 4, 2, 8, 10]);
                b[o + 8..o + 12].copy_from_slice(&val.to_be_bytes());
                b[o + 12..o + 16].copy_from_slice(&ecr.to_be_bytes());
                b[o + 16..o + 20].copy_from_slice(&[1, 3, 3, 7]);
            }
        }
        // The payload starts at an even offset, so its precomputed word sum
        // can be added as is.
        pseudo += sum_words(&b[tcp..hdr_end]) + u64::from(self.pay_sum[s.payload_len]);
        let c = fold(pseudo);
        b[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());

        // Record header.
        let caplen = (frame_len as u32).min(self.snaplen);
        b[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        b[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        b[8..12].copy_from_slice(&caplen.to_le_bytes());
        b[12..16].copy_from_slice(&(frame_len as u32).to_le_bytes());

        let rec_len = 16 + caplen as usize;
        if rec_len <= hdr_end {
            self.out.write_all(&b[..rec_len])?;
        } else {
            self.out.write_all(&b[..hdr_end])?;
            self.out.write_all(&self.payload[..rec_len - hdr_end])?;
        }
        self.packets += 1;
        self.file_bytes += rec_len as u64;
        self.wire_bytes += frame_len as u64;
        Ok(())
    }
}

//! A pcapng reader (draft-ietf-opsawg-pcapng), for files libpcap refuses.
//!
//! libpcap stays the primary reader; this one exists because libpcap 1.10
//! rejects valid files whose interfaces differ in snapshot length or link
//! type, which is what `mergecap` writes when it merges captures of several
//! interfaces. It reads every block type that carries packets (Enhanced,
//! Simple and the obsolete Packet Block), learns interfaces from Interface
//! Description Blocks, honours section boundaries and both byte orders, and
//! skips every other block by its length.
//!
//! The input is hostile until proven otherwise: no length read from the file
//! is trusted before it is checked against the block it sits in, blocks over
//! [`MAX_BLOCK`] are refused, and the read buffer grows only as bytes actually
//! arrive, so a lying block length in a short file costs no memory. Nothing
//! here panics on any input.

use std::io::{self, Read};

/// Largest block accepted, header and trailer included. libpcap uses the same
/// ceiling; a packet bigger than this does not exist on any real link.
pub const MAX_BLOCK: u32 = 16 << 20;

/// The first bytes of every pcapng file: the Section Header Block type, which
/// reads the same in both byte orders.
pub const SHB_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
/// The obsolete Packet Block, still written by old tools.
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// Block header (type, length) and trailer (length) around every body.
const HEADER: usize = 8;
const TRAILER: usize = 4;
/// The read buffer starts growing at this step when a block needs more room
/// than it has; the step doubles with every chunk that really arrived.
const GROW_STEP: usize = 64 << 10;

const OPT_END: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

/// Why the file cannot be read (further). Offsets count bytes from the start
/// of the file to the start of the block concerned.
#[derive(Debug, thiserror::Error)]
pub enum PcapngError {
    #[error("read error at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
    #[error("not a pcapng file (it does not start with a section header block)")]
    NotPcapng,
    #[error("section header at byte {offset} has no valid byte-order magic")]
    ByteOrder { offset: u64 },
    #[error("section header at byte {offset} is for pcapng version {major}.{minor}, only 1.x is known")]
    Version { offset: u64, major: u16, minor: u16 },
    #[error("block at byte {offset} is cut off: the file ends inside it")]
    Truncated { offset: u64 },
    #[error("block at byte {offset} has an invalid length {len} ({why})")]
    BlockLength { offset: u64, len: u32, why: &'static str },
    #[error("block at byte {offset} is corrupt: {why}")]
    Corrupt { offset: u64, why: &'static str },
    #[error("packet block at byte {offset} names interface {if_id}, but its section describes {count}")]
    NoSuchInterface { offset: u64, if_id: u32, count: usize },
}

/// One packet as the file holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// Nanoseconds since the epoch, `if_tsoffset` applied, clamped to `u64`.
    /// Simple Packet Blocks carry no time: they get the previous packet's.
    pub ts_ns: u64,
    /// Interface index within the frame's section.
    pub if_id: u32,
    /// The interface's link type as the file gives it (a `LINKTYPE_` value).
    pub linktype: i32,
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// The captured bytes (at most `orig_len`, but trust neither).
    pub data: &'a [u8],
}

/// Where the last frame returned sits, so that it can be lent out again.
#[derive(Clone, Copy, Debug)]
struct FrameAt {
    ts_ns: u64,
    if_id: u32,
    linktype: i32,
    orig_len: u32,
    start: usize,
    end: usize,
}

/// Unit of an interface's timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolution {
    /// 10^-n seconds.
    Decimal(u8),
    /// 2^-n seconds.
    Binary(u8),
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: i32,
    snaplen: u32,
    resolution: Resolution,
    /// Seconds added to every timestamp of the interface.
    offset_s: i64,
}

impl Interface {
    fn ts_ns(&self, raw: u64) -> u64 {
        let raw = raw as u128;
        let ns: u128 = match self.resolution {
            Resolution::Decimal(n) if n <= 9 => raw * 10u128.pow(9 - n as u32),
            // A u64 count of units finer than 10^-29 s is 0 ns whatever its value.
            Resolution::Decimal(n) if n - 9 > 20 => 0,
            Resolution::Decimal(n) => raw / 10u128.pow(n as u32 - 9),
            // raw < 2^64 and 10^9 < 2^30: no overflow; n <= 127 by construction.
            Resolution::Binary(n) => (raw * 1_000_000_000) >> n,
        };
        let ns = ns as i128 + self.offset_s as i128 * 1_000_000_000;
        ns.clamp(0, u64::MAX as i128) as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let a = [b[at], b[at + 1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }

    fn u32(self, b: &[u8], at: usize) -> u32 {
        let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }

    fn u64(self, b: &[u8], at: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        match self {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        }
    }

    /// A packet timestamp: two 32-bit words, the upper one first, each in the
    /// section's byte order (not one 64-bit integer).
    fn timestamp(self, b: &[u8], at: usize) -> u64 {
        (self.u32(b, at) as u64) << 32 | self.u32(b, at + 4) as u64
    }
}

/// Reads the packets of a pcapng stream one at a time into one reused buffer.
///
/// Give it a buffered reader: it reads each block header with a small read.
/// After an error, or at the end, it returns `Ok(None)` for good.
pub struct PcapngReader<R: Read> {
    r: R,
    endian: Endian,
    /// Interfaces of the current section, in the order described.
    interfaces: Vec<Interface>,
    /// Body and trailer of the last block read; only ever grows.
    buf: Vec<u8>,
    /// Bytes of the stream consumed so far.
    offset: u64,
    /// Timestamp of the last timed packet, for Simple Packet Blocks.
    last_ts: u64,
    current: Option<FrameAt>,
    finished: bool,
}

/// A block's header, read and checked.
struct BlockHeader {
    kind: u32,
    /// Total length, header and trailer included.
    len: u32,
    /// Where in the stream it starts.
    at: u64,
}

impl<R: Read> PcapngReader<R> {
    /// Reads the first Section Header Block; fails if the stream does not
    /// start with one that this reader understands.
    pub fn new(r: R) -> Result<Self, PcapngError> {
        let mut reader = PcapngReader {
            r,
            endian: Endian::Little,
            interfaces: Vec::new(),
            buf: Vec::new(),
            offset: 0,
            last_ts: 0,
            current: None,
            finished: false,
        };
        // The header check refuses any other first block.
        match reader.header()? {
            Some(h) => reader.section(&h)?,
            None => return Err(PcapngError::NotPcapng),
        }
        Ok(reader)
    }

    /// Bytes of the stream read so far, for progress.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next packet, `Ok(None)` at the end of the stream. Blocks that carry
    /// no packet are taken in passing. An error ends the stream: every packet
    /// before the bad block has been returned by then.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame<'_>>, PcapngError> {
        self.current = None;
        if self.finished {
            return Ok(None);
        }
        match self.advance() {
            Ok(Some(f)) => {
                self.current = Some(f);
                Ok(self.frame())
            }
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Err(e) => {
                self.finished = true;
                Err(e)
            }
        }
    }

    /// The packet the last call to [`next_frame`](Self::next_frame) returned,
    /// lent again (for a caller that had to look at it before it could use it).
    pub fn frame(&self) -> Option<RawFrame<'_>> {
        let f = self.current?;
        Some(RawFrame {
            ts_ns: f.ts_ns,
            if_id: f.if_id,
            linktype: f.linktype,
            orig_len: f.orig_len,
            data: &self.buf[f.start..f.end],
        })
    }

    /// Reads blocks until one holds a packet.
    fn advance(&mut self) -> Result<Option<FrameAt>, PcapngError> {
        while let Some(h) = self.header()? {
            match h.kind {
                SHB => self.section(&h)?,
                IDB => self.interface(&h)?,
                EPB | PB | SPB => return self.packet(&h).map(Some),
                _ => self.skip(&h)?,
            }
        }
        Ok(None)
    }

    /// Reads a block header; `None` at a clean end of the stream. The length is
    /// checked for sanity but not yet against the block type.
    fn header(&mut self) -> Result<Option<BlockHeader>, PcapngError> {
        let at = self.offset;
        let mut h = [0u8; HEADER];
        match read_up_to(&mut self.r, &mut h).map_err(|source| PcapngError::Io { offset: at, source })? {
            0 => return Ok(None),
            HEADER => {}
            _ => return Err(PcapngError::Truncated { offset: at }),
        }
        if at == 0 && h[..4] != SHB_MAGIC {
            return Err(PcapngError::NotPcapng);
        }
        self.offset += HEADER as u64;
        if h[..4] == SHB_MAGIC {
            // A new section may switch byte order: its magic, right after the
            // length, says which, and the length can only be read after it.
            let mut m = [0u8; 4];
            self.read_exact(&mut m, at)?;
            self.endian = match u32::from_le_bytes(m) {
                BYTE_ORDER_MAGIC => Endian::Little,
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => Endian::Big,
                _ => return Err(PcapngError::ByteOrder { offset: at }),
            };
        }
        let kind = self.endian.u32(&h, 0);
        let len = self.endian.u32(&h, 4);
        let bad = |why| Err(PcapngError::BlockLength { offset: at, len, why });
        if len > MAX_BLOCK {
            return bad("over 16 MiB");
        }
        if !len.is_multiple_of(4) {
            return bad("not a multiple of 4");
        }
        let min = match kind {
            // Magic, version, section length.
            SHB => 28,
            // Link type, reserved, snaplen.
            IDB => 20,
            // Interface, timestamp (8), captured and original length.
            EPB | PB => 32,
            SPB => 16,
            _ => 12,
        };
        if len < min {
            return bad("too short for its block type");
        }
        Ok(Some(BlockHeader { kind, len, at }))
    }

    /// Reads the rest of a block (body and trailer) into `buf` and checks the
    /// trailer; returns the body's length. `done` bytes of the block after its
    /// header were read already.
    fn body(&mut self, h: &BlockHeader, done: usize) -> Result<usize, PcapngError> {
        let len = h.len as usize - HEADER - done;
        let mut filled = 0;
        while filled < len {
            // Grow no faster than bytes arrive, so that a block claiming
            // 16 MiB in a file of a few bytes allocates next to nothing.
            let end = if len <= self.buf.len() { len } else { len.min((2 * filled).max(GROW_STEP)) };
            if self.buf.len() < end {
                self.buf.resize(end, 0);
            }
            let (r, buf) = (&mut self.r, &mut self.buf[filled..end]);
            read_exact(r, buf, h.at)?;
            self.offset += (end - filled) as u64;
            filled = end;
        }
        let body = len - TRAILER;
        if self.endian.u32(&self.buf, body) != h.len {
            return Err(PcapngError::Corrupt { offset: h.at, why: "trailing length differs from the leading one" });
        }
        Ok(body)
    }

    /// Passes over a block without keeping it.
    fn skip(&mut self, h: &BlockHeader) -> Result<(), PcapngError> {
        let body = (h.len as usize - HEADER - TRAILER) as u64;
        let copied = io::copy(&mut (&mut self.r).take(body), &mut io::sink())
            .map_err(|source| PcapngError::Io { offset: h.at, source })?;
        self.offset += copied;
        if copied < body {
            return Err(PcapngError::Truncated { offset: h.at });
        }
        let mut t = [0u8; TRAILER];
        self.read_exact(&mut t, h.at)?;
        if self.endian.u32(&t, 0) != h.len {
            return Err(PcapngError::Corrupt { offset: h.at, why: "trailing length differs from the leading one" });
        }
        Ok(())
    }

    /// A Section Header Block: a new section with interfaces of its own.
    fn section(&mut self, h: &BlockHeader) -> Result<(), PcapngError> {
        // The byte-order magic was read with the header.
        self.body(h, 4)?;
        let (major, minor) = (self.endian.u16(&self.buf, 0), self.endian.u16(&self.buf, 2));
        // A new major version may change any block; minor versions stay readable.
        if major != 1 {
            return Err(PcapngError::Version { offset: h.at, major, minor });
        }
        // The section length (next 8 bytes) is optional (-1) and not needed to
        // read blocks in order; nothing in the options matters here.
        self.interfaces.clear();
        Ok(())
    }

    /// An Interface Description Block: the next interface of this section.
    fn interface(&mut self, h: &BlockHeader) -> Result<(), PcapngError> {
        let body = self.body(h, 0)?;
        let e = self.endian;
        let b = &self.buf[..body];
        let mut iface = Interface {
            linktype: e.u16(b, 0) as i32,
            snaplen: e.u32(b, 4),
            resolution: Resolution::Decimal(6),
            offset_s: 0,
        };
        let mut opts = &b[8..];
        while opts.len() >= 4 {
            let (code, len) = (e.u16(opts, 0), e.u16(opts, 2) as usize);
            if code == OPT_END {
                break;
            }
            let Some(value) = opts.get(4..4 + len) else {
                return Err(PcapngError::Corrupt { offset: h.at, why: "an interface option runs past its block" });
            };
            match (code, len) {
                (IF_TSRESOL, 1) => {
                    let v = value[0];
                    iface.resolution =
                        if v & 0x80 != 0 { Resolution::Binary(v & 0x7f) } else { Resolution::Decimal(v) };
                }
                (IF_TSOFFSET, 8) => iface.offset_s = e.u64(value, 0) as i64,
                _ => {}
            }
            // Values are padded to 4 bytes; the last one's padding may be missing.
            opts = opts.get(4 + len.next_multiple_of(4)..).unwrap_or_default();
        }
        self.interfaces.push(iface);
        Ok(())
    }

    /// An Enhanced, Simple or obsolete Packet Block.
    fn packet(&mut self, h: &BlockHeader) -> Result<FrameAt, PcapngError> {
        let body = self.body(h, 0)?;
        let e = self.endian;
        let b = &self.buf[..body];
        let (if_id, ts, caplen, orig_len, start) = match h.kind {
            SPB => {
                // Always interface 0; the captured length is implied.
                let orig_len = e.u32(b, 0);
                (0, None, orig_len, orig_len, 4)
            }
            EPB => (e.u32(b, 0), Some(e.timestamp(b, 4)), e.u32(b, 12), e.u32(b, 16), 20),
            // PB: a 16-bit interface id and a 16-bit drops count.
            _ => (e.u16(b, 0) as u32, Some(e.timestamp(b, 4)), e.u32(b, 12), e.u32(b, 16), 20),
        };
        let count = self.interfaces.len();
        let Some(iface) = self.interfaces.get(if_id as usize) else {
            return Err(PcapngError::NoSuchInterface { offset: h.at, if_id, count });
        };
        let room = body - start;
        let caplen = match h.kind {
            // What is there, up to the snapshot length; the padding after the
            // data is indistinguishable from data, hence the limits.
            SPB if iface.snaplen != 0 => caplen.min(iface.snaplen).min(room as u32),
            SPB => caplen.min(room as u32),
            _ if caplen as usize > room => {
                return Err(PcapngError::Corrupt { offset: h.at, why: "captured length runs past the block" });
            }
            _ => caplen,
        } as usize;
        let ts_ns = match ts {
            Some(raw) => {
                self.last_ts = iface.ts_ns(raw);
                self.last_ts
            }
            None => self.last_ts,
        };
        Ok(FrameAt { ts_ns, if_id, linktype: iface.linktype, orig_len, start, end: start + caplen })
    }

    fn read_exact(&mut self, buf: &mut [u8], block_at: u64) -> Result<(), PcapngError> {
        read_exact(&mut self.r, buf, block_at)?;
        self.offset += buf.len() as u64;
        Ok(())
    }
}

/// `Read::read_exact`, with the end of the stream reported as a cut-off block.
fn read_exact(r: &mut impl Read, buf: &mut [u8], block_at: u64) -> Result<(), PcapngError> {
    r.read_exact(buf).map_err(|source| match source.kind() {
        io::ErrorKind::UnexpectedEof => PcapngError::Truncated { offset: block_at },
        _ => PcapngError::Io { offset: block_at, source },
    })
}

/// Fills `buf` as far as the stream goes; returns how much was read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes pcapng blocks in either byte order.
    struct Writer {
        e: Endian,
        out: Vec<u8>,
    }

    impl Writer {
        fn new(e: Endian) -> Writer {
            let mut w = Writer { e, out: Vec::new() };
            w.shb();
            w
        }

        fn u16(&self, v: u16) -> [u8; 2] {
            if self.e == Endian::Little { v.to_le_bytes() } else { v.to_be_bytes() }
        }

        fn u32(&self, v: u32) -> [u8; 4] {
            if self.e == Endian::Little { v.to_le_bytes() } else { v.to_be_bytes() }
        }

        fn block(&mut self, kind: u32, body: &[u8]) -> &mut Self {
            let len = (12 + body.len().next_multiple_of(4)) as u32;
            self.out.extend(self.u32(kind));
            self.out.extend(self.u32(len));
            self.out.extend(body);
            self.out.resize(self.out.len() + body.len().next_multiple_of(4) - body.len(), 0);
            self.out.extend(self.u32(len));
            self
        }

        fn shb(&mut self) -> &mut Self {
            let mut b = self.u32(BYTE_ORDER_MAGIC).to_vec();
            b.extend(self.u16(1));
            b.extend(self.u16(0));
            b.extend([0xff; 8]);
            self.block(SHB, &b)
        }

        fn idb(&mut self, linktype: u16, snaplen: u32, opts: Options) -> &mut Self {
            let mut b = self.u16(linktype).to_vec();
            b.extend([0, 0]);
            b.extend(self.u32(snaplen));
            for (code, v) in opts {
                b.extend(self.u16(*code));
                b.extend(self.u16(v.len() as u16));
                b.extend(*v);
                b.resize(b.len().next_multiple_of(4), 0);
            }
            if !opts.is_empty() {
                b.extend([0; 4]);
            }
            self.block(IDB, &b)
        }

        fn epb(&mut self, if_id: u32, ts: u64, data: &[u8], orig_len: u32) -> &mut Self {
            let mut b = self.u32(if_id).to_vec();
            b.extend(self.u32((ts >> 32) as u32));
            b.extend(self.u32(ts as u32));
            b.extend(self.u32(data.len() as u32));
            b.extend(self.u32(orig_len));
            b.extend(data);
            self.block(EPB, &b)
        }

        fn pb(&mut self, if_id: u16, ts: u64, data: &[u8], orig_len: u32) -> &mut Self {
            let mut b = self.u16(if_id).to_vec();
            b.extend(self.u16(3)); // drops
            b.extend(self.u32((ts >> 32) as u32));
            b.extend(self.u32(ts as u32));
            b.extend(self.u32(data.len() as u32));
            b.extend(self.u32(orig_len));
            b.extend(data);
            self.block(PB, &b)
        }

        fn spb(&mut self, orig_len: u32, data: &[u8]) -> &mut Self {
            let mut b = self.u32(orig_len).to_vec();
            b.extend(data);
            self.block(SPB, &b)
        }
    }

    /// Interface options: (code, value).
    type Options<'a> = &'a [(u16, &'a [u8])];

    #[derive(Debug, PartialEq)]
    struct Owned {
        ts_ns: u64,
        if_id: u32,
        linktype: i32,
        orig_len: u32,
        data: Vec<u8>,
    }

    /// Every frame of `bytes`, and the error that ended them, if any.
    fn read_all(bytes: &[u8]) -> (Vec<Owned>, Option<PcapngError>) {
        let mut r = match PcapngReader::new(bytes) {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Some(e)),
        };
        let mut out = Vec::new();
        loop {
            match r.next_frame() {
                Ok(Some(f)) => out.push(Owned {
                    ts_ns: f.ts_ns,
                    if_id: f.if_id,
                    linktype: f.linktype,
                    orig_len: f.orig_len,
                    data: f.data.to_vec(),
                }),
                Ok(None) => return (out, None),
                Err(e) => {
                    assert!(r.next_frame().unwrap().is_none(), "an error ends the stream");
                    return (out, Some(e));
                }
            }
        }
    }

    fn frames(bytes: &[u8]) -> Vec<Owned> {
        let (f, e) = read_all(bytes);
        assert!(e.is_none(), "{e:?}");
        f
    }

    fn sample(e: Endian) -> Vec<u8> {
        let mut w = Writer::new(e);
        w.idb(1, 0, &[]).epb(0, 1_500_000_250_000, b"abcde", 60).epb(0, 1_500_000_250_001, b"xy", 2);
        w.out
    }

    #[test]
    fn enhanced_packets_little_endian() {
        let f = frames(&sample(Endian::Little));
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[0],
            Owned { ts_ns: 1_500_000_250_000_000, if_id: 0, linktype: 1, orig_len: 60, data: b"abcde".to_vec() }
        );
        assert_eq!((f[1].ts_ns, f[1].orig_len, &f[1].data[..]), (1_500_000_250_001_000, 2, &b"xy"[..]));
    }

    #[test]
    fn big_endian_reads_the_same() {
        assert_eq!(frames(&sample(Endian::Big)), frames(&sample(Endian::Little)));
    }

    #[test]
    fn timestamp_resolutions_and_offset() {
        let cases: [(Options, u64, u64); 7] = [
            (&[], 7, 7_000),
            (&[(IF_TSRESOL, &[9])], 7, 7),
            (&[(IF_TSRESOL, &[3])], 7, 7_000_000),
            (&[(IF_TSRESOL, &[0])], 7, 7_000_000_000),
            // Picoseconds: finer than a nanosecond, rounded down.
            (&[(IF_TSRESOL, &[12])], 7_999, 7),
            // 2^-10 s: 1024 units are one second.
            (&[(IF_TSRESOL, &[0x80 | 10])], 1536, 1_500_000_000),
            (&[(IF_TSRESOL, &[0x80 | 127])], u64::MAX, 0),
        ];
        for (opts, raw, want) in cases {
            for e in [Endian::Little, Endian::Big] {
                let mut w = Writer::new(e);
                w.idb(1, 0, opts).epb(0, raw, b"p", 1);
                assert_eq!(frames(&w.out)[0].ts_ns, want, "{opts:?} {e:?}");
            }
        }
        for e in [Endian::Little, Endian::Big] {
            let plus = if e == Endian::Little { 100i64.to_le_bytes() } else { 100i64.to_be_bytes() };
            let minus = if e == Endian::Little { (-100i64).to_le_bytes() } else { (-100i64).to_be_bytes() };
            let mut w = Writer::new(e);
            w.idb(1, 0, &[(IF_TSOFFSET, &plus), (IF_TSRESOL, &[9])]).epb(0, 5, b"p", 1);
            w.idb(1, 0, &[(IF_TSOFFSET, &minus)]).epb(1, 5, b"p", 1).epb(1, 200_000_000, b"p", 1);
            let f = frames(&w.out);
            assert_eq!(f.iter().map(|f| f.ts_ns).collect::<Vec<_>>(), [100_000_000_005, 0, 100_000_000_000], "{e:?}");
        }
    }

    #[test]
    fn interfaces_keep_their_own_link_type_and_snaplen() {
        let mut w = Writer::new(Endian::Little);
        w.idb(1, 96, &[]).idb(101, 65535, &[]).epb(1, 1, b"raw", 3).epb(0, 2, b"eth", 3);
        w.idb(113, 0, &[]).epb(2, 3, b"sll", 3);
        let f = frames(&w.out);
        assert_eq!(f.iter().map(|f| (f.if_id, f.linktype)).collect::<Vec<_>>(), [(1, 101), (0, 1), (2, 113)]);
    }

    #[test]
    fn sections_reset_interfaces_and_may_switch_byte_order() {
        let mut w = Writer::new(Endian::Little);
        w.idb(1, 0, &[]).idb(1, 0, &[]).epb(1, 1, b"a", 1);
        let mut second = Writer::new(Endian::Big);
        second.idb(228, 0, &[]).epb(0, 2, b"b", 1);
        w.out.extend(&second.out);
        let f = frames(&w.out);
        assert_eq!(
            f.iter().map(|f| (f.if_id, f.linktype, f.ts_ns)).collect::<Vec<_>>(),
            [(1, 1, 1000), (0, 228, 2000)]
        );
        // Interface 1 of the first section does not carry over.
        second.epb(1, 3, b"c", 1);
        let mut w = Writer::new(Endian::Little);
        w.idb(1, 0, &[]).idb(1, 0, &[]);
        w.out.extend(&second.out);
        let (f, e) = read_all(&w.out);
        assert_eq!(f.len(), 1);
        assert!(matches!(e, Some(PcapngError::NoSuchInterface { if_id: 1, count: 1, .. })), "{e:?}");
    }

    #[test]
    fn simple_packets_are_cut_to_the_snapshot_length_and_take_the_last_time() {
        let mut w = Writer::new(Endian::Big);
        w.idb(1, 4, &[]).spb(10, b"0123456789").epb(0, 9, b"0123", 10).spb(10, b"0123456789");
        let f = frames(&w.out);
        assert_eq!(
            f.iter().map(|f| (f.ts_ns, f.orig_len, &f.data[..])).collect::<Vec<_>>(),
            [(0, 10, &b"0123"[..]), (9000, 10, &b"0123"[..]), (9000, 10, &b"0123"[..])]
        );
        // No snapshot length: the original length, not the padding after it.
        let mut w = Writer::new(Endian::Little);
        w.idb(1, 0, &[]).spb(5, b"01234");
        assert_eq!(frames(&w.out)[0].data, b"01234");
        // A snapshot length larger than what the block holds: what it holds.
        let mut w = Writer::new(Endian::Little);
        w.idb(1, 0, &[]).spb(1500, b"01234567");
        assert_eq!((frames(&w.out)[0].orig_len, &frames(&w.out)[0].data[..]), (1500, &b"01234567"[..]));
    }

    #[test]
    fn obsolete_packet_blocks() {
        for e in [Endian::Little, Endian::Big] {
            let mut w = Writer::new(e);
            w.idb(1, 0, &[]).idb(12, 0, &[]).pb(1, 42, b"abc", 80);
            let f = frames(&w.out);
            assert_eq!(f, [Owned { ts_ns: 42_000, if_id: 1, linktype: 12, orig_len: 80, data: b"abc".to_vec() }]);
        }
    }

    #[test]
    fn other_blocks_are_skipped() {
        let mut w = Writer::new(Endian::Little);
        w.block(4, &[1, 0, 4, 0, 10, 0, 0, 1, 0, 0, 0, 0]); // a name resolution block
        w.idb(1, 0, &[(2, b"eth0"), (IF_TSRESOL, &[9])]);
        w.block(5, &[0; 12]); // interface statistics
        w.block(10, &[0; 40]); // decryption secrets
        w.block(0xbad, &[0; 3]);
        w.block(0x4000_0bad, &[7; 9]);
        w.epb(0, 1, b"z", 1);
        w.block(0x8000_0001, &[]);
        assert_eq!(frames(&w.out).len(), 1);
    }

    #[test]
    fn a_cut_off_file_returns_the_frames_before_the_cut() {
        let full = sample(Endian::Little);
        let (f, e) = read_all(&full[..full.len() - 3]);
        assert_eq!(f.len(), 1);
        assert!(matches!(e, Some(PcapngError::Truncated { .. })), "{e:?}");
        // Cut inside a block header.
        let mut w = Writer::new(Endian::Little);
        w.idb(1, 0, &[]).epb(0, 1, b"a", 1);
        w.out.extend([6, 0, 0]);
        let (f, e) = read_all(&w.out);
        assert_eq!(f.len(), 1);
        assert!(matches!(e, Some(PcapngError::Truncated { .. })), "{e:?}");
    }

    #[test]
    fn corrupt_lengths_are_errors() {
        let full = sample(Endian::Little);
        let second = full.len() - (12 + 20 + 4);
        let set = |at: usize, v: u32| {
            let mut b = full.clone();
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            read_all(&b)
        };
        let (f, e) = set(second + 4, 0xffff_fff0);
        assert_eq!(f.len(), 1);
        assert!(matches!(e, Some(PcapngError::BlockLength { len: 0xffff_fff0, .. })), "{e:?}");
        let (_, e) = set(second + 4, 38);
        assert!(matches!(e, Some(PcapngError::BlockLength { why: "not a multiple of 4", .. })), "{e:?}");
        let (_, e) = set(second + 4, 8);
        assert!(matches!(e, Some(PcapngError::BlockLength { .. })), "{e:?}");
        // 16 MiB claimed by a block in a file of a few dozen bytes: cut off, not allocated.
        let (_, e) = set(second + 4, MAX_BLOCK);
        assert!(matches!(e, Some(PcapngError::Truncated { .. })), "{e:?}");
        let (_, e) = set(full.len() - 4, 40);
        assert!(matches!(e, Some(PcapngError::Corrupt { .. })), "{e:?}");
        let (_, e) = set(second + 20, 5000);
        assert!(matches!(e, Some(PcapngError::Corrupt { why: "captured length runs past the block", .. })), "{e:?}");
        let (_, e) = set(second + 8, 7);
        assert!(matches!(e, Some(PcapngError::NoSuchInterface { if_id: 7, .. })), "{e:?}");
    }

    #[test]
    fn bad_section_headers() {
        assert!(matches!(PcapngReader::new(&b""[..]), Err(PcapngError::NotPcapng)));
        assert!(matches!(PcapngReader::new(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0][..]), Err(PcapngError::NotPcapng)));
        let mut b = sample(Endian::Little);
        b[12] = 2;
        assert!(matches!(PcapngReader::new(&b[..]), Err(PcapngError::Version { major: 2, minor: 0, .. })));
        b[8] = 0x77;
        assert!(matches!(PcapngReader::new(&b[..]), Err(PcapngError::ByteOrder { offset: 0 })));
        assert!(matches!(PcapngReader::new(&b[..10]), Err(PcapngError::Truncated { offset: 0 })));
    }

    #[test]
    fn a_frame_can_be_lent_again() {
        let b = sample(Endian::Little);
        let mut r = PcapngReader::new(&b[..]).unwrap();
        let first = r.next_frame().unwrap().unwrap().ts_ns;
        assert_eq!(r.frame().unwrap().ts_ns, first);
        assert_eq!(r.frame().unwrap().data, b"abcde");
        assert_eq!(r.offset(), 28 + 20 + 40);
        r.next_frame().unwrap();
        assert!(r.next_frame().unwrap().is_none());
        assert!(r.frame().is_none());
        assert_eq!(r.offset(), b.len() as u64);
    }

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + path).unwrap()
    }

    /// The two files libpcap 1.10 refuses read as tshark 4.0 reads them.
    #[test]
    fn files_libpcap_refuses() {
        let cases = [
            ("fixtures/pcapng/two-idb.pcapng", 8, 749, 1_391_789_728_392_551_000, 1_597_255_063_527_343_000, 1),
            (
                "fixtures/corpus/zeek/ldap-gap-data-missing.pcapng",
                18,
                4969,
                1_725_966_494_956_327_000,
                1_725_966_495_127_166_000,
                0,
            ),
        ];
        for (path, n, bytes, first, last, on_if1) in cases {
            let f = frames(&fixture(path));
            assert_eq!(f.len(), n, "{path}");
            assert_eq!(f.iter().map(|f| f.data.len()).sum::<usize>(), bytes, "{path}");
            assert_eq!(f.iter().map(|f| f.orig_len as usize).sum::<usize>(), bytes, "{path}");
            assert_eq!((f[0].ts_ns, f[n - 1].ts_ns), (first, last), "{path}");
            assert_eq!(f.iter().filter(|f| f.if_id == 1).count(), on_if1, "{path}");
            assert!(f.iter().all(|f| f.linktype == 1), "{path}");
        }
    }

    /// Every truncation and many corruptions of real files: no panic, the
    /// frames before the damage come out unchanged, and a cut at a block
    /// boundary is a clean end.
    #[test]
    fn damaged_files_never_panic() {
        for path in ["fixtures/pcapng/two-idb.pcapng", "fixtures/corpus/zeek/ldap-gap-data-missing.pcapng"] {
            let full = fixture(path);
            let good = frames(&full);
            for cut in 0..full.len() {
                let (f, _) = read_all(&full[..cut]);
                assert!(good.starts_with(&f), "{path} cut at {cut}");
            }
            // A small deterministic generator: the same flips on every run.
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            for _ in 0..3000 {
                let mut b = full.clone();
                for _ in 0..1 + next() % 4 {
                    let at = next() as usize % b.len();
                    match next() % 3 {
                        0 => b[at] ^= 1 << (next() % 8),
                        1 => b[at] = next() as u8,
                        _ => b[at] = [0, 0xff, 0x7f, 0x80][next() as usize % 4],
                    }
                }
                let _ = read_all(&b);
            }
        }
    }
}

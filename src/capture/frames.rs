//! The frames of one capture file, however they have to be read: libpcap
//! first, on the file's bytes decompressed if need be; wirestat's own pcapng
//! reader where libpcap refuses a pcapng file that reader can read (libpcap
//! 1.10 refuses interfaces that differ in snapshot length or link type).
//! Either way the caller sees the same frames, the `-f` filter applied.

use super::Frame;
use super::bpf::LinkFilter;
use super::libpcap::{Libpcap, READ_BUFFER, strip};
use super::offline::{OfflineCapture, open_offline_fd};
use super::pcapng::{PcapngError, PcapngReader};
use super::stream::{self, ByteCount, Compression, Tape};
use crate::error::Error;
use pcap::{Capture, Offline};
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

/// How much of standard input is kept for reading it again with the pcapng
/// reader. libpcap refuses files like `mergecap`'s at their second interface
/// description, which comes before any packet: within its first read-ahead.
const STDIN_TAPE: usize = 4 << 20;

/// A file that could not be read to its end; the frames before the damage
/// were delivered.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}: capture cut off or corrupt after {frames} frames ({reason}); results cover the frames before it",
    .path.display()
)]
pub struct ReadError {
    pub path: PathBuf,
    /// Frames delivered before the error.
    pub frames: u64,
    pub reason: String,
}

/// Reads the frames of one capture file (`-` for standard input).
pub struct FrameReader {
    path: PathBuf,
    filter: Option<String>,
    compression: Compression,
    /// Bytes of the file read so far, from the stream in use.
    consumed: Consumed,
    /// Frames delivered (the ones the filter passed).
    frames: u64,
    source: Source,
    /// The start of standard input, while libpcap reads it.
    tape: Option<Tape>,
}

enum Source {
    Libpcap { pcap: Pcap, linktype: i32 },
    Pcapng(Box<Fallback>),
    Ended,
}

/// libpcap reading the file: from a stdio stream over a Rust reader (any
/// input: standard input, a decompressor), or, for a plain file, from the
/// file's own descriptor (glibc copies a cookie stream's small reads, every
/// record header, a byte at a time; a file stream's with memcpy).
enum Pcap {
    Stream(Libpcap),
    File(OfflineCapture),
}

impl Pcap {
    fn capture(&mut self) -> &mut Capture<Offline> {
        match self {
            Pcap::Stream(l) => l.capture(),
            Pcap::File(c) => c,
        }
    }

    /// The input's own error, once libpcap has reported a failed read
    /// (`message`): the reader's, or what libpcap says of its descriptor.
    fn take_read_error(&mut self, message: &str) -> Option<std::io::Error> {
        match self {
            Pcap::Stream(l) => l.take_read_error(),
            Pcap::File(_) => message.strip_prefix("error reading dump file: ").map(std::io::Error::other),
        }
    }

    /// Closes the capture; a stream is handed back, read as far as libpcap
    /// read it (a plain file is opened again by path if need be).
    fn into_reader(self) -> Option<Box<dyn Read + Send>> {
        match self {
            Pcap::Stream(l) => Some(l.into_reader()),
            Pcap::File(_) => None,
        }
    }
}

/// The pcapng reader with the filter libpcap would have applied.
struct Fallback {
    reader: PcapngReader<BufReader<Box<dyn Read + Send>>>,
    filter: Option<LinkFilter>,
    /// The reader's current frame was read ahead and is still to be delivered.
    held: bool,
}

impl Fallback {
    /// Moves to the next frame the filter passes; `false` at the end.
    fn advance(&mut self) -> Result<bool, PcapngError> {
        if std::mem::take(&mut self.held) {
            return Ok(true);
        }
        while let Some(f) = self.reader.next_frame()? {
            if self.filter.as_mut().is_none_or(|flt| flt.matches(dlt(f.linktype), f.data, f.orig_len)) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl FrameReader {
    /// Opens a pcap or pcapng file (`-`: standard input), plain, gzip or
    /// zstd, with an optional filter (libpcap's syntax).
    pub fn open(path: &Path, filter: Option<&str>) -> Result<FrameReader, Error> {
        let s = stream::open(path)?;
        let (reader, tape) = if is_stdin(path) {
            let (reader, tape) = stream::record(s.reader, STDIN_TAPE);
            (reader, Some(tape))
        } else {
            (s.reader, None)
        };
        let mut r = FrameReader {
            path: path.into(),
            filter: filter.map(str::to_string),
            compression: s.compression,
            consumed: Consumed::Counted(s.consumed),
            frames: 0,
            source: Source::Ended,
            tape,
        };
        let filter_err = |f: &str, reason: String| Error::Filter { filter: f.into(), reason };
        if r.tape.is_none() && r.compression == Compression::None && is_regular(path) {
            // Anything that does not open cleanly this way takes the general road.
            if let Ok((cap, fd)) = open_offline_fd(path) {
                drop(reader);
                r.consumed = Consumed::Offset(fd);
                r.start_libpcap(Pcap::File(cap), filter)?;
                return Ok(r);
            }
        }
        match Libpcap::open(reader) {
            Ok(pcap) => r.start_libpcap(Pcap::Stream(pcap), filter)?,
            Err(refused) => {
                let used = refused.reader;
                let (err, fatal) = r.open_error(refused.message, refused.read_error);
                if fatal || !r.fall_back(Some(used)) {
                    return Err(err);
                }
                // libpcap would have refused a filter it cannot compile; the
                // syntax at least is checked here, for Ethernet.
                if let Some(f) = filter {
                    LinkFilter::compile(f, 1).map_err(|e| filter_err(f, e))?;
                }
            }
        }
        Ok(r)
    }

    /// Reads on with libpcap, the filter applied.
    fn start_libpcap(&mut self, mut pcap: Pcap, filter: Option<&str>) -> Result<(), Error> {
        if let Some(f) = filter {
            pcap.capture()
                .filter(f, true)
                .map_err(|e| Error::Filter { filter: f.into(), reason: strip(&e.to_string()) })?;
        }
        let linktype = pcap.capture().get_datalink().0;
        self.source = Source::Libpcap { pcap, linktype };
        Ok(())
    }

    /// Bytes of the file read so far (compressed bytes for a compressed
    /// file), for a progress display against the file's size.
    pub fn consumed(&self) -> u64 {
        match &self.consumed {
            Consumed::Counted(c) => c.get(),
            // SAFETY: lseek takes no pointers; the descriptor is open while
            // the capture reading it is, which `end_direct` ends together
            // with this variant.
            Consumed::Offset(fd) => unsafe { libc::lseek(*fd, 0, libc::SEEK_CUR) }.max(0) as u64,
            Consumed::Done(n) => *n,
        }
    }

    /// Ends libpcap's reading: how far it got is kept, the capture closed,
    /// and the stream it read handed back, if any (see [`Pcap::into_reader`]).
    fn end_libpcap(&mut self) -> Option<Box<dyn Read + Send>> {
        if let Consumed::Offset(_) = self.consumed {
            // Read while the descriptor is still open.
            self.consumed = Consumed::Done(self.consumed());
        }
        match std::mem::replace(&mut self.source, Source::Ended) {
            Source::Libpcap { pcap, .. } => pcap.into_reader(),
            _ => None,
        }
    }

    /// Reads the next frame and hands it to `visit`; `Ok(None)` at the end.
    /// An error ends the file: it is returned once, then the file reads as
    /// ended. (A visitor rather than a returned borrow: the reader may have
    /// to switch from libpcap to its own pcapng reader in mid-call.)
    pub fn next_frame<T>(&mut self, visit: impl FnOnce(Frame<'_>) -> T) -> Result<Option<T>, ReadError> {
        loop {
            match &mut self.source {
                Source::Libpcap { pcap, linktype } => {
                    let linktype = *linktype;
                    let e = match pcap.capture().next_packet() {
                        Ok(p) => {
                            self.frames += 1;
                            return Ok(Some(visit(Frame {
                                ts: header_ns(p.header, true),
                                if_id: 0,
                                orig_len: p.header.len,
                                linktype,
                                data: p.data,
                            })));
                        }
                        Err(pcap::Error::NoMorePackets) => {
                            self.end_libpcap();
                            return Ok(None);
                        }
                        Err(e) => strip(&e.to_string()),
                    };
                    let read_error = pcap.take_read_error(&e);
                    let used = self.end_libpcap();
                    // An input that failed (disk, decompression) is not read
                    // again, nor is a cut-off file; a pcapng file libpcap
                    // refused may be.
                    if read_error.is_none() && !cut_off(&e) && self.fall_back(used) {
                        continue;
                    }
                    let reason = match read_error {
                        Some(io) => self.stream_failure(&io),
                        None => e,
                    };
                    return Err(self.read_error(reason));
                }
                Source::Pcapng(fb) => {
                    match fb.advance() {
                        Ok(true) => {
                            if let Some(f) = fb.reader.frame() {
                                self.frames += 1;
                                let (ts_ns, orig_len, data) = (clamp_ns(f.ts_ns), f.orig_len, f.data);
                                return Ok(Some(visit(Frame {
                                    ts: ts_ns,
                                    if_id: 0,
                                    orig_len,
                                    linktype: dlt(f.linktype),
                                    data,
                                })));
                            }
                            self.source = Source::Ended;
                        }
                        Ok(false) => self.source = Source::Ended,
                        Err(e) => {
                            self.source = Source::Ended;
                            return Err(self.read_error(e.to_string()));
                        }
                    }
                    return Ok(None);
                }
                Source::Ended => return Ok(None),
            }
        }
    }

    /// Switches to the pcapng reader, from the start of the file, past the
    /// frames libpcap delivered. Only where that gets further than libpcap
    /// did: a file that is corrupt for both keeps libpcap's verdict. `used`
    /// is the stream libpcap read, as far as it read it.
    fn fall_back(&mut self, used: Option<Box<dyn Read + Send>>) -> bool {
        let (stream, consumed): (Box<dyn Read + Send>, _) = match (self.tape.take(), used) {
            // Standard input cannot be opened again: its start was kept.
            (Some(tape), Some(used)) => match tape.take() {
                Some(start) => (Box::new(Cursor::new(start).chain(used)), self.consumed.take()),
                None => return false,
            },
            (Some(_), None) => return false,
            (None, _) => match stream::open(&self.path) {
                Ok(s) => (s.reader, Consumed::Counted(s.consumed)),
                Err(_) => return false,
            },
        };
        let Ok(reader) = PcapngReader::new(BufReader::with_capacity(READ_BUFFER, stream)) else { return false };
        let filter = self.filter.as_deref().map(LinkFilter::new);
        let mut fb = Fallback { reader, filter, held: false };
        // The same filter passes the same frames libpcap passed.
        for _ in 0..self.frames {
            if !matches!(fb.advance(), Ok(true)) {
                return false;
            }
        }
        match fb.advance() {
            Ok(more) => fb.held = more,
            Err(_) => return false,
        }
        self.consumed = consumed;
        self.source = Source::Pcapng(Box::new(fb));
        true
    }

    /// The error for libpcap refusing to open the file, and whether it is
    /// final (the stream failed; reading it again would not help).
    fn open_error(&self, message: String, read_error: Option<std::io::Error>) -> (Error, bool) {
        let path = self.path.clone();
        match read_error {
            Some(e) if self.compression == Compression::None => (Error::Open { path, reason: e.to_string() }, true),
            Some(e) => (Error::NotACapture { path, reason: self.stream_failure(&e) }, true),
            // Anything else is about the contents: a bad magic number, an
            // unsupported version, a corrupt or truncated first block.
            None => {
                let fatal = cut_off(&message);
                (Error::NotACapture { path, reason: message }, fatal)
            }
        }
    }

    fn stream_failure(&self, e: &std::io::Error) -> String {
        match self.compression {
            Compression::None => format!("read error: {e}"),
            Compression::Gzip => format!("gzip data cut off or corrupt: {e}"),
            Compression::Zstd => format!("zstd data cut off or corrupt: {e}"),
        }
    }

    fn read_error(&self, reason: String) -> ReadError {
        ReadError { path: self.path.clone(), frames: self.frames, reason }
    }
}

/// Whether libpcap found the file cut off, which no reader gets past: a
/// capture killed while writing is common, and reading a long file a second
/// time only to fail at the same place would double the cost of that case.
fn cut_off(libpcap_message: &str) -> bool {
    libpcap_message.starts_with("truncated")
}

/// How far into the file reading has got.
enum Consumed {
    /// Bytes counted as they pass (any stream).
    Counted(ByteCount),
    /// The offset of the descriptor libpcap reads a plain file from (open
    /// while the source is `Direct`).
    Offset(std::os::fd::RawFd),
    /// Where that reading ended.
    Done(u64),
}

impl Consumed {
    fn take(&mut self) -> Consumed {
        std::mem::replace(self, Consumed::Counted(ByteCount::default()))
    }
}

fn is_regular(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// `-` names standard input, as in tcpdump.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// libpcap's `DLT_` value for a file's `LINKTYPE_` value: the few that differ
/// on Linux (libpcap's own mapping, which its reader applies and its filter
/// compiler expects).
fn dlt(linktype: i32) -> i32 {
    match linktype {
        100 => 11, // ATM_RFC1483
        101 => 12, // RAW
        102 => 15, // SLIP_BSDOS
        103 => 16, // PPP_BSDOS
        106 => 19, // ATM_CLIP
        t => t,
    }
}

/// A record's timestamp in nanoseconds (libpcap opens the capture with
/// nanosecond precision). Hostile files must not yield nonsense that
/// overflows later arithmetic on capture time: libpcap sign-extends a classic
/// pcap's 32-bit seconds, which the format defines as unsigned, so read them
/// back as such; clamp the seconds to that range (pcapng's 64-bit timestamps
/// can go further) and the fraction to under a second.
/// A libpcap record header's time in nanoseconds; `nano`: the handle gives
/// nanoseconds in its fraction field (else microseconds).
pub fn header_ns(h: &pcap::PacketHeader, nano: bool) -> u64 {
    // time_t and suseconds_t are not i64 on every target.
    #[allow(clippy::unnecessary_cast)]
    let (sec, frac) = (h.ts.tv_sec as i64, h.ts.tv_usec as i64);
    capture_ns(sec, if nano { frac } else { frac * 1000 })
}

pub fn capture_ns(sec: i64, nsec: i64) -> u64 {
    let sec =
        if (i32::MIN as i64..0).contains(&sec) { sec as u32 as u64 } else { sec.clamp(0, u32::MAX as i64) as u64 };
    sec * 1_000_000_000 + nsec.clamp(0, 999_999_999) as u64
}

/// The same range for timestamps read without libpcap.
fn clamp_ns(ns: u64) -> u64 {
    ns.min(u32::MAX as u64 * 1_000_000_000 + 999_999_999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_may_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<FrameReader>();
    }

    #[test]
    fn link_types_as_libpcap_reports_them() {
        assert_eq!(dlt(101), 12);
        assert_eq!(dlt(1), 1);
        assert_eq!(dlt(113), 113);
        assert_eq!(dlt(276), 276);
    }

    /// Reads every frame; returns (frames, bytes of the file read at the end).
    fn read_all(path: &Path) -> (u64, u64) {
        let mut r = FrameReader::open(path, None).unwrap();
        let mut n = 0;
        while r.next_frame(|_| ()).unwrap().is_some() {
            n += 1;
        }
        (n, r.consumed())
    }

    #[test]
    fn bytes_read_are_the_files_own() {
        use std::io::Write;
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/oracle/mixed-s1/capture.pcap");
        let plain = std::fs::read(fixture).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let p = std::env::temp_dir().join(format!("wirestat-frames-{}.pcap.gz", std::process::id()));
        std::fs::write(&p, &gz).unwrap();
        let (frames, consumed) = read_all(Path::new(fixture));
        assert_eq!(consumed, plain.len() as u64);
        // Compressed bytes, comparable with the file's size.
        assert_eq!(read_all(&p), (frames, gz.len() as u64));
        std::fs::remove_file(p).unwrap();
        // The pcapng reader counts from the start of the file again.
        let ng = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pcapng/two-idb.pcapng");
        assert_eq!(read_all(Path::new(ng)), (8, std::fs::metadata(ng).unwrap().len()));
    }

    #[test]
    fn a_cut_off_file_is_not_read_twice() {
        assert!(cut_off("truncated pcapng dump file; tried to read 96 bytes, only got 66"));
        assert!(cut_off("truncated dump file; tried to read 4 file header bytes, only got 0"));
        assert!(!cut_off(
            "an interface has a snapshot length 65535 different from the snapshot length of the first interface"
        ));
        assert!(!cut_off("unsupported pcapng savefile version 1.1"));
    }

    #[test]
    fn timestamps_stay_in_range() {
        // libpcap's sign-extended seconds past 2038 read back as unsigned.
        assert_eq!(capture_ns(-1, 5), u32::MAX as u64 * 1_000_000_000 + 5);
        assert_eq!(capture_ns(i64::MAX, 2_000_000_000), u32::MAX as u64 * 1_000_000_000 + 999_999_999);
        assert_eq!(capture_ns(i64::MIN, -1), 0);
        assert_eq!(clamp_ns(u64::MAX), capture_ns(i64::MAX, i64::MAX));
        assert_eq!(clamp_ns(1_700_000_000_123_456_789), 1_700_000_000_123_456_789);
    }
}

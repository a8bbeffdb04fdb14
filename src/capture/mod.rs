//! Packet sources. Offline files are read through libpcap (pcap and pcapng,
//! plain, gzip or zstd; see [`frames`] for pcapng files libpcap refuses);
//! several files are merged in timestamp order, like `mergecap`.

pub mod bpf;
pub mod frames;
pub mod libpcap;
pub mod pcapng;
pub mod prefetch;
pub mod stream;

use crate::decode::{self, DecodeStats, Kind, Skip, Summary};
use crate::error::Error;
use pcap::{Capture, Offline};
use std::ffi::{CStr, c_char, c_int, c_uint};
use std::os::fd::IntoRawFd;
use std::path::Path;
use std::ptr::NonNull;

/// Read buffer handed to the stdio stream libpcap reads from. glibc's default
/// is the file system's block size (4 KiB): one read() per ~16 packets, and
/// those syscalls were a third of a bare replay's time. Much larger buffers
/// fall out of the L2 cache the workers share the core with (256 KiB was 4%
/// slower overall).
const READ_BUFFER: usize = 64 << 10;

unsafe extern "C" {
    // In libpcap since 1.5; the pcap crate keeps its binding private.
    fn pcap_fopen_offline_with_tstamp_precision(
        fp: *mut libc::FILE,
        precision: c_uint,
        errbuf: *mut c_char,
    ) -> *mut libc::c_void;
}
const PCAP_TSTAMP_PRECISION_NANO: c_uint = 1;
const PCAP_ERRBUF_SIZE: usize = 256;

/// One capture file being read.
pub struct FileSource {
    input: frames::FrameReader,
    /// Frames read from this file.
    pub frames: u64,
    /// Bytes of the file read so far (compressed bytes if it is compressed), for progress.
    pub bytes_read: u64,
    /// Size of the file on disk.
    pub size: u64,
}

/// What one read produced.
pub enum Read {
    /// A frame: its timestamp and what decoding made of it.
    Frame(Result<Kind, Skip>),
    Eof,
}

impl FileSource {
    /// Opens a pcap or pcapng file, plain, gzip or zstd; `-` reads standard input.
    pub fn open(path: &Path, filter: Option<&str>) -> Result<FileSource, Error> {
        let input = frames::FrameReader::open(path, filter)?;
        let size = if is_stdin(path) { 0 } else { std::fs::metadata(path).map_or(0, |m| m.len()) };
        Ok(FileSource { input, frames: 0, bytes_read: 0, size })
    }

    /// Reads and decodes the next frame into `out` (setting `ts` and
    /// `frame_len`). A read error (a file cut off mid-record, a corrupt record
    /// header) ends this file; it is returned once, then the file reads as ended.
    pub fn next(&mut self, out: &mut Summary, stats: &mut DecodeStats) -> Result<Read, String> {
        let r = self.input.next_frame(|f| {
            out.ts = f.ts_ns;
            out.frame_len = f.orig_len;
            stats.frames += 1;
            stats.bytes += f.orig_len as u64;
            let r = decode::decode(f.linktype, f.data, out);
            stats.count(r);
            r
        });
        self.bytes_read = self.input.consumed();
        match r {
            Ok(Some(r)) => {
                self.frames += 1;
                Ok(Read::Frame(r))
            }
            Ok(None) => Ok(Read::Eof),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn strip(s: &str) -> String {
    s.trim_start_matches("libpcap error: ").to_string()
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// An offline libpcap capture reading through a stdio buffer of its own.
pub struct OfflineCapture {
    // Declared before `_buffer`, so dropped first: closing the capture closes
    // the stream that reads into the buffer.
    cap: Capture<Offline>,
    _buffer: Box<[u8]>,
}

impl std::ops::Deref for OfflineCapture {
    type Target = Capture<Offline>;
    fn deref(&self) -> &Capture<Offline> {
        &self.cap
    }
}

impl std::ops::DerefMut for OfflineCapture {
    fn deref_mut(&mut self) -> &mut Capture<Offline> {
        &mut self.cap
    }
}

/// Opens `path` as libpcap would (`pcap_open_offline`: pcap or pcapng, `-`
/// for standard input), but on a stdio stream with a large buffer.
pub fn open_offline(path: &Path) -> Result<OfflineCapture, Error> {
    let open_err = |reason: &str| Error::Open { path: path.into(), reason: reason.into() };
    let fd = if is_stdin(path) {
        // A copy, so that closing the capture leaves the process's stdin alone.
        let fd = unsafe { libc::dup(0) };
        if fd < 0 {
            return Err(open_err(&std::io::Error::last_os_error().to_string()));
        }
        fd
    } else {
        let file = std::fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => open_err("no such file"),
            std::io::ErrorKind::PermissionDenied => open_err("permission denied"),
            _ => open_err(&e.to_string()),
        })?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(open_err("it is a directory"));
        }
        file.into_raw_fd()
    };
    let mut buffer = vec![0u8; READ_BUFFER].into_boxed_slice();
    let mut errbuf = [0 as c_char; PCAP_ERRBUF_SIZE];
    // SAFETY: `fd` is ours and open; on success the stream owns it and libpcap
    // owns the stream (pcap_close closes both); `buffer` moves into the
    // OfflineCapture, which drops it only after closing the stream.
    unsafe {
        let fp = libc::fdopen(fd, c"rb".as_ptr());
        if fp.is_null() {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(open_err(&e.to_string()));
        }
        libc::setvbuf(fp, buffer.as_mut_ptr().cast(), libc::_IOFBF as c_int, buffer.len());
        let p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, errbuf.as_mut_ptr());
        match NonNull::new(p) {
            Some(p) => Ok(OfflineCapture { cap: Capture::from(p.cast()), _buffer: buffer }),
            None => {
                libc::fclose(fp);
                let msg = CStr::from_ptr(errbuf.as_ptr()).to_string_lossy().into_owned();
                Err(classify_open(path, &msg))
            }
        }
    }
}

fn classify_open(path: &Path, msg: &str) -> Error {
    // The file is open already (a missing file, a directory or no permission
    // were reported then): libpcap's errors here are a failed read() ...
    let msg = strip(msg);
    if msg.to_lowercase().starts_with("error reading dump file") {
        Error::Open { path: path.into(), reason: msg }
    } else {
        // ... or about the contents: a bad magic number, an unsupported
        // version, a corrupt or truncated first block.
        Error::NotACapture { path: path.into(), reason: msg }
    }
}

/// Several files read as one stream in timestamp order; frame numbers run on
/// across files in that order.
pub struct Merged {
    files: Vec<FileSource>,
    /// The next decoded frame of each file, waiting its turn.
    heads: Vec<Option<(Summary, Result<Kind, Skip>)>>,
    next_frame: u64,
    pub errors: Vec<String>,
}

impl Merged {
    pub fn new(files: Vec<FileSource>) -> Merged {
        let n = files.len();
        Merged { files, heads: vec![None; n], next_frame: 1, errors: Vec::new() }
    }

    /// (bytes consumed, total bytes) over all files, for a progress display.
    pub fn progress(&self) -> (u64, u64) {
        self.files.iter().fold((0, 0), |(r, t), f| (r + f.bytes_read.min(f.size), t + f.size))
    }

    fn fill(&mut self, i: usize, stats: &mut DecodeStats) {
        if self.heads[i].is_some() {
            return;
        }
        let mut s = Summary::default();
        match self.files[i].next(&mut s, stats) {
            Ok(Read::Frame(r)) => self.heads[i] = Some((s, r)),
            Ok(Read::Eof) => {}
            Err(e) => self.errors.push(e),
        }
    }

    /// Reads the next frame of the merged stream into `out` and returns what
    /// decoding made of it (`out` is a valid summary when that is `Ok`), or
    /// `None` at the end of every file.
    #[inline]
    pub fn next(&mut self, out: &mut Summary, stats: &mut DecodeStats) -> Option<Result<Kind, Skip>> {
        let r = if self.files.len() == 1 {
            // The common case needs no lookahead: decode straight into `out`.
            match self.files[0].next(out, stats) {
                Ok(Read::Frame(r)) => r,
                Ok(Read::Eof) => return None,
                Err(e) => {
                    self.errors.push(e);
                    return None;
                }
            }
        } else {
            for i in 0..self.files.len() {
                self.fill(i, stats);
            }
            let i = (0..self.heads.len())
                .filter(|&i| self.heads[i].is_some())
                .min_by_key(|&i| self.heads[i].unwrap().0.ts)?;
            let (s, r) = self.heads[i].take()?;
            *out = s;
            r
        };
        out.frame = self.next_frame;
        self.next_frame += 1;
        Some(r)
    }
}

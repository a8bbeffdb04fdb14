//! The bytes of a capture: a file or standard input, decompressed on the fly
//! when it is gzip or zstd. Compression is recognised by its magic bytes, not
//! by the file's name, so `-r -` and renamed files work too.

use super::prefetch::Prefetch;
use crate::error::Error;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How the bytes of a capture are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Formats recognised only to say so: (magic, name).
const UNSUPPORTED: [(&[u8], &str); 3] =
    [(b"BZh", "bzip2"), (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz"), (&[0x04, 0x22, 0x4d, 0x18], "lz4")];
/// Long enough for every magic above.
const MAGIC_LEN: usize = 6;

/// Bytes read from the file itself (compressed bytes, for a compressed file):
/// what a progress display compares with the file's size. Shared because the
/// reader that counts ends up inside a decoder, on a helper thread, under
/// libpcap.
#[derive(Clone, Debug, Default)]
pub struct ByteCount(Arc<AtomicU64>);

impl ByteCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A reader that counts what passes through it.
struct Counted<R> {
    inner: R,
    count: ByteCount,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // One thread adds (the reader, or its decompressing helper); others
        // only look: no ordering needed.
        self.count.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened capture's bytes, decompressed.
pub struct Stream {
    pub reader: Box<dyn Read + Send>,
    pub compression: Compression,
    /// Bytes of the file read so far.
    pub consumed: ByteCount,
}

/// Opens `path` (`-` for standard input) and sets up decompression after
/// looking at its first bytes. Reading from the stream is what reports a
/// corrupt compressed stream, as an I/O error.
pub fn open(path: &Path) -> Result<Stream, Error> {
    let open_err = |reason: &str| Error::Open { path: path.into(), reason: reason.into() };
    let file = open_file(path)?;
    let consumed = ByteCount::default();
    let mut raw = Counted { inner: file, count: consumed.clone() };
    // The magic is read, not peeked: pipes cannot seek back. It is put back in
    // front of the rest instead.
    let mut magic = Vec::with_capacity(MAGIC_LEN);
    (&mut raw).take(MAGIC_LEN as u64).read_to_end(&mut magic).map_err(|e| open_err(&e.to_string()))?;
    let compression = detect(&magic).map_err(|name| Error::NotACapture {
        path: path.into(),
        reason: format!("{name}-compressed; decompress it first, wirestat reads gzip and zstd itself"),
    })?;
    let whole = Cursor::new(magic).chain(raw);
    let decoder: Box<dyn Read + Send> = match compression {
        // Read straight into libpcap's stream buffer.
        Compression::None => return Ok(Stream { reader: Box::new(whole), compression, consumed }),
        // Concatenated members (pigz, `cat a.gz b.gz`) are one stream, as for gunzip.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        // Likewise several frames.
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole).map_err(|e| open_err(&e.to_string()))?),
    };
    // Decompressing costs more than parsing and decoding what comes out:
    // it gets a thread of its own.
    let reader = Prefetch::spawn(decoder, "wirestat-decompress").map_err(|e| open_err(&e.to_string()))?;
    Ok(Stream { reader: Box::new(reader), compression, consumed })
}

/// Opens `path` for reading (`-`: a copy of the standard input's descriptor,
/// so that closing it leaves the process's standard input alone), with the
/// errors a person can act on.
pub fn open_file(path: &Path) -> Result<File, Error> {
    let open_err = |reason: &str| Error::Open { path: path.into(), reason: reason.into() };
    if super::frames::is_stdin(path) {
        let fd = io::stdin().lock();
        let fd = std::os::fd::AsFd::as_fd(&fd).try_clone_to_owned().map_err(|e| open_err(&e.to_string()))?;
        return Ok(File::from(fd));
    }
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => open_err("no such file"),
        io::ErrorKind::PermissionDenied => open_err("permission denied"),
        _ => open_err(&e.to_string()),
    })?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(open_err("it is a directory"));
    }
    Ok(file)
}

/// The first bytes read through a [`record`]ed stream, while they fit in its
/// limit: a stream that cannot be opened again (standard input) can then
/// still be read again from its start, if that need comes early.
#[derive(Clone, Debug, Default)]
pub struct Tape(Arc<Mutex<Option<Vec<u8>>>>);

impl Tape {
    /// The bytes recorded, if they all fit; recording stops.
    pub fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().ok()?.take()
    }
}

/// Wraps `reader` to record what is read through it into the returned tape,
/// up to `limit` bytes; past that the tape is dropped.
pub fn record(reader: Box<dyn Read + Send>, limit: usize) -> (Box<dyn Read + Send>, Tape) {
    let tape = Tape(Arc::new(Mutex::new(Some(Vec::new()))));
    (Box::new(Recorder { inner: reader, tape: tape.clone(), limit, recording: true }), tape)
}

struct Recorder {
    inner: Box<dyn Read + Send>,
    tape: Tape,
    limit: usize,
    /// Cleared once the tape is gone, so that reads no longer lock.
    recording: bool,
}

impl Read for Recorder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.recording {
            let mut tape = self.tape.0.lock().map_err(|_| io::Error::other("tape lock poisoned"))?;
            match tape.as_mut() {
                Some(t) if t.len() + n <= self.limit => t.extend_from_slice(&buf[..n]),
                _ => {
                    *tape = None;
                    self.recording = false;
                }
            }
        }
        Ok(n)
    }
}

/// The compression that `magic` (a stream's first bytes) announces, or the
/// name of one not supported.
fn detect(magic: &[u8]) -> Result<Compression, &'static str> {
    if magic.starts_with(&[0x1f, 0x8b]) {
        return Ok(Compression::Gzip);
    }
    if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(Compression::Zstd);
    }
    match UNSUPPORTED.iter().find(|(m, _)| magic.starts_with(m)) {
        Some((_, name)) => Err(name),
        None => Ok(Compression::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("wirestat-stream-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn read(path: &Path) -> (Compression, io::Result<Vec<u8>>, u64) {
        let mut s = open(path).unwrap();
        let mut out = Vec::new();
        let r = s.reader.read_to_end(&mut out).map(|_| out);
        (s.compression, r, s.consumed.get())
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn detects_by_magic_and_decompresses() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let gz = gzip(&data);
        let zst = zstd::stream::encode_all(&data[..], 3).unwrap();
        // Two gzip members and two zstd frames read as one stream each.
        let gz2 = [gz.clone(), gzip(b"tail")].concat();
        let zst2 = [zst.clone(), zstd::stream::encode_all(&b"tail"[..], 1).unwrap()].concat();
        let with_tail = [data.clone(), b"tail".to_vec()].concat();
        for (name, bytes, want, comp) in [
            ("plain", &data, &data, Compression::None),
            ("short", &vec![1u8, 2], &vec![1u8, 2], Compression::None),
            ("empty", &vec![], &vec![], Compression::None),
            ("gz", &gz, &data, Compression::Gzip),
            ("gz2", &gz2, &with_tail, Compression::Gzip),
            ("zst", &zst, &data, Compression::Zstd),
            ("zst2", &zst2, &with_tail, Compression::Zstd),
        ] {
            let p = temp(name, bytes);
            let (c, r, n) = read(&p);
            assert_eq!(c, comp, "{name}");
            assert!(r.unwrap() == *want, "{name}");
            assert_eq!(n, bytes.len() as u64, "{name}: bytes of the file read");
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn a_cut_or_corrupt_compressed_stream_is_a_read_error() {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_be_bytes()).collect();
        let gz = gzip(&data);
        let zst = zstd::stream::encode_all(&data[..], 3).unwrap();
        let mut flipped = gz.clone();
        flipped[gz.len() / 2] ^= 0x55;
        for (name, bytes) in
            [("cut.gz", &gz[..gz.len() / 2]), ("cut.zst", &zst[..zst.len() / 2]), ("flip.gz", &flipped[..])]
        {
            let p = temp(name, bytes);
            let (_, r, _) = read(&p);
            assert!(r.is_err(), "{name}");
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn other_compressions_are_named() {
        for (magic, name) in [(&b"BZh91AY"[..], "bzip2"), (&[0xfd, b'7', b'z', b'X', b'Z', 0, 0][..], "xz")] {
            let p = temp(name, magic);
            let e = open(&p).err().unwrap().to_string();
            assert!(e.contains(name) && e.contains("decompress it first"), "{e}");
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn a_tape_replays_the_start_of_a_stream() {
        let data: Vec<u8> = (0..=255).collect();
        let (mut r, tape) = record(Box::new(Cursor::new(data.clone())), 100);
        let mut head = [0u8; 60];
        r.read_exact(&mut head).unwrap();
        let mut again = Cursor::new(tape.take().unwrap()).chain(r);
        let mut all = Vec::new();
        again.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        // Past the limit the tape is gone.
        let (mut r, tape) = record(Box::new(Cursor::new(data.clone())), 100);
        r.read_to_end(&mut Vec::new()).unwrap();
        assert!(tape.take().is_none());
    }

    #[test]
    fn open_errors() {
        let e = open(Path::new("/nonexistent/x.pcap")).err().unwrap().to_string();
        assert!(e.contains("no such file"), "{e}");
        let e = open(&std::env::temp_dir()).err().unwrap().to_string();
        assert!(e.contains("it is a directory"), "{e}");
    }
}

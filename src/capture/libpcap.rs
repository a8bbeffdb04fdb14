//! libpcap reading an offline capture from any Rust reader.
//!
//! libpcap reads savefiles from a C stdio stream. glibc's `fopencookie` makes
//! a stream whose reads call back into Rust, so libpcap parses whatever the
//! reader yields (a file, standard input, a decompressor) with no pipe in
//! between that could fill up or be left open, and the reader's own error (a
//! corrupt gzip stream, say) is kept for the caller instead of libpcap's
//! "error reading dump file". The reader can also be had back, read as far
//! as libpcap read it, for another reader to go on from.

use pcap::{Capture, Offline};
use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

/// Read buffer of the stdio stream libpcap reads from. glibc's default is
/// 4 KiB: one read() per ~16 packets, and those syscalls were a third of a
/// bare replay's time. Much larger buffers fall out of the L2 cache the
/// workers share the core with (256 KiB was 4% slower overall).
pub const READ_BUFFER: usize = 64 << 10;

/// libpcap's `PCAP_TSTAMP_PRECISION_NANO` and `PCAP_ERRBUF_SIZE`.
pub(super) const PCAP_TSTAMP_PRECISION_NANO: c_uint = 1;
pub(super) const PCAP_ERRBUF_SIZE: usize = 256;

type CookieRead = unsafe extern "C" fn(*mut c_void, *mut c_char, libc::size_t) -> libc::ssize_t;
type CookieClose = unsafe extern "C" fn(*mut c_void) -> c_int;

/// glibc's `cookie_io_functions_t`; a missing write or seek function makes
/// the stream fail those operations, which libpcap never asks of a savefile.
#[repr(C)]
struct CookieFunctions {
    read: Option<CookieRead>,
    write: Option<unsafe extern "C" fn(*mut c_void, *const c_char, libc::size_t) -> libc::ssize_t>,
    seek: Option<unsafe extern "C" fn(*mut c_void, *mut i64, c_int) -> c_int>,
    close: Option<CookieClose>,
}

unsafe extern "C" {
    // glibc and musl; the libc crate does not bind it.
    fn fopencookie(cookie: *mut c_void, mode: *const c_char, functions: CookieFunctions) -> *mut libc::FILE;
    // In libpcap since 1.5; the pcap crate keeps its binding private.
    fn pcap_fopen_offline_with_tstamp_precision(
        fp: *mut libc::FILE,
        precision: c_uint,
        errbuf: *mut c_char,
    ) -> *mut c_void;
}

/// What the stream's callbacks work on.
struct Cookie {
    reader: Box<dyn Read + Send>,
    /// The reader's error, kept for the caller; the stream then fails for good.
    error: Option<io::Error>,
    /// Address range of the stream's buffer, which is initialised memory.
    buffer: std::ops::Range<usize>,
}

/// Memory that C holds a pointer into (the cookie, the stream's buffer):
/// owned through a raw pointer, so that moving the owner claims nothing about
/// the memory, and freed on drop, which must come after the stream is closed
/// (see the field order of [`Libpcap`]).
struct Shared<T: ?Sized>(NonNull<T>);

// SAFETY: the memory is only touched by the stream, from inside libpcap calls
// on the thread owning the capture, and by `Libpcap`'s methods on that same
// thread; what it holds may move threads (`T: Send`).
unsafe impl<T: ?Sized + Send> Send for Shared<T> {}

impl<T: ?Sized> Shared<T> {
    fn new(b: Box<T>) -> Shared<T> {
        Shared(NonNull::from(Box::leak(b)))
    }

    fn as_ptr(&self) -> *mut T {
        self.0.as_ptr()
    }

    /// The memory back, once no stream uses it any more.
    fn into_box(self) -> Box<T> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: as in drop(), which will not run for `this`.
        unsafe { Box::from_raw(this.0.as_ptr()) }
    }
}

impl<T: ?Sized> Drop for Shared<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::leak and is freed only here or
        // in into_box, which forgets the owner.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// An offline libpcap capture reading from a Rust reader, with nanosecond
/// timestamps.
pub struct Libpcap {
    // Dropped in this order: closing the capture closes the stream, which
    // reads into `buffer` and calls back with `cookie`.
    cap: Capture<Offline>,
    cookie: Shared<Cookie>,
    _buffer: Shared<[u8]>,
}

/// Why libpcap refused a stream, and the stream, read as far as libpcap read it.
pub struct Refused {
    /// libpcap's message, without its "libpcap error: " prefix.
    pub message: String,
    /// The reader's own error, when reading is what failed.
    pub read_error: Option<io::Error>,
    pub reader: Box<dyn Read + Send>,
}

impl Libpcap {
    /// Opens a pcap or pcapng stream.
    pub fn open(reader: Box<dyn Read + Send>) -> Result<Libpcap, Refused> {
        let buffer = Shared::new(vec![0u8; READ_BUFFER].into_boxed_slice());
        let start = buffer.as_ptr().cast::<u8>() as usize;
        let cookie = Shared::new(Box::new(Cookie { reader, error: None, buffer: start..start + READ_BUFFER }));
        let functions = CookieFunctions { read: Some(read_cookie), write: None, seek: None, close: Some(close_cookie) };
        // SAFETY: the cookie outlives the stream: on success both move into
        // `Libpcap`, whose field order closes the stream first; on failure the
        // stream is closed here, before the cookie is used again.
        let fp = unsafe { fopencookie(cookie.as_ptr().cast(), c"r".as_ptr(), functions) };
        if fp.is_null() {
            let message = io::Error::last_os_error().to_string();
            return Err(Refused { message, read_error: None, reader: cookie.into_box().reader });
        }
        // SAFETY: `fp` is a fresh stream, not yet read; `buffer` moves into the
        // result (or outlives the stream, closed on failure) and is never
        // touched by Rust while the stream lives.
        match unsafe { open_stream(fp, buffer.as_ptr().cast()) } {
            Ok(cap) => Ok(Libpcap { cap, cookie, _buffer: buffer }),
            Err(message) => {
                let Cookie { reader, error, .. } = *cookie.into_box();
                Err(Refused { message: strip(&message), read_error: error, reader })
            }
        }
    }

    pub fn capture(&mut self) -> &mut Capture<Offline> {
        &mut self.cap
    }

    /// Closes the capture and hands back the reader, read as far as libpcap
    /// read it (which may be well past the last frame it delivered).
    pub fn into_reader(self) -> Box<dyn Read + Send> {
        let Libpcap { cap, cookie, _buffer } = self;
        // Closes the stream, the last user of the cookie.
        drop(cap);
        cookie.into_box().reader
    }

    /// The reader's error, once libpcap has reported a failed read.
    pub fn take_read_error(&mut self) -> Option<io::Error> {
        // SAFETY: no callback runs now (they run only inside libpcap calls,
        // and `&mut self` excludes one); the cookie is alive (owned by self).
        unsafe { (*self.cookie.as_ptr()).error.take() }
    }
}

/// Hands libpcap the stdio stream `fp` (pcap or pcapng, nanosecond
/// timestamps), read through `buffer` (`READ_BUFFER` bytes) without locks.
/// On failure the stream is closed and libpcap's message returned.
///
/// # Safety
/// `fp` is a fresh stream nobody else uses; `buffer` stays allocated, and
/// untouched by Rust, until the returned capture is closed.
pub(super) unsafe fn open_stream(fp: *mut libc::FILE, buffer: *mut u8) -> Result<Capture<Offline>, String> {
    let mut errbuf = [0 as c_char; PCAP_ERRBUF_SIZE];
    // SAFETY: as the caller promises; libpcap owns `fp` on success
    // (pcap_close closes it), we close it on failure.
    unsafe {
        libc::setvbuf(fp, buffer.cast(), libc::_IOFBF, READ_BUFFER);
        super::unlocked(fp);
        let p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, errbuf.as_mut_ptr());
        match NonNull::new(p) {
            Some(p) => Ok(Capture::from(p.cast())),
            None => {
                libc::fclose(fp);
                Err(CStr::from_ptr(errbuf.as_ptr()).to_string_lossy().into_owned())
            }
        }
    }
}

/// libpcap's message without the pcap crate's prefix.
pub fn strip(s: &str) -> String {
    s.trim_start_matches("libpcap error: ").to_string()
}

/// The stream's read function: fills `buf` from the reader; 0 at the end, -1
/// after an error (kept in the cookie).
unsafe extern "C" fn read_cookie(cookie: *mut c_void, buf: *mut c_char, size: libc::size_t) -> libc::ssize_t {
    // SAFETY: `cookie` is the pointer given to fopencookie, alive while the
    // stream is (see Libpcap::open); stdio calls back only from within libpcap
    // calls, when no Rust reference to the cookie exists.
    let cookie = unsafe { &mut *cookie.cast::<Cookie>() };
    if cookie.error.is_some() {
        return -1;
    }
    // Reads of a savefile never ask for more; keeps the count within ssize_t.
    let size = size.min(isize::MAX as usize);
    // Almost every read fills the stream's buffer, initialised memory. stdio
    // reads a request larger than that buffer straight into its caller's
    // memory, which may be uninitialised: that is zeroed before a Rust slice
    // is made of it.
    let (start, end) = (buf as usize, (buf as usize).saturating_add(size));
    if !(cookie.buffer.contains(&start) && end <= cookie.buffer.end) {
        // SAFETY: stdio hands over `size` writable bytes at `buf`.
        unsafe { std::ptr::write_bytes(buf, 0, size) };
    }
    // SAFETY: as above; the bytes are initialised, and nothing else uses
    // them until this call returns.
    let buf = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), size) };
    loop {
        // Unwinding into C is undefined: a panicking decoder becomes a read error.
        match catch_unwind(AssertUnwindSafe(|| cookie.reader.read(buf))) {
            Ok(Ok(n)) => return n as libc::ssize_t,
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(Err(e)) => cookie.error = Some(e),
            Err(_) => cookie.error = Some(io::Error::other("the decoder failed (panicked)")),
        }
        return -1;
    }
}

/// The stream's close function: nothing to do, `CookieBox` frees the cookie.
unsafe extern "C" fn close_cookie(_cookie: *mut c_void) -> c_int {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_with(records: &[&[u8]]) -> Vec<u8> {
        let mut f = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
            f.extend(v.to_le_bytes());
        }
        for (i, r) in records.iter().enumerate() {
            for v in [i as u32 + 1, 0, r.len() as u32, r.len() as u32] {
                f.extend(v.to_le_bytes());
            }
            f.extend(*r);
        }
        f
    }

    /// Yields its bytes in small pieces, then an error.
    struct Failing(Vec<u8>, usize);

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bad bytes"));
            }
            let n = buf.len().min(7).min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn reads_a_capture_from_a_reader() {
        let bytes = pcap_with(&[b"first", b"second"]);
        let mut p = Libpcap::open(Box::new(std::io::Cursor::new(bytes))).ok().unwrap();
        assert_eq!(p.capture().next_packet().unwrap().data, b"first");
        let pk = p.capture().next_packet().unwrap();
        assert_eq!((pk.header.ts.tv_sec, pk.data), (2, &b"second"[..]));
        assert!(matches!(p.capture().next_packet(), Err(pcap::Error::NoMorePackets)));
        assert!(p.take_read_error().is_none());
    }

    #[test]
    fn records_larger_than_the_stream_buffer() {
        // stdio reads these straight into libpcap's memory, past the buffer.
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let bytes = pcap_with(&[&big, b"small", &big[..READ_BUFFER + 1]]);
        let mut p = Libpcap::open(Box::new(std::io::Cursor::new(bytes))).ok().unwrap();
        assert_eq!(p.capture().next_packet().unwrap().data, &big[..]);
        assert_eq!(p.capture().next_packet().unwrap().data, b"small");
        assert_eq!(p.capture().next_packet().unwrap().data, &big[..READ_BUFFER + 1]);
    }

    #[test]
    fn the_readers_error_is_kept() {
        let bytes = pcap_with(&[b"first", b"second"]);
        let mut p = Libpcap::open(Box::new(Failing(bytes[..24 + 16 + 5 + 3].to_vec(), 0))).ok().unwrap();
        assert_eq!(p.capture().next_packet().unwrap().data, b"first");
        assert!(p.capture().next_packet().is_err());
        assert_eq!(p.take_read_error().unwrap().to_string(), "bad bytes");
        // At open.
        let r = Libpcap::open(Box::new(Failing(bytes[..10].to_vec(), 0))).err().unwrap();
        assert_eq!(r.read_error.unwrap().to_string(), "bad bytes");
    }

    #[test]
    fn the_reader_comes_back() {
        let bytes = pcap_with(&[b"first", b"second"]);
        let mut p = Libpcap::open(Box::new(std::io::Cursor::new(bytes.clone()))).ok().unwrap();
        assert_eq!(p.capture().next_packet().unwrap().data, b"first");
        // libpcap read ahead: here, the whole (short) stream.
        let mut rest = Vec::new();
        p.into_reader().read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        let text = b"hello, this is text, long enough to be refused".to_vec();
        let r = Libpcap::open(Box::new(std::io::Cursor::new(text))).err().unwrap();
        let mut rest = Vec::new();
        let mut reader = r.reader;
        reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn a_panicking_reader_is_an_error() {
        struct Panics;
        impl Read for Panics {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                panic!("decoder bug")
            }
        }
        let r = Libpcap::open(Box::new(Panics)).err().unwrap();
        assert!(r.read_error.unwrap().to_string().contains("panicked"));
    }

    #[test]
    fn not_a_capture() {
        let r = Libpcap::open(Box::new(&b"hello, this is text"[..])).err().unwrap();
        assert!(r.read_error.is_none());
        assert!(!r.message.is_empty());
    }
}

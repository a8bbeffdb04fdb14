//! libpcap's own offline reader on a stdio stream with a large buffer: the
//! bare read loop wirestat is measured against (`examples/pcap_loop.rs`).

use super::libpcap::{READ_BUFFER, open_stream, strip};
use crate::error::Error;
use pcap::{Capture, Offline};
use std::os::fd::IntoRawFd;
use std::path::Path;

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
    open_offline_fd(path).map(|(cap, _)| cap)
}

/// [`open_offline`], and the descriptor the capture reads (open as long as
/// the capture is), for telling how far reading has got.
pub fn open_offline_fd(path: &Path) -> Result<(OfflineCapture, std::os::fd::RawFd), Error> {
    let open_err = |reason: &str| Error::Open { path: path.into(), reason: reason.into() };
    let fd = super::stream::open_file(path)?.into_raw_fd();
    let mut buffer = vec![0u8; READ_BUFFER].into_boxed_slice();
    // SAFETY: `fd` is ours and open; the stream owns it from here (closing
    // the stream closes it).
    let fp = unsafe { libc::fdopen(fd, c"rb".as_ptr()) };
    if fp.is_null() {
        let e = std::io::Error::last_os_error();
        // SAFETY: no stream took `fd`; it is still ours to close.
        unsafe { libc::close(fd) };
        return Err(open_err(&e.to_string()));
    }
    // SAFETY: a fresh stream; `buffer` moves into the OfflineCapture, which
    // drops it only after closing the capture (and the stream).
    match unsafe { open_stream(fp, buffer.as_mut_ptr()) } {
        Ok(cap) => Ok((OfflineCapture { cap, _buffer: buffer }, fd)),
        Err(msg) => Err(classify_open(path, &msg)),
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

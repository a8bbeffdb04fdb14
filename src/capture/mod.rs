//! Packet sources. A [`Source`] hands out raw frames with their capture time;
//! decoding is the reader loop's job, not the source's, so every source
//! (offline files, several files merged by time, a live interface) feeds
//! the same pipeline.
//!
//! Files are read through libpcap (pcap and pcapng, plain, gzip or zstd:
//! [`stream`], [`libpcap`]), with a pcapng reader of our own ([`pcapng`]) for
//! the files libpcap refuses ([`frames`] switches between them).

pub mod bpf;
pub mod dedup;
mod file;
pub mod frames;
mod iface;
pub mod libpcap;
pub mod live;
mod merge;
pub mod offline;
pub mod pcapng;
pub mod prefetch;
pub mod stream;

pub use file::FileSource;
pub use frames::capture_ns;
pub use iface::{Interface, interfaces};
pub use live::{LiveOptions, LiveSource, LiveStats};
pub use merge::Merged;
pub use offline::{OfflineCapture, open_offline};

/// Tells stdio that only the thread reading `fp` uses it, so its reads take
/// no lock. glibc skips stream locks only while a process has one thread;
/// wirestat's workers make every `fread` (libpcap makes two per frame) lock
/// and unlock the stream with atomic operations otherwise.
///
/// # Safety
/// `fp` is a live stream that one thread at a time reads.
pub(crate) unsafe fn unlocked(fp: *mut libc::FILE) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn __fsetlocking(fp: *mut libc::FILE, kind: std::ffi::c_int) -> std::ffi::c_int;
        }
        const FSETLOCKING_BYCALLER: std::ffi::c_int = 2;
        // SAFETY: as the caller promises; the call only sets a flag on the stream.
        unsafe { __fsetlocking(fp, FSETLOCKING_BYCALLER) };
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = fp;
}

/// One captured frame, borrowed from its source until the next read.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture time, nanoseconds since the epoch.
    pub ts: u64,
    /// Which of the inputs (files, interfaces) it came from.
    pub if_id: u32,
    /// libpcap link-layer type of `data` (a `DLT_` value).
    pub linktype: i32,
    /// Length of the frame on the wire (`data` may be cut by the snaplen).
    pub orig_len: u32,
    pub data: &'a [u8],
}

/// What a source had next.
pub enum Next<T> {
    /// A frame, and what the visitor made of it.
    Frame(T),
    /// Nothing arrived, but the capture clock reads this (ns): a live source
    /// says so while the link is quiet, so timers still expire on time.
    Tick(u64),
    /// No more frames, ever.
    End,
}

/// A stream of captured frames. A frame is lent to a visitor rather than
/// returned: a reader may switch readers in mid-call (libpcap to the pcapng
/// fallback), and the frame's bytes live in whichever one delivered it.
pub trait Source {
    fn next<T>(&mut self, visit: impl FnOnce(Frame<'_>) -> T) -> Next<T>;
    /// Read errors so far: each ended one input early; the frames before it count.
    fn errors(&self) -> &[String];
    /// (bytes consumed, total bytes) for a progress display; total 0 when unknown.
    fn progress(&self) -> (u64, u64);
    /// A live source delivers frames in real time: the reader must never wait
    /// on the workers (what they cannot take is dropped and counted instead).
    fn is_live(&self) -> bool {
        false
    }
    /// What the capture itself received and lost so far (live sources only).
    fn live_stats(&mut self) -> Option<LiveStats> {
        None
    }
}

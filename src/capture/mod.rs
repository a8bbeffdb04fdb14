//! Packet sources. A [`Source`] yields raw frames with their capture time;
//! decoding is the reader loop's job, not the source's, so every source
//! (offline files through libpcap, several files merged by time, a live
//! interface) feeds the same pipeline.

pub mod dedup;
mod file;
mod iface;
pub mod live;
mod merge;

pub use file::{FileSource, OfflineCapture, open_offline};
pub use iface::{Interface, interfaces};
pub use live::{LiveOptions, LiveSource, LiveStats};
pub use merge::Merged;

/// One captured frame, borrowed from its source until the next read.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture time, nanoseconds since the epoch.
    pub ts: u64,
    /// Which of the source's interfaces (or files) it came from.
    pub if_id: u32,
    /// libpcap link-layer type of `data`.
    pub linktype: i32,
    /// Length of the frame on the wire (`data` may be cut by the snaplen).
    pub orig_len: u32,
    pub data: &'a [u8],
}

/// What a source has next.
pub enum Next<'a> {
    Frame(Frame<'a>),
    /// Nothing arrived, but the capture clock reads this (ns): a live source
    /// says so while the link is quiet, so timers still expire on time.
    Tick(u64),
    /// No more frames, ever.
    End,
}

/// A stream of captured frames.
pub trait Source {
    fn next(&mut self) -> Next<'_>;
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

/// A record's timestamp in nanoseconds (captures are opened with nanosecond
/// precision). Hostile files must not yield nonsense that overflows later
/// arithmetic on capture time: libpcap sign-extends a classic pcap's 32-bit
/// seconds, which the format defines as unsigned, so read them back as such;
/// clamp the seconds to that range (pcapng's 64-bit timestamps can go
/// further) and the fraction to under a second.
pub fn capture_ns(sec: i64, nsec: i64) -> u64 {
    let sec =
        if (i32::MIN as i64..0).contains(&sec) { sec as u32 as u64 } else { sec.clamp(0, u32::MAX as i64) as u64 };
    sec * 1_000_000_000 + nsec.clamp(0, 999_999_999) as u64
}

/// libpcap's messages without its "libpcap error: " prefix.
fn strip(s: &str) -> String {
    s.trim_start_matches("libpcap error: ").to_string()
}

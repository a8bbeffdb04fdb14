//! Live capture from one or more interfaces through libpcap.
//!
//! The reader never sleeps while frames wait: reads are non-blocking, and
//! only when every interface is empty does it wait in `poll()`, for at most
//! one tick. A quiet link still yields [`Next::Tick`] with the wall clock,
//! so timers (TIME_WAIT, SYN give-up) expire without traffic, and a stop
//! request (a signal handler setting a flag) is seen within a tick.
//!
//! Several interfaces (a tap delivers each direction on its own port) are
//! merged by timestamp. A live merge cannot wait forever for a quiet
//! interface: the earliest waiting frame goes out once every interface has a
//! frame of its own waiting, or once it is [`REORDER_WINDOW_NS`] old by the
//! wall clock. A frame that reaches the reader later than that behind one
//! from another interface is passed on out of order (the pipeline takes
//! time as the latest seen), and counted in `late_frames`.

use super::frames::header_ns;
use super::iface::{self, Counters, Iface, Read};
use super::libpcap::strip;
use super::{Frame, Next, Source};
use crate::error::Error;
use pcap::{Packet, PacketHeader, Savefile};
use std::ffi::c_int;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bytes kept of each frame. wirestat reads headers only (lengths come from
/// the IP header), and the deepest stack it decodes fits: ERSPAN type III
/// over IPv6 (14 Ethernet + 40 IPv6 + 8 GRE with sequence + 12 ERSPAN + 8
/// platform sub-header = 82), then the mirrored frame with QinQ (14 + 8),
/// IPv6 with a 40-byte chain of extension headers (80) and TCP with full
/// options (60): 244 bytes. tcpdump's old default of 68 or 96 cuts TCP
/// options and tunnels; keeping whole frames would cost memory bandwidth and
/// kernel buffer for payload nobody reads.
pub const DEFAULT_SNAPLEN: u32 = 262;
/// Kernel buffer per interface (`-B`, KiB): at 64 MiB and ~400 bytes per
/// frame slot, about 160,000 frames, so a reader held up for a moment (a
/// snapshot, a burst) loses nothing. tcpdump's default is 2 MiB.
pub const DEFAULT_BUFFER_KIB: u32 = 64 << 10;
/// A quiet link yields a tick this often.
const TICK_NS: u64 = 100_000_000;
/// How long the earliest frame of a merge waits for an interface with
/// nothing to read: the kernel queues a frame within microseconds of its
/// timestamp unless the host is overloaded, so an interface still empty this
/// long after has nothing earlier to give.
pub const REORDER_WINDOW_NS: u64 = 5_000_000;
/// After a stop request, what is already in the kernel's buffers is still
/// read, for at most this long.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// libpcap's counters are 32-bit: read them at least this often (in frames),
/// so a wrap is never missed.
const STATS_EVERY: u64 = 1 << 24;

/// How to capture.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Interface names (or 1-based numbers from `-D`, as tcpdump takes them).
    pub interfaces: Vec<String>,
    pub filter: Option<String>,
    pub snaplen: u32,
    pub buffer_kib: u32,
    pub promisc: bool,
    /// Save every frame captured to this pcap file (`-w`).
    pub save: Option<PathBuf>,
}

/// What a live capture received and lost, summed over its interfaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Frames the kernel passed through the filter (`pcap_stats`' ps_recv).
    pub packets_received: u64,
    /// Frames the kernel had no buffer room for (ps_drop).
    pub dropped_kernel: u64,
    /// Frames the interface or its driver dropped (ps_ifdrop).
    pub dropped_interface: u64,
    /// Summaries the workers had no room for, dropped so that reading never
    /// waits (filled in by the pipeline).
    pub dropped_pipeline: u64,
    /// Frames of a merge that came later than the reorder window allows.
    pub late_frames: u64,
}

impl LiveStats {
    /// Anything lost before it could be tracked.
    pub fn lost(&self) -> u64 {
        self.dropped_kernel + self.dropped_interface + self.dropped_pipeline
    }
}

/// A frame of a merge waiting for its turn, copied out of libpcap's buffer.
#[derive(Default)]
struct Head {
    ts: u64,
    orig_len: u32,
    /// Reused from frame to frame: no allocation once it has grown to the snaplen.
    data: Vec<u8>,
    full: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Capturing,
    /// Stop requested at `at` (ns): read what the kernel holds, up to `deadline`.
    Draining {
        at: u64,
        deadline: Instant,
    },
    /// Everything read: one last tick at the stop time, then the end.
    Closing {
        at: u64,
    },
    Ended,
}

/// Frames from live interfaces, merged by time, with ticks while quiet.
pub struct LiveSource {
    ifaces: Vec<Iface>,
    heads: Vec<Head>,
    save: Option<Saver>,
    stop: &'static AtomicBool,
    phase: Phase,
    last_tick: u64,
    /// Time of the last frame handed out (for counting late merge frames).
    last_out: u64,
    frames: u64,
    late: u64,
    errors: Vec<String>,
    notes: Vec<String>,
    pollfds: Vec<libc::pollfd>,
}

/// The `-w` file.
struct Saver {
    path: PathBuf,
    file: Savefile,
    nano: bool,
}

impl LiveSource {
    /// Opens every interface (checking that each exists first, so a typo is
    /// reported as such even without permission to capture). `stop` is
    /// polled between reads: once set, what the kernel already holds is
    /// read, then the source ends.
    pub fn open(o: &LiveOptions, stop: &'static AtomicBool) -> Result<LiveSource, Error> {
        let list = iface::interfaces()?;
        let names = o.interfaces.iter().map(|w| iface::resolve(w, &list)).collect::<Result<Vec<_>, _>>()?;
        let mut ifaces = Vec::with_capacity(names.len());
        let mut notes = Vec::new();
        for name in names {
            let (cap, nano, n) = iface::open(&name, o)?;
            notes.extend(n);
            let linktype = cap.get_datalink().0;
            let fd = cap.as_raw_fd();
            ifaces.push(Iface { name, cap, fd, linktype, nano, counters: Counters::default(), ended: false });
        }
        let save = match &o.save {
            None => None,
            Some(path) => Some(Saver::open(path, &ifaces)?),
        };
        let heads = ifaces.iter().map(|_| Head { data: Vec::with_capacity(o.snaplen as usize), ..Head::default() });
        Ok(LiveSource {
            heads: heads.collect(),
            pollfds: Vec::with_capacity(ifaces.len()),
            ifaces,
            save,
            stop,
            phase: Phase::Capturing,
            last_tick: wall_ns(),
            last_out: 0,
            frames: 0,
            late: 0,
            errors: Vec::new(),
            notes,
        })
    }

    /// Remarks from opening the interfaces (warnings libpcap gave, no nanosecond timestamps).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Interface names, in `-i` order.
    pub fn names(&self) -> Vec<String> {
        self.ifaces.iter().map(|i| i.name.clone()).collect()
    }

    fn stop_requested(&mut self) {
        if self.phase == Phase::Capturing && self.stop.load(Ordering::Relaxed) {
            self.phase = Phase::Draining { at: wall_ns(), deadline: Instant::now() + DRAIN_LIMIT };
        }
    }

    /// Marks interface `i` failed.
    fn fail(&mut self, i: usize, msg: String) {
        self.ifaces[i].ended = true;
        self.errors.push(msg);
    }

    /// Called when nothing could be handed out: a tick if one is due, else a
    /// wait for frames on the interfaces with none waiting, at most until
    /// `until_ns` or the next tick.
    fn idle(&mut self, until_ns: Option<u64>) -> Option<u64> {
        let now = wall_ns();
        if self.last_tick + TICK_NS <= now {
            self.last_tick = now;
            self.flush_save();
            return Some(now);
        }
        let until = until_ns.unwrap_or(u64::MAX).min(self.last_tick + TICK_NS);
        let ms = until.saturating_sub(now).div_ceil(1_000_000).min(TICK_NS / 1_000_000) as c_int;
        self.pollfds.clear();
        for (f, _) in self.ifaces.iter().zip(&self.heads).filter(|(f, h)| !f.ended && !h.full) {
            self.pollfds.push(libc::pollfd { fd: f.fd, events: libc::POLLIN, revents: 0 });
        }
        // SAFETY: pollfds is a valid array of its length. A signal interrupts
        // the wait (EINTR), which is what a stop request wants.
        unsafe { libc::poll(self.pollfds.as_mut_ptr(), self.pollfds.len() as libc::nfds_t, ms) };
        None
    }

    fn flush_save(&mut self) {
        if let Some(s) = &mut self.save
            && let Err(e) = s.file.flush()
        {
            self.errors.push(format!("{}: {e}; frames after this are not saved", s.path.display()));
            self.save = None;
        }
    }

    /// One frame counted, its time noted; libpcap's counters read now and then.
    fn count(&mut self, ts: u64) {
        self.frames += 1;
        if ts < self.last_out {
            self.late += 1;
        }
        self.last_out = self.last_out.max(ts);
        if self.frames.is_multiple_of(STATS_EVERY) {
            for i in &mut self.ifaces {
                i.counters.update(&mut i.cap);
            }
        }
    }

    /// The stop sequence (drain what the kernel holds until the deadline, one
    /// last tick at the stop time, then the end), checked before each read:
    /// `Some` is what to return instead of reading.
    fn stopping<T>(&mut self) -> Option<Next<T>> {
        self.stop_requested();
        loop {
            match self.phase {
                Phase::Ended => return Some(Next::End),
                Phase::Closing { at } => {
                    self.phase = Phase::Ended;
                    return Some(Next::Tick(at));
                }
                Phase::Draining { at, deadline } if Instant::now() >= deadline => self.phase = Phase::Closing { at },
                _ => return None,
            }
        }
    }

    /// The single-interface path: frames straight from libpcap's buffer.
    fn next_single<T>(&mut self, visit: impl FnOnce(Frame<'_>) -> T) -> Next<T> {
        loop {
            if let Some(n) = self.stopping() {
                return n;
            }
            if self.ifaces[0].ended {
                self.phase = Phase::Closing { at: wall_ns() };
                continue;
            }
            match self.ifaces[0].read() {
                Read::Frame(hdr, data) => {
                    // SAFETY: libpcap's header and data stay valid until the next
                    // read on this handle, and the frame is only lent to `visit`
                    // within this call, while `self` is borrowed mutably: no read
                    // can happen while it lives.
                    let (hdr, data) = unsafe { (&*hdr, std::slice::from_raw_parts(data, (*hdr).caplen as usize)) };
                    let ts = header_ns(hdr, self.ifaces[0].nano);
                    if let Phase::Draining { at, .. } = self.phase
                        && ts > at
                    {
                        // Captured after the stop: not part of this session.
                        self.phase = Phase::Closing { at };
                        continue;
                    }
                    if let Some(s) = &mut self.save {
                        s.file.write(&Packet::new(hdr, data));
                    }
                    self.count(ts);
                    let i = &self.ifaces[0];
                    return Next::Frame(visit(Frame { ts, if_id: 0, linktype: i.linktype, orig_len: hdr.len, data }));
                }
                Read::Empty => {
                    if let Phase::Draining { at, .. } = self.phase {
                        self.phase = Phase::Closing { at };
                        continue;
                    }
                    if let Some(now) = self.idle(None) {
                        return Next::Tick(now);
                    }
                }
                Read::Failed(msg) => self.fail(0, msg),
            }
        }
    }

    /// Fills every empty head that has a frame to read; returns whether any
    /// live interface stayed empty.
    fn fill(&mut self) -> bool {
        let mut any_empty = false;
        for i in 0..self.ifaces.len() {
            if self.heads[i].full || self.ifaces[i].ended {
                continue;
            }
            match self.ifaces[i].read() {
                Read::Frame(hdr, data) => {
                    // SAFETY: as in next_single; the bytes are copied out before
                    // the next read on this handle.
                    let (hdr, data) = unsafe { (&*hdr, std::slice::from_raw_parts(data, (*hdr).caplen as usize)) };
                    let h = &mut self.heads[i];
                    h.ts = header_ns(hdr, self.ifaces[i].nano);
                    h.orig_len = hdr.len;
                    h.data.clear();
                    h.data.extend_from_slice(data);
                    h.full = true;
                }
                Read::Empty => any_empty = true,
                Read::Failed(msg) => self.fail(i, msg),
            }
        }
        any_empty
    }

    /// The merged path: the earliest waiting frame, once no interface can
    /// still have an earlier one.
    fn next_merged<T>(&mut self, visit: impl FnOnce(Frame<'_>) -> T) -> Next<T> {
        loop {
            if let Some(n) = self.stopping() {
                return n;
            }
            let any_empty = self.fill();
            let earliest = (0..self.heads.len()).filter(|&i| self.heads[i].full).min_by_key(|&i| self.heads[i].ts);
            let draining = matches!(self.phase, Phase::Draining { .. });
            let Some(i) = earliest else {
                if draining || self.ifaces.iter().all(|f| f.ended) {
                    let at = match self.phase {
                        Phase::Draining { at, .. } => at,
                        _ => wall_ns(),
                    };
                    self.phase = Phase::Closing { at };
                    continue;
                }
                if let Some(now) = self.idle(None) {
                    return Next::Tick(now);
                }
                continue;
            };
            let ts = self.heads[i].ts;
            if let Phase::Draining { at, .. } = self.phase
                && ts > at
            {
                self.phase = Phase::Closing { at };
                continue;
            }
            // While draining, an empty interface has nothing more before the stop.
            let due = !any_empty || draining || wall_ns() >= ts.saturating_add(REORDER_WINDOW_NS);
            if !due {
                if let Some(now) = self.idle(Some(ts + REORDER_WINDOW_NS)) {
                    // The clock must not pass a frame still waiting its turn.
                    return Next::Tick(now.min(ts));
                }
                continue;
            }
            self.heads[i].full = false;
            self.count(ts);
            if let Some(s) = &mut self.save {
                s.write(ts, self.heads[i].orig_len, &self.heads[i].data);
            }
            let (h, f) = (&self.heads[i], &self.ifaces[i]);
            return Next::Frame(visit(Frame {
                ts,
                if_id: i as u32,
                linktype: f.linktype,
                orig_len: h.orig_len,
                data: &h.data,
            }));
        }
    }
}

impl Saver {
    fn open(path: &Path, ifaces: &[Iface]) -> Result<Saver, Error> {
        let save_err = |reason: String| Error::Save { path: path.into(), reason };
        if super::frames::is_stdin(path) {
            return Err(save_err("standard output carries the views; name a file".into()));
        }
        let first = &ifaces[0];
        if let Some(other) = ifaces.iter().find(|i| i.linktype != first.linktype) {
            return Err(save_err(format!(
                "{} and {} have different link types, and a pcap file holds one",
                first.name, other.name
            )));
        }
        let file = first.cap.savefile(path).map_err(|e| save_err(strip(&e.to_string())))?;
        Ok(Saver { path: path.into(), file, nano: first.nano })
    }

    /// Writes a merged frame (copied out of libpcap) with its time in the file's precision.
    fn write(&mut self, ts: u64, orig_len: u32, data: &[u8]) {
        let frac = ts % 1_000_000_000;
        let hdr = PacketHeader {
            ts: libc::timeval {
                tv_sec: (ts / 1_000_000_000) as libc::time_t,
                tv_usec: (if self.nano { frac } else { frac / 1000 }) as libc::suseconds_t,
            },
            caplen: data.len() as u32,
            len: orig_len,
        };
        self.file.write(&Packet::new(&hdr, data));
    }
}

impl Source for LiveSource {
    #[inline]
    fn next<T>(&mut self, visit: impl FnOnce(Frame<'_>) -> T) -> Next<T> {
        if self.ifaces.len() == 1 { self.next_single(visit) } else { self.next_merged(visit) }
    }

    fn errors(&self) -> &[String] {
        &self.errors
    }

    fn progress(&self) -> (u64, u64) {
        (0, 0)
    }

    fn is_live(&self) -> bool {
        true
    }

    fn live_stats(&mut self) -> Option<LiveStats> {
        let mut s = LiveStats { late_frames: self.late, ..LiveStats::default() };
        for i in &mut self.ifaces {
            i.counters.update(&mut i.cap);
            s.packets_received += i.counters.total[0];
            s.dropped_kernel += i.counters.total[1];
            s.dropped_interface += i.counters.total[2];
        }
        Some(s)
    }
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        self.flush_save();
    }
}

/// A libpcap header's time in nanoseconds (`tv_usec` holds nanoseconds on a
/// handle with nanosecond precision).
/// The wall clock in nanoseconds since the epoch: the clock the kernel stamps frames with.
fn wall_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

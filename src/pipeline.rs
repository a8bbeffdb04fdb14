//! The replay pipeline: the calling thread reads and decodes, and hands
//! packets in batches to N worker threads, each owning one shard of the
//! connections (a connection always goes to the same shard, down one FIFO
//! channel, so its packets stay in order without locks). Batches travel back
//! empty to be reused: the hot path allocates nothing.
//!
//! Time is capture time. Every batch carries the reader's watermark so timers
//! fire on shards that saw no packets; a snapshot is a barrier message down
//! every channel, after which each worker publishes into the shared store.

use crate::addr::shard_hash;
use crate::analysis::{ExtrasFactory, Interest};
use crate::capture::LiveStats;
use crate::capture::dedup::{self, Dedup};
use crate::capture::{FileSource, Merged, Next, Source};
use crate::decode::{self, DecodeStats, Kind, Packet, Skip};
use crate::error::Error;
use crate::flow::shard::{Shard, ShardStats};
use crate::os::Profile;
use crate::progress::Progress;
use crate::report::{Health, Store};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

/// Summaries per batch: enough that handing batches over rarely has to wake a
/// worker (with 512, the futex and yield calls of the hand-overs cost the
/// reading thread about a tenth of its time when it is the bottleneck).
pub const BATCH: usize = 2048;
/// Batches in flight per worker before the reader waits (16k summaries, 1.8
/// MiB a worker). Deeper channels bought nothing once there is a spare worker
/// (see the default of `--workers`), and cost memory per connection.
const DEPTH: usize = 8;
/// The same for a live capture, where a full channel drops a batch instead of
/// waiting: deep enough (64k summaries a worker) to ride out a worker that the
/// scheduler leaves off the CPU for a while on a busy machine.
const LIVE_DEPTH: usize = 32;
/// A frame more than this far ahead of the capture's clock waits for the next
/// one to tell a corrupt timestamp (a lone outlier) from time passing.
pub const MAX_JUMP: u64 = 86_400 * 1_000_000_000;
/// Shards with no traffic still hear the time at least this often (capture time).
const FLUSH_EVERY: u64 = 1_000_000_000;

enum Msg {
    Batch(Vec<Packet>, u64),
    /// Publish at this capture time; `true` for the last one, after which the
    /// worker frees its tables before the views are rendered.
    Snapshot(u64, bool),
    Stop,
}

#[derive(Clone, Default)]
pub struct Config {
    pub workers: usize,
    pub profile: Profile,
    pub interest: Interest,
    /// Upper bound on tracked connections, over all shards.
    pub max_flows: usize,
    /// Analyzers each worker runs besides netstat (none: netstat alone).
    pub analyzers: Option<ExtrasFactory>,
    /// Hand the workers every decoded packet, not only TCP segments and the
    /// ICMP errors quoting them (for analyzers of UDP, ICMP or IP).
    pub all_packets: bool,
    /// Drop exact duplicate frames (a SPAN session's second copies) before tracking.
    pub dedup: bool,
}

/// The worker side of the pipeline, fed by [`Engine::push`].
pub struct Engine {
    senders: Vec<Sender<Msg>>,
    pending: Vec<Vec<Packet>>,
    pool: Receiver<Vec<Packet>>,
    acks: Receiver<ShardStats>,
    handles: Vec<JoinHandle<()>>,
    store: Arc<Store>,
    /// Connections each shard tracks, updated after every batch (for progress).
    gauges: Arc<Vec<AtomicU64>>,
    watermark: u64,
    last_flush: u64,
    /// Live capture: a batch a worker has no room for is dropped, not waited for.
    lossy: bool,
    /// Summaries dropped that way.
    dropped: u64,
}

impl Engine {
    pub fn new(cfg: &Config) -> Engine {
        Engine::build(cfg, false)
    }

    /// An engine for a live capture: pushing never waits for the workers;
    /// what they have no room for is dropped and counted (`dropped`).
    pub fn live(cfg: &Config) -> Engine {
        Engine::build(cfg, true)
    }

    fn build(cfg: &Config, lossy: bool) -> Engine {
        let n = cfg.workers.max(1);
        let store = Arc::new(Store::new());
        let gauges: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
        let (pool_tx, pool) = unbounded();
        let (ack_tx, acks) = unbounded();
        let mut senders = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = bounded::<Msg>(if lossy { LIVE_DEPTH } else { DEPTH });
            senders.push(tx);
            let extras = cfg.analyzers.as_ref().map_or_else(Vec::new, |f| f());
            let mut shard = Shard::with_extras(cfg.profile, cfg.interest.clone(), cfg.max_flows.div_ceil(n), extras);
            let (pool_tx, ack_tx, store, gauges) = (pool_tx.clone(), ack_tx.clone(), store.clone(), gauges.clone());
            let h = std::thread::Builder::new()
                .name(format!("wirestat-shard-{i}"))
                .spawn(move || {
                    while let Ok(m) = rx.recv() {
                        match m {
                            Msg::Batch(mut v, watermark) => {
                                shard.process_batch(&v);
                                shard.tick(watermark);
                                gauges[i].store(shard.flows() as u64, Ordering::Relaxed);
                                v.clear();
                                let _ = pool_tx.send(v);
                            }
                            Msg::Snapshot(at, false) => {
                                shard.settle(at);
                                let next_change = shard.publish(&store);
                                let _ = ack_tx.send(ShardStats { next_change, ..shard.stats() });
                            }
                            Msg::Snapshot(at, true) => {
                                shard.settle(at);
                                let stats = shard.stats();
                                shard.publish_final(&store);
                                let _ = ack_tx.send(stats);
                                break;
                            }
                            Msg::Stop => break,
                        }
                    }
                })
                .expect("spawn worker thread");
            handles.push(h);
        }
        let pending = (0..n).map(|_| Vec::with_capacity(BATCH)).collect();
        Engine { senders, pending, pool, acks, handles, store, gauges, watermark: 0, last_flush: 0, lossy, dropped: 0 }
    }

    /// Hands one packet to its shard; `route` is its [`route_hash`].
    #[inline]
    pub fn push(&mut self, s: &Packet, route: u64) {
        if s.ts > self.watermark {
            self.watermark = s.ts;
        }
        let n = self.senders.len();
        // Multiply-shift maps the hash onto 0..n without a division.
        let i = ((route as u128 * n as u128) >> 64) as usize;
        self.pending[i].push(*s);
        if self.pending[i].len() >= BATCH {
            self.send(i);
        }
        if self.watermark >= self.last_flush.saturating_add(FLUSH_EVERY) {
            self.flush();
        }
    }

    fn send(&mut self, i: usize) {
        // Only this thread sends, so a channel that is not full now takes the batch.
        if self.lossy && self.senders[i].is_full() {
            self.dropped += self.pending[i].len() as u64;
            self.pending[i].clear();
            return;
        }
        let fresh = self.pool.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.pending[i], fresh);
        let _ = self.senders[i].send(Msg::Batch(full, self.watermark));
    }

    /// Sends every shard its pending batch (possibly empty) and the time.
    pub fn flush(&mut self) {
        for i in 0..self.senders.len() {
            self.send(i);
        }
        self.last_flush = self.watermark;
    }

    /// The capture clock reads `now` though no packet came: the workers hear
    /// the time (and get what is pending), so their timers fire on a quiet link.
    pub fn tick(&mut self, now: u64) {
        self.watermark = self.watermark.max(now);
        self.flush();
    }

    /// Brings every shard to capture time `at` and has them publish: the store
    /// then holds one consistent view.
    pub fn snapshot(&mut self, at: u64) -> (Arc<Store>, Vec<ShardStats>) {
        self.barrier(at, false)
    }

    /// The last snapshot: workers publish, free their tables and stop.
    pub fn finish(mut self, at: u64) -> (Arc<Store>, Vec<ShardStats>) {
        self.barrier(at, true)
    }

    fn barrier(&mut self, at: u64, last: bool) -> (Arc<Store>, Vec<ShardStats>) {
        self.watermark = self.watermark.max(at);
        self.flush();
        self.store.clear();
        for tx in &self.senders {
            let _ = tx.send(Msg::Snapshot(at, last));
        }
        let stats = (0..self.senders.len()).filter_map(|_| self.acks.recv().ok()).collect();
        (self.store.clone(), stats)
    }

    /// Connections tracked, as of each shard's last batch.
    pub fn flows(&self) -> u64 {
        self.gauges.iter().map(|g| g.load(Ordering::Relaxed)).sum()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for tx in &self.senders {
            let _ = tx.send(Msg::Stop);
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// The hash that picks a packet's worker: its connection's, the same both
/// ways. Only TCP and UDP have ports; other packets go by their addresses.
/// Computed once per frame, for the duplicate filter and the engine.
#[inline]
pub fn route_hash(s: &Packet) -> u64 {
    let (sp, dp) = if matches!(s.kind, Kind::Tcp | Kind::IcmpError | Kind::Udp) { (s.sport, s.dport) } else { (0, 0) };
    shard_hash(&s.src, &s.dst, sp, dp)
}

/// How the reader loop reads, whatever the source.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    /// Snapshot every this many nanoseconds of capture time (0: only at the end).
    pub interval: u64,
    /// Show a progress line on stderr (the caller checks it is a terminal).
    pub progress: bool,
    /// Stop after this many frames (tcpdump's `-c`).
    pub count: Option<u64>,
}

/// A replay of capture files.
#[derive(Clone, Debug)]
pub struct Replay {
    pub files: Vec<PathBuf>,
    pub filter: Option<String>,
    pub reading: Reading,
}

/// Reads the files to the end, calling `on_snapshot` at every interval
/// boundary of capture time and once at the end of the capture.
pub fn replay(
    r: &Replay,
    cfg: &Config,
    on_snapshot: impl FnMut(&Store, &Health, u64) -> Result<(), Error>,
) -> Result<Health, Error> {
    if r.files.iter().filter(|p| crate::capture::frames::is_stdin(p)).count() > 1 {
        return Err(Error::Usage("-r - can be given once: standard input is one stream".into()));
    }
    let files = r
        .files
        .iter()
        .enumerate()
        .map(|(i, p)| FileSource::open(p, r.filter.as_deref(), i as u32))
        .collect::<Result<Vec<_>, _>>()?;
    run(Merged::new(files), &r.reading, cfg, on_snapshot)
}

/// The reader loop: reads `src` to its end (or `r.count` frames), decodes
/// each frame and hands it to the workers, calling `on_snapshot` at every
/// `r.interval` boundary of capture time (0: never) and once at the end.
///
/// The capture's clock is the latest frame time accepted. A frame earlier
/// than that is out of order: it is counted and tracked at the clock's time.
/// A frame more than [`MAX_JUMP`] ahead is held until the next frame (or
/// tick) says what it is: time passing when that one is near it, else a
/// corrupt timestamp, counted and tracked at the clock's time (so is a held
/// frame that nothing follows). Boundaries whose view nothing could have
/// changed since the last view shown are not shown again: the next view
/// shown carries how many were folded ([`Health::repeated`]).
pub fn run<S: Source>(
    mut src: S,
    r: &Reading,
    cfg: &Config,
    on_snapshot: impl FnMut(&Store, &Health, u64) -> Result<(), Error>,
) -> Result<Health, Error> {
    let engine = if src.is_live() { Engine::live(cfg) } else { Engine::new(cfg) };
    let mut rd = Reader {
        engine,
        on_snapshot,
        dedup: cfg.dedup.then(|| Dedup::new(dedup::DEFAULT_WINDOW_NS)),
        decode: DecodeStats::default(),
        bounds: Boundaries::new(r.interval),
        clock: None,
        first_ts: u64::MAX,
        last_ts: 0,
        all_packets: cfg.all_packets,
    };
    let mut frame_no = 0u64;
    let last_frame = r.count.unwrap_or(u64::MAX);
    // A frame far ahead of the clock, waiting for the next one to confirm it.
    let mut held: Option<(Packet, Result<Kind, Skip>)> = None;
    let mut s = Packet::default();
    let mut route = 0;
    let mut progress = Progress::with(r.progress);
    loop {
        let (decode, dedup) = (&mut rd.decode, &mut rd.dedup);
        let got = src.next(|f| {
            frame_no += 1;
            s.ts = f.ts;
            s.frame = frame_no;
            s.frame_len = f.orig_len;
            let r = decode::decode(f.linktype, f.data, &mut s);
            route = if r.is_ok() { route_hash(&s) } else { 0 };
            if let Some(d) = dedup
                && d.is_copy(frame_no, f.data, f.orig_len, &s, r, route)
            {
                // Decode counts describe the input as read, copies included.
                decode.read(&s, r);
                return None;
            }
            // Counted when taken, after the views of the boundaries before it.
            Some(r)
        });
        let decoded = match got {
            Next::Frame(Some(decoded)) => decoded,
            Next::Frame(None) => {
                // A copy, counted: the view has changed.
                rd.bounds.quiet_until = 0;
                continue;
            }
            Next::Tick(now) => {
                // A live link is quiet: the clock moves on without packets.
                if let Some((h, hr)) = held.take() {
                    rd.settle(&mut src, h, hr, now.abs_diff(h.ts) <= MAX_JUMP)?;
                }
                if rd.clock.is_none_or(|c| now > c) {
                    // The wall clock says a view is due: the latest boundary is shown even if nothing changed.
                    rd.views(&mut src, now, true)?;
                    rd.clock = Some(now);
                    rd.engine.tick(now);
                }
                continue;
            }
            Next::End => break,
        };
        progress.tick(frame_no, || src.progress(), || rd.engine.flows());
        if held.is_some() {
            let (h, hr) = held.take().expect("checked");
            rd.settle(&mut src, h, hr, s.ts.abs_diff(h.ts) <= MAX_JUMP)?;
        }
        rd.first_ts = rd.first_ts.min(s.ts);
        match rd.clock {
            Some(c) if s.ts > c.saturating_add(MAX_JUMP) => held = Some((s, decoded)),
            _ => rd.admit(&mut src, &mut s, decoded, route)?,
        }
        if frame_no >= last_frame {
            break;
        }
    }
    // A jump that no frame came to confirm cannot be told from a corrupt timestamp.
    if let Some((h, hr)) = held.take() {
        rd.settle(&mut src, h, hr, false)?;
    }
    progress.finish();
    let sources = Sources::read(&mut src, &rd.dedup, &rd.engine);
    let at = rd.clock.unwrap_or(0);
    let repeated = rd.bounds.repeated.take();
    let Reader { engine, mut on_snapshot, decode, first_ts, last_ts, .. } = rd;
    let (store, stats) = engine.finish(at);
    let h = health(&decode, &sources, &stats, at, span(first_ts, last_ts), repeated);
    on_snapshot(&store, &h, at)?;
    Ok(h)
}

/// The earliest and latest frame times, if a frame was read.
fn span(first: u64, last: u64) -> Option<(u64, u64)> {
    (first != u64::MAX).then_some((first, last))
}

/// Views at INTERVAL boundaries that were not shown because nothing could
/// have changed them since the view before: `views` boundaries, the first
/// at `from` and the last at `to` (capture time, ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeated {
    pub views: u64,
    pub from: u64,
    pub to: u64,
}

/// The INTERVAL boundaries of capture time, and which of them need a view of
/// their own. Live and replayed captures share it: every boundary the clock
/// reaches is due, before any frame stamped at or after it is tracked.
#[derive(Debug)]
struct Boundaries {
    /// The interval (ns; 0: views only at the end).
    every: u64,
    /// The next boundary due (0: not started; `u64::MAX`: none, ever), so
    /// that one comparison per frame tells whether a view may be due.
    next: u64,
    /// No view can differ from the last one shown before this capture time:
    /// no frame was read since, and no timer is due before it (0: unknown).
    quiet_until: u64,
    /// Boundaries folded since the last view shown.
    repeated: Option<Repeated>,
}

impl Boundaries {
    fn new(every: u64) -> Boundaries {
        let next = if every == 0 { u64::MAX } else { 0 };
        Boundaries { every, next, quiet_until: 0, repeated: None }
    }

    /// The next boundary at or before `t` that needs a view, folding the
    /// quiet ones on the way (in one step, however many: a multi-day gap at
    /// INTERVAL 0.000001 costs no more than one boundary); `None` once every
    /// boundary up to `t` is handled. With `latest`, the last boundary up to
    /// `t` is shown even when quiet (a live display must show the view of now).
    fn due(&mut self, t: u64, latest: bool) -> Option<u64> {
        let e = self.every;
        if self.next == u64::MAX {
            return None;
        }
        if self.next == 0 {
            // The first frame: boundaries are multiples of the interval after it.
            self.next = (t - t % e).saturating_add(e);
            return None;
        }
        while self.next <= t && self.next != u64::MAX {
            if self.next < self.quiet_until {
                let last_quiet = t.min(self.quiet_until - 1);
                let mut n = (last_quiet - self.next) / e + 1;
                if latest && t - (t - self.next) % e <= last_quiet {
                    // The last boundary up to `t` is quiet too: keep it for its view.
                    n -= 1;
                }
                if n > 0 {
                    let (from, to) = (self.next, self.next + (n - 1) * e);
                    let r = self.repeated.get_or_insert(Repeated { views: 0, from, to });
                    (r.views, r.to) = (r.views + n, to);
                    self.next = to.saturating_add(e);
                    continue;
                }
            }
            let b = self.next;
            self.next = b.saturating_add(e);
            return Some(b);
        }
        None
    }
}

/// The reader's side of a run: the engine, the clock, the boundaries, and
/// the figures a snapshot reports.
struct Reader<F> {
    engine: Engine,
    on_snapshot: F,
    dedup: Option<Dedup>,
    decode: DecodeStats,
    bounds: Boundaries,
    /// The capture's clock: the latest time accepted, from frames and (live)
    /// ticks; `None` before the first.
    clock: Option<u64>,
    /// The earliest frame time read (frames may be out of order).
    first_ts: u64,
    /// The latest frame time accepted (0: none yet).
    last_ts: u64,
    all_packets: bool,
}

impl<F: FnMut(&Store, &Health, u64) -> Result<(), Error>> Reader<F> {
    /// Decides about a frame held far ahead of the clock: `confirmed` (the
    /// next frame is near it) makes it time passing; otherwise its timestamp
    /// is corrupt, and it is tracked at the clock's time.
    #[cold]
    fn settle<S: Source>(
        &mut self,
        src: &mut S,
        mut h: Packet,
        r: Result<Kind, Skip>,
        confirmed: bool,
    ) -> Result<(), Error> {
        let route = if r.is_ok() { route_hash(&h) } else { 0 };
        if confirmed {
            return self.admit(src, &mut h, r, route);
        }
        self.decode.bad_timestamps += 1;
        h.ts = self.clock.unwrap_or(h.ts);
        self.take(src, &mut h, r, route)
    }

    /// Takes a frame in reading order: one earlier than a frame before it is
    /// counted as out of order.
    #[inline(always)]
    fn admit<S: Source>(
        &mut self,
        src: &mut S,
        s: &mut Packet,
        r: Result<Kind, Skip>,
        route: u64,
    ) -> Result<(), Error> {
        let ts = s.ts;
        if ts < self.last_ts {
            self.decode.out_of_order += 1;
        }
        self.take(src, s, r, route)?;
        self.last_ts = self.last_ts.max(ts);
        Ok(())
    }

    /// Takes a frame at its time, or at the clock's if that is later: the
    /// views of the boundaries before it first, then the frame to its worker.
    /// A frame behind the clock cannot be tracked at its own time: the
    /// workers' timers have run past it, and a connection's state does not go
    /// back (a live tick, the wall clock, may also be a little ahead of the
    /// stamps of frames still on their way).
    #[inline(always)]
    fn take<S: Source>(&mut self, src: &mut S, s: &mut Packet, r: Result<Kind, Skip>, route: u64) -> Result<(), Error> {
        match self.clock {
            Some(c) if s.ts <= c => s.ts = c,
            _ => {
                if s.ts >= self.bounds.next {
                    self.views(src, s.ts, false)?;
                }
                self.clock = Some(s.ts);
            }
        }
        self.decode.read(s, r);
        self.bounds.quiet_until = 0;
        match r {
            Ok(Kind::Tcp | Kind::IcmpError) => self.engine.push(s, route),
            Ok(_) if self.all_packets => self.engine.push(s, route),
            _ => {}
        }
        Ok(())
    }

    /// Shows the views of the boundaries up to `t` that need one.
    #[inline(never)]
    fn views<S: Source>(&mut self, src: &mut S, t: u64, latest: bool) -> Result<(), Error> {
        while let Some(at) = self.bounds.due(t, latest) {
            let sources = Sources::read(src, &self.dedup, &self.engine);
            let repeated = self.bounds.repeated.take();
            let stats = self.engine.snapshot(at).1;
            self.bounds.quiet_until = stats.iter().map(|s| s.next_change).min().unwrap_or(u64::MAX);
            let health = health(&self.decode, &sources, &stats, at, span(self.first_ts, self.last_ts), repeated);
            (self.on_snapshot)(&self.engine.store, &health, at)?;
        }
        Ok(())
    }
}

/// What the reader side knows of the input at a snapshot.
struct Sources {
    read_errors: Vec<String>,
    duplicates: u64,
    live: Option<LiveStats>,
}

impl Sources {
    fn read<S: Source>(src: &mut S, dedup: &Option<Dedup>, engine: &Engine) -> Sources {
        Sources {
            read_errors: src.errors().to_vec(),
            duplicates: dedup.as_ref().map_or(0, |d| d.dropped),
            live: src.live_stats().map(|l| LiveStats { dropped_pipeline: engine.dropped, ..l }),
        }
    }
}

fn health(
    decode: &DecodeStats,
    src: &Sources,
    stats: &[ShardStats],
    at: u64,
    span: Option<(u64, u64)>,
    repeated: Option<Repeated>,
) -> Health {
    Health {
        snapshot_ns: at,
        repeated,
        frame_span: span,
        decode: *decode,
        duplicates: src.duplicates,
        live: src.live,
        flows_tracked: stats.iter().map(|s| s.flows).sum(),
        flows_evicted: stats.iter().map(|s| s.evicted).sum(),
        flows_idle_expired: stats.iter().map(|s| s.idle_expired).sum(),
        one_sided_connections: stats.iter().map(|s| s.one_sided).sum(),
        host_entries_dropped: stats.iter().map(|s| s.counters_dropped).sum(),
        hosts_omitted: None,
        read_errors: src.read_errors.clone(),
        table_bytes: stats.iter().map(|s| s.heap_bytes).sum(),
        reader_cpu: crate::report::thread_cpu_seconds(),
        worker_cpu: stats.iter().map(|s| s.cpu_seconds).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every call of `due` up to `t`: the views shown, and the fold pending before each.
    fn shown(b: &mut Boundaries, t: u64, latest: bool, quiet_after_view: u64) -> Vec<(u64, Option<Repeated>)> {
        let mut out = Vec::new();
        while let Some(at) = b.due(t, latest) {
            out.push((at, b.repeated.take()));
            b.quiet_until = quiet_after_view;
        }
        out
    }

    #[test]
    fn the_first_time_starts_the_boundaries_and_without_interval_there_are_none() {
        let mut b = Boundaries::new(10);
        assert_eq!(b.due(1234, false), None);
        assert_eq!(b.next, 1240);
        let mut none = Boundaries::new(0);
        assert_eq!((none.due(5, false), none.due(u64::MAX, true)), (None, None));
    }

    #[test]
    fn a_frame_makes_the_next_boundary_a_view_and_quiet_ones_fold() {
        let fold = |views, from, to| Some(Repeated { views, from, to });
        let mut b = Boundaries::new(10);
        b.due(1000, false);
        // A frame was read (quiet_until 0), so 1010 is shown; the workers then
        // report a timer due at 1057, and after the view at 1060 nothing.
        let mut next_change = [1057, u64::MAX].into_iter();
        let mut got = Vec::new();
        while let Some(at) = b.due(1095, false) {
            got.push((at, b.repeated.take()));
            b.quiet_until = next_change.next().unwrap();
        }
        assert_eq!(got, [(1010, None), (1060, fold(4, 1020, 1050))]);
        // The rest up to 1095 is folded, waiting for the next view.
        assert_eq!(b.repeated.take(), fold(3, 1070, 1090));
        assert_eq!(b.next, 1100);
    }

    #[test]
    fn a_tick_shows_the_latest_boundary_even_when_quiet() {
        let fold = |views, from, to| Some(Repeated { views, from, to });
        let mut b = Boundaries::new(10);
        b.due(1000, true);
        b.quiet_until = u64::MAX;
        assert_eq!(shown(&mut b, 1005, true, u64::MAX), []);
        assert_eq!(shown(&mut b, 1010, true, u64::MAX), [(1010, None)]);
        assert_eq!(shown(&mut b, 1047, true, u64::MAX), [(1040, fold(2, 1020, 1030))]);
        // A change due at 1045 (between boundaries): 1050 shows it, the rest fold, the latest shows.
        b.quiet_until = 1045;
        assert_eq!(shown(&mut b, 1099, true, u64::MAX), [(1050, None), (1090, fold(3, 1060, 1080))]);
    }

    #[test]
    fn a_gap_of_days_at_a_microsecond_interval_folds_in_one_step() {
        let mut b = Boundaries::new(1_000);
        b.due(5_000_000_000, false);
        b.quiet_until = u64::MAX;
        let t = 5_000_000_000 + 3 * 86_400_000_000_000;
        assert_eq!(b.due(t, false), None);
        let r = b.repeated.unwrap();
        assert_eq!((r.views, r.from, r.to), (3 * 86_400_000_000, 5_000_001_000, t));
    }

    #[test]
    fn boundaries_end_at_the_end_of_time() {
        let mut b = Boundaries::new(1 << 62);
        b.due(3 << 62, false);
        assert_eq!(b.next, u64::MAX);
        assert_eq!(b.due(u64::MAX, false), None);
    }
}

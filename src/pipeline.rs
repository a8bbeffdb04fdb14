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
use crate::decode::{self, DecodeStats, Kind, Packet};
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

/// Summaries per batch: large enough to amortise a channel operation, small
/// enough to stay in cache.
pub const BATCH: usize = 512;
/// Batches in flight per worker before the reader waits.
const DEPTH: usize = 8;
/// The same for a live capture, where a full channel drops a batch instead of
/// waiting: deep enough (64k summaries a worker) to ride out a worker that the
/// scheduler leaves off the CPU for a while on a busy machine.
const LIVE_DEPTH: usize = 128;
/// A packet more than this far ahead of the capture's clock has a corrupt timestamp.
const MAX_JUMP: u64 = 86_400 * 1_000_000_000;
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
                                shard.advance(at);
                                shard.publish(&store);
                                let _ = ack_tx.send(shard.stats());
                            }
                            Msg::Snapshot(at, true) => {
                                shard.advance(at);
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

    /// Hands one packet to its shard.
    #[inline]
    pub fn push(&mut self, s: &Packet) {
        if s.ts > self.watermark {
            self.watermark = s.ts;
        }
        let n = self.senders.len();
        let i = if n == 1 {
            0
        } else {
            // Only TCP and UDP have ports; other packets go by their addresses.
            let (sp, dp) =
                if matches!(s.kind, Kind::Tcp | Kind::IcmpError | Kind::Udp) { (s.sport, s.dport) } else { (0, 0) };
            // Multiply-shift maps the hash onto 0..n without a division.
            ((shard_hash(&s.src, &s.dst, sp, dp) as u128 * n as u128) >> 64) as usize
        };
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
    if r.files.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
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
pub fn run<S: Source>(
    mut src: S,
    r: &Reading,
    cfg: &Config,
    mut on_snapshot: impl FnMut(&Store, &Health, u64) -> Result<(), Error>,
) -> Result<Health, Error> {
    let mut engine = if src.is_live() { Engine::live(cfg) } else { Engine::new(cfg) };
    let mut dedup = cfg.dedup.then(|| Dedup::new(dedup::DEFAULT_WINDOW_NS));
    let mut decode = DecodeStats::default();
    let mut next_tick = 0u64;
    let mut last_ts = 0u64;
    let mut frame_no = 0u64;
    // The earliest frame time (the latest is `last_ts`): frames may be out of order.
    let mut first_ts = u64::MAX;
    let last_frame = r.count.unwrap_or(u64::MAX);
    let span = |first: u64, last: u64| (first != u64::MAX).then_some((first, last));

    let mut s = Packet::default();
    let mut progress = Progress::with(r.progress);
    let interval = r.interval;
    loop {
        let got = src.next(|f| {
            frame_no += 1;
            decode.frames += 1;
            decode.bytes += f.orig_len as u64;
            s.ts = f.ts;
            s.frame = frame_no;
            s.frame_len = f.orig_len;
            let r = decode::decode(f.linktype, f.data, &mut s);
            // Decode counts describe the input as read, copies included.
            decode.count(r);
            if let Some(d) = &mut dedup
                && d.is_copy(frame_no, f.data, f.orig_len, &s, r)
            {
                return None;
            }
            Some(r)
        });
        let decoded = match got {
            Next::Frame(Some(r)) => r,
            // A SPAN session's second copy of a frame.
            Next::Frame(None) => continue,
            Next::Tick(now) => {
                // A quiet link: the clock moves on without packets.
                if now > last_ts {
                    if interval > 0 {
                        if next_tick == 0 {
                            next_tick = now - now % interval + interval;
                        }
                        if now >= next_tick {
                            let (at, sources) = (next_tick, Sources::read(&mut src, &dedup, &engine));
                            let health = health(&decode, &sources, &engine.snapshot(at).1, at, span(first_ts, last_ts));
                            on_snapshot(&engine.store, &health, at)?;
                            // As for packets: a stall longer than an interval is not replayed view by view.
                            next_tick = now - now % interval + interval;
                        }
                    }
                    last_ts = now;
                    engine.tick(now);
                }
                continue;
            }
            Next::End => break,
        };
        progress.tick(decode.frames, || src.progress(), || engine.flows());
        // One corrupt timestamp far ahead would fire every timer at once and end
        // the capture's clock there: such a frame is taken at the current time.
        if last_ts > 0 && s.ts > last_ts.saturating_add(MAX_JUMP) {
            decode.bad_timestamps += 1;
            s.ts = last_ts;
        }
        if interval > 0 {
            if next_tick == 0 {
                next_tick = s.ts - s.ts % interval + interval;
            }
            if s.ts >= next_tick {
                let sources = Sources::read(&mut src, &dedup, &engine);
                let health =
                    health(&decode, &sources, &engine.snapshot(next_tick).1, next_tick, span(first_ts, last_ts));
                on_snapshot(&engine.store, &health, next_tick)?;
                // Intervals with no packets at all would repeat the same view:
                // after a gap in the capture, carry on from the interval this packet opens.
                next_tick = s.ts - s.ts % interval + interval;
            }
        }
        last_ts = last_ts.max(s.ts);
        first_ts = first_ts.min(s.ts);
        match decoded {
            Ok(Kind::Tcp | Kind::IcmpError) => engine.push(&s),
            Ok(_) if cfg.all_packets => engine.push(&s),
            _ => {}
        }
        if frame_no >= last_frame {
            break;
        }
    }
    progress.finish();
    let sources = Sources::read(&mut src, &dedup, &engine);
    let (store, stats) = engine.finish(last_ts);
    let h = health(&decode, &sources, &stats, last_ts, span(first_ts, last_ts));
    on_snapshot(&store, &h, last_ts)?;
    Ok(h)
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

fn health(decode: &DecodeStats, src: &Sources, stats: &[ShardStats], at: u64, span: Option<(u64, u64)>) -> Health {
    Health {
        snapshot_ns: at,
        frame_span: span,
        decode: *decode,
        duplicates: src.duplicates,
        live: src.live,
        flows_tracked: stats.iter().map(|s| s.flows).sum(),
        flows_evicted: stats.iter().map(|s| s.evicted).sum(),
        flows_idle_expired: stats.iter().map(|s| s.idle_expired).sum(),
        host_entries_dropped: stats.iter().map(|s| s.counters_dropped).sum(),
        hosts_omitted: None,
        read_errors: src.read_errors.clone(),
        table_bytes: stats.iter().map(|s| s.heap_bytes).sum(),
        reader_cpu: crate::report::thread_cpu_seconds(),
        worker_cpu: stats.iter().map(|s| s.cpu_seconds).collect(),
    }
}

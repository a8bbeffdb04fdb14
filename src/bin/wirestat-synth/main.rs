//! `wirestat-synth`: deterministic synthetic TCP capture generator.
//!
//! Writes a classic pcap file of TCP traffic between many clients and one
//! observed server host (10.0.0.1 / fd00::1), plus a JSON ground truth of
//! what `netstat` on that server would report at the capture's last packet
//! (Linux semantics). Same arguments + same seed => byte-identical output.
//!
//! The checked-in fixture was made with:
//!
//! ```text
//! wirestat-synth --out fixtures/synth-small.pcap --truth fixtures/synth-small.truth.json \
//!     --packets 15000 --concurrency 200 --seed 7 --snaplen 128 --retrans 0.02 \
//!     --data-segs-max 4 --duration-hint 120
//! ```

mod frame;
mod model;
mod rng;
mod truth;

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use frame::PcapWriter;
use model::{Config, DEFAULT_MIX, Flow, Gen, Next, OUTCOMES, Rounds};

/// Capture start: 1_700_000_000.000000 s, in ns.
const START_NS: u64 = 1_700_000_000 * 1_000_000_000;

#[derive(Parser, Debug)]
#[command(
    name = "wirestat-synth",
    about = "Generate a deterministic synthetic TCP pcap plus its netstat ground truth",
    long_about = None
)]
struct Args {
    /// Output pcap file (classic pcap, µs timestamps, Ethernet).
    #[arg(long)]
    out: PathBuf,
    /// Output ground-truth JSON file.
    #[arg(long)]
    truth: PathBuf,
    /// Number of flows (default 1000 unless --packets is given).
    #[arg(long)]
    flows: Option<u64>,
    /// Stop after exactly this many packets (flows in progress are cut).
    #[arg(long)]
    packets: Option<u64>,
    /// Maximum number of flows in progress at once.
    #[arg(long, default_value_t = 100)]
    concurrency: u64,
    /// PRNG seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraction of flows over IPv6.
    #[arg(long, default_value_t = 0.3)]
    v6_ratio: f64,
    /// Capture length limit per frame; 0 = whole frames.
    #[arg(long, default_value_t = 0)]
    snaplen: u32,
    /// Probability that a data segment (or FIN) is retransmitted.
    #[arg(long, default_value_t = 0.01)]
    retrans: f64,
    /// Maximum TCP payload per data segment.
    #[arg(long, default_value_t = 1400)]
    payload_max: u64,
    /// Maximum request/response rounds per flow (ignored when both
    /// --packets and --flows are given).
    #[arg(long, default_value_t = 8)]
    data_segs_max: u32,
    /// Outcome weights, e.g. open=0.1,client_close=0.4 (unlisted outcomes
    /// get weight 0; weights are normalised).
    #[arg(long)]
    mix: Option<String>,
    /// Target capture duration in seconds (sets the mean packet gap).
    #[arg(long)]
    duration_hint: Option<f64>,
    /// Longest time between two packets of one flow, in seconds, unless the
    /// flow's script waits longer (Linux drops a SYN_RCVD request after 63 s
    /// and an orphaned FIN_WAIT_2 after 60 s, which the truth does not model).
    #[arg(long, default_value_t = 20.0)]
    max_flow_gap: f64,
    /// Spread the flows over this many client addresses (default: 250 hosts per
    /// block of 15 million flows, so about 500 hosts in all).
    #[arg(long)]
    clients: Option<u64>,
    /// Add this many spoofed SYNs to 10.0.0.1:80, each from a source address of
    /// its own in 10.128.0.0/9, interleaved by time with the other traffic
    /// (not counted in --packets); the server's answers are not captured.
    #[arg(long, default_value_t = 0)]
    flood: u64,
    /// Spoofed SYNs per second of capture time for --flood.
    #[arg(long, default_value_t = 100_000.0)]
    flood_rate: f64,
    /// Fraction of the --flood SYNs sent over IPv6, to fd00::1:80 from
    /// fd00:8000::/33, one address each.
    #[arg(long, default_value_t = 0.0)]
    flood_v6_ratio: f64,
}

fn parse_mix(s: &str) -> Result<[f64; 8], String> {
    let mut w = [0.0; 8];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("--mix: expected name=weight, got {part:?}"))?;
        let i = OUTCOMES
            .iter()
            .position(|o| o.name() == k.trim())
            .ok_or_else(|| format!("--mix: unknown outcome {k:?}"))?;
        let v: f64 = v.trim().parse().map_err(|_| format!("--mix: bad weight {v:?}"))?;
        if !(v.is_finite() && v >= 0.0) {
            return Err(format!("--mix: bad weight {v}"));
        }
        w[i] = v;
    }
    Ok(w)
}

/// A flow sleeping until `at` (ns); ordered so that `BinaryHeap` pops the
/// earliest (ties by flow id, for determinism).
struct Waiting {
    at: u64,
    id: u64,
    slot: u32,
    parked: bool,
}

impl Waiting {
    fn key(&self) -> (u64, u64) {
        (self.at, self.id)
    }
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// `Slot::pos` of a flow that is not in the ready list.
const NOT_READY: u32 = u32::MAX;

/// A flow in memory plus its scheduling state.
struct Slot {
    flow: Flow,
    /// Latest time (ns) for the flow's next packet: its last packet + the
    /// maximum flow gap (`u64::MAX` before its first packet).
    due: u64,
    /// Stamp of the flow's live entry in the due queue (0 = none).
    stamp: u64,
    /// Index in the ready list, or `NOT_READY`.
    pos: u32,
}

/// "Must send by" entry. Every deadline is the time of a packet plus the
/// same maximum gap, and packet times never decrease, so pushing entries at
/// the back keeps the queue sorted: a FIFO is a min-heap here. An entry is
/// stale once its flow has sent again (or ended), i.e. when `stamp` no longer
/// matches the slot's.
struct Due {
    at: u64,
    stamp: u64,
    slot: u32,
}

/// Flows in memory: a slab of slots, the ready list (runnable flows, picked
/// at random), the sleepers and the deadline queue.
struct Sched {
    slots: Vec<Slot>,
    free: Vec<u32>,
    ready: Vec<u32>,
    sleeping: BinaryHeap<Waiting>,
    due: VecDeque<Due>,
    next_stamp: u64,
    max_gap: u64,
}

impl Sched {
    fn add_ready(&mut self, slot: u32) {
        self.slots[slot as usize].pos = self.ready.len() as u32;
        self.ready.push(slot);
    }

    fn remove_ready(&mut self, slot: u32) {
        let i = self.slots[slot as usize].pos as usize;
        self.slots[slot as usize].pos = NOT_READY;
        self.ready.swap_remove(i);
        if let Some(&moved) = self.ready.get(i) {
            self.slots[moved as usize].pos = i as u32;
        }
    }

    /// Stores a new flow and makes it runnable.
    fn insert(&mut self, flow: Flow) {
        let slot = Slot { flow, due: u64::MAX, stamp: 0, pos: NOT_READY };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                let i =
                    u32::try_from(self.slots.len()).ok().filter(|&i| i != NOT_READY).expect("too many flows in memory");
                self.slots.push(slot);
                i
            }
        };
        self.add_ready(i);
    }

    /// Queues a deadline for `slot`, replacing its previous one. `front` is
    /// for a deadline already reached (not in sorted order).
    fn push_due(&mut self, slot: u32, at: u64, front: bool) {
        self.next_stamp += 1;
        let s = &mut self.slots[slot as usize];
        s.due = at;
        s.stamp = self.next_stamp;
        let d = Due { at, stamp: self.next_stamp, slot };
        if front { self.due.push_front(d) } else { self.due.push_back(d) }
    }

    /// Earliest live deadline, dropping stale entries in front of it.
    fn next_due(&mut self) -> Option<u64> {
        while let Some(d) = self.due.front() {
            if self.slots[d.slot as usize].stamp == d.stamp {
                return Some(d.at);
            }
            self.due.pop_front();
        }
        None
    }

    /// Pops a ready flow whose deadline has come (`<= now`), earliest first.
    /// A deadline that comes while its flow sleeps on a script timer is
    /// dropped here and re-queued when the flow wakes.
    fn pop_overdue(&mut self, now: u64) -> Option<u32> {
        while self.next_due().is_some_and(|at| at <= now) {
            let d = self.due.pop_front().expect("peeked");
            let s = &mut self.slots[d.slot as usize];
            s.stamp = 0;
            if s.pos != NOT_READY {
                return Some(d.slot);
            }
        }
        None
    }
}

struct Plan {
    cfg: Config,
    flood: u64,
    flood_gap_ns: u64,
    flow_budget: u64,
    packet_budget: u64,
    concurrency: u64,
    max_gap_ns: u64,
}

fn plan(a: &Args) -> Result<Plan, String> {
    if a.concurrency == 0 {
        return Err("--concurrency must be >= 1".into());
    }
    if !(a.max_flow_gap.is_finite() && a.max_flow_gap >= 1e-6 && a.max_flow_gap <= 1e9) {
        return Err("--max-flow-gap must be in [0.000001, 1e9] seconds".into());
    }
    if a.clients.is_some_and(|n| n == 0 || n > model::MAX_CLIENTS) {
        return Err(format!("--clients must be in 1..={}", model::MAX_CLIENTS));
    }
    if !(0.0..=1.0).contains(&a.flood_v6_ratio) {
        return Err("--flood-v6-ratio must be in [0, 1]".into());
    }
    if !(a.flood_rate.is_finite() && a.flood_rate >= 1.0 && a.flood_rate <= 1e9) {
        return Err("--flood-rate must be in [1, 1e9] SYNs per second".into());
    }
    if !(0.0..=1.0).contains(&a.v6_ratio) {
        return Err("--v6-ratio must be in [0, 1]".into());
    }
    if !(0.0..1.0).contains(&a.retrans) {
        return Err("--retrans must be in [0, 1)".into());
    }
    if a.payload_max == 0 || a.payload_max > frame::MAX_PAYLOAD as u64 {
        return Err(format!("--payload-max must be in 1..={}", frame::MAX_PAYLOAD));
    }
    if a.data_segs_max == 0 || a.data_segs_max > 1_000_000 {
        return Err("--data-segs-max must be in 1..=1000000".into());
    }
    let raw = match &a.mix {
        Some(s) => parse_mix(s)?,
        None => DEFAULT_MIX,
    };
    let total: f64 = raw.iter().sum();
    if total <= 0.0 {
        return Err("--mix: all weights are zero".into());
    }
    let w = raw.map(|x| x / total);
    let mut mix_cum = [0.0; 8];
    let mut acc = 0.0;
    for (c, x) in mix_cum.iter_mut().zip(w) {
        acc += x;
        *c = acc;
    }
    mix_cum[7] = f64::INFINITY;

    let r = a.retrans;
    let (flow_budget, packet_budget, rounds) = match (a.flows, a.packets) {
        (Some(0), _) | (_, Some(0)) => return Err("--flows/--packets must be >= 1".into()),
        (Some(f), Some(p)) => {
            // Pick the mean number of rounds so that flows * E[packets/flow] ~ packets.
            let e0 = model::expected_packets(&w, 0.0, r);
            let slope = model::expected_packets(&w, 1.0, r) - e0;
            let mut m = if slope > 0.0 { (p as f64 / f as f64 - e0) / slope } else { 1.0 };
            if m < 1.0 {
                eprintln!(
                    "wirestat-synth: warning: {p} packets for {f} flows is below the minimum; using 1 round per flow"
                );
                m = 1.0;
            }
            (f, p, Rounds::Mean(m))
        }
        (f, p) => (
            f.unwrap_or(if p.is_some() { u64::MAX } else { 1000 }),
            p.unwrap_or(u64::MAX),
            Rounds::Uniform(a.data_segs_max),
        ),
    };
    let gap_ns = match a.duration_hint {
        Some(d) if !(d.is_finite() && d > 0.0) => return Err("--duration-hint must be > 0".into()),
        Some(d) => {
            let k = match rounds {
                Rounds::Uniform(max) => (1.0 + f64::from(max)) / 2.0,
                Rounds::Mean(m) => m,
            };
            let by_flows = flow_budget as f64 * model::expected_packets(&w, k, r);
            let expected = by_flows.min(packet_budget as f64).max(1.0);
            let mean = d * 1e9 / expected;
            let lo = (mean * 0.01) as u64;
            (lo, ((mean * 2.0) as u64).saturating_sub(lo).max(lo))
        }
        None => (1_000, 200_000),
    };
    Ok(Plan {
        cfg: Config {
            seed: a.seed,
            v6_ratio: a.v6_ratio,
            retrans: r,
            payload_max: a.payload_max,
            rounds,
            mix_cum,
            gap_ns,
            clients: a.clients,
            flood_v6_ratio: a.flood_v6_ratio,
        },
        flood: a.flood,
        flood_gap_ns: (1e9 / a.flood_rate) as u64,
        flow_budget,
        packet_budget,
        concurrency: a.concurrency,
        max_gap_ns: (a.max_flow_gap * 1e9) as u64,
    })
}

/// Runs the scheduler; returns the generator (with its truth) when done.
///
/// Each packet comes from a random runnable flow, except that a flow whose
/// last packet is `max_gap` old is served first (earliest deadline first),
/// and the clock never jumps past a pending deadline: no flow waits more
/// than `max_gap` between two packets unless its script says so (SYN
/// back-off, retransmission timers).
fn generate<W: Write>(p: Plan, w: PcapWriter<W>) -> io::Result<Gen<W>> {
    let mut g = Gen::new(p.cfg, w);
    let cap = p.concurrency.min(1 << 24) as usize;
    let mut sc = Sched {
        slots: Vec::with_capacity(cap),
        free: Vec::new(),
        ready: Vec::with_capacity(cap),
        sleeping: BinaryHeap::new(),
        due: VecDeque::new(),
        next_stamp: 0,
        max_gap: p.max_gap_ns,
    };
    let mut active = 0u64; // flows in memory that are not parked in SYN back-off
    let mut created = 0u64;
    let mut now = START_NS;
    // The next spoofed SYN of --flood: its number and time.
    let (mut flood_i, mut flood_at) = (0u64, START_NS);
    while g.w.packets - flood_i < p.packet_budget {
        while flood_i < p.flood && flood_at <= now {
            g.flood_syn(flood_i, flood_at)?;
            flood_i += 1;
            flood_at += p.flood_gap_ns;
        }
        while active < p.concurrency && created < p.flow_budget {
            sc.insert(g.new_flow());
            created += 1;
            active += 1;
        }
        while sc.sleeping.peek().is_some_and(|top| top.at <= now) {
            let Waiting { parked, slot, .. } = sc.sleeping.pop().expect("peeked");
            active += u64::from(parked);
            sc.add_ready(slot);
            let s = &sc.slots[slot as usize];
            if s.stamp == 0 && s.due != u64::MAX {
                // Its deadline came during the sleep (only when --max-flow-gap
                // is shorter than the script's timer): serve it next.
                sc.push_due(slot, s.due, true);
            }
        }
        let slot = match sc.pop_overdue(now) {
            Some(slot) => slot,
            None if sc.ready.is_empty() => match sc.sleeping.peek() {
                Some(top) => {
                    now = top.at;
                    continue;
                }
                None => break,
            },
            None => sc.ready[g.rng.below(sc.ready.len() as u64) as usize],
        };
        let s = &mut sc.slots[slot as usize];
        let next = g.step(&mut s.flow, now)?;
        let id = s.flow.id;
        match next {
            Next::Continue => sc.push_due(slot, now + sc.max_gap, false),
            Next::Wait(d) => {
                sc.push_due(slot, now + sc.max_gap, false);
                sc.remove_ready(slot);
                sc.sleeping.push(Waiting { at: now + d, id, slot, parked: false });
            }
            Next::Park(d) => {
                sc.push_due(slot, now + sc.max_gap, false);
                sc.remove_ready(slot);
                active -= 1;
                sc.sleeping.push(Waiting { at: now + d, id, slot, parked: true });
            }
            Next::Done => {
                sc.remove_ready(slot);
                active -= 1;
                let s = &mut sc.slots[slot as usize];
                s.stamp = 0;
                g.finalize(&s.flow);
                sc.free.push(slot);
            }
        }
        // Next packet time, but never past the earliest deadline.
        let t = now + g.gap();
        now = match sc.next_due() {
            Some(at) if at < t => at.max(now),
            _ => t,
        };
    }
    // The rest of the flood, after the other traffic.
    while flood_i < p.flood {
        g.flood_syn(flood_i, flood_at.max(now))?;
        flood_i += 1;
        flood_at += p.flood_gap_ns;
    }
    // End of capture: flows still in progress are cut where they are.
    for &slot in &sc.ready {
        g.finalize(&sc.slots[slot as usize].flow);
    }
    for wf in sc.sleeping.into_vec() {
        g.finalize(&sc.slots[wf.slot as usize].flow);
    }
    Ok(g)
}

fn run(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    let p = plan(args)?;
    let payload_max = p.cfg.payload_max as usize;
    let file = File::create(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let io_err = |e: io::Error| format!("{}: {e}", args.out.display());
    let w = PcapWriter::new(BufWriter::with_capacity(8 << 20, file), args.snaplen, payload_max).map_err(io_err)?;
    let g = generate(p, w).map_err(io_err)?;
    let meta = truth::Meta {
        seed: args.seed,
        args: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        snaplen: args.snaplen,
        file_bytes: g.w.file_bytes,
    };
    let text = truth::render_truth(&g, &meta);
    let (packets, flows, file_bytes) = (g.w.packets, g.truth.flows, g.w.file_bytes);
    let mut bw = g.w.into_inner();
    bw.flush().map_err(io_err)?;
    drop(bw);
    std::fs::write(&args.truth, text).map_err(|e| format!("{}: {e}", args.truth.display()))?;

    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wirestat-synth: {packets} packets, {flows} flows, {file_bytes} bytes in {secs:.2} s ({:.2} Mpkt/s) -> {}",
        packets as f64 / secs.max(1e-9) / 1e6,
        args.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wirestat-synth: error: {e}");
            ExitCode::FAILURE
        }
    }
}

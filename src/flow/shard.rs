//! A worker's share of the connections: its two private tables (IPv4, IPv6),
//! its timers, and the counters of connections it has already forgotten.
//! Nothing here is shared with other threads until `publish`.

use super::conn::{Conn, state_timeout};
use super::state::TcpState;
use super::table::{Flow, Table};
use super::timers::{Entry, TimerKind, Timers};
use crate::addr::{AddrMap, AddrSet, FlowKey, Key4, Key6, to_ip};
use crate::decode::{Kind, Summary, flag};
use crate::os::Profile;
use crate::report::{AddrView, Row, Store};
use crate::stats::TcpCounters;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

const V6_BIT: u32 = 1 << 31;
/// How late, in capture time, queued timers may run. A connection's own
/// packets bring it up to date first (`catch_up`), so lateness changes no
/// state a view or a later segment can see; it only lets the queues be
/// worked through in batches, their cache misses overlapped, instead of one
/// entry every few packets.
const TIMER_SLACK: u64 = 250_000_000;
/// Without `--host`, at most this many forgotten addresses keep counters per shard,
/// so a flood of spoofed sources cannot grow memory without bound.
const ACC_CAP: usize = 1 << 20;

/// Which addresses views will be asked about.
#[derive(Clone, Debug, Default)]
pub enum Interest {
    /// Every address (no `--host`).
    #[default]
    All,
    /// Only these addresses.
    Only(Arc<HashSet<IpAddr>>),
}

impl Interest {
    fn wants(&self, ip: &IpAddr) -> bool {
        match self {
            Interest::All => true,
            Interest::Only(s) => s.contains(ip),
        }
    }
}

/// State shared by both tables of a shard (split from them so a table and
/// the context can be borrowed at once).
struct Ctx {
    timers: Timers,
    profile: Profile,
    interest: Interest,
    /// Counters of connections no longer tracked, and of segments that belong to none.
    retired: AddrMap<TcpCounters>,
    listeners: AddrSet<(IpAddr, u16)>,
    max_flows: usize,
    evicted: u64,
    idle_expired: u64,
    counters_dropped: u64,
    next_idle_sweep: u64,
}

pub struct Shard {
    v4: Table<Key4>,
    v6: Table<Key6>,
    ctx: Ctx,
    now: u64,
    next_due: u64,
    /// Reused buffer of timer entries being handled.
    due: Vec<Entry>,
}

/// Figures a shard reports at a barrier.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ShardStats {
    pub flows: u64,
    pub evicted: u64,
    pub idle_expired: u64,
    pub heap_bytes: u64,
    /// Counter and listener entries of forgotten addresses not kept (the cap under no `--host`).
    pub counters_dropped: u64,
    /// CPU seconds the worker thread used so far (Linux; 0 elsewhere).
    pub cpu_seconds: f64,
}

impl Shard {
    pub fn new(profile: Profile, interest: Interest, max_flows: usize) -> Shard {
        Shard {
            v4: Table::default(),
            v6: Table::default(),
            ctx: Ctx {
                timers: Timers::default(),
                profile,
                interest,
                retired: AddrMap::default(),
                listeners: AddrSet::default(),
                max_flows: max_flows.max(16),
                evicted: 0,
                idle_expired: 0,
                counters_dropped: 0,
                next_idle_sweep: 0,
            },
            now: 0,
            next_due: u64::MAX,
            due: Vec::new(),
        }
    }

    /// The hot path: one summary into its connection.
    #[inline]
    pub fn process(&mut self, s: &Summary) {
        self.process_hashed(s, key_hash(s));
    }

    #[inline]
    fn process_hashed(&mut self, s: &Summary, hash: u64) {
        self.tick(s.ts);
        if self.now >= self.next_due && self.flows() >= self.ctx.max_flows {
            // On time when the table is full: what timers forget is never evicted.
            self.advance(self.now);
        }
        let now = self.now;
        match (s.v6, s.kind) {
            (false, Kind::Tcp) => on_tcp(&mut self.v4, &mut self.v6, &mut self.ctx, s, hash, now, 0),
            (true, Kind::Tcp) => on_tcp(&mut self.v6, &mut self.v4, &mut self.ctx, s, hash, now, V6_BIT),
            (false, Kind::IcmpError) => on_icmp(&mut self.v4, &mut self.ctx, s, hash, now, 0),
            (true, Kind::IcmpError) => on_icmp(&mut self.v6, &mut self.ctx, s, hash, now, V6_BIT),
        }
        if let Some(at) = self.ctx.timers.take_pushed() {
            self.next_due = self.next_due.min(at);
        }
    }

    /// Processes a batch in order, prefetching ahead: the index bucket of the
    /// packet `AHEAD` positions on, and the connection of the one half-way
    /// there, so the table's cache misses overlap instead of queueing up.
    /// Each key is hashed once, when it enters the window.
    pub fn process_batch(&mut self, batch: &[Summary]) {
        const AHEAD: usize = 16;
        const RING: usize = 2 * AHEAD;
        let mut hashes = [0u64; RING];
        for (j, s) in batch.iter().enumerate().take(AHEAD) {
            hashes[j] = key_hash(s);
            self.prefetch(s, hashes[j], false);
        }
        for i in 0..batch.len() {
            if let Some(s) = batch.get(i + AHEAD) {
                let h = key_hash(s);
                hashes[(i + AHEAD) % RING] = h;
                self.prefetch(s, h, false);
            }
            if let Some(s) = batch.get(i + AHEAD / 2) {
                self.prefetch(s, hashes[(i + AHEAD / 2) % RING], true);
            }
            self.process_hashed(&batch[i], hashes[i % RING]);
        }
    }

    #[inline]
    fn prefetch(&self, s: &Summary, hash: u64, flow: bool) {
        match (s.v6, flow) {
            (false, false) => self.v4.prefetch_bucket(hash),
            (false, true) => self.v4.prefetch_flow(hash),
            (true, false) => self.v6.prefetch_bucket(hash),
            (true, true) => self.v6.prefetch_flow(hash),
        }
    }

    /// Moves capture time to `now`, letting queued timers run up to
    /// `TIMER_SLACK` late (between packets, e.g. on a batch's watermark).
    pub fn tick(&mut self, now: u64) {
        if now >= self.next_due.saturating_add(TIMER_SLACK) {
            self.advance(now);
        } else if now > self.now {
            self.now = now;
        }
    }

    /// Moves capture time to `now`, firing every timer due by then (before
    /// a snapshot: views read every connection).
    pub fn advance(&mut self, now: u64) {
        if now > self.now {
            self.now = now;
        }
        let now = self.now;
        // Take every due entry first (handling one never queues another due
        // now), then work through them prefetching a few connections ahead.
        let mut due = std::mem::take(&mut self.due);
        while let Some(e) = self.ctx.timers.pop_due(now) {
            due.push(e);
        }
        const AHEAD: usize = 32;
        for i in 0..due.len() {
            if let Some(e) = due.get(i + AHEAD) {
                if e.slot & V6_BIT != 0 { prefetch_entry(&self.v6, e) } else { prefetch_entry(&self.v4, e) }
            }
            let e = due[i];
            if e.slot & V6_BIT != 0 {
                on_timer(&mut self.v6, &mut self.ctx, &e, V6_BIT, now);
            } else {
                on_timer(&mut self.v4, &mut self.ctx, &e, 0, now);
            }
        }
        due.clear();
        self.due = due;
        // Superseded entries (re-armed TIME_WAITs, forgotten connections) wait in
        // the queues until their deadline; when they outnumber the connections,
        // drop them so the queues stay bounded by the table, not the packet rate.
        if self.ctx.timers.len() > 2 * self.flows() + 4096 {
            let (v4, v6) = (&self.v4, &self.v6);
            self.ctx.timers.retain(|e| if e.slot & V6_BIT != 0 { stands(v6, e) } else { stands(v4, e) });
        }
        let idle = self.ctx.profile.idle_timeout;
        if idle > 0 && now >= self.ctx.next_idle_sweep {
            sweep_idle(&mut self.v4, &mut self.ctx, now, idle);
            sweep_idle(&mut self.v6, &mut self.ctx, now, idle);
            self.ctx.next_idle_sweep = now + (idle / 4).max(1);
        }
        self.ctx.timers.take_pushed();
        self.next_due = self.ctx.timers.next_due();
        if idle > 0 {
            self.next_due = self.next_due.min(self.ctx.next_idle_sweep);
        }
    }

    pub fn flows(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Entries waiting in the timer queues and listening sockets recorded (for
    /// tests and inspection of how much bookkeeping the shard keeps).
    pub fn bookkeeping(&self) -> (usize, usize) {
        (self.ctx.timers.len(), self.ctx.listeners.len())
    }

    pub fn stats(&self) -> ShardStats {
        ShardStats {
            flows: self.flows() as u64,
            evicted: self.ctx.evicted,
            idle_expired: self.ctx.idle_expired,
            heap_bytes: (self.v4.heap_bytes() + self.v6.heap_bytes() + self.ctx.timers.capacity_bytes()) as u64,
            counters_dropped: self.ctx.counters_dropped,
            cpu_seconds: crate::report::thread_cpu_seconds(),
        }
    }

    /// Publishes this shard's part of every wanted address's view into `store`.
    pub fn publish(&self, store: &Store) {
        let mut local: AddrMap<AddrView> = AddrMap::default();
        let idle = Idle { now: self.now, limit: self.ctx.profile.idle_timeout };
        for (_, f) in self.v4.iter() {
            collect(f, &self.ctx.interest, idle, &mut local);
        }
        for (_, f) in self.v6.iter() {
            collect(f, &self.ctx.interest, idle, &mut local);
        }
        publish_rest(&self.ctx, local, store);
    }

    /// The last publish: the tables are consumed as their rows are gathered,
    /// so the rows never sit in memory beside the whole table.
    pub fn publish_final(self, store: &Store) {
        let mut local: AddrMap<AddrView> = AddrMap::default();
        let idle = Idle { now: self.now, limit: self.ctx.profile.idle_timeout };
        let Shard { v4, v6, mut ctx, .. } = self;
        ctx.timers = Timers::default();
        v4.consume(|f| collect(f, &ctx.interest, idle, &mut local));
        v6.consume(|f| collect(f, &ctx.interest, idle, &mut local));
        publish_rest(&ctx, local, store);
    }

    /// Looks up the connection of a 4-tuple (for tests and inspection).
    pub fn conn(&self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Option<(Conn, usize)> {
        let (s, v6) = crate::addr::from_ip(src);
        let (d, _) = crate::addr::from_ip(dst);
        if v6 {
            let (k, dir) = Key6::canonical(&s, &d, sport, dport);
            self.v6.find(&k, k.hash64()).and_then(|i| self.v6.get(i)).map(|f| (f.conn, dir))
        } else {
            let (k, dir) = Key4::canonical(&s, &d, sport, dport);
            self.v4.find(&k, k.hash64()).and_then(|i| self.v4.get(i)).map(|f| (f.conn, dir))
        }
    }
}

/// The table hash of the connection a summary belongs to.
#[inline]
fn key_hash(s: &Summary) -> u64 {
    if s.v6 {
        Key6::canonical(&s.src, &s.dst, s.sport, s.dport).0.hash64()
    } else {
        Key4::canonical(&s.src, &s.dst, s.sport, s.dport).0.hash64()
    }
}

/// Adds the counters of forgotten connections and the listeners, then merges
/// this shard's part of every address's view into the shared store.
fn publish_rest(ctx: &Ctx, mut local: AddrMap<AddrView>, store: &Store) {
    for (ip, c) in &ctx.retired {
        local.entry(*ip).or_default().tcp.add(c);
    }
    for (ip, port) in &ctx.listeners {
        if ctx.interest.wants(ip) {
            local.entry(*ip).or_default().listen_ports.push(*port);
        }
    }
    for (ip, v) in local {
        store.entry(ip).or_default().merge(v);
    }
}

/// `--idle-timeout` as of a snapshot.
#[derive(Clone, Copy)]
struct Idle {
    now: u64,
    limit: u64,
}

impl Idle {
    /// Whether `--idle-timeout` has forgotten the connection by now (the sweep
    /// that removes it may not have run yet).
    fn expired<K: FlowKey>(&self, f: &Flow<K>) -> bool {
        self.limit > 0 && self.now >= f.last_ts.saturating_add(self.limit)
    }
}

fn collect<K: FlowKey>(f: &Flow<K>, interest: &Interest, idle: Idle, out: &mut AddrMap<AddrView>) {
    let live = !idle.expired(f);
    for side in 0..2 {
        let ip = f.key.ip(side);
        if !interest.wants(&ip) {
            continue;
        }
        let v = out.entry(ip).or_default();
        v.tcp.add(&TcpCounters::of_endpoint(&f.conn, side, live));
        let st = f.conn.ep[side].state;
        if live && st.has_row() {
            v.rows.push(Row {
                local_port: f.key.port(side),
                foreign: f.key.ip(1 - side),
                foreign_port: f.key.port(1 - side),
                state: st,
                midstream: f.conn.midstream(),
                send_q: f.conn.ep[side].send_q(),
            });
        }
    }
}

#[inline]
fn on_tcp<K: FlowKey, O: FlowKey>(
    t: &mut Table<K>,
    other: &mut Table<O>,
    ctx: &mut Ctx,
    s: &Summary,
    hash: u64,
    now: u64,
    bit: u32,
) {
    let (key, d) = K::canonical(&s.src, &s.dst, s.sport, s.dport);
    let found = t.find(&key, hash).and_then(|slot| Some((slot, ctx.catch_up(t, slot, now)?)));
    let (slot, before) = match found {
        Some((slot, before)) => (slot, Some(before)),
        None => {
            if s.has(flag::RST) {
                // A reset for no connection we know: it still crossed both stacks.
                ctx.retire_segment(to_ip(&s.src, s.v6), to_ip(&s.dst, s.v6));
                return;
            }
            if t.len() + other.len() >= ctx.max_flows {
                ctx.evict(t, other);
            }
            (t.insert(key, hash, now, Conn::first(s)), None)
        }
    };
    let Some(flow) = t.get_mut(slot) else { return };
    let mut restarted = false;
    if flow.conn.is_new_incarnation(d, s) {
        ctx.retire_counts(flow);
        flow.conn = Conn::first(s);
        flow.linger_armed = false;
        restarted = true;
    }
    let before = before.unwrap_or_else(|| timed(&flow.conn));
    let out = flow.conn.segment(d, s, now);
    flow.last_ts = now;
    if out.listener {
        ctx.listener(flow.key.ip(d), flow.key.port(d));
    }
    if flow.conn.ep[d].segments >= 1 << 31 {
        // Long before a u32 count wraps, hand the counts to the host totals.
        ctx.retire_counts(flow);
        flow.conn.clear_counts();
    }
    ctx.arm(t, slot, bit, before, restarted, now);
}

fn on_icmp<K: FlowKey>(t: &mut Table<K>, ctx: &mut Ctx, s: &Summary, hash: u64, now: u64, bit: u32) {
    let (key, d) = K::canonical(&s.src, &s.dst, s.sport, s.dport);
    let Some(slot) = t.find(&key, hash) else { return };
    let Some(before) = ctx.catch_up(t, slot, now) else { return };
    let Some(flow) = t.get_mut(slot) else { return };
    flow.conn.icmp_error(d, s, now, &ctx.profile);
    ctx.arm(t, slot, bit, before, false, now);
}

fn on_timer<K: FlowKey>(t: &mut Table<K>, ctx: &mut Ctx, e: &Entry, bit: u32, now: u64) {
    if !stands(t, e) {
        return;
    }
    let slot = e.slot & !V6_BIT;
    if e.kind == TimerKind::Linger
        && let Some(flow) = t.get_mut(slot)
    {
        // This was the connection's queued linger entry: arm() queues another if needed.
        flow.linger_armed = false;
    }
    let Some(before) = ctx.catch_up(t, slot, now) else { return };
    ctx.arm(t, slot, bit, before, false, now);
}

/// The timed states of a connection's two sides, with their start times.
fn timed(c: &Conn) -> [(TcpState, u64); 2] {
    [(c.ep[0].state, c.ep[0].state_ts), (c.ep[1].state, c.ep[1].state_ts)]
}

/// The state timer side `e` of a connection needs, if its state is timed.
fn state_timer(e: &crate::flow::Endpoint, p: &Profile) -> Option<(TimerKind, u64)> {
    let limit = state_timeout(e.state, p)?;
    let kind = match e.state {
        TcpState::TimeWait => TimerKind::TimeWait,
        TcpState::SynSent => TimerKind::SynSent,
        TcpState::SynRcvd => TimerKind::SynRcvd,
        _ => TimerKind::FinWait2,
    };
    Some((kind, e.state_ts.saturating_add(limit)))
}

/// Whether a queued timer entry still stands for a connection of `t`: a state
/// timer whose side's epoch moved on was superseded, and a linger entry stands
/// while its connection waits for one.
fn stands<K: FlowKey>(t: &Table<K>, e: &Entry) -> bool {
    let slot = e.slot & !V6_BIT;
    if e.kind == TimerKind::Linger {
        t.get(slot).is_some_and(|f| f.linger_armed)
    } else {
        t.epoch(slot, e.side as usize) == e.epoch
    }
}

/// Starts loading what `stands` will read for `e`.
fn prefetch_entry<K: FlowKey>(t: &Table<K>, e: &Entry) {
    let slot = e.slot & !V6_BIT;
    if e.kind == TimerKind::Linger { t.prefetch_slot(slot) } else { t.prefetch_epoch(slot) }
}

fn sweep_idle<K: FlowKey>(t: &mut Table<K>, ctx: &mut Ctx, now: u64, idle: u64) {
    let idle = Idle { now, limit: idle };
    let stale: Vec<u32> = t.iter().filter(|(_, f)| idle.expired(f)).map(|(i, _)| i).collect();
    for slot in stale {
        if let Some(f) = t.get(slot) {
            let f = *f;
            ctx.retire_counts(&f);
            t.remove(slot);
            ctx.idle_expired += 1;
        }
    }
}

impl Ctx {
    /// Brings the connection in `slot` up to `now`, as if its queued timers had
    /// run on time (they may run up to `TIMER_SLACK` late): expires timed
    /// states past their deadline, and forgets the connection if it has no
    /// rows and has been quiet for the linger time, or quiet for
    /// `--idle-timeout`. Returns its timed states as they were before, for
    /// `arm`, or `None` if it is gone (a segment then starts a new one).
    fn catch_up<K: FlowKey>(&mut self, t: &mut Table<K>, slot: u32, now: u64) -> Option<[(TcpState, u64); 2]> {
        let flow = t.get_mut(slot)?;
        let before = timed(&flow.conn);
        flow.conn.expire(0, now, &self.profile);
        flow.conn.expire(1, now, &self.profile);
        let idle = Idle { now, limit: self.profile.idle_timeout }.expired(flow);
        if idle || (now >= flow.last_ts.saturating_add(self.profile.linger) && !flow.conn.has_rows()) {
            self.idle_expired += idle as u64;
            self.retire_counts(flow);
            t.remove(slot);
            return None;
        }
        Some(before)
    }

    /// Queues the timers a segment (or timer) made due. Each side of a
    /// connection has at most one live state-timer entry: whenever the side
    /// enters, leaves or re-arms a timed state its epoch moves on (dropping
    /// the old entry) and an entry for the new deadline is queued. Deadlines
    /// are "now + the state's fixed length", so each kind's queue stays in
    /// order. A connection with no rows left gets a linger entry.
    fn arm<K: FlowKey>(
        &mut self,
        t: &mut Table<K>,
        slot: u32,
        bit: u32,
        before: [(TcpState, u64); 2],
        restarted: bool,
        now: u64,
    ) {
        let Some(flow) = t.get_mut(slot) else { return };
        let after = timed(&flow.conn);
        let changed = [0, 1].map(|side| restarted || after[side] != before[side]);
        let next =
            [0, 1].map(|side| if changed[side] { state_timer(&flow.conn.ep[side], &self.profile) } else { None });
        if !flow.linger_armed && !flow.conn.has_rows() {
            flow.linger_armed = true;
            // Forgotten once quiet for the linger time, as `catch_up` decides too.
            let at = flow.last_ts.saturating_add(self.profile.linger).max(now);
            self.timers.push(Entry { at, slot: slot | bit, epoch: 0, side: 0, kind: TimerKind::Linger });
        }
        for side in 0..2 {
            if !changed[side] {
                continue;
            }
            // Only a side that was in a timed state can have an entry to drop.
            let had_timer = state_timeout(before[side].0, &self.profile).is_some();
            let epoch = if had_timer || restarted { t.bump(slot, side) } else { t.epoch(slot, side) };
            if let Some((kind, at)) = next[side] {
                self.timers.push(Entry { at, slot: slot | bit, epoch, side: side as u8, kind });
            }
        }
    }

    fn wants_counters(&mut self, ip: &IpAddr) -> bool {
        if !self.interest.wants(ip) {
            return false;
        }
        if matches!(self.interest, Interest::All) && self.retired.len() >= ACC_CAP && !self.retired.contains_key(ip) {
            self.counters_dropped += 1;
            return false;
        }
        true
    }

    /// Folds a connection's counters into its hosts' totals before it is forgotten.
    fn retire_counts<K: FlowKey>(&mut self, flow: &Flow<K>) {
        for side in 0..2 {
            let ip = flow.key.ip(side);
            if self.wants_counters(&ip) {
                let c = TcpCounters::of_endpoint(&flow.conn, side, false);
                self.retired.entry(ip).or_default().add(&c);
            }
        }
    }

    fn retire_segment(&mut self, src: IpAddr, dst: IpAddr) {
        if self.wants_counters(&src) {
            self.retired.entry(src).or_default().segments_sent += 1;
        }
        if self.wants_counters(&dst) {
            self.retired.entry(dst).or_default().segments_received += 1;
        }
    }

    /// Makes room under `--max-flows`: connections with no row first, then
    /// half-open ones, then the longest idle, ranked over both tables
    /// together; each eviction is counted.
    fn evict<A: FlowKey, B: FlowKey>(&mut self, a: &mut Table<A>, b: &mut Table<B>) {
        fn rank<K: FlowKey>(f: &Flow<K>) -> u8 {
            if !f.conn.has_rows() {
                0
            } else if f.conn.ep.iter().any(|e| matches!(e.state, TcpState::SynSent | TcpState::SynRcvd))
                && !f.conn.ep.iter().any(|e| e.state.is_current())
            {
                1
            } else {
                2
            }
        }
        let target = (self.max_flows / 16).max(1);
        let mut victims: Vec<(u8, u64, bool, u32)> = a
            .iter()
            .map(|(i, f)| (rank(f), f.last_ts, false, i))
            .chain(b.iter().map(|(i, f)| (rank(f), f.last_ts, true, i)))
            .collect();
        if victims.len() > target {
            victims.select_nth_unstable(target);
            victims.truncate(target);
        }
        for (_, _, in_b, slot) in victims {
            if in_b {
                self.evict_one(b, slot);
            } else {
                self.evict_one(a, slot);
            }
        }
    }

    fn evict_one<K: FlowKey>(&mut self, t: &mut Table<K>, slot: u32) {
        if let Some(f) = t.get(slot) {
            let f = *f;
            self.retire_counts(&f);
            t.remove(slot);
            self.evicted += 1;
        }
    }

    /// Records a listening socket, within the same bounds as the retired counters.
    fn listener(&mut self, ip: IpAddr, port: u16) {
        if !self.interest.wants(&ip) {
            return;
        }
        if matches!(self.interest, Interest::All) && self.listeners.len() >= ACC_CAP {
            self.counters_dropped += 1;
            return;
        }
        self.listeners.insert((ip, port));
    }
}

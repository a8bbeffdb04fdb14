//! A worker's share of the connections: its tables, its timers, and the
//! analyzers fed by what each packet did. Nothing here is shared with other
//! threads until a snapshot publishes it. Timers live in `expiry`, eviction
//! in `evict`, the IPv4/IPv6 split in `tables`.

use super::conn::Conn;
use super::expiry::{Idle, next_change, on_timer, stands, sweep_idle};
use super::table::{Flow, Table};
use super::tables::{Tables, V6_BIT, Visit, is_v6, key_hash, slot, with_table};
use super::timers::{Entry, TimerKind, Timers};
use crate::addr::{AddrMap, AddrSet, FlowKey, to_ip};
use crate::analysis::netstat::{MibFlow, Netstat};
use crate::analysis::top::Score;
use crate::analysis::{Extras, Interest, Retire};
use crate::decode::{Kind, Packet, flag};
use crate::flow::events::{Event, SegEvents};
use crate::os::Profile;
use crate::report::{AddrView, Store};
use std::net::IpAddr;
use std::sync::Arc;

/// How late, in capture time, queued timers may run. A connection's own
/// packets bring it up to date first (`catch_up`), so lateness changes no
/// state a view or a later segment can see; it only lets the queues be
/// worked through in batches, their cache misses overlapped, instead of one
/// entry every few packets.
const TIMER_SLACK: u64 = 250_000_000;

/// Most connections one shard can track: table slots are 31 bits (the top bit
/// of a flow id tags the IPv6 table).
pub const MAX_FLOWS: usize = (V6_BIT - 1) as usize;

/// What the per-connection handlers share (apart from the tables, so a table
/// and the context can be borrowed at once).
pub(super) struct Ctx {
    pub(super) timers: Timers,
    pub(super) profile: Profile,
    pub(super) netstat: Netstat,
    pub(super) extras: Extras,
    pub(super) max_flows: usize,
    pub(super) evicted: u64,
    pub(super) idle_expired: u64,
    /// Connections seen one-sided: those that are now, and those that were when forgotten.
    pub(super) one_sided: u64,
    pub(super) next_idle_sweep: u64,
    /// Where eviction's rotating hand stands, over both tables' slots.
    pub(super) hand: usize,
}

pub struct Shard {
    tables: Tables,
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
    /// Connections seen from one side only (see [`Conn::one_sided`]).
    pub one_sided: u64,
    pub heap_bytes: u64,
    /// Counter and listener entries of forgotten addresses not kept (the cap under no `--host`).
    pub counters_dropped: u64,
    /// CPU seconds the worker thread used so far (Linux; 0 elsewhere).
    pub cpu_seconds: f64,
    /// After a snapshot: the earliest capture time at which time alone (a
    /// timer, `--idle-timeout`) changes one of this shard's connections;
    /// `u64::MAX` when none will. Views before then equal the snapshot's.
    pub next_change: u64,
}

impl Shard {
    pub fn new(profile: Profile, interest: Interest, max_flows: usize) -> Shard {
        Shard::with_extras(profile, interest, max_flows, Vec::new())
    }

    /// A shard that also runs `extras` on its connections.
    pub fn with_extras(profile: Profile, interest: Interest, max_flows: usize, extras: Extras) -> Shard {
        let max_flows = max_flows.clamp(16, MAX_FLOWS);
        Shard {
            tables: Tables::default(),
            ctx: Ctx {
                timers: Timers::default(),
                profile,
                netstat: Netstat::new(interest, max_flows),
                extras,
                max_flows,
                evicted: 0,
                idle_expired: 0,
                one_sided: 0,
                next_idle_sweep: 0,
                hand: 0,
            },
            now: 0,
            next_due: u64::MAX,
            due: Vec::new(),
        }
    }

    /// One packet into its connection (the pipeline hands whole batches to `process_batch`).
    #[inline]
    pub fn process(&mut self, p: &Packet) {
        self.process_hashed(p, key_hash(p));
    }

    #[inline]
    fn process_hashed(&mut self, p: &Packet, hash: u64) {
        self.tick(p.ts);
        if self.now >= self.next_due && self.flows() >= self.ctx.max_flows {
            // On time when the table is full: what timers forget is never evicted.
            self.advance(self.now);
        }
        let now = self.now;
        match p.kind {
            Kind::Tcp => with_table!(&mut self.tables, p.v6, |t, o| on_tcp(t, o, &mut self.ctx, p, hash, now)),
            Kind::IcmpError => with_table!(&mut self.tables, p.v6, |t, _o| on_icmp(t, &mut self.ctx, p, hash, now)),
            _ => self.ctx.extras.iter_mut().for_each(|a| a.on_packet(p)),
        }
        if let Some(at) = self.ctx.timers.take_pushed() {
            self.next_due = self.next_due.min(at);
        }
    }

    /// Processes a batch in order, prefetching ahead: the index bucket of the
    /// packet `AHEAD` positions on, and the connection of the one half-way
    /// there, so the table's cache misses overlap instead of queueing up.
    /// Each key is hashed once, when it enters the window.
    pub fn process_batch(&mut self, batch: &[Packet]) {
        const AHEAD: usize = 16;
        const RING: usize = 2 * AHEAD;
        let mut hashes = [0u64; RING];
        for (j, p) in batch.iter().enumerate().take(AHEAD) {
            hashes[j] = key_hash(p);
            self.tables.prefetch(p, hashes[j], false);
        }
        for i in 0..batch.len() {
            if let Some(p) = batch.get(i + AHEAD) {
                let h = key_hash(p);
                hashes[(i + AHEAD) % RING] = h;
                self.tables.prefetch(p, h, false);
            }
            if let Some(p) = batch.get(i + AHEAD / 2) {
                self.tables.prefetch(p, hashes[(i + AHEAD / 2) % RING], true);
            }
            self.process_hashed(&batch[i], hashes[i % RING]);
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
                let s = slot(e.slot);
                let linger = e.kind == TimerKind::Linger;
                with_table!(&self.tables, is_v6(e.slot), |t| if linger {
                    t.prefetch_slot(s)
                } else {
                    t.prefetch_epoch(s)
                });
            }
            let e = due[i];
            with_table!(&mut self.tables, is_v6(e.slot), |t, _o| on_timer(t, &mut self.ctx, &e, now));
        }
        due.clear();
        self.due = due;
        // Superseded entries (re-armed TIME_WAITs, forgotten connections) wait in
        // the queues until their deadline; when they outnumber the connections,
        // drop them so the queues stay bounded by the table, not the packet rate.
        if self.ctx.timers.len() > 2 * self.flows() + 4096 {
            let tables = &self.tables;
            self.ctx.timers.retain(|e| with_table!(&tables, is_v6(e.slot), |t| stands(t, e)));
        }
        let idle = self.ctx.profile.idle_timeout;
        if idle > 0 && now >= self.ctx.next_idle_sweep {
            self.sweep_idle();
        }
        self.ctx.timers.take_pushed();
        self.next_due = self.ctx.timers.next_due();
        if idle > 0 {
            self.next_due = self.next_due.min(self.ctx.next_idle_sweep);
        }
    }

    /// Forgets every connection `--idle-timeout` has given up on by now.
    fn sweep_idle(&mut self) {
        let (now, idle) = (self.now, self.ctx.profile.idle_timeout);
        for v6 in [false, true] {
            with_table!(&mut self.tables, v6, |t, _o| sweep_idle(t, &mut self.ctx, now, idle));
        }
        self.ctx.next_idle_sweep = now + (idle / 4).max(1);
        self.next_due = self.next_due.min(self.ctx.next_idle_sweep);
    }

    /// Moves capture time to `now` before a snapshot: every timer due by then
    /// fires, and every connection `--idle-timeout` forgot by then is gone
    /// and counted, whenever the periodic sweep would have come, so the
    /// snapshot's figures do not depend on the sweep's schedule (which
    /// follows each worker's own traffic).
    pub fn settle(&mut self, now: u64) {
        self.advance(now);
        if self.ctx.profile.idle_timeout > 0 {
            self.sweep_idle();
        }
    }

    pub fn flows(&self) -> usize {
        self.tables.len()
    }

    /// Entries waiting in the timer queues and listening sockets recorded (for
    /// tests and inspection of how much bookkeeping the shard keeps).
    pub fn bookkeeping(&self) -> (usize, usize) {
        (self.ctx.timers.len(), self.ctx.netstat.listeners())
    }

    pub fn stats(&self) -> ShardStats {
        ShardStats {
            flows: self.flows() as u64,
            evicted: self.ctx.evicted,
            idle_expired: self.ctx.idle_expired,
            one_sided: self.ctx.one_sided,
            heap_bytes: (self.tables.heap_bytes() + self.ctx.timers.capacity_bytes() + self.ctx.netstat.heap_bytes())
                as u64,
            counters_dropped: self.ctx.netstat.dropped(),
            cpu_seconds: crate::report::thread_cpu_seconds(),
            next_change: u64::MAX,
        }
    }

    /// Publishes this shard's part of every wanted address's view into
    /// `store` (with `--top`, only the addresses picked). Returns the earliest
    /// capture time after now at which time alone changes one of its
    /// connections (`u64::MAX`: never), so that the views until then are
    /// known to equal this one.
    pub fn publish(&self, store: &Store) -> u64 {
        let shown = self.pick_top();
        let mut rows = Rows {
            netstat: &self.ctx.netstat,
            idle: self.idle(),
            profile: &self.ctx.profile,
            next_change: u64::MAX,
            shown: shown.as_deref(),
            out: AddrMap::default(),
        };
        self.tables.visit(&mut rows);
        let (local, next_change) = (rows.out, rows.next_change);
        self.ctx.netstat.publish(local, shown.as_deref(), store);
        self.ctx.extras.iter().for_each(|a| a.publish(store));
        next_change
    }

    /// The last publish: the tables are consumed as their rows are gathered,
    /// so the rows never sit in memory beside the whole table.
    pub fn publish_final(self, store: &Store) {
        let idle = self.idle();
        let shown = self.pick_top();
        let Shard { tables, mut ctx, .. } = self;
        ctx.timers = Timers::default();
        let mut rows = Rows {
            netstat: &ctx.netstat,
            idle,
            profile: &ctx.profile,
            next_change: 0,
            shown: shown.as_deref(),
            out: AddrMap::default(),
        };
        tables.consume(&mut rows);
        let local = rows.out;
        ctx.netstat.publish(local, shown.as_deref(), store);
        ctx.extras.iter().for_each(|a| a.publish(store));
    }

    /// With `--top`, this worker's part in picking the hosts shown (every
    /// worker takes part at the same snapshot); `None` shows every address.
    fn pick_top(&self) -> Option<Arc<AddrSet<IpAddr>>> {
        let Interest::Top(top) = self.ctx.netstat.interest() else { return None };
        let (netstat, idle) = (&self.ctx.netstat, self.idle());
        let listeners = netstat.listener_addrs();
        let each = |v: &mut dyn FnMut(IpAddr, Score)| {
            self.tables.visit(&mut Scores { idle, v: &mut *v });
            netstat.contributions(v);
        };
        // Both sides of every connection, then the retired counters and listeners.
        let n = 2 * self.tables.len() as u64 + netstat.contribution_count();
        top.select(&each, n, &|ip| listeners.contains(ip));
        Some(top.selected())
    }

    fn idle(&self) -> Idle {
        Idle { now: self.now, limit: self.ctx.profile.idle_timeout }
    }

    /// The state and counts of the connection of a 4-tuple, and which side
    /// of it `src` is (for tests and inspection).
    pub fn conn(&self, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Option<(Conn, MibFlow, usize)> {
        let (s, v6) = crate::addr::from_ip(src);
        let (d, _) = crate::addr::from_ip(dst);
        fn find<K: FlowKey>(
            t: &Table<K>,
            s: &[u8; 16],
            d: &[u8; 16],
            sp: u16,
            dp: u16,
        ) -> Option<(Conn, MibFlow, usize)> {
            let (k, dir) = K::canonical(s, d, sp, dp);
            t.find(&k, k.hash64()).and_then(|i| t.get(i)).map(|f| (f.conn, f.mib, dir))
        }
        with_table!(&self.tables, v6, |t| find(t, &s, &d, sport, dport))
    }
}

/// Gathers every connection's rows and counts for a snapshot (of the
/// addresses in `shown`, if given), and when time alone changes one of them next.
struct Rows<'a> {
    netstat: &'a Netstat,
    idle: Idle,
    profile: &'a Profile,
    next_change: u64,
    shown: Option<&'a AddrSet<IpAddr>>,
    out: AddrMap<AddrView>,
}

impl Visit for Rows<'_> {
    fn flow<K: FlowKey>(&mut self, f: &Flow<K>) {
        self.netstat.collect(f, !self.idle.expired(f), self.shown, &mut self.out);
        // A deadline already past is not pending (its timer ran, or the
        // connection waits for a segment to change).
        let at = next_change(f, self.profile);
        if at > self.idle.now {
            self.next_change = self.next_change.min(at);
        }
    }
}

/// Shows a visitor each connection side's part of its address's score (`--top`).
struct Scores<'a> {
    idle: Idle,
    v: &'a mut dyn FnMut(IpAddr, Score),
}

impl Visit for Scores<'_> {
    fn flow<K: FlowKey>(&mut self, f: &Flow<K>) {
        let live = !self.idle.expired(f);
        for side in 0..2 {
            (self.v)(f.key.ip(side), Netstat::score(f, side, live));
        }
    }
}

#[inline]
fn on_tcp<K: FlowKey, O: FlowKey>(
    t: &mut Table<K>,
    other: &mut Table<O>,
    ctx: &mut Ctx,
    p: &Packet,
    hash: u64,
    now: u64,
) {
    let (key, d) = K::canonical(&p.src, &p.dst, p.sport, p.dport);
    let found = t.find(&key, hash).and_then(|slot| Some((slot, ctx.catch_up(t, slot, now)?)));
    let (slot, before) = match found {
        Some((slot, before)) => (slot, Some(before)),
        None => {
            if p.has(flag::RST) {
                // A reset for no connection we know: it still crossed both stacks.
                ctx.netstat.stray_segment(to_ip(&p.src, p.v6), to_ip(&p.dst, p.v6));
                ctx.extras.iter_mut().for_each(|a| a.on_packet(p));
                return;
            }
            if t.len() + other.len() >= ctx.max_flows {
                ctx.evict(t, other);
            }
            let slot = t.insert(key, hash, now, Conn::first(p));
            ctx.extras.iter_mut().for_each(|a| a.on_open(slot | K::BIT, p));
            (slot, None)
        }
    };
    let id = slot | K::BIT;
    let Some(flow) = t.get_mut(slot) else { return };
    let mut restarted = false;
    if flow.conn.is_new_incarnation(d, p) {
        ctx.forget(flow, id, Retire::Reused);
        ctx.extras.iter_mut().for_each(|a| a.on_open(id, p));
        flow.conn = Conn::first(p);
        flow.mib = MibFlow::default();
        flow.linger_armed = false;
        restarted = true;
    }
    let before = before.unwrap_or_else(|| super::expiry::timed(&flow.conn));
    let was_one_sided = flow.conn.one_sided();
    let ev = flow.conn.segment(d, p, now);
    flow.mib.segment(d, p, &ev);
    flow.last_ts = now;
    if ev.sender.has(Event::Listener) {
        ctx.netstat.listener(flow.key.ip(d), flow.key.port(d));
    }
    if ev.receiver.bits() & (1 << Event::Listener as u8 | 1 << Event::Inferred as u8) != 0 || was_one_sided {
        one_sided_segment(ctx, flow, d, &ev, was_one_sided);
    }
    for a in &mut ctx.extras {
        a.on_segment(id, d, p, &flow.conn, &ev);
    }
    if flow.mib.near_wrap(d) {
        // Long before a u32 count wraps, hand the counts to the host totals.
        ctx.netstat.retire(flow);
        flow.mib.clear_counts();
    }
    ctx.arm(t, slot, before, restarted, now);
}

/// The rarer part of `on_tcp`: a listener inferred for the receiver (its
/// SYN-ACK proven by a one-sided capture), and the count of one-sided
/// connections (a connection stops being one once its silent side is seen).
#[cold]
fn one_sided_segment<K: FlowKey>(ctx: &mut Ctx, flow: &Flow<K>, d: usize, ev: &SegEvents, was: bool) {
    if ev.receiver.has(Event::Listener) {
        ctx.netstat.listener(flow.key.ip(1 - d), flow.key.port(1 - d));
    }
    match (was, flow.conn.one_sided()) {
        (false, true) => ctx.one_sided += 1,
        (true, false) => ctx.one_sided -= 1,
        _ => {}
    }
}

fn on_icmp<K: FlowKey>(t: &mut Table<K>, ctx: &mut Ctx, p: &Packet, hash: u64, now: u64) {
    let (key, d) = K::canonical(&p.src, &p.dst, p.sport, p.dport);
    let Some(slot) = t.find(&key, hash) else {
        ctx.extras.iter_mut().for_each(|a| a.on_packet(p));
        return;
    };
    let Some(before) = ctx.catch_up(t, slot, now) else { return };
    let Some(flow) = t.get_mut(slot) else { return };
    let ev = flow.conn.icmp_error(d, p, now, &ctx.profile);
    flow.mib.events(d, ev);
    for a in &mut ctx.extras {
        a.on_icmp_error(slot | K::BIT, d, p, &flow.conn, ev);
    }
    ctx.arm(t, slot, before, false, now);
}

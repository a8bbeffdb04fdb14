//! Timers applied to connections: which timer a connection needs after a
//! change, whether a queued entry still stands, bringing a connection up to
//! date before it takes a packet, and forgetting connections the host has
//! forgotten (linger) or `--idle-timeout` gives up on.

use super::conn::{Conn, state_timeout};
use super::shard::Ctx;
use super::state::TcpState;
use super::table::{Flow, Table};
use super::tables::slot;
use super::timers::{Entry, TimerKind};
use crate::addr::FlowKey;
use crate::analysis::{FlowId, Retire};
use crate::os::Profile;

/// `--idle-timeout` as of a moment of capture time.
#[derive(Clone, Copy)]
pub(super) struct Idle {
    pub(super) now: u64,
    pub(super) limit: u64,
}

impl Idle {
    /// When `--idle-timeout` forgets the connection (`u64::MAX`: never).
    pub(super) fn deadline<K: FlowKey>(&self, f: &Flow<K>) -> u64 {
        if self.limit > 0 { f.last_ts.saturating_add(self.limit) } else { u64::MAX }
    }

    /// Whether `--idle-timeout` has forgotten the connection by now (the sweep
    /// that removes it may not have run yet).
    pub(super) fn expired<K: FlowKey>(&self, f: &Flow<K>) -> bool {
        self.now >= self.deadline(f)
    }
}

/// The timed states of a connection's two sides, with their start times.
pub(super) type Timed = [(TcpState, u64); 2];

pub(super) fn timed(c: &Conn) -> Timed {
    [(c.ep[0].state, c.ep[0].state_ts), (c.ep[1].state, c.ep[1].state_ts)]
}

/// The state timer side `e` of a connection needs, if its state is timed.
fn state_timer(e: &crate::flow::Endpoint, p: &Profile) -> Option<(TimerKind, u64)> {
    let kind = TimerKind::of(e.state)?;
    Some((kind, e.state_ts.saturating_add(p.timer_len(kind))))
}

/// Whether a queued timer entry still stands for a connection of `t`: a state
/// timer whose side's epoch moved on was superseded, and a linger entry stands
/// while its connection waits for one.
pub(super) fn stands<K: FlowKey>(t: &Table<K>, e: &Entry) -> bool {
    let s = slot(e.slot);
    if e.kind == TimerKind::Linger {
        t.get(s).is_some_and(|f| f.linger_armed)
    } else {
        t.epoch(s, e.side as usize) == e.epoch
    }
}

/// The earliest capture time at which time alone changes connection `f`: a
/// timed state of one of its sides ends, it is forgotten once it has no row
/// left, or `--idle-timeout` forgets it.
pub(super) fn next_change<K: FlowKey>(f: &Flow<K>, p: &Profile) -> u64 {
    let mut at = Idle { now: 0, limit: p.idle_timeout }.deadline(f);
    for e in &f.conn.ep {
        if let Some((_, deadline)) = state_timer(e, p) {
            at = at.min(deadline);
        }
    }
    if !f.conn.has_rows() {
        at = at.min(f.last_ts.saturating_add(p.linger));
    }
    at
}

/// A queued timer entry came due.
pub(super) fn on_timer<K: FlowKey>(t: &mut Table<K>, ctx: &mut Ctx, e: &Entry, now: u64) {
    if !stands(t, e) {
        return;
    }
    let s = slot(e.slot);
    if e.kind == TimerKind::Linger
        && let Some(flow) = t.get_mut(s)
    {
        // This was the connection's queued linger entry: arm() queues another if needed.
        flow.linger_armed = false;
    }
    let Some(before) = ctx.catch_up(t, s, now) else { return };
    ctx.arm(t, s, before, false, now);
}

/// Forgets every connection of `t` idle for `idle` nanoseconds by `now`,
/// each brought up to the moment it was forgotten first (a timer due before
/// then still fires).
pub(super) fn sweep_idle<K: FlowKey>(t: &mut Table<K>, ctx: &mut Ctx, now: u64, idle: u64) {
    let idle = Idle { now, limit: idle };
    let stale: Vec<u32> = t.iter().filter(|(_, f)| idle.expired(f)).map(|(i, _)| i).collect();
    for s in stale {
        // An idle-expired connection is retired by catch_up.
        let _ = ctx.catch_up(t, s, now);
    }
}

impl Ctx {
    /// Brings the connection in `slot` up to `now`, as if its queued timers had
    /// run on time (they may run up to `TIMER_SLACK` late): expires timed
    /// states past their deadline, and forgets the connection if it has no
    /// rows and has been quiet for the linger time, or quiet for
    /// `--idle-timeout`. Returns its timed states as they were before, for
    /// `arm`, or `None` if it is gone (a segment then starts a new one).
    ///
    /// `--idle-timeout` forgets a connection at its last packet plus the
    /// timeout: timers due after that never fire (a SYN that would have
    /// given up later is not a failed attempt), whenever the forgetting is
    /// noticed (a sweep, a snapshot, a timer entry or a new segment), so the
    /// counters do not depend on when that is.
    pub(super) fn catch_up<K: FlowKey>(&mut self, t: &mut Table<K>, slot: u32, now: u64) -> Option<Timed> {
        let flow = t.get_mut(slot)?;
        let before = timed(&flow.conn);
        // Most packets belong to connections that time cannot change: no
        // timed state on either side, a row to show, no --idle-timeout.
        if self.profile.idle_timeout == 0
            && TimerKind::of(before[0].0).is_none()
            && TimerKind::of(before[1].0).is_none()
            && flow.conn.has_rows()
        {
            return Some(before);
        }
        let forgotten_at = Idle { now, limit: self.profile.idle_timeout }.deadline(flow);
        let until = now.min(forgotten_at);
        for side in 0..2 {
            let ev = flow.conn.expire(side, until, &self.profile);
            if !ev.is_empty() {
                flow.mib.events(side, ev);
                for a in &mut self.extras {
                    a.on_timer(slot | K::BIT, side, &flow.conn, ev, until);
                }
            }
        }
        let idle = now >= forgotten_at;
        if idle || (now >= flow.last_ts.saturating_add(self.profile.linger) && !flow.conn.has_rows()) {
            self.retire(t, slot, if idle { Retire::IdleExpired } else { Retire::Closed });
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
    pub(super) fn arm<K: FlowKey>(&mut self, t: &mut Table<K>, slot: u32, before: Timed, restarted: bool, now: u64) {
        let Some(flow) = t.get_mut(slot) else { return };
        let after = timed(&flow.conn);
        // Nothing moved (most segments of an established connection): no timer to queue.
        if !restarted && after == before && (flow.linger_armed || flow.conn.has_rows()) {
            return;
        }
        let changed = [0, 1].map(|side| restarted || after[side] != before[side]);
        let next =
            [0, 1].map(|side| if changed[side] { state_timer(&flow.conn.ep[side], &self.profile) } else { None });
        let id = slot | K::BIT;
        if !flow.linger_armed && !flow.conn.has_rows() {
            flow.linger_armed = true;
            // Forgotten once quiet for the linger time, as `catch_up` decides too.
            let at = flow.last_ts.saturating_add(self.profile.linger).max(now);
            self.timers.push(Entry { at, slot: id, epoch: 0, side: 0, kind: TimerKind::Linger });
        }
        for side in 0..2 {
            if !changed[side] {
                continue;
            }
            // Only a side that was in a timed state can have an entry to drop.
            let had_timer = state_timeout(before[side].0, &self.profile).is_some();
            let epoch = if had_timer || restarted { t.bump(slot, side) } else { t.epoch(slot, side) };
            if let Some((kind, at)) = next[side] {
                self.timers.push(Entry { at, slot: id, epoch, side: side as u8, kind });
            }
        }
    }

    /// Stops tracking the connection in `slot`: its counts go to its hosts'
    /// totals, the analyzers hear why, and the reason is counted.
    pub(super) fn retire<K: FlowKey>(&mut self, t: &mut Table<K>, slot: u32, why: Retire) {
        let Some(f) = t.get(slot) else { return };
        self.forget(f, slot | K::BIT, why);
        t.remove(slot);
    }

    /// What retiring a connection means for the analyzers and the counts,
    /// whether its entry goes (`retire`) or is taken by the 4-tuple's next
    /// connection (`Retire::Reused`).
    pub(super) fn forget<K: FlowKey>(&mut self, f: &Flow<K>, id: FlowId, why: Retire) {
        self.netstat.retire(f);
        for a in &mut self.extras {
            a.on_retire(id, &f.conn, why);
        }
        match why {
            Retire::IdleExpired => self.idle_expired += 1,
            Retire::Evicted => self.evicted += 1,
            Retire::Closed | Retire::Reused | Retire::End => {}
        }
    }
}

//! Capture-time timers. Every timer kind has one fixed length, so entries are
//! pushed in deadline order and a FIFO queue per kind is a priority queue.
//! Entries are hints. A state-timer entry carries its side's epoch and is
//! dropped unread if the epoch moved on; a linger entry is checked against
//! the connection itself before anything is forgotten.

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TimerKind {
    TimeWait = 0,
    SynSent = 1,
    SynRcvd = 2,
    FinWait2 = 3,
    /// A connection with no row left: forget it once it has been quiet for the linger time.
    Linger = 4,
    /// An orphan's FIN never acknowledged (FIN_WAIT_1, CLOSING, LAST_ACK): it gives up.
    FinGiveUp = 5,
}

const KINDS: usize = 6;

impl TimerKind {
    /// The state timer a side in `state` runs, if the state is timed (linger
    /// is a connection's timer, not a state's).
    pub fn of(state: crate::flow::TcpState) -> Option<TimerKind> {
        use crate::flow::TcpState::*;
        match state {
            TimeWait => Some(TimerKind::TimeWait),
            SynSent => Some(TimerKind::SynSent),
            SynRcvd => Some(TimerKind::SynRcvd),
            FinWait2 => Some(TimerKind::FinWait2),
            // An orphan whose FIN is never acknowledged; entering CLOSING keeps FIN_WAIT_1's start.
            FinWait1 | Closing | LastAck => Some(TimerKind::FinGiveUp),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub at: u64,
    /// Table slot; the top bit selects the IPv6 table.
    pub slot: u32,
    /// For state timers: the side's epoch when the entry was queued.
    pub epoch: u16,
    /// For state timers: which side of the connection it times.
    pub side: u8,
    pub kind: TimerKind,
}

#[derive(Debug, Default)]
pub struct Timers {
    queues: [VecDeque<Entry>; KINDS],
    /// The earliest deadline pushed since `take_pushed`: what a caller keeping
    /// its own next-due time must fold in, without scanning the queues.
    pushed: Option<u64>,
}

impl Timers {
    pub fn push(&mut self, e: Entry) {
        self.pushed = Some(self.pushed.map_or(e.at, |p| p.min(e.at)));
        let q = &mut self.queues[e.kind as usize];
        // Deadlines are "now + a fixed length", so they almost always arrive in
        // order; the rare one that does not (a state re-entered with an older
        // start) is placed where it belongs rather than waiting behind later ones.
        if q.back().is_some_and(|b| b.at > e.at) {
            let i = q.partition_point(|x| x.at <= e.at);
            q.insert(i, e);
        } else {
            q.push_back(e);
        }
    }

    /// Drops queued entries `live` rejects, keeping the order (used when stale
    /// entries pile up, e.g. a flood of ACKs re-arming one TIME_WAIT).
    pub fn retain(&mut self, mut live: impl FnMut(&Entry) -> bool) {
        for q in &mut self.queues {
            q.retain(&mut live);
        }
    }

    /// The earliest deadline pushed since the last call, if any.
    pub fn take_pushed(&mut self) -> Option<u64> {
        self.pushed.take()
    }

    /// The earliest deadline queued, or `u64::MAX`.
    pub fn next_due(&self) -> u64 {
        self.queues.iter().filter_map(|q| q.front()).map(|e| e.at).min().unwrap_or(u64::MAX)
    }

    /// Removes and returns one entry due at `now`, if any.
    pub fn pop_due(&mut self, now: u64) -> Option<Entry> {
        let q = self.queues.iter_mut().filter(|q| q.front().is_some_and(|e| e.at <= now)).min_by_key(|q| q[0].at)?;
        q.pop_front()
    }

    /// The oldest entry of one kind (the earliest deadline: every kind has one length).
    pub fn front(&self, kind: TimerKind) -> Option<&Entry> {
        self.queues[kind as usize].front()
    }

    /// The `n`th oldest entry of one kind.
    pub fn nth(&self, kind: TimerKind, n: usize) -> Option<&Entry> {
        self.queues[kind as usize].get(n)
    }

    /// Removes the oldest entry of one kind (for eviction, which takes the
    /// queues' order as the connections' age).
    pub fn pop_front(&mut self, kind: TimerKind) -> Option<Entry> {
        self.queues[kind as usize].pop_front()
    }

    pub fn len(&self) -> usize {
        self.queues.iter().map(|q| q.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the queues (for the memory report).
    pub fn capacity_bytes(&self) -> usize {
        self.queues.iter().map(|q| q.capacity() * std::mem::size_of::<Entry>()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_pushed_early_deadline_is_not_stuck_behind_later_ones() {
        let mut t = Timers::default();
        t.push(Entry { at: 50, slot: 1, epoch: 0, side: 0, kind: TimerKind::SynSent });
        t.push(Entry { at: 20, slot: 2, epoch: 0, side: 0, kind: TimerKind::SynSent });
        assert_eq!(t.pop_due(30).map(|e| e.slot), Some(2));
        assert_eq!(t.pop_due(30), None);
    }

    #[test]
    fn pops_earliest_due_across_kinds() {
        let mut t = Timers::default();
        t.push(Entry { at: 50, slot: 1, epoch: 0, side: 0, kind: TimerKind::TimeWait });
        t.push(Entry { at: 20, slot: 2, epoch: 0, side: 0, kind: TimerKind::SynSent });
        t.push(Entry { at: 90, slot: 3, epoch: 0, side: 0, kind: TimerKind::Linger });
        assert_eq!(t.next_due(), 20);
        assert_eq!(t.pop_due(60).map(|e| e.slot), Some(2));
        assert_eq!(t.pop_due(60).map(|e| e.slot), Some(1));
        assert_eq!(t.pop_due(60), None);
        assert_eq!(t.len(), 1);
    }
}

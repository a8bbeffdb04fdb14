//! Making room under `--max-flows`: which connections go first.

use super::shard::Ctx;
use super::state::TcpState;
use super::table::{Flow, Table};
use crate::addr::FlowKey;
use crate::analysis::Retire;

/// How much an eviction loses: a connection with no row left loses nothing a
/// view shows (0), a half-open one the least (1), the rest more (2).
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

impl Ctx {
    /// Makes room for a sixteenth of `--max-flows` at once: connections with
    /// no row first, then half-open ones, then the longest idle, ranked over
    /// both tables together; each eviction is counted.
    pub(super) fn evict<A: FlowKey, B: FlowKey>(&mut self, a: &mut Table<A>, b: &mut Table<B>) {
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
                self.retire(b, slot, Retire::Evicted);
            } else {
                self.retire(a, slot, Retire::Evicted);
            }
        }
    }
}

//! A shard's two connection tables, IPv4 and IPv6 (separate so that the
//! common IPv4 entry does not pay for 128-bit addresses), and the one place
//! that picks between them.

use super::table::{Flow, Table};
use crate::addr::{FlowKey, Key4, Key6};
use crate::analysis::FlowId;
use crate::decode::Packet;

/// The tag of IPv6 slots in a [`FlowId`] and in timer entries.
pub const V6_BIT: u32 = <Key6 as FlowKey>::BIT;

#[derive(Default)]
pub struct Tables {
    pub v4: Table<Key4>,
    pub v6: Table<Key6>,
}

/// Runs `$body` with `$t` bound to the table of the family `$v6` names (and,
/// given `&mut`, `$o` to the other one): the only place the two families are
/// told apart.
macro_rules! with_table {
    (&mut $tables:expr, $v6:expr, |$t:ident, $o:ident| $body:expr) => {{
        let tables: &mut $crate::flow::tables::Tables = &mut $tables;
        if $v6 {
            let ($t, $o) = (&mut tables.v6, &mut tables.v4);
            $body
        } else {
            let ($t, $o) = (&mut tables.v4, &mut tables.v6);
            $body
        }
    }};
    (&$tables:expr, $v6:expr, |$t:ident| $body:expr) => {{
        let tables: &$crate::flow::tables::Tables = &$tables;
        if $v6 {
            let $t = &tables.v6;
            $body
        } else {
            let $t = &tables.v4;
            $body
        }
    }};
    // The table of flow `id` among `a` (keys of type `A`) and `b`, the other
    // family (generic code that holds both tables apart, as eviction does).
    (pair $A:ty: $a:expr, $b:expr, $id:expr, |$t:ident| $body:expr) => {{
        if (<$A as $crate::addr::FlowKey>::BIT != 0) == $crate::flow::tables::is_v6($id) {
            let $t = $a;
            $body
        } else {
            let $t = $b;
            $body
        }
    }};
}
pub(crate) use with_table;

/// The slot of a flow id, without its family tag.
#[inline]
pub fn slot(id: FlowId) -> u32 {
    id & !V6_BIT
}

#[inline]
pub fn is_v6(id: FlowId) -> bool {
    id & V6_BIT != 0
}

impl Tables {
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts loading the index bucket (`flow` false) or the connection (true) of `p`.
    #[inline]
    pub fn prefetch(&self, p: &Packet, hash: u64, flow: bool) {
        with_table!(&self, p.v6, |t| if flow { t.prefetch_flow(hash) } else { t.prefetch_bucket(hash) })
    }

    /// Bytes held by both tables.
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes() + self.v6.heap_bytes()
    }

    /// Shows `v` every live connection of both tables, IPv4 first.
    pub fn visit(&self, v: &mut impl Visit) {
        self.v4.iter().for_each(|(_, f)| v.flow(f));
        self.v6.iter().for_each(|(_, f)| v.flow(f));
    }

    /// Shows `v` every live connection while giving the tables' memory back.
    pub fn consume(self, v: &mut impl Visit) {
        self.v4.consume(|f| v.flow(f));
        self.v6.consume(|f| v.flow(f));
    }
}

/// Something done to every connection, of either family.
pub trait Visit {
    fn flow<K: FlowKey>(&mut self, f: &Flow<K>);
}

/// The table hash of the connection a packet belongs to.
#[inline]
pub fn key_hash(p: &Packet) -> u64 {
    if p.v6 {
        Key6::canonical(&p.src, &p.dst, p.sport, p.dport).0.hash64()
    } else {
        Key4::canonical(&p.src, &p.dst, p.sport, p.dport).0.hash64()
    }
}

//! Connection tracking: the per-connection state machine for both endpoints
//! ([`conn`], which reports what happened as [`events`]), a worker's shard of
//! the connections ([`shard`]) in its two tables ([`tables`], [`table`]), the
//! capture-time timers that expire them ([`timers`], [`expiry`]) and
//! eviction under `--max-flows` ([`evict`]).

pub mod conn;
pub mod events;
mod evict;
mod expiry;
pub mod index;
pub mod shard;
pub mod slab;
pub mod state;
pub mod table;
pub mod tables;
pub mod timers;

pub use conn::{Conn, Endpoint};
pub use state::TcpState;

#[cfg(test)]
mod conn_tests;

//! Connection tracking: the per-connection state machine for both endpoints
//! ([`conn`]), the per-shard table of connections ([`table`]) and the
//! capture-time timers that expire them ([`timers`]).

pub mod conn;
pub mod index;
pub mod shard;
pub mod slab;
pub mod state;
pub mod table;
pub mod timers;

pub use conn::{Conn, Endpoint};
pub use state::TcpState;

#[cfg(test)]
mod conn_tests;

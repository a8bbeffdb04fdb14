//! wirestat: rebuild a host's `netstat` views from packets seen on the wire.
//!
//! The library is the whole engine; `main.rs` only parses arguments and prints.
//! Data flows one way: [`capture`] reads frames, [`decode`] turns each into a
//! [`decode::Packet`], [`pipeline`] shards packets to workers that own the
//! [`flow`] tables, and at a snapshot barrier the workers publish what the
//! [`view`] module renders.

#[macro_use]
mod counters;

pub mod addr;
pub mod analysis;
pub mod capture;
pub mod decode;
pub mod error;
pub mod flow;
pub mod os;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod seq;
pub mod view;

pub use error::Error;

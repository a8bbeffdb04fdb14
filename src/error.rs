//! Typed errors of the library; the binary adds context and prints them.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open capture {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("{path} is not a pcap or pcapng capture ({reason})")]
    NotACapture { path: PathBuf, reason: String },
    #[error("invalid filter {filter:?}: {reason}")]
    Filter { filter: String, reason: String },
    #[error("{0}")]
    Usage(String),
    #[error("no permission to capture on {iface} ({reason})")]
    CapturePermission { iface: String, reason: String },
    #[error("no interface named {iface}; capture interfaces: {}", available.join(", "))]
    NoSuchInterface { iface: String, available: Vec<String> },
    #[error("cannot capture on {iface}: {reason}")]
    Capture { iface: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Save { path: PathBuf, reason: String },
    #[error("write error: {0}")]
    Io(#[from] std::io::Error),
}

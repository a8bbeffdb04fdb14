//! A capture filter (`-f`) applied to frames read without libpcap, compiled by
//! libpcap for each link type met, so that it lets through exactly the frames
//! libpcap's own filtering would.

use pcap::{BpfProgram, Capture, Linktype};
use std::ffi::c_int;

unsafe extern "C" {
    // pcap.h; the pcap crate's wrapper passes the captured length as the
    // original one, which would change what `len`, `greater` and `less` see.
    fn pcap_offline_filter(prog: *const BpfProgram, header: *const pcap::PacketHeader, data: *const u8) -> c_int;
}

/// A filter expression and its programs, one per link type (few per file).
pub struct LinkFilter {
    expr: String,
    programs: Vec<(i32, Option<BpfProgram>)>,
}

impl LinkFilter {
    pub fn new(expr: &str) -> LinkFilter {
        LinkFilter { expr: expr.to_string(), programs: Vec::new() }
    }

    /// Compiles the expression for a link type (a `DLT_` value), as libpcap
    /// does when the filter is set on a capture of that type.
    pub fn compile(expr: &str, dlt: i32) -> Result<BpfProgram, String> {
        let dead = Capture::dead(Linktype(dlt)).map_err(|e| e.to_string())?;
        dead.compile(expr, true).map_err(|e| super::libpcap::strip(&e.to_string()))
    }

    /// Whether the frame passes. A link type the expression cannot be
    /// compiled for (it names a header that link type lacks) passes nothing.
    pub fn matches(&mut self, dlt: i32, data: &[u8], orig_len: u32) -> bool {
        let i = match self.programs.iter().position(|(t, _)| *t == dlt) {
            Some(i) => i,
            None => {
                self.programs.push((dlt, Self::compile(&self.expr, dlt).ok()));
                self.programs.len() - 1
            }
        };
        let Some(program) = &self.programs[i].1 else { return false };
        let header = pcap::PacketHeader {
            ts: libc::timeval { tv_sec: 0, tv_usec: 0 },
            caplen: data.len() as u32,
            len: orig_len,
        };
        // SAFETY: `program` is a compiled program (BpfProgram is a transparent
        // wrapper of `struct bpf_program`); the header describes `data`
        // exactly (caplen = its length), which is all the filter reads.
        unsafe { pcap_offline_filter(program, &header, data.as_ptr()) != 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame holding an IPv4 TCP segment header (no payload).
    fn tcp_frame(dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend([0x08, 0x00]);
        f.extend([0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2]);
        f.extend(1234u16.to_be_bytes());
        f.extend(dport.to_be_bytes());
        f.extend([0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        f
    }

    #[test]
    fn matches_like_libpcap() {
        let mut f = LinkFilter::new("tcp dst port 80");
        assert!(f.matches(1, &tcp_frame(80), 54));
        assert!(!f.matches(1, &tcp_frame(81), 54));
        // The same frame read as raw IP (DLT_RAW): the program for that type.
        assert!(f.matches(12, &tcp_frame(80)[14..], 40));
        assert!(!f.matches(12, &tcp_frame(80), 54));
    }

    #[test]
    fn lengths_are_the_original_ones() {
        let mut f = LinkFilter::new("greater 1000");
        assert!(f.matches(1, &tcp_frame(80), 1500));
        assert!(!f.matches(1, &tcp_frame(80), 54));
    }

    #[test]
    fn bad_expressions_and_link_types() {
        assert!(LinkFilter::compile("tcp port", 1).is_err());
        // No Ethernet header on raw IP.
        assert!(LinkFilter::compile("ether host 00:11:22:33:44:55", 12).is_err());
        let mut f = LinkFilter::new("ether host 00:11:22:33:44:55");
        assert!(!f.matches(12, &tcp_frame(80)[14..], 40));
    }
}

//! The baseline for wirestat's throughput figures: the bare libpcap read loop
//! (`pcap_next_ex` over a file, counting packets and bytes), nothing else.
//!
//!     cargo run --release --example pcap_loop -- FILE

fn main() {
    let path = std::env::args().nth(1).expect("usage: pcap_loop FILE");
    let mut cap = pcap::Capture::from_file(&path).unwrap_or_else(|e| {
        eprintln!("pcap_loop: {path}: {e}");
        std::process::exit(2)
    });
    let (mut packets, mut bytes) = (0u64, 0u64);
    while let Ok(p) = cap.next_packet() {
        packets += 1;
        bytes += p.header.len as u64;
    }
    println!("{packets} packets, {bytes} bytes");
}

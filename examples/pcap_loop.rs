//! The baseline for wirestat's throughput figures: the bare libpcap read loop
//! (`pcap_next_ex` over a file, counting packets and bytes), nothing else.
//!
//!     cargo run --release --example pcap_loop -- FILE
//!     cargo run --release --example pcap_loop -- --buffered FILE
//!
//! By default the file is opened the plain way (`pcap_open_offline`, glibc's
//! 4 KiB stdio buffer). `--buffered` opens it the way wirestat does (a 64 KiB
//! stdio buffer), to show how much of wirestat's figure comes from reading.

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let buffered = args.first().is_some_and(|a| a == "--buffered");
    if buffered {
        args.remove(0);
    }
    let path = args.first().cloned().unwrap_or_else(|| {
        eprintln!("usage: pcap_loop [--buffered] FILE");
        std::process::exit(2)
    });
    let fail = |e: &dyn std::fmt::Display| -> ! {
        eprintln!("pcap_loop: {path}: {e}");
        std::process::exit(2)
    };
    let (packets, bytes) = if buffered {
        count(&mut wirestat::capture::open_offline(path.as_ref()).unwrap_or_else(|e| fail(&e)))
    } else {
        count(&mut pcap::Capture::from_file(&path).unwrap_or_else(|e| fail(&e)))
    };
    println!("{packets} packets, {bytes} bytes");
}

fn count(cap: &mut pcap::Capture<pcap::Offline>) -> (u64, u64) {
    let (mut packets, mut bytes) = (0u64, 0u64);
    while let Ok(p) = cap.next_packet() {
        packets += 1;
        bytes += p.header.len as u64;
    }
    (packets, bytes)
}

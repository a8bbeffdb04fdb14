//! Command-line arguments: tcpdump's habits for the source (`-r`, `-f`),
//! netstat's for the view (`-a -n -s -p PROTO`, a trailing INTERVAL).

use clap::{Parser, ValueEnum};
use std::net::IpAddr;
use std::path::PathBuf;
use wirestat::os::Os;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "wirestat",
    version,
    about = "netstat for a host you can only see on the wire: rebuilds its connection table and TCP \
             counters from packet captures",
    after_help = "Examples:\n  wirestat -r trace.pcap -an                      every host's connection table\n  \
                  wirestat -r trace.pcap --host 10.0.0.5 -a -s    one host's table, listeners and TCP statistics\n  \
                  wirestat -r a.pcap -r b.pcapng --format json    merged in time order, JSON lines"
)]
pub struct Args {
    /// Capture file to read (pcap or pcapng; `-` for standard input); repeat to merge several in timestamp order.
    #[arg(short = 'r', long = "read", value_name = "FILE", required_unless_present_any = ["interface", "list_interfaces"], conflicts_with = "interface")]
    pub read: Vec<PathBuf>,

    /// BPF filter applied while reading (tcpdump syntax).
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    pub filter: Option<String>,

    /// The observed host; repeat for several addresses of one host. Without it, every
    /// address with rows to show (connections; listeners with -a; with -s, any TCP
    /// at all) gets its own view, busiest first.
    #[arg(long = "host", value_name = "ADDR")]
    pub host: Vec<IpAddr>,

    /// Show listening sockets (inferred from SYN-ACKs) as well as connections.
    #[arg(short = 'a')]
    pub all: bool,

    /// Numeric addresses and ports (wirestat never resolves names; accepted for netstat habits).
    #[arg(short = 'n')]
    pub numeric: bool,

    /// Per-protocol statistics (TCP Statistics for IPv4 and IPv6).
    #[arg(short = 's')]
    pub stats: bool,

    /// Limit to one protocol: TCP or TCPv6.
    #[arg(short = 'p', value_name = "PROTO")]
    pub proto: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Worker threads tracking connections (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Timer profile of the observed hosts' TCP stack.
    #[arg(long, value_enum, default_value_t = Os::Linux)]
    pub os: Os,

    /// Most connections tracked at once; beyond it the least useful are evicted and
    /// counted (default: sized to available memory).
    #[arg(long, value_name = "N")]
    pub max_flows: Option<usize>,

    /// Forget connections idle this many seconds of capture time (default: never, as the host does).
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout: Option<f64>,

    /// Capture live on this interface (a name, or its number in -D's list); repeat to
    /// merge several (a tap's two directions) by time. Stops on Ctrl-C or SIGTERM.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Vec<String>,

    /// List the interfaces that can be captured on, like tcpdump -D.
    #[arg(short = 'D', long = "list-interfaces")]
    pub list_interfaces: bool,

    /// Save every frame captured to FILE (pcap) while tracking it; `wirestat -r FILE` replays it.
    #[arg(short = 'w', long = "write", value_name = "FILE", requires = "interface")]
    pub write: Option<PathBuf>,

    /// Do not put the interface into promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,

    /// Bytes kept of each captured frame (headers are all wirestat reads).
    #[arg(long, value_name = "BYTES", default_value_t = wirestat::capture::live::DEFAULT_SNAPLEN)]
    pub snaplen: u32,

    /// Kernel capture buffer per interface, in KiB, like tcpdump -B.
    #[arg(short = 'B', long = "buffer-size", value_name = "KiB", default_value_t = wirestat::capture::live::DEFAULT_BUFFER_KIB)]
    pub buffer_kib: u32,

    /// Track exact duplicate frames too (by default a copy of a frame seen within
    /// 1 ms, as a SPAN session mirroring both ports delivers it, is dropped and counted).
    #[arg(long)]
    pub keep_duplicates: bool,

    /// Print the views every INTERVAL seconds of capture time, then at the end.
    #[arg(value_name = "INTERVAL")]
    pub interval: Option<f64>,
}

//! Command-line arguments: tcpdump's habits for the source (`-r`, `-f` or a
//! trailing filter expression, `-c`), netstat's for the view: Windows' (`-a -n
//! -s -p PROTO`, a trailing INTERVAL) and Linux's (`-t -u -l -p`, bundled as in
//! `-tulpn`).

use clap::{Parser, ValueEnum};
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use wirestat::os::Os;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// Windows netstat's (`Active Connections`, `TCP Statistics for IPv4`).
    Windows,
    /// Linux netstat's (`Proto Recv-Q Send-Q ...`, `Tcp:`).
    Linux,
}

#[derive(Debug, Parser)]
#[command(
    name = "wirestat",
    version,
    about = "netstat for a host you can only see on the wire: rebuilds its connection table and TCP \
             counters from packet captures",
    after_help = "Words after the options are INTERVAL when there is one number, else a filter expression \
                  (tcpdump's); to give both, put the filter in -f.\n\
                  -p followed by a protocol name (-p TCP, -anp tcp) limits to that protocol, as on Windows; \
                  bundled with -t/-u/-l or without a protocol name (-tulpn, -anp) it asks for the process \
                  column, as on Linux.\n\
                  Exit status: 0 ok, 1 a capture could not be read to its end (views still printed), \
                  2 bad arguments or unreadable files.\n\n\
                  Examples:\n  wirestat -r trace.pcap -an                      every host's connection table\n  \
                  wirestat -r trace.pcap --host 10.0.0.5 -a -s    one host's table, listeners and TCP statistics\n  \
                  wirestat -r trace.pcap -tlpn                    listening sockets, Linux netstat's layout\n  \
                  wirestat -r trace.pcap -an tcp port 443         only what a filter expression passes\n  \
                  wirestat -r a.pcap -r b.pcapng --format json    merged in time order, JSON lines"
)]
pub struct Args {
    /// Capture file to read (pcap or pcapng; `-` for standard input); repeat to merge several in timestamp order.
    #[arg(short = 'r', long = "read", value_name = "FILE", required_unless_present_any = ["interface", "list_interfaces"], conflicts_with = "interface")]
    pub read: Vec<PathBuf>,

    /// BPF filter applied while reading (tcpdump syntax).
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    pub filter: Option<String>,

    /// Stop after COUNT frames (tcpdump's -c).
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,

    /// The observed host; repeat for several addresses of one host. Without it, the
    /// busiest addresses (most rows: connections, listeners with -a; then most
    /// segments; with -s, any TCP at all counts) get a view each, see --top.
    #[arg(long = "host", value_name = "ADDR")]
    pub host: Vec<IpAddr>,

    /// Without --host: views of the N busiest hosts, then one line counting the rest;
    /// 0 shows every host.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,

    /// Show listening sockets (inferred from SYN-ACKs) as well as connections.
    #[arg(short = 'a')]
    pub all: bool,

    /// Numeric addresses and ports (wirestat never resolves names; accepted for netstat habits).
    #[arg(short = 'n')]
    pub numeric: bool,

    /// Per-protocol statistics (TCP Statistics for IPv4 and IPv6).
    #[arg(short = 's')]
    pub stats: bool,

    /// Limit to one protocol: TCP or TCPv6 (Windows netstat's -p PROTO).
    #[arg(short = 'p', value_name = "PROTO")]
    pub proto: Option<String>,

    /// TCP sockets only (Linux netstat's -t; wirestat tracks only TCP). Implies --layout linux.
    #[arg(short = 't', long = "tcp")]
    pub tcp: bool,

    /// UDP sockets (Linux netstat's -u): not tracked yet, said once on stderr. Implies --layout linux.
    #[arg(short = 'u', long = "udp")]
    pub udp: bool,

    /// Listening sockets only (Linux netstat's -l). Implies --layout linux.
    #[arg(short = 'l', long = "listening")]
    pub listening: bool,

    /// The PID/Program name column (Linux netstat's -p): the wire does not carry it, so it
    /// shows `-`. Implies --layout linux.
    #[arg(long = "program")]
    pub program: bool,

    /// Text layout (default: windows, or linux when -t, -u, -l or Linux's -p is given).
    #[arg(long, value_enum, value_name = "LAYOUT")]
    pub layout: Option<Layout>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Worker threads tracking connections (default: one more than the cores; at most 1024).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Timer profile of the observed hosts' TCP stack.
    #[arg(long, value_enum, default_value_t = Os::Linux)]
    pub os: Os,

    /// The memory bound: most connections tracked at once (beyond it the least useful are
    /// evicted and counted), and with it the per-address entries kept (default: sized to
    /// available memory; at most 2147483647).
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

    /// INTERVAL: print the views every INTERVAL seconds of capture time, then at the end.
    /// Anything else: a filter expression, as tcpdump takes it.
    #[arg(value_name = "INTERVAL | EXPRESSION", allow_negative_numbers = true)]
    pub trailing: Vec<String>,
}

/// What the words after the options are.
#[derive(Clone, Debug, PartialEq)]
pub enum Trailing {
    None,
    /// One number: netstat's INTERVAL (not yet checked to be positive).
    Interval(f64),
    /// Anything else: a filter expression, the words joined as tcpdump joins them.
    Filter(String),
}

impl Args {
    /// Parses the process's arguments, Linux's `-p` told apart from Windows' first.
    pub fn from_env() -> Args {
        Args::parse_from(linux_p(std::env::args_os().collect()))
    }

    pub fn trailing(&self) -> Trailing {
        match self.trailing.as_slice() {
            [] => Trailing::None,
            [one] if looks_numeric(one) => Trailing::Interval(one.parse().unwrap_or(f64::NAN)),
            words => Trailing::Filter(words.join(" ")),
        }
    }
}

/// A number as a word: a digit, a sign or a point first, and all of it a
/// float. ("nan" or "inf" are not INTERVALs a person types; "1e3" is.)
fn looks_numeric(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '.' | '-' | '+')) && s.parse::<f64>().is_ok()
}

/// Windows netstat's protocol names, which its `-p` takes.
fn is_protocol(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "tcp" | "tcpv6" | "udp" | "udpv6" | "ip" | "ipv6" | "icmp" | "icmpv6")
}

/// Long options that take the next argument as their value.
const LONG_WITH_VALUE: &[&str] = &[
    "--read",
    "--interface",
    "--write",
    "--snaplen",
    "--buffer-size",
    "--filter",
    "--count",
    "--host",
    "--layout",
    "--format",
    "--workers",
    "--os",
    "--max-flows",
    "--idle-timeout",
    "--top",
];

/// Rewrites Linux's `-p` (show the owning process) as `--program`, leaving
/// Windows' `-p PROTO` to clap. `-p` is Windows' when it has a protocol name
/// after it (`-p TCP`, `-pTCP`, `-anp tcp`), unless bundled with a Linux-only
/// letter before it (`-tlp tcp port 80` is Linux's `-p` and a filter); any
/// other `-p` is Linux's (`-tulpn`, `-anp`, a `-p` with nothing after it).
/// Values of options are passed through untouched.
pub fn linux_p(argv: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len() + 1);
    let mut it = argv.into_iter().peekable();
    out.extend(it.next());
    while let Some(arg) = it.next() {
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            out.push(arg);
            out.extend(it);
            break;
        }
        if s.starts_with("--") {
            let takes_value = LONG_WITH_VALUE.contains(&s);
            out.push(arg);
            if takes_value {
                out.extend(it.next());
            }
            continue;
        }
        let cluster = match s.strip_prefix('-') {
            Some(c) if !c.is_empty() && !looks_numeric(s) => c.to_string(),
            _ => {
                out.push(arg);
                continue;
            }
        };
        let mut letters = String::new();
        let mut program = false;
        // The option that ends the cluster by taking a value, and whatever is attached to it.
        let mut tail = "";
        for (i, c) in cluster.char_indices() {
            match c {
                'r' | 'f' | 'c' | 'i' | 'w' | 'B' => {
                    tail = &cluster[i..];
                    break;
                }
                'p' => {
                    let after = &cluster[i + 1..];
                    let linux_bundle = letters.contains(['t', 'u', 'l']);
                    let names_protocol = if after.is_empty() {
                        it.peek().and_then(|n| n.to_str()).is_some_and(is_protocol)
                    } else {
                        is_protocol(after.trim_start_matches('='))
                    };
                    if names_protocol && !linux_bundle {
                        tail = &cluster[i..];
                        break;
                    }
                    program = true;
                }
                _ => letters.push(c),
            }
        }
        // Before the cluster: an option ending it may take the next argument as its value.
        if program {
            out.push("--program".into());
        }
        if !letters.is_empty() || !tail.is_empty() {
            out.push(format!("-{letters}{tail}").into());
        }
        if tail.len() == 1 {
            out.extend(it.next());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        let mut v: Vec<OsString> = vec!["wirestat".into()];
        v.extend(args.iter().map(OsString::from));
        linux_p(v).into_iter().skip(1).map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn windows_p_takes_a_protocol() {
        assert_eq!(norm(&["-p", "TCP", "-an"]), ["-p", "TCP", "-an"]);
        assert_eq!(norm(&["-anp", "tcp"]), ["-anp", "tcp"]);
        assert_eq!(norm(&["-pTCPv6"]), ["-pTCPv6"]);
        assert_eq!(norm(&["-p=udp"]), ["-p=udp"]);
        assert_eq!(norm(&["-p", "UDP"]), ["-p", "UDP"]);
    }

    #[test]
    fn linux_p_is_the_process_column() {
        assert_eq!(norm(&["-tulpn"]), ["--program", "-tuln"]);
        assert_eq!(norm(&["-tlp"]), ["--program", "-tl"]);
        assert_eq!(norm(&["-anp"]), ["--program", "-an"]);
        assert_eq!(norm(&["-p"]), ["--program"]);
        assert_eq!(norm(&["-p", "5"]), ["--program", "5"]);
        assert_eq!(norm(&["-pn"]), ["--program", "-n"]);
        // A Linux bundle before it: the protocol name is the filter's.
        assert_eq!(norm(&["-tlp", "tcp", "port", "80"]), ["--program", "-tl", "tcp", "port", "80"]);
    }

    #[test]
    fn option_values_are_left_alone() {
        assert_eq!(norm(&["-r", "-p", "-an"]), ["-r", "-p", "-an"]);
        assert_eq!(norm(&["-f", "-tulpn"]), ["-f", "-tulpn"]);
        assert_eq!(norm(&["--filter", "-p"]), ["--filter", "-p"]);
        assert_eq!(norm(&["-rp.pcap", "-tp"]), ["-rp.pcap", "--program", "-t"]);
        assert_eq!(norm(&["-tpr", "x.pcap"]), ["--program", "-tr", "x.pcap"]);
        assert_eq!(norm(&["-c", "10", "-5"]), ["-c", "10", "-5"]);
        assert_eq!(norm(&["--", "-p"]), ["--", "-p"]);
        assert_eq!(norm(&["--host=::1", "-p"]), ["--host=::1", "--program"]);
    }

    #[test]
    fn trailing_words() {
        let t = |w: &[&str]| {
            let mut v = vec!["wirestat", "-r", "x"];
            v.extend(w);
            Args::parse_from(v).trailing()
        };
        assert_eq!(t(&[]), Trailing::None);
        assert_eq!(t(&["5"]), Trailing::Interval(5.0));
        assert_eq!(t(&["0.5"]), Trailing::Interval(0.5));
        assert_eq!(t(&["-5"]), Trailing::Interval(-5.0));
        assert_eq!(t(&["tcp", "port", "80"]), Trailing::Filter("tcp port 80".into()));
        assert_eq!(t(&["port 80"]), Trailing::Filter("port 80".into()));
        assert_eq!(t(&["tcp", "5"]), Trailing::Filter("tcp 5".into()));
        assert_eq!(t(&["nan"]), Trailing::Filter("nan".into()));
    }
}

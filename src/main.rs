//! wirestat's command line: parse, run the replay, print the views. Errors are
//! reported here, once, as one line with what to do about them.
//!
//! Exit status, for scripts: 0 all read; 1 a capture could not be read to its
//! end (the views of what was read are printed); 2 bad arguments or a file
//! that cannot be opened or is not a capture. A reader that closes the output
//! early (`| head`) is not an error: exit 0, quietly.

mod cli;
mod live_cmd;

use cli::{Args, Format, Layout, Trailing};
use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use wirestat::Error;
use wirestat::analysis::Interest;
use wirestat::analysis::top::{Rank, TopShared};
use wirestat::os::Profile;
use wirestat::pipeline::{self, Config, Reading, Replay};
use wirestat::report::{Health, HostView, Store};
use wirestat::view::{self, Proto, ViewOpts};

/// Memory planned per tracked connection when sizing the default `--max-flows`.
const BYTES_PER_FLOW_BUDGET: u64 = 256;
/// The tables index a shard's connections with 31 bits (the 32nd tells IPv6).
const MAX_FLOWS: usize = (1 << 31) - 1;
/// More worker threads than this is a typo, not a machine: each is a thread
/// with its own channel and tables.
const MAX_WORKERS: usize = 1024;
/// Longest INTERVAL and --idle-timeout: about 31 years, far inside the
/// nanosecond capture clock's range.
const MAX_SECONDS: f64 = 1e9;
/// Shortest INTERVAL: capture times are printed to the microsecond.
const MIN_INTERVAL: f64 = 1e-6;

const EXIT_PARTLY_READ: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    fixed_malloc_thresholds();
    let args = Args::from_env();
    match run(&args) {
        Ok(Read::Whole) => ExitCode::SUCCESS,
        Ok(Read::Partly) => ExitCode::from(EXIT_PARTLY_READ),
        // Whoever reads the output has what they wanted (`| head`): as in ripgrep.
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            say(&explain(&e, &args));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// One line on stderr. A stderr that is gone (`2>&1 | head`) is not worth
/// a panic: the exit status still tells.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "wirestat: {line}");
}

/// Whether every capture was read to its end.
enum Read {
    Whole,
    Partly,
}

/// glibc raises its mmap threshold whenever a large block is freed (here: the
/// index's old bucket array as the table grows), after which the tables' chunks
/// come from heaps that never shrink: the memory freed while the last snapshot
/// consumes the tables would stay resident under the rows being built. Fixed
/// thresholds keep large blocks in their own mappings, returned when freed.
fn fixed_malloc_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}

/// The error with a hint of what to do next.
fn explain(e: &Error, args: &Args) -> String {
    match e {
        Error::Open { .. } => format!("{e} (check the path and that you may read it)"),
        Error::NotACapture { .. } => format!("{e}; wirestat reads pcap and pcapng files, e.g. from tcpdump -w"),
        Error::Filter { .. } if matches!(args.trailing(), Trailing::Filter(_)) => format!(
            "{e}; the words after the options were read as a filter expression (one number alone is INTERVAL): \
             to give a filter and an INTERVAL, put the filter in -f 'EXPRESSION'"
        ),
        Error::Filter { .. } => format!("{e}; see 'man pcap-filter' for the syntax"),
        Error::CapturePermission { .. } => live_cmd::explain_permission(e),
        _ => e.to_string(),
    }
}

/// Everything the arguments ask for, checked.
struct Plan {
    opts: ViewOpts,
    cfg: Config,
    replay: Replay,
    /// Lines for stderr before the replay: what was asked that the wire cannot give.
    notes: Vec<String>,
    /// Without `--host`, with `--top N`: how the workers pick the hosts shown.
    top: Option<Arc<TopShared>>,
}

fn plan(args: &Args) -> Result<Plan, Error> {
    let usage = |m: String| Err(Error::Usage(m));
    let proto = match &args.proto {
        None => None,
        Some(p) => Some(Proto::parse(p).ok_or_else(|| {
            Error::Usage(format!("-p {p}: wirestat knows TCP and TCPv6 (UDP, IP and ICMP views are not built yet)"))
        })?),
    };
    let mut notes = Vec::new();
    let linux = match args.layout {
        Some(l) => l == Layout::Linux,
        None => args.tcp || args.udp || args.listening || args.program,
    };
    if args.udp {
        let what = if args.tcp { "showing TCP only" } else { "nothing to show without -t" };
        notes.push(format!("-u: UDP sockets are not tracked yet ({what})"));
    }
    if args.program {
        let what = if linux && args.format == Format::Text { " (the PID/Program name column shows -)" } else { "" };
        notes.push(format!("-p: the process that owns a socket is not visible on the wire{what}"));
    }
    let opts = ViewOpts {
        table: args.all || args.numeric || args.listening || !args.stats,
        all: args.all,
        stats: args.stats,
        proto,
        listening: args.listening,
        no_tcp: args.udp && !args.tcp,
        linux,
        program: args.program,
    };

    let workers = match args.workers {
        Some(0) => return usage("--workers needs at least 1".into()),
        Some(n) if n > MAX_WORKERS => {
            return usage(format!(
                "--workers {n}: at most {MAX_WORKERS} (the default, one more than the cores, is usually best)"
            ));
        }
        Some(n) => n,
        // One more than the cores: the reader thread waits now and then on
        // one worker's full queue while another runs dry, and a spare worker
        // keeps the cores busy meanwhile (on two cores, three workers ran a
        // SYN flood 12% faster than two, and a 10M-packet replay 3%).
        None => (std::thread::available_parallelism().map_or(1, |n| n.get()) + 1).min(MAX_WORKERS),
    };
    let max_flows = match args.max_flows {
        Some(0) => return usage("--max-flows needs at least 1".into()),
        Some(n) if n > MAX_FLOWS => {
            return usage(format!("--max-flows {n}: at most {MAX_FLOWS} (the tables index connections with 31 bits)"));
        }
        Some(n) => n,
        None => default_max_flows(),
    };
    if max_flows < workers {
        // Each worker gets its share rounded up: at least one connection.
        notes.push(format!(
            "--max-flows {max_flows} is less than one connection per worker: each of the {workers} workers \
             tracks 1, up to {workers} in all"
        ));
    }
    let idle = match args.idle_timeout {
        None => None,
        Some(s) => Some(Duration::from_secs_f64(seconds("--idle-timeout", s, 0.0)?)),
    };
    let (filter, interval) = match (args.trailing(), &args.filter) {
        (Trailing::None, f) => (f.clone(), 0),
        (Trailing::Interval(s), f) => (f.clone(), (seconds("INTERVAL", s, MIN_INTERVAL)? * 1e9).round() as u64),
        (Trailing::Filter(words), None) => (Some(words), 0),
        (Trailing::Filter(words), Some(f)) => {
            return usage(format!(
                "a filter given twice, with -f {f:?} and as the words {words:?}: give it once (the words after \
                 the options are INTERVAL when they are one number, else a filter expression)"
            ));
        }
    };
    if args.count == Some(0) {
        return usage("-c needs at least 1 frame".into());
    }
    same_file_twice(&args.read)?;
    // Without --host only the busiest hosts are shown: the workers pick them
    // while publishing, so the others' views are never built.
    let top = (args.host.is_empty() && args.top > 0 && !opts.no_tcp).then(|| {
        let rank = Rank {
            n: args.top,
            listeners: opts.all || opts.listening,
            stats: opts.stats,
            v6_only: opts.proto.map(|p| p == Proto::TcpV6),
            listening_only: opts.listening && !opts.stats,
        };
        Arc::new(TopShared::new(rank, workers))
    });
    let interest = if !args.host.is_empty() {
        Interest::Only(Arc::new(args.host.iter().copied().collect::<HashSet<IpAddr>>()))
    } else if let Some(t) = &top {
        Interest::Top(t.clone())
    } else {
        Interest::All
    };
    let cfg = Config {
        workers,
        profile: Profile::new(args.os).with_idle_timeout(idle),
        interest,
        max_flows,
        dedup: !args.keep_duplicates,
        ..Config::default()
    };
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let replay =
        Replay { files: args.read.clone(), filter, reading: Reading { interval, progress, count: args.count } };
    Ok(Plan { opts, cfg, replay, notes, top })
}

/// A number of seconds from the command line: positive, finite, within range.
fn seconds(what: &str, s: f64, min: f64) -> Result<f64, Error> {
    if !(s > 0.0 && s.is_finite()) {
        return Err(Error::Usage(format!("{what} {s}: needs a positive number of seconds")));
    }
    if s < min {
        return Err(Error::Usage(format!("{what} {s}: the shortest is {min} seconds")));
    }
    if s > MAX_SECONDS {
        return Err(Error::Usage(format!("{what} {s}: at most {MAX_SECONDS} seconds (about 31 years)")));
    }
    Ok(s)
}

/// Merging a capture with itself would count every packet twice (each one a
/// retransmission of itself): the same file under two names is refused.
fn same_file_twice(files: &[PathBuf]) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let mut seen: Vec<((u64, u64), &Path)> = Vec::new();
    for p in files.iter().filter(|p| p.as_os_str() != "-") {
        // A file that cannot be read is reported when it is opened.
        let Ok(m) = std::fs::metadata(p) else { continue };
        let id = (m.dev(), m.ino());
        if let Some((_, first)) = seen.iter().find(|(i, _)| *i == id) {
            let names = if *first == p.as_path() {
                format!("-r {} is given twice", p.display())
            } else {
                format!("-r {} and -r {} are the same file", first.display(), p.display())
            };
            return Err(Error::Usage(format!("{names}: merged with itself, every packet would count twice")));
        }
        seen.push((id, p));
    }
    Ok(())
}

/// What the last snapshot showed, to say why when it showed nothing.
#[derive(Default)]
struct Shown {
    /// Hosts with a view (without --host).
    hosts: usize,
    /// --host addresses that took part in no TCP at all.
    absent: Vec<IpAddr>,
    /// With --host: the table asked for (and nothing else) has no line.
    empty_table: bool,
}

fn run(args: &Args) -> Result<Read, Error> {
    if args.list_interfaces {
        live_cmd::list_interfaces()?;
        return Ok(Read::Whole);
    }
    let plan = plan(args)?;
    for n in &plan.notes {
        say(n);
    }
    if !args.interface.is_empty() {
        live_cmd::run(args, &plan)?;
        return Ok(Read::Whole);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut shown = Shown::default();
    let health = pipeline::replay(&plan.replay, &plan.cfg, |store, health, _at| {
        shown = print_views(&mut out, store, health, args, &plan)?;
        Ok(())
    })?;
    out.flush()?;
    for line in why_empty(&health, &shown, args, &plan) {
        say(&line);
    }
    for line in view::text::health_lines(&health) {
        say(&line);
    }
    if std::env::var_os("WIRESTAT_THREAD_TIMES").is_some() {
        // For profiling the pipeline: how the CPU time splits between reading and tracking.
        let w: Vec<String> = health.worker_cpu.iter().map(|c| format!("{c:.2}")).collect();
        say(&format!(
            "cpu seconds: reader {:.2} (at the last snapshot), workers [{}]; tables {:.1} MiB allocated",
            health.reader_cpu,
            w.join(", "),
            health.table_bytes as f64 / (1 << 20) as f64
        ));
    }
    Ok(if health.read_errors.is_empty() { Read::Whole } else { Read::Partly })
}

/// Why the views came out empty, if they did: one line each, for stderr.
fn why_empty(health: &Health, shown: &Shown, args: &Args, plan: &Plan) -> Vec<String> {
    let d = &health.decode;
    let filter = plan.replay.filter.as_deref();
    if d.frames == 0 {
        return vec![match filter {
            Some(f) => format!("no frame passed the filter {f:?}: nothing to show"),
            None => "the capture holds no frames: nothing to show".into(),
        }];
    }
    if d.tcp == 0 {
        let hint = if filter.is_some() { " (after the filter)" } else { "" };
        let frames = if d.frames == 1 {
            "the one frame read is not".into()
        } else {
            format!("none of the {} frames read is", d.frames)
        };
        return vec![format!("{frames} a TCP segment{hint}: nothing to show")];
    }
    if plan.opts.no_tcp {
        return Vec::new(); // Said before the replay: only UDP was asked for.
    }
    let mut out: Vec<String> = shown
        .absent
        .iter()
        .map(|a| format!("--host {a}: no TCP segment to or from this address in the capture"))
        .collect();
    if !args.host.is_empty() && shown.empty_table && shown.absent.len() < args.host.len() {
        out.push(if plan.opts.listening {
            "no listening socket of the host seen (a listener shows once it answers a SYN)".into()
        } else if plan.opts.all {
            "the host has no connection or listening socket at the end of the capture (-s shows its TCP counters)"
                .into()
        } else {
            "the host has no connection at the end of the capture (-a adds listening sockets, -s its TCP counters)"
                .into()
        });
    }
    if args.host.is_empty() && shown.hosts == 0 {
        out.push(if plan.opts.listening {
            "no listening socket seen (a listener shows once it answers a SYN)".into()
        } else if plan.opts.all {
            "no host has a connection or listening socket at the end of the capture (-s shows TCP counters)".into()
        } else {
            "no host has a connection at the end of the capture (-a adds listening sockets, -s TCP counters)".into()
        });
    }
    out
}

fn print_views(out: &mut impl Write, store: &Store, health: &Health, args: &Args, plan: &Plan) -> Result<Shown, Error> {
    let opts = &plan.opts;
    let mut shown = Shown::default();
    let hosts: Vec<Vec<IpAddr>> = if args.host.is_empty() {
        if opts.no_tcp {
            Vec::new()
        } else {
            let family = opts.proto.map(|p| p == Proto::TcpV6);
            let mut h = HostView::busiest(store, opts.all || opts.listening, opts.stats, family);
            if opts.listening && !opts.stats {
                h.retain(|a| store.get(a).is_some_and(|v| !v.listen_ports.is_empty()));
            }
            if args.top > 0 {
                h.truncate(args.top);
            }
            h.into_iter().map(|a| vec![a]).collect()
        }
    } else {
        // Naming an address twice must not count it twice.
        let mut addrs: Vec<IpAddr> = Vec::with_capacity(args.host.len());
        for a in &args.host {
            if !addrs.contains(a) {
                addrs.push(*a);
            }
        }
        shown.absent = addrs
            .iter()
            .filter(|a| {
                store.get(a).is_none_or(|v| {
                    v.rows.is_empty() && v.listen_ports.is_empty() && v.tcp.segments_received + v.tcp.segments_sent == 0
                })
            })
            .copied()
            .collect();
        // From the store rather than the rendered lines: a big host's rows are not built twice.
        let table_lines: usize = addrs
            .iter()
            .filter(|a| opts.admits(a.is_ipv6()))
            .filter_map(|a| store.get(a))
            .map(|v| {
                let rows = if opts.listening { 0 } else { v.rows.len() };
                rows + if opts.all || opts.listening { v.listen_ports.len() } else { 0 }
            })
            .sum();
        shown.empty_table = opts.table && !opts.stats && table_lines == 0;
        vec![addrs]
    };
    shown.hosts = hosts.len();
    let mut health = health.clone();
    health.hosts_omitted = plan.top.as_ref().map(|t| t.omitted());
    let health = &health;
    if let Some(r) = &health.repeated {
        match args.format {
            Format::Json => view::json::repeated(out, r)?,
            Format::Text => view::text::repeated(out, r)?,
        }
    }
    if args.format == Format::Text {
        view::text::time_lines(out, health)?;
    }
    let render = |addrs: &Vec<IpAddr>, out: &mut dyn Write| -> std::io::Result<()> {
        let h = HostView::build(store, addrs);
        match args.format {
            Format::Json => view::json::write(out, &h, opts, health),
            Format::Text => view::text::write(out, &h, opts, args.host.is_empty()),
        }
    };
    if let [one] = hosts.as_slice() {
        // One host (--host): straight to the output, row by row.
        render(one, out)?;
    } else {
        // Lines each host will print: rows, listeners with -a, and ~20 for the statistics.
        let rows =
            |a: &Vec<IpAddr>| a.iter().map(|a| store.get(a).map_or(0, |v| v.table_lines(opts.all))).sum::<usize>() + 20;
        view::rounds::write_in_rounds(out, &hosts, plan.cfg.workers, RENDER_ROUND, rows, render)?;
    }
    if args.format == Format::Text && opts.linux && opts.table && !hosts.is_empty() {
        view::text::linux_footnote(out, opts.program)?;
    }
    if let (Format::Text, Some(o)) = (args.format, health.hosts_omitted) {
        view::text::omitted_line(out, &o, health.host_entries_dropped)?;
    }
    Ok(shown)
}

/// Rows rendered per round when many hosts are printed at once.
const RENDER_ROUND: usize = 1 << 17;

/// Half of the memory available now, at the planned bytes per connection.
fn default_max_flows() -> usize {
    let avail_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    });
    let bytes = avail_kb.map_or(4 << 30, |kb| kb * 1024 / 2);
    (bytes / BYTES_PER_FLOW_BUDGET).clamp(1 << 16, MAX_FLOWS as u64) as usize
}

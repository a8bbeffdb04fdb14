//! wirestat's command line: parse, run the replay, print the views. Errors are
//! reported here, once, as one line with what to do about them.

mod cli;
mod live_cmd;

use clap::Parser;
use cli::{Args, Format};
use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use wirestat::Error;
use wirestat::flow::shard::Interest;
use wirestat::os::Profile;
use wirestat::pipeline::{self, Config, Replay};
use wirestat::report::{Health, HostView, Store};
use wirestat::view::{self, Proto, ViewOpts};

/// Memory planned per tracked connection when sizing the default `--max-flows`.
const BYTES_PER_FLOW_BUDGET: u64 = 256;

fn main() -> ExitCode {
    fixed_malloc_thresholds();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wirestat: {}", explain(&e));
            ExitCode::from(2)
        }
    }
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
fn explain(e: &Error) -> String {
    match e {
        Error::Open { .. } => format!("{e} (check the path and that you may read it)"),
        Error::NotACapture { .. } => format!("{e}; wirestat reads pcap and pcapng files, e.g. from tcpdump -w"),
        Error::Filter { .. } => format!("{e}; see 'man pcap-filter' for the syntax"),
        Error::CapturePermission { .. } => live_cmd::explain_permission(e),
        Error::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe => "output closed early".into(),
        _ => e.to_string(),
    }
}

fn run(args: &Args) -> Result<(), Error> {
    if args.list_interfaces {
        return live_cmd::list_interfaces();
    }
    let proto = match &args.proto {
        None => None,
        Some(p) => Some(Proto::parse(p).ok_or_else(|| {
            Error::Usage(format!("-p {p}: wirestat knows TCP and TCPv6 (UDP, IP and ICMP views are not built yet)"))
        })?),
    };
    let opts = ViewOpts { table: args.all || args.numeric || !args.stats, all: args.all, stats: args.stats, proto };
    let workers = threads(args);
    let interest = if args.host.is_empty() {
        Interest::All
    } else {
        Interest::Only(Arc::new(args.host.iter().copied().collect::<HashSet<IpAddr>>()))
    };
    let idle = match args.idle_timeout {
        Some(s) if !(s > 0.0 && s.is_finite()) => {
            return Err(Error::Usage("--idle-timeout needs a positive number of seconds".into()));
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let interval = match args.interval {
        Some(s) if !(s > 0.0 && s.is_finite()) => {
            return Err(Error::Usage("INTERVAL needs a positive number of seconds".into()));
        }
        Some(s) => (s * 1e9) as u64,
        None => 0,
    };
    let cfg = Config {
        workers,
        profile: Profile::new(args.os).with_idle_timeout(idle),
        interest,
        max_flows: args.max_flows.unwrap_or_else(default_max_flows).max(1),
        dedup: !args.keep_duplicates,
    };
    if !args.interface.is_empty() {
        return live_cmd::run(args, &cfg, &opts, interval);
    }
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let replay = Replay { files: args.read.clone(), filter: args.filter.clone(), interval, progress };

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let health =
        pipeline::replay(&replay, &cfg, |store, health, _at| print_views(&mut out, store, health, args, &opts))?;
    out.flush()?;
    for line in view::text::health_lines(&health) {
        eprintln!("wirestat: {line}");
    }
    if std::env::var_os("WIRESTAT_THREAD_TIMES").is_some() {
        // For profiling the pipeline: how the CPU time splits between reading and tracking.
        let w: Vec<String> = health.worker_cpu.iter().map(|c| format!("{c:.2}")).collect();
        eprintln!(
            "wirestat: cpu seconds: reader {:.2} (at the last snapshot), workers [{}]; tables {:.1} MiB allocated",
            health.reader_cpu,
            w.join(", "),
            health.table_bytes as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}

fn print_views(
    out: &mut impl Write,
    store: &Store,
    health: &Health,
    args: &Args,
    opts: &ViewOpts,
) -> Result<(), Error> {
    let hosts: Vec<Vec<IpAddr>> = if args.host.is_empty() {
        let family = opts.proto.map(|p| p == Proto::TcpV6);
        HostView::busiest(store, opts.all, opts.stats, family).into_iter().map(|a| vec![a]).collect()
    } else {
        // Naming an address twice must not count it twice.
        let mut addrs: Vec<IpAddr> = Vec::with_capacity(args.host.len());
        for a in &args.host {
            if !addrs.contains(a) {
                addrs.push(*a);
            }
        }
        vec![addrs]
    };
    if args.interval.is_some() && args.format == Format::Text {
        writeln!(out, "\nCapture time {}", view::json::seconds(health.snapshot_ns))?;
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
        return Ok(());
    }
    // Lines each host will print: rows, listeners with -a, and ~20 for the statistics.
    let rows =
        |a: &Vec<IpAddr>| a.iter().map(|a| store.get(a).map_or(0, |v| v.table_lines(opts.all))).sum::<usize>() + 20;
    view::rounds::write_in_rounds(out, &hosts, threads(args), RENDER_ROUND, rows, render)?;
    Ok(())
}

/// Worker threads: --workers, or one per core.
fn threads(args: &Args) -> usize {
    args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1)
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
    (bytes / BYTES_PER_FLOW_BUDGET).clamp(1 << 16, 1 << 32) as usize
}

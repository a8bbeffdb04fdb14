//! Text views: Windows netstat's layout (`Active Connections`, `TCP
//! Statistics for IPv4/IPv6`) by default, or Linux netstat's (`Active Internet
//! connections` with Recv-Q and Send-Q, `Tcp:` statistics).

use super::{Line, ViewOpts, lines, utc};
use crate::analysis::top::Omitted;
use crate::decode::DecodeStats;
use crate::flow::TcpState;
use crate::pipeline::Repeated;
use crate::report::TcpCounters;
use crate::report::{Health, HostView};
use std::io::{self, Write};

pub fn write(out: &mut dyn Write, h: &HostView, o: &ViewOpts, header: bool) -> io::Result<()> {
    if header {
        let names: Vec<String> = h.addrs.iter().map(|a| a.to_string()).collect();
        writeln!(out, "\nHost {}", names.join(", "))?;
    }
    if o.table {
        table(out, &lines(h, o), o)?;
    }
    if o.stats {
        if o.linux {
            linux_stats(out, h, o)?;
        } else {
            if o.admits(false) {
                stats_block(out, "IPv4", &h.tcp_v4)?;
            }
            if o.admits(true) {
                stats_block(out, "IPv6", &h.tcp_v6)?;
            }
        }
    }
    Ok(())
}

/// Windows netstat pads both address columns to 23; Linux's to 23 plus one space.
const ADDR_WIDTH: usize = 23;

fn table(out: &mut dyn Write, lines: &[Line], o: &ViewOpts) -> io::Result<()> {
    let mut buf = [0u8; 56];
    // An IPv6 address can outgrow the column: widen it for the whole table so
    // the columns stay aligned. Only IPv6 can (an IPv4 endpoint is at most
    // 21 characters), so only those are measured.
    let (mut wl, mut wf) = (ADDR_WIDTH, ADDR_WIDTH);
    for l in lines.iter().filter(|l| l.v6()) {
        wl = wl.max(l.local.text_len() + 1);
        wf = wf.max(l.foreign.text_len() + 1);
    }
    let mut row: Vec<u8> = Vec::with_capacity(160);
    if o.linux {
        let title = if o.listening {
            "only servers"
        } else if o.all {
            "servers and established"
        } else {
            "w/o servers"
        };
        // Linux leaves a space after the padded column as well.
        let (wl, wf) = (wl + 1, wf + 1);
        row.extend_from_slice(format!("\nActive Internet connections ({title})\nProto Recv-Q Send-Q ").as_bytes());
        pad(&mut row, "Local Address", wl);
        pad(&mut row, "Foreign Address", wf);
        if o.program {
            pad(&mut row, "State", 12);
            row.extend_from_slice(b"PID/Program name");
        } else {
            row.extend_from_slice(b"State");
        }
        row.push(b'\n');
        out.write_all(&row)?;
        for l in lines {
            row.clear();
            let proto = if l.v6() { "tcp6" } else { "tcp" };
            // Recv-Q is what the host's kernel holds unread: not on the wire. So is
            // Send-Q when the peer's ACKs were not captured (one-sided).
            if l.one_sided {
                row.extend_from_slice(format!("{proto:<4}       -      - ").as_bytes());
            } else {
                row.extend_from_slice(format!("{proto:<4}       - {:>6} ", l.send_q).as_bytes());
            }
            pad(&mut row, l.local.render(&mut buf), wl);
            if l.state == TcpState::Listen {
                pad(&mut row, if l.v6() { "[::]:*" } else { "0.0.0.0:*" }, wf);
            } else {
                pad(&mut row, l.foreign.render(&mut buf), wf);
            }
            if o.program {
                pad(&mut row, linux_state(l.state), 12);
                row.push(b'-');
            } else {
                row.extend_from_slice(linux_state(l.state).as_bytes());
            }
            row.push(b'\n');
            out.write_all(&row)?;
        }
        return Ok(());
    }
    row.extend_from_slice(b"\nActive Connections\n\n  Proto  ");
    pad(&mut row, "Local Address", wl);
    pad(&mut row, "Foreign Address", wf);
    row.extend_from_slice(b"State\n");
    out.write_all(&row)?;
    for l in lines {
        // Columns as Windows netstat pads them, assembled by hand: this loop
        // runs once per row of a busy server, after the replay, on one thread.
        row.clear();
        row.extend_from_slice(b"  ");
        pad(&mut row, l.proto(), 7);
        pad(&mut row, l.local.render(&mut buf), wl);
        pad(&mut row, l.foreign.render(&mut buf), wf);
        row.extend_from_slice(l.state.name().as_bytes());
        row.push(b'\n');
        out.write_all(&row)?;
    }
    Ok(())
}

/// The state names Linux netstat prints (`/proc/net/tcp`'s states as net-tools spells them).
fn linux_state(s: TcpState) -> &'static str {
    match s {
        TcpState::SynRcvd => "SYN_RECV",
        TcpState::FinWait1 => "FIN_WAIT1",
        TcpState::FinWait2 => "FIN_WAIT2",
        TcpState::Closed => "CLOSE",
        other => other.name(),
    }
}

/// What the Linux layout's columns mean, once after the tables of a snapshot.
pub fn linux_footnote(out: &mut dyn Write, program: bool) -> io::Result<()> {
    out.write_all(
        b"\nRecv-Q  -: not on the wire (what the host received and its application has not read yet)\n\
          Send-Q  sent and not yet acknowledged at that time, SYN and FIN one each as Linux counts them;\n        \
          data the host's kernel had not sent yet is not on the wire; -: seen from one side only\n",
    )?;
    if program {
        out.write_all(b"PID/Program name  -: no packet carries the process that owns a socket\n")?;
    }
    Ok(())
}

/// `netstat -s` on Linux: one `Tcp:` block, IPv4 and IPv6 counted together
/// as the kernel's Tcp MIB does (only the family `-p` names, if given).
fn linux_stats(out: &mut dyn Write, h: &HostView, o: &ViewOpts) -> io::Result<()> {
    let mut c = TcpCounters::default();
    if o.admits(false) {
        c.add(&h.tcp_v4);
    }
    if o.admits(true) {
        c.add(&h.tcp_v6);
    }
    out.write_all(b"\nTcp:\n")?;
    for ((_, _, v), what) in c.entries().zip(TcpCounters::LINUX_LABELS) {
        writeln!(out, "    {v} {what}")?;
    }
    Ok(())
}

/// After the views of the busiest hosts (`--top N`), one line counting the
/// rest, and saying so when most of them only sent unanswered SYNs (a flood's
/// spoofed sources, a scan), with what to do about it today. Addresses whose
/// counters the memory bound did not keep (`dropped` entries) are not among
/// the rest: the line says how many entries that was.
pub fn omitted_line(out: &mut dyn Write, o: &Omitted, dropped: u64) -> io::Result<()> {
    if o.hosts == 0 && dropped == 0 {
        return Ok(());
    }
    let hosts = if o.hosts == 1 { "1 more host".to_string() } else { format!("{} more hosts", o.hosts) };
    let besides = if dropped > 0 {
        format!(" (besides {dropped} per-address entries not kept within --max-flows)")
    } else {
        String::new()
    };
    if o.syn_only * 2 > o.hosts {
        writeln!(
            out,
            "\n{hosts} not shown{besides}, {} of them only sent SYNs nobody answered (a SYN flood's spoofed \
             sources, or a scan): --host ADDR shows the host they aimed at, --top 0 every host (the coming \
             'wirestat audit' will list floods and scans)",
            o.syn_only
        )
    } else {
        writeln!(out, "\n{hosts} not shown{besides}: --top 0 shows every host, --host ADDR one host in full")
    }
}

/// The capture time a snapshot describes, and the times of the frames read,
/// in UTC: the first lines of each text snapshot.
pub fn time_lines(out: &mut dyn Write, health: &Health) -> io::Result<()> {
    match health.frame_span {
        None => writeln!(out, "\nCapture time   none: no frames read"),
        Some((first, last)) => writeln!(
            out,
            "\nCapture time   {} UTC\nFrames read    {}, from {} UTC to {} UTC",
            utc(health.snapshot_ns, ' '),
            health.decode.frames,
            utc(first, ' '),
            utc(last, ' ')
        ),
    }
}

/// The INTERVAL views not shown before a view because they equal the one
/// shown before them: one line in their place.
pub fn repeated(out: &mut dyn Write, r: &Repeated) -> io::Result<()> {
    if r.views == 1 {
        writeln!(out, "\n(1 identical view at {} UTC not repeated)", utc(r.from, ' '))
    } else {
        writeln!(
            out,
            "\n({} identical views from {} UTC to {} UTC not repeated)",
            r.views,
            utc(r.from, ' '),
            utc(r.to, ' ')
        )
    }
}

/// Appends `s` left-aligned in `width` columns, always followed by at least one space.
fn pad(row: &mut Vec<u8>, s: &str, width: usize) {
    row.extend_from_slice(s.as_bytes());
    row.resize(row.len() + width.saturating_sub(s.len()).max(1), b' ');
}

fn stats_block(out: &mut dyn Write, family: &str, c: &TcpCounters) -> io::Result<()> {
    writeln!(out, "\nTCP Statistics for {family}\n")?;
    for (_, name, v) in c.entries() {
        writeln!(out, "  {name:<36}= {v}")?;
    }
    Ok(())
}

/// The capture-health lines for stderr: what could not be read or decoded,
/// what memory pressure evicted. Nothing when all is well.
pub fn health_lines(h: &Health) -> Vec<String> {
    let d = &h.decode;
    let label = |n: u64, key: &'static str| (n, DecodeStats::FIELDS.iter().find(|f| f.0 == key).map_or(key, |f| f.1));
    let counted = [
        label(d.undecodable, "undecodable"),
        label(d.bad_timestamps, "bad_timestamps"),
        label(d.out_of_order, "out_of_order"),
        label(d.unknown_link, "unknown_link_type"),
        (h.flows_evicted, "flows evicted"),
        (
            h.one_sided_connections,
            "connections seen from one side only: the mirror looks incomplete (one direction missing); \
             their rows are inferred from that side",
        ),
        (h.duplicates, "duplicate frames dropped (exact copies within 1 ms, as a SPAN session delivers them)"),
        (
            h.host_entries_dropped,
            "per-address entries not kept (counters of closed connections, listeners) to stay within --max-flows: \
             the busiest hosts' are kept; --host ADDR keeps a host's whole",
        ),
    ];
    let mut out = h.read_errors.clone();
    out.extend(counted.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")));
    out
}

//! Rendering many hosts' views on every core. A mirror-port replay ends with
//! hundreds of hosts to print, one after another, while the other cores sit
//! idle: hosts are rendered in parallel into memory, a round of about
//! `round_rows` rows at a time (so the text waiting to be written stays
//! bounded), and each round is written in the hosts' order. A host bigger
//! than a round is written straight to the output.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes `render(host)` for every host, in order. `rows(host)` estimates the
/// host's size (rows in its table) to cut the rounds.
pub fn write_in_rounds<H: Sync>(
    out: &mut dyn Write,
    hosts: &[H],
    threads: usize,
    round_rows: usize,
    rows: impl Fn(&H) -> usize + Sync,
    render: impl Fn(&H, &mut dyn Write) -> io::Result<()> + Sync,
) -> io::Result<()> {
    let mut start = 0;
    while start < hosts.len() {
        let (mut end, mut n) = (start, 0);
        while end < hosts.len() && (end == start || n + rows(&hosts[end]) <= round_rows) {
            n += rows(&hosts[end]);
            end += 1;
        }
        let round = &hosts[start..end];
        if n > round_rows {
            // One host bigger than a round: straight to the output, never all in memory.
            render(&round[0], out)?;
            start = end;
            continue;
        }
        let next = AtomicUsize::new(0);
        let work = || -> io::Result<Vec<(usize, Vec<u8>)>> {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(h) = round.get(i) else { break };
                // About 80 bytes a row: grown once, not doubled all the way up.
                let mut buf = Vec::with_capacity(80 * rows(h) + 1024);
                render(h, &mut buf)?;
                mine.push((i, buf));
            }
            Ok(mine)
        };
        let mut bufs: Vec<(usize, Vec<u8>)> = std::thread::scope(|s| {
            let others: Vec<_> = (1..threads.min(round.len())).map(|_| s.spawn(work)).collect();
            let mut all = work()?;
            for h in others {
                all.extend(h.join().expect("render thread")?);
            }
            Ok::<_, io::Error>(all)
        })?;
        bufs.sort_unstable_by_key(|(i, _)| *i);
        for (_, b) in bufs {
            out.write_all(&b)?;
        }
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Host `i` has `i % 7` rows; each renders as its number and row count.
    fn run(threads: usize, round_rows: usize) -> String {
        let hosts: Vec<usize> = (0..500).collect();
        let mut out = Vec::new();
        write_in_rounds(&mut out, &hosts, threads, round_rows, |h| h % 7, |h, buf| writeln!(buf, "{h}:{}", h % 7))
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn hosts_come_out_in_order_whatever_the_threads_and_rounds() {
        let want: String = (0..500).map(|h| format!("{h}:{}\n", h % 7)).collect();
        for threads in [1, 2, 3, 8] {
            for round_rows in [0, 1, 5, 64, 1 << 20] {
                assert_eq!(run(threads, round_rows), want, "{threads} threads, rounds of {round_rows} rows");
            }
        }
    }

    #[test]
    fn a_render_error_is_returned() {
        let hosts = [1, 2, 3];
        let r = write_in_rounds(
            &mut Vec::new(),
            &hosts,
            2,
            1,
            |_| 1,
            |h, _| {
                if *h == 2 { Err(io::Error::other("disk full")) } else { Ok(()) }
            },
        );
        assert_eq!(r.unwrap_err().to_string(), "disk full");
    }
}

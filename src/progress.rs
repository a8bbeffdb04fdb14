//! A progress line for long replays: percent of bytes read, packet rate and
//! tracked connections, on stderr and only when stderr is a terminal.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    enabled: bool,
    shown: bool,
    start: Instant,
    last: Instant,
    calls: u32,
}

/// How often the clock is even looked at: every this many packets.
const CHECK_EVERY: u32 = 1 << 16;
const REDRAW: Duration = Duration::from_millis(250);

impl Progress {
    pub fn with(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress { enabled, shown: false, start: now, last: now, calls: 0 }
    }

    /// Called once per packet; does real work only now and then.
    #[inline]
    pub fn tick(&mut self, packets: u64, bytes: impl FnOnce() -> (u64, u64), flows: impl FnOnce() -> u64) {
        if !self.enabled {
            return;
        }
        self.calls = self.calls.wrapping_add(1);
        if !self.calls.is_multiple_of(CHECK_EVERY) {
            return;
        }
        let now = Instant::now();
        if now - self.last < REDRAW {
            return;
        }
        self.last = now;
        let (done, total) = bytes();
        let secs = (now - self.start).as_secs_f64().max(1e-9);
        // Standard input has no size to measure progress against.
        let pct = if total > 0 { format!("[{:5.1}%] ", 100.0 * done as f64 / total as f64) } else { String::new() };
        let line =
            format!("\r\x1b[K{pct}{packets} packets, {:.2} Mpkt/s, {} flows", packets as f64 / secs / 1e6, flows());
        let _ = std::io::stderr().write_all(line.as_bytes());
        self.shown = true;
    }

    /// Clears the line before results are printed.
    pub fn finish(&mut self) {
        if self.shown {
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
            self.shown = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_progress_never_asks_for_figures() {
        let mut p = Progress::with(false);
        for i in 0..(3 * CHECK_EVERY as u64) {
            p.tick(i, || panic!("bytes asked"), || panic!("flows asked"));
        }
        p.finish();
        assert!(!p.shown);
    }

    #[test]
    fn enabled_progress_looks_at_the_clock_only_every_so_often() {
        let mut p = Progress::with(true);
        let mut asked = 0;
        for i in 0..(CHECK_EVERY as u64 - 1) {
            p.tick(
                i,
                || {
                    asked += 1;
                    (0, 0)
                },
                || 0,
            );
        }
        assert_eq!(asked, 0, "no figures before CHECK_EVERY packets");
    }
}

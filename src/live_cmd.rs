//! The live command path (`wirestat -i IFACE ...`, `wirestat -D`): signals,
//! a display thread, and the capture's health on stderr.
//!
//! Without INTERVAL the views are printed once, after SIGINT or SIGTERM:
//! capturing stops, what was captured is tracked to the end, the views are
//! printed and wirestat exits 0. A second signal exits at once. With
//! INTERVAL the views are redrawn in place on a terminal (like `watch`) and
//! appended otherwise, each headed by its time (JSON: one document a line).
//!
//! The capture thread never waits for the output: views are rendered into a
//! buffer and handed to a writer thread; when the writer is still busy with
//! an older view, that one is replaced by the newer (and counted).

use super::cli::{Args, Format};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use wirestat::Error;
use wirestat::capture::live::{LiveOptions, LiveSource};
use wirestat::pipeline::{self, Reading};
use wirestat::view;

/// Set by the first SIGINT or SIGTERM; the capture polls it between reads.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe work here: an atomic swap, and _exit.
    if STOP.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe; a second Ctrl-C means "now".
        unsafe { libc::_exit(130) };
    }
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the sigaction struct is zeroed then filled in full; the handler
        // only touches an atomic and calls _exit. No SA_RESTART: a signal
        // interrupts the capture's poll() at once.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// `-D`: the interfaces, numbered as `-i N` takes them, like tcpdump -D.
pub fn list_interfaces() -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    for (n, i) in wirestat::capture::interfaces()?.iter().enumerate() {
        let desc = i.description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default();
        let flags = if i.flags.is_empty() { String::new() } else { format!(" [{}]", i.flags.join(", ")) };
        writeln!(out, "{}.{}{desc}{flags}", n + 1, i.name)?;
    }
    Ok(())
}

/// "No permission" with the two ways out.
pub fn explain_permission(e: &Error) -> String {
    let exe = std::env::current_exe().map_or_else(|_| "wirestat".into(), |p| p.display().to_string());
    format!("{e}: run as root, or allow this binary to capture with: setcap cap_net_raw,cap_net_admin=eip {exe}")
}

pub fn run(args: &Args, plan: &super::Plan) -> Result<(), Error> {
    let (cfg, interval) = (&plan.cfg, plan.replay.reading.interval);
    install_signal_handlers();
    let o = LiveOptions {
        interfaces: args.interface.clone(),
        filter: args.filter.clone(),
        snaplen: args.snaplen.max(64),
        buffer_kib: args.buffer_kib.max(1),
        promisc: !args.no_promisc,
        save: args.write.clone(),
    };
    let src = LiveSource::open(&o, &STOP)?;
    for n in src.notes() {
        eprintln!("wirestat: {n}");
    }
    eprintln!(
        "wirestat: listening on {}{}, snapshot length {} bytes; {}",
        src.names().join(", "),
        if o.promisc { " (promiscuous)" } else { "" },
        o.snaplen,
        if interval > 0 { "Ctrl-C stops" } else { "Ctrl-C (or SIGTERM) stops and prints the views" }
    );

    let stdout = std::io::stdout();
    // netstat -an 5 on a terminal: the screen is redrawn in place.
    let redraw = interval > 0 && stdout.is_terminal() && args.format == Format::Text;
    let display = Display::start();
    let mut lost_reported = 0;
    let reading = Reading { interval, progress: false, count: args.count };
    let health = pipeline::run(src, &reading, cfg, |store, health, _at| {
        let mut buf = Vec::with_capacity(4096);
        if redraw {
            buf.extend_from_slice(b"\x1b[H\x1b[2J");
        }
        super::print_views(&mut buf, store, health, args, plan)?;
        if let Some(l) = &health.live
            && l.lost() > lost_reported
        {
            lost_reported = l.lost();
            eprintln!("wirestat: {} packets lost so far before tracking: counters may be low", l.lost());
        }
        display.show(buf)
    })?;
    let skipped = display.finish()?;

    for line in view::text::health_lines(&health) {
        eprintln!("wirestat: {line}");
    }
    if skipped > 0 {
        eprintln!("wirestat: {skipped} views not shown: the output was slower than INTERVAL");
    }
    if let Some(l) = &health.live {
        eprintln!(
            "wirestat: {} packets received by the capture, {} dropped by the kernel, {} dropped by the interface",
            l.packets_received, l.dropped_kernel, l.dropped_interface
        );
        if l.dropped_pipeline > 0 {
            eprintln!("wirestat: {} packets dropped because the tracking workers fell behind", l.dropped_pipeline);
        }
        if l.lost() > 0 {
            eprintln!(
                "wirestat: packets were lost before they could be tracked: the counters may be low and some \
                 states wrong (a larger -B, a narrower -f filter or a smaller --snaplen help)"
            );
        }
    }
    Ok(())
}

/// The newest rendered view waiting for the writer thread.
#[derive(Default)]
struct Slot {
    next: Option<Vec<u8>>,
    done: bool,
    /// The write error that stopped the writer (kind and message).
    failed: Option<(std::io::ErrorKind, String)>,
    /// Views replaced before they were written.
    skipped: u64,
}

/// Writes rendered views to stdout on a thread of its own.
struct Display {
    shared: Arc<(Mutex<Slot>, Condvar)>,
    writer: JoinHandle<()>,
}

impl Display {
    fn start() -> Display {
        let shared: Arc<(Mutex<Slot>, Condvar)> = Arc::default();
        let s = shared.clone();
        let writer = std::thread::Builder::new()
            .name("wirestat-display".into())
            .spawn(move || {
                let mut out = std::io::stdout().lock();
                loop {
                    let buf = {
                        let (lock, cv) = &*s;
                        let mut slot = lock.lock().unwrap_or_else(|p| p.into_inner());
                        while slot.next.is_none() && !slot.done {
                            slot = cv.wait(slot).unwrap_or_else(|p| p.into_inner());
                        }
                        match slot.next.take() {
                            Some(b) => b,
                            None => return,
                        }
                    };
                    if let Err(e) = out.write_all(&buf).and_then(|()| out.flush()) {
                        s.0.lock().unwrap_or_else(|p| p.into_inner()).failed = Some((e.kind(), e.to_string()));
                        return;
                    }
                }
            })
            .expect("spawn display thread");
        Display { shared, writer }
    }

    /// Hands a view over without waiting; fails once the output has failed.
    fn show(&self, buf: Vec<u8>) -> Result<(), Error> {
        let (lock, cv) = &*self.shared;
        let mut slot = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((kind, msg)) = &slot.failed {
            return Err(Error::Io(std::io::Error::new(*kind, msg.clone())));
        }
        if slot.next.replace(buf).is_some() {
            slot.skipped += 1;
        }
        cv.notify_one();
        Ok(())
    }

    /// Writes what is left and stops the writer; returns the views skipped.
    fn finish(self) -> Result<u64, Error> {
        {
            let (lock, cv) = &*self.shared;
            lock.lock().unwrap_or_else(|p| p.into_inner()).done = true;
            cv.notify_one();
        }
        let _ = self.writer.join();
        let slot = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
        match &slot.failed {
            Some((kind, msg)) => Err(Error::Io(std::io::Error::new(*kind, msg.clone()))),
            None => Ok(slot.skipped),
        }
    }
}

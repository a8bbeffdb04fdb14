//! Two network namespaces joined by a veth pair, for tests that need a real
//! Linux kernel at both ends of a link (a capture taken there, live capture).
//!
//! ```text
//!   ns a: <a_if> 10.201.0.1/24 fd00:201::1/64  ==veth==  ns b: <b_if> 10.201.0.2/24 fd00:201::2/64
//! ```
//! The addresses are the kernel-truth cases' (`--host 10.201.0.1 --host fd00:201::1`).
//! Offloads are off on both ends, so one frame is one TCP segment with a valid
//! checksum, as in the recorded cases. Needs root and `ip` (iproute2); check
//! [`skip_unless_usable`] first, which says loudly why a test is skipped (and
//! fails it instead when `WIRESTAT_REQUIRE_NETNS` is set, for CI that must run it).
//!
//! Everything is undone on drop: the processes started with [`VethPair::spawn`],
//! anything else still running inside the namespaces, and the namespaces.
//! Sockets are opened inside a namespace with [`VethPair::in_ns`] and can then be
//! used from any thread.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const A4: &str = "10.201.0.1";
pub const A6: &str = "fd00:201::1";
pub const B4: &str = "10.201.0.2";
pub const B6: &str = "fd00:201::2";

static NEXT: AtomicU32 = AtomicU32::new(0);

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false)
}

fn run(args: &[&str]) -> Result<Output, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("{}: {}: {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Why veth tests cannot run here (not root, no `ip`, one of `tools` missing,
/// or namespaces not permitted, as in an unprivileged container), or `None`.
pub fn unusable(tools: &[&str]) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    for tool in std::iter::once(&"ip").chain(tools) {
        if !on_path(tool) {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    let probe = format!("wstprobe{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    if let Err(e) = run(&["ip", "netns", "add", &probe]) {
        return Some(format!("cannot create a network namespace ({e})"));
    }
    let _ = run(&["ip", "netns", "del", &probe]);
    None
}

/// `true` when the test can go on. Otherwise prints why it is skipped, in a
/// way nobody misses, and returns `false`; with `WIRESTAT_REQUIRE_NETNS` set
/// it panics instead.
pub fn skip_unless_usable(test: &str, tools: &[&str]) -> bool {
    let Some(why) = unusable(tools) else { return true };
    if std::env::var_os("WIRESTAT_REQUIRE_NETNS").is_some() {
        panic!("{test}: needs network namespaces, but {why} (WIRESTAT_REQUIRE_NETNS is set)");
    }
    // straight to stderr: the test harness captures eprintln! of passing tests
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n!!!!!!!! SKIPPED {test}: needs root + network namespaces, but {why} !!!!!!!!\n"
    );
    false
}

/// A process started inside a namespace; SIGKILLed on drop if still running.
pub struct Bg {
    child: Child,
}

impl Bg {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` and waits up to `limit` for the exit; SIGKILL after that.
    pub fn signal_and_wait(&mut self, sig: i32, limit: Duration) -> ExitStatus {
        // SAFETY: kill on the pid of our own child, which we have not reaped.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait for a child") {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait for a killed child");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Two fresh namespaces `a` and `b` joined by a veth pair (`a_if` in a, `b_if` in b).
pub struct VethPair {
    pub a: String,
    pub b: String,
    pub a_if: String,
    pub b_if: String,
    made: Vec<String>,
}

impl VethPair {
    pub fn new() -> Result<VethPair, String> {
        let id = format!("{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut p = VethPair {
            a: format!("wst{id}a"),
            b: format!("wst{id}b"),
            a_if: format!("wsa{id}"),
            b_if: format!("wsb{id}"),
            made: Vec::new(),
        };
        for ns in [p.a.clone(), p.b.clone()] {
            run(&["ip", "netns", "add", &ns])?;
            p.made.push(ns);
        }
        run(&["ip", "link", "add", &p.a_if, "netns", &p.a, "type", "veth", "peer", "name", &p.b_if, "netns", &p.b])?;
        for (ns, dev, v4, v6) in [(&p.a, &p.a_if, A4, A6), (&p.b, &p.b_if, B4, B6)] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            run(&["ip", "-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev])?;
            run(&["ip", "-n", ns, "addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"])?;
            if on_path("ethtool") {
                run(&[
                    "ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx",
                    "off",
                ])?;
            }
            run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(p)
    }

    /// A command that runs `args` inside namespace `ns`.
    pub fn command(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args).stdin(Stdio::null());
        c
    }

    /// Runs `args` inside `ns` to completion; its stdout, or why it failed.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        let out = self.command(ns, args).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("{}: {}: {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts `args` inside `ns` (`ip netns exec` execs it: the pid is the tool's).
    pub fn spawn(&self, ns: &str, args: &[&str], stdout: Stdio, stderr: Stdio) -> Result<Bg, String> {
        let child = self.command(ns, args).stdout(stdout).stderr(stderr).spawn().map_err(|e| e.to_string())?;
        Ok(Bg { child })
    }

    /// Runs `f` inside namespace `ns` (see [`in_ns`]).
    pub fn in_ns<T: Send>(&self, ns: &str, f: impl FnOnce() -> T + Send) -> T {
        in_ns(ns, f)
    }
}

/// Runs `f` on a thread that has entered namespace `ns`: the sockets it
/// opens belong to `ns` and stay there, whichever thread uses them later.
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let handle = File::open(Path::new("/run/netns").join(ns)).expect("open the namespace handle");
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a valid namespace fd; it affects only this thread.
            let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns({ns}): {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("the closure run inside the namespace panicked")
    })
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for ns in self.made.drain(..) {
            // whatever still runs in there was started by this test
            if let Ok(out) = run(&["ip", "netns", "pids", &ns]) {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: kill by pid of a process inside our own namespace.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            if let Err(e) = run(&["ip", "netns", "del", &ns]) {
                eprintln!("netns cleanup: {e}");
            }
        }
    }
}

//! One live interface through libpcap: listing the interfaces (`-D`),
//! opening one with the options a mirror port needs (telling "no permission"
//! and "no such interface" apart by libpcap's status codes), non-blocking
//! reads, and libpcap's drop counters.

use super::libpcap::{PCAP_ERRBUF_SIZE, PCAP_TSTAMP_PRECISION_NANO, strip};
use super::live::LiveOptions;
use crate::error::Error;
use pcap::{Active, Capture, PacketHeader};
use std::ffi::{CStr, CString, c_char, c_int, c_uchar, c_void};
use std::os::fd::RawFd;
use std::ptr::NonNull;

/// An interface as `-D` lists it.
#[derive(Clone, Debug)]
pub struct Interface {
    pub name: String,
    pub description: Option<String>,
    /// "Up", "Running", "Loopback", ... as tcpdump -D shows them.
    pub flags: Vec<&'static str>,
}

/// The interfaces libpcap can capture on, in its order (tcpdump -D's).
pub fn interfaces() -> Result<Vec<Interface>, Error> {
    let list =
        pcap::Device::list().map_err(|e| Error::Capture { iface: "(list)".into(), reason: strip(&e.to_string()) })?;
    Ok(list
        .into_iter()
        .map(|d| {
            let mut flags = Vec::new();
            if d.flags.is_loopback() {
                flags.push("Loopback");
            }
            if d.flags.is_up() {
                flags.push("Up");
            }
            if d.flags.is_running() {
                flags.push("Running");
            }
            if d.flags.is_wireless() {
                flags.push("Wireless");
            }
            match d.flags.connection_status {
                pcap::ConnectionStatus::Connected => flags.push("Connected"),
                pcap::ConnectionStatus::Disconnected => flags.push("Disconnected"),
                _ => {}
            }
            Interface { name: d.name, description: d.desc, flags }
        })
        .collect())
}

/// Resolves `-i` arguments: a name libpcap lists, or its number in that list.
pub(super) fn resolve(wanted: &str, list: &[Interface]) -> Result<String, Error> {
    if list.iter().any(|i| i.name == wanted) {
        return Ok(wanted.to_string());
    }
    if let Ok(n) = wanted.parse::<usize>()
        && let Some(i) = n.checked_sub(1).and_then(|n| list.get(n))
    {
        return Ok(i.name.clone());
    }
    Err(Error::NoSuchInterface { iface: wanted.into(), available: list.iter().map(|i| i.name.clone()).collect() })
}

// libpcap calls the pcap crate keeps private: activation with its status
// code (so "no permission" and "no such device" can be told apart without
// parsing messages), and reads that hand back raw pointers (so a frame can
// be returned from a loop that polls).
unsafe extern "C" {
    fn pcap_create(source: *const c_char, errbuf: *mut c_char) -> *mut c_void;
    fn pcap_set_snaplen(p: *mut c_void, snaplen: c_int) -> c_int;
    fn pcap_set_promisc(p: *mut c_void, promisc: c_int) -> c_int;
    fn pcap_set_timeout(p: *mut c_void, ms: c_int) -> c_int;
    fn pcap_set_buffer_size(p: *mut c_void, bytes: c_int) -> c_int;
    fn pcap_set_immediate_mode(p: *mut c_void, on: c_int) -> c_int;
    fn pcap_set_tstamp_precision(p: *mut c_void, precision: c_int) -> c_int;
    fn pcap_get_tstamp_precision(p: *mut c_void) -> c_int;
    fn pcap_activate(p: *mut c_void) -> c_int;
    fn pcap_geterr(p: *mut c_void) -> *const c_char;
    fn pcap_statustostr(code: c_int) -> *const c_char;
    fn pcap_close(p: *mut c_void);
    fn pcap_next_ex(p: *mut c_void, header: *mut *mut PacketHeader, data: *mut *const c_uchar) -> c_int;
}
const PCAP_ERROR_NO_SUCH_DEVICE: c_int = -5;
const PCAP_ERROR_PERM_DENIED: c_int = -8;
const PCAP_ERROR_PROMISC_PERM_DENIED: c_int = -11;

/// A created, not yet activated libpcap handle; closed on drop unless handed on.
struct Created(NonNull<c_void>);

impl Drop for Created {
    fn drop(&mut self) {
        // SAFETY: the handle came from pcap_create and is closed once, here.
        unsafe { pcap_close(self.0.as_ptr()) }
    }
}

/// Opens `name` for capture: options set, activated, non-blocking, filtered.
pub(super) fn open(name: &str, o: &LiveOptions) -> Result<(Capture<Active>, bool, Vec<String>), Error> {
    let cname = CString::new(name).map_err(|_| Error::Usage(format!("-i {name:?}: not an interface name")))?;
    let mut errbuf = [0 as c_char; PCAP_ERRBUF_SIZE];
    // SAFETY: both pointers are valid for the call; errbuf has the size libpcap requires.
    let p = unsafe { pcap_create(cname.as_ptr(), errbuf.as_mut_ptr()) };
    let Some(p) = NonNull::new(p) else {
        // SAFETY: on failure libpcap wrote a NUL-terminated message into errbuf.
        let msg = unsafe { CStr::from_ptr(errbuf.as_ptr()) }.to_string_lossy().into_owned();
        return Err(Error::Capture { iface: name.into(), reason: strip(&msg) });
    };
    let created = Created(p);
    let h = created.0.as_ptr();
    let mut notes = Vec::new();
    // SAFETY: `h` is a live, not yet activated handle owned by `created`; these
    // setters only store options (they fail only on an activated handle).
    let (status, nano) = unsafe {
        pcap_set_snaplen(h, o.snaplen.min(i32::MAX as u32) as c_int);
        pcap_set_promisc(h, o.promisc as c_int);
        // Frames are handed over as they come (immediate mode) and read without
        // blocking; the timeout only matters to a blocking read, which never happens.
        pcap_set_timeout(h, 100);
        pcap_set_buffer_size(h, (o.buffer_kib as u64 * 1024).min(i32::MAX as u64) as c_int);
        pcap_set_immediate_mode(h, 1);
        let nano_ok = pcap_set_tstamp_precision(h, PCAP_TSTAMP_PRECISION_NANO as c_int) == 0;
        let status = pcap_activate(h);
        (status, nano_ok && pcap_get_tstamp_precision(h) == PCAP_TSTAMP_PRECISION_NANO as c_int)
    };
    if status != 0 {
        // SAFETY: pcap_geterr returns the handle's NUL-terminated message buffer
        // and pcap_statustostr a static string; both are copied out at once.
        let (msg, what) = unsafe {
            (
                CStr::from_ptr(pcap_geterr(h)).to_string_lossy().into_owned(),
                CStr::from_ptr(pcap_statustostr(status)).to_string_lossy().into_owned(),
            )
        };
        let reason = if msg.is_empty() { what } else { strip(&msg) };
        match status {
            PCAP_ERROR_PERM_DENIED | PCAP_ERROR_PROMISC_PERM_DENIED => {
                return Err(Error::CapturePermission { iface: name.into(), reason });
            }
            PCAP_ERROR_NO_SUCH_DEVICE => {
                let available = interfaces().map(|l| l.into_iter().map(|i| i.name).collect()).unwrap_or_default();
                return Err(Error::NoSuchInterface { iface: name.into(), available });
            }
            s if s < 0 => return Err(Error::Capture { iface: name.into(), reason }),
            // A warning (e.g. promiscuous mode not supported): capture goes on.
            _ => notes.push(format!("{name}: {reason}")),
        }
    }
    let handle = created.0;
    std::mem::forget(created);
    // The Capture owns the activated handle from here on (pcap_close on drop).
    let cap: Capture<Active> = Capture::from(handle.cast());
    let mut cap =
        cap.setnonblock().map_err(|e| Error::Capture { iface: name.into(), reason: strip(&e.to_string()) })?;
    if let Some(f) = &o.filter {
        cap.filter(f, true).map_err(|e| Error::Filter { filter: f.clone(), reason: strip(&e.to_string()) })?;
    }
    if !nano {
        notes.push(format!("{name}: timestamps in microseconds (no nanosecond support)"));
    }
    Ok((cap, nano, notes))
}

/// libpcap's 32-bit counters, read into 64-bit totals across wraps.
#[derive(Clone, Copy, Default)]
pub(super) struct Counters {
    last: [u32; 3],
    /// Received, dropped by the kernel, dropped by the interface.
    pub(super) total: [u64; 3],
}

impl Counters {
    pub(super) fn update(&mut self, cap: &mut Capture<Active>) {
        if let Ok(s) = cap.stats() {
            for (i, v) in [s.received, s.dropped, s.if_dropped].into_iter().enumerate() {
                self.total[i] += v.wrapping_sub(self.last[i]) as u64;
                self.last[i] = v;
            }
        }
    }
}

/// One interface being captured.
pub(super) struct Iface {
    pub(super) name: String,
    pub(super) cap: Capture<Active>,
    pub(super) fd: RawFd,
    pub(super) linktype: i32,
    pub(super) nano: bool,
    pub(super) counters: Counters,
    /// A read error ended this interface.
    pub(super) ended: bool,
}

/// What one non-blocking read found.
pub(super) enum Read {
    /// A frame: libpcap's header and data, valid until the next read on that handle.
    Frame(*const PacketHeader, *const u8),
    Empty,
    Failed(String),
}

impl Iface {
    pub(super) fn read(&mut self) -> Read {
        let mut hdr: *mut PacketHeader = std::ptr::null_mut();
        let mut data: *const c_uchar = std::ptr::null();
        // SAFETY: the handle is live and owned by `cap`; libpcap sets both
        // pointers when it returns 1.
        let r = unsafe { pcap_next_ex(self.cap.as_ptr().cast(), &mut hdr, &mut data) };
        match r {
            1 => Read::Frame(hdr, data),
            0 => Read::Empty,
            // -2: pcap_breakloop, which wirestat never calls: nothing more.
            -2 => Read::Failed(format!("{}: capture stopped", self.name)),
            _ => {
                // SAFETY: the handle's error buffer is NUL-terminated; copied at once.
                let msg = unsafe { CStr::from_ptr(pcap_geterr(self.cap.as_ptr().cast())) };
                Read::Failed(format!("{}: {}; capture ended there", self.name, strip(&msg.to_string_lossy())))
            }
        }
    }
}

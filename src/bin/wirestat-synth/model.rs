//! Traffic model: flow outcomes, per-flow scripts, server-side TCP state
//! and the ground-truth accumulators.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::frame::{self, ACK, FIN, Opts, PSH, PcapWriter, RST, SYN, Seg};
use crate::rng::{Rng, mix64};

pub const LISTEN_PORTS: [u16; 4] = [80, 443, 8080, 5432];
pub const CLOSED_PORT: u16 = 9;
pub const TIME_WAIT_US: u64 = 60_000_000;
/// `connections` are only listed when the capture has at most this many flows.
pub const LIST_LIMIT: u64 = 20_000;

const SERVER4: [u8; 4] = [10, 0, 0, 1];
const DARK4: [u8; 4] = [10, 0, 0, 99];
const SERVER6: u128 = 0xfd00_0000_0000_0000_0000_0000_0000_0001;
const DARK6: u128 = 0xfd00_0000_0000_0000_0000_0000_0000_0099;
/// Client addresses: flow id -> (host, port slot, block); see `client_addr`.
const HOSTS_PER_BLOCK: u64 = 250;
const PORTS_PER_HOST: u64 = 60_000;
const CLIENT_WINDOW: u16 = 64_240;
const SERVER_WINDOW: u16 = 65_535;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    Open,
    ClientClose,
    ServerClose,
    HalfClose,
    ClientReset,
    ServerReset,
    Refused,
    Unanswered,
}

pub const OUTCOMES: [Outcome; 8] = [
    Outcome::Open,
    Outcome::ClientClose,
    Outcome::ServerClose,
    Outcome::HalfClose,
    Outcome::ClientReset,
    Outcome::ServerReset,
    Outcome::Refused,
    Outcome::Unanswered,
];

pub const DEFAULT_MIX: [f64; 8] = [0.10, 0.40, 0.15, 0.05, 0.05, 0.05, 0.10, 0.10];

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Open => "open",
            Outcome::ClientClose => "client_close",
            Outcome::ServerClose => "server_close",
            Outcome::HalfClose => "half_close",
            Outcome::ClientReset => "client_reset",
            Outcome::ServerReset => "server_reset",
            Outcome::Refused => "refused",
            Outcome::Unanswered => "unanswered",
        }
    }

    /// Packets after the data rounds (normal flows only).
    fn tail_len(self) -> u32 {
        match self {
            Outcome::ClientClose | Outcome::ServerClose => 4,
            Outcome::HalfClose => 2,
            Outcome::ClientReset | Outcome::ServerReset => 1,
            Outcome::Open | Outcome::Refused | Outcome::Unanswered => 0,
        }
    }

    /// FINs that may be retransmitted (the client's FIN answering a server
    /// close is never retransmitted: it would restart the server's TIME_WAIT).
    fn retx_fins(self) -> u32 {
        match self {
            Outcome::ClientClose => 2,
            Outcome::ServerClose | Outcome::HalfClose => 1,
            _ => 0,
        }
    }

    fn is_normal(self) -> bool {
        !matches!(self, Outcome::Refused | Outcome::Unanswered)
    }
}

/// Expected packets per flow for mix weights `w` (summing to 1), mean data
/// rounds `k` and retransmission probability `r`.
pub fn expected_packets(w: &[f64; 8], k: f64, r: f64) -> f64 {
    OUTCOMES
        .iter()
        .zip(w)
        .map(|(&o, &p)| {
            p * match o {
                Outcome::Refused => 2.0,
                Outcome::Unanswered => 3.0,
                _ => 3.0 + 4.0 * k + f64::from(o.tail_len()) + r * (2.0 * k + f64::from(o.retx_fins())),
            }
        })
        .sum()
}

/// State of the observed server's endpoint of a flow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SState {
    Closed,
    SynRcvd,
    Established,
    CloseWait,
    LastAck,
    FinWait1,
    FinWait2,
    TimeWait,
}

pub const SSTATES: [SState; 8] = [
    SState::Closed,
    SState::SynRcvd,
    SState::Established,
    SState::CloseWait,
    SState::LastAck,
    SState::FinWait1,
    SState::FinWait2,
    SState::TimeWait,
];

impl SState {
    pub fn name(self) -> &'static str {
        match self {
            SState::Closed => "CLOSED",
            SState::SynRcvd => "SYN_RCVD",
            SState::Established => "ESTABLISHED",
            SState::CloseWait => "CLOSE_WAIT",
            SState::LastAck => "LAST_ACK",
            SState::FinWait1 => "FIN_WAIT_1",
            SState::FinWait2 => "FIN_WAIT_2",
            SState::TimeWait => "TIME_WAIT",
        }
    }
}

/// How many data rounds a normal flow gets.
#[derive(Clone, Copy)]
pub enum Rounds {
    /// Uniform in `1..=max`.
    Uniform(u32),
    /// Random with this mean (>= 1), uniform-ish over `[1, 2*mean-1]`.
    Mean(f64),
}

pub struct Config {
    pub seed: u64,
    pub v6_ratio: f64,
    pub retrans: f64,
    pub payload_max: u64,
    pub rounds: Rounds,
    /// Cumulative outcome weights (last = 1.0).
    pub mix_cum: [f64; 8],
    /// Inter-packet gap bounds in nanoseconds.
    pub gap_ns: (u64, u64),
    /// Distinct client addresses flows are spread over (`--clients`); `None`
    /// keeps the original mapping of 250 hosts per block.
    pub clients: Option<u64>,
    /// Fraction of the `--flood` SYNs over IPv6.
    pub flood_v6_ratio: f64,
}

/// Per-flow state (~56 bytes): enough to continue the flow's script.
pub struct Flow {
    pub id: u64,
    tw_at_us: u64,
    step: u32,
    rounds: u32,
    nxt_c: u32,
    nxt_s: u32,
    tsv_c: u32,
    tsv_s: u32,
    retx_seq: u32,
    retx_len: u16,
    port: u16,
    retx_flags: u8,
    retx_pending: bool,
    retx_server: bool,
    started: bool,
    v6: bool,
    pub outcome: Outcome,
    sstate: SState,
}

impl Flow {
    /// Number of packets in the flow's script (retransmissions excluded).
    fn total_steps(&self) -> u32 {
        match self.outcome {
            Outcome::Refused => 2,
            Outcome::Unanswered => 3,
            o => 3 + 4 * self.rounds + o.tail_len(),
        }
    }
}

/// What the scheduler should do with a flow after one step.
pub enum Next {
    /// Stay runnable.
    Continue,
    /// Sleep this many ns (retransmission timer), still counted as active.
    Wait(u64),
    /// Sleep this many ns in SYN back-off, not counted against concurrency.
    Park(u64),
    /// Script complete.
    Done,
}

/// TCP MIB counters for the server host (one address family).
#[derive(Default, Clone, Copy)]
pub struct TcpCounters {
    pub passive_opens: u64,
    pub reset_connections: u64,
    pub segments_received: u64,
    pub segments_sent: u64,
    pub segments_retransmitted: u64,
}

pub struct Row {
    pub id: u64,
    pub v6: bool,
    pub port: u16,
    pub state: SState,
    /// TIME_WAIT entry time (µs) when `state` is TIME_WAIT.
    pub tw_at_us: u64,
}

pub struct Truth {
    pub flows: u64,
    pub by_outcome: [u64; 8],
    pub retx_client: u64,
    pub retx_server: u64,
    /// Spoofed SYNs of `--flood` written (each one a segment the server received).
    pub flood_syns: u64,
    pub tcp: [TcpCounters; 2],
    /// Final server states of finished/cut flows, except TIME_WAIT.
    pub states: [[u64; 8]; 2],
    /// TIME_WAIT entry times (µs), per family, oldest first.
    pub time_wait: [VecDeque<u64>; 2],
    /// Listening ports that answered a SYN, per family.
    pub listening: [[bool; 4]; 2],
    /// Rows for `connections` (dropped once the flow count exceeds LIST_LIMIT).
    pub rows: Option<Vec<Row>>,
    pub first_ts_us: Option<u64>,
    pub last_ts_us: u64,
}

pub struct Gen<W: Write> {
    pub rng: Rng,
    pub w: PcapWriter<W>,
    pub cfg: Config,
    pub truth: Truth,
    next_id: u64,
}

/// Client address (16 bytes; IPv4 in the first 4) and port for a flow id.
/// The mapping id -> (address, port) is injective, so no 4-tuple repeats.
pub fn client_addr(id: u64, v6: bool, clients: Option<u64>) -> ([u8; 16], u16) {
    if let Some(n) = clients {
        return spread_client_addr(id, v6, n);
    }
    let host = id % HOSTS_PER_BLOCK;
    let port = 1024 + (id / HOSTS_PER_BLOCK) % PORTS_PER_HOST;
    let block = id / (HOSTS_PER_BLOCK * PORTS_PER_HOST);
    let mut a = [0u8; 16];
    if v6 {
        // fd00:1::<block>:<host+1>
        let v = (0xfd00_0001u128 << 96) | (u128::from(block as u16) << 16) | u128::from(host + 1);
        a = v.to_be_bytes();
    } else {
        // 10.<1 + block/256>.<block%256>.<host+1>
        a[..4].copy_from_slice(&[10, (1 + block / 256) as u8, (block % 256) as u8, (host + 1) as u8]);
    }
    (a, port as u16)
}

/// Most client hosts `--clients` can name: 10.1.0.0 up to 10.127.255.x, 250
/// per /24, below the flood sources' 10.128.0.0/9.
pub const MAX_CLIENTS: u64 = 250 * 256 * 127;

/// `--clients N`: flow `id` comes from host `id % N`, on the next port each
/// time that host comes round again, so N hosts each have about flows/N flows.
fn spread_client_addr(id: u64, v6: bool, n: u64) -> ([u8; 16], u16) {
    let host = id % n;
    let port = 1024 + (id / n) % PORTS_PER_HOST;
    let (a4, b, c) = (host % HOSTS_PER_BLOCK + 1, (host / HOSTS_PER_BLOCK) % 256, 1 + host / (HOSTS_PER_BLOCK * 256));
    let mut a = [0u8; 16];
    if v6 {
        // fd00:2::<c>:<b>:<a>, apart from the default mapping's fd00:1::/32.
        let v = (0xfd00_0002u128 << 96) | (u128::from(c) << 32) | (u128::from(b) << 16) | u128::from(a4);
        a = v.to_be_bytes();
    } else {
        a[..4].copy_from_slice(&[10, c as u8, b as u8, a4 as u8]);
    }
    (a, port as u16)
}

/// Source of the `i`th spoofed SYN of `--flood`: 10.128.0.0/9 (about 8.4
/// million addresses before they repeat) or, over IPv6, fd00:8000::/33
/// (never repeating), one address per SYN, and a port of its own.
pub fn flood_source(i: u64, seed: u64, v6: bool) -> ([u8; 16], u16) {
    let port = 1024 + (mix64(seed ^ i) % PORTS_PER_HOST) as u16;
    if v6 {
        return (((0xfd00_8000u128 << 96) | u128::from(i)).to_be_bytes(), port);
    }
    let h = i % (1 << 23);
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[10, 128 + (h >> 16) as u8, (h >> 8) as u8, h as u8]);
    (a, port)
}

/// Whether the `i`th spoofed SYN goes over IPv6 (a fixed draw per SYN).
fn flood_v6(i: u64, seed: u64, ratio: f64) -> bool {
    let draw = (mix64(seed ^ i ^ 0x6666_0000_6666) >> 11) as f64 / (1u64 << 53) as f64;
    ratio > 0.0 && draw < ratio
}

fn server_addr(v6: bool, dark: bool) -> [u8; 16] {
    let mut a = [0u8; 16];
    match (v6, dark) {
        (true, false) => a = SERVER6.to_be_bytes(),
        (true, true) => a = DARK6.to_be_bytes(),
        (false, false) => a[..4].copy_from_slice(&SERVER4),
        (false, true) => a[..4].copy_from_slice(&DARK4),
    }
    a
}

pub fn fmt_endpoint(a: &[u8; 16], port: u16, v6: bool) -> String {
    if v6 {
        format!("[{}]:{}", Ipv6Addr::from(*a), port)
    } else {
        format!("{}:{}", Ipv4Addr::new(a[0], a[1], a[2], a[3]), port)
    }
}

pub fn server_endpoint(v6: bool, port: u16) -> String {
    fmt_endpoint(&server_addr(v6, false), port, v6)
}

fn random_isn(rng: &mut Rng) -> u32 {
    if rng.chance(0.01) {
        // Near the 2^32 wrap: within 100 kB, half of them within 5 kB so
        // that many flows actually wrap.
        let span = if rng.chance(0.5) { 5_000 } else { 100_000 };
        0u32.wrapping_sub(1 + rng.below(span) as u32)
    } else {
        rng.next_u64() as u32
    }
}

impl<W: Write> Gen<W> {
    pub fn new(cfg: Config, w: PcapWriter<W>) -> Self {
        Gen {
            rng: Rng::new(cfg.seed),
            w,
            cfg,
            truth: Truth {
                flows: 0,
                by_outcome: [0; 8],
                retx_client: 0,
                retx_server: 0,
                flood_syns: 0,
                tcp: [TcpCounters::default(); 2],
                states: [[0; 8]; 2],
                time_wait: [VecDeque::new(), VecDeque::new()],
                listening: [[false; 4]; 2],
                rows: Some(Vec::new()),
                first_ts_us: None,
                last_ts_us: 0,
            },
            next_id: 0,
        }
    }

    #[inline]
    pub fn gap(&mut self) -> u64 {
        let (lo, hi) = self.cfg.gap_ns;
        self.rng.range(lo, hi)
    }

    pub fn new_flow(&mut self) -> Flow {
        let id = self.next_id;
        self.next_id += 1;
        let u = self.rng.unit();
        let oi = self.cfg.mix_cum.iter().position(|&c| u < c).unwrap_or(7);
        let outcome = OUTCOMES[oi];
        let v6 = self.rng.chance(self.cfg.v6_ratio);
        let port = match outcome {
            Outcome::Refused => CLOSED_PORT,
            Outcome::Unanswered => 80,
            _ => LISTEN_PORTS[self.rng.below(4) as usize],
        };
        let rounds = match self.cfg.rounds {
            Rounds::Uniform(max) => self.rng.range(1, u64::from(max)) as u32,
            Rounds::Mean(m) => {
                let x = 1.0 + self.rng.unit() * (2.0 * m - 2.0);
                let extra = u32::from(self.rng.unit() < x.fract());
                x as u32 + extra
            }
        };
        Flow {
            id,
            tw_at_us: 0,
            step: 0,
            rounds,
            nxt_c: random_isn(&mut self.rng),
            nxt_s: random_isn(&mut self.rng),
            tsv_c: 0,
            tsv_s: 0,
            retx_seq: 0,
            retx_len: 0,
            port,
            retx_flags: 0,
            retx_pending: false,
            retx_server: false,
            started: false,
            v6,
            outcome,
            sstate: SState::Closed,
        }
    }

    /// Writes one segment of flow `f` and updates the server's MIB counters.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        f: &mut Flow,
        now_ns: u64,
        from_server: bool,
        seq: u32,
        flags: u8,
        payload_len: usize,
        retx: bool,
    ) -> io::Result<()> {
        let ts_us = now_ns / 1000;
        let dark = f.outcome == Outcome::Unanswered;
        let (client_ip, client_port) = client_addr(f.id, f.v6, self.cfg.clients);
        let server_ip = server_addr(f.v6, dark);
        let server_mac = if dark { frame::DARK_MAC } else { frame::SERVER_MAC };
        // Per-connection timestamp clocks (ms), randomly offset like Linux.
        let side = u64::from(from_server);
        let tsval = (mix64(self.cfg.seed ^ (f.id * 2 + side)) as u32).wrapping_add((now_ns / 1_000_000) as u32);
        let (tsecr, ack, window) = if from_server {
            f.tsv_s = tsval;
            (f.tsv_c, f.nxt_c, SERVER_WINDOW)
        } else {
            f.tsv_c = tsval;
            (f.tsv_s, f.nxt_s, CLIENT_WINDOW)
        };
        let opts = if flags & SYN != 0 {
            Opts::Syn { val: tsval, ecr: tsecr }
        } else if f.outcome == Outcome::Refused {
            Opts::None
        } else {
            Opts::Ts { val: tsval, ecr: tsecr }
        };
        let seg = Seg {
            v6: f.v6,
            src_mac: if from_server { server_mac } else { frame::ROUTER_MAC },
            dst_mac: if from_server { frame::ROUTER_MAC } else { server_mac },
            src_ip: if from_server { server_ip } else { client_ip },
            dst_ip: if from_server { client_ip } else { server_ip },
            sport: if from_server { f.port } else { client_port },
            dport: if from_server { client_port } else { f.port },
            seq,
            ack: if flags & ACK != 0 { ack } else { 0 },
            flags,
            window: if flags & RST != 0 && f.outcome == Outcome::Refused { 0 } else { window },
            opts,
            payload_len,
        };
        self.w.write(ts_us, &seg)?;

        let t = &mut self.truth;
        t.first_ts_us.get_or_insert(ts_us);
        t.last_ts_us = ts_us;
        let c = &mut t.tcp[usize::from(f.v6)];
        if from_server {
            if retx {
                c.segments_retransmitted += 1;
                t.retx_server += 1;
            } else {
                c.segments_sent += 1;
            }
        } else {
            if !dark {
                c.segments_received += 1;
            }
            if retx {
                t.retx_client += 1;
            }
        }
        Ok(())
    }

    /// Sends a data segment or FIN of `len` sequence-space bytes and maybe
    /// schedules an exact retransmission of it.
    fn send(&mut self, f: &mut Flow, now: u64, from_server: bool, flags: u8, may_retx: bool) -> io::Result<u64> {
        let len = if flags & FIN != 0 { 0 } else { 1 + self.rng.below(self.cfg.payload_max) as usize };
        let seq = if from_server { f.nxt_s } else { f.nxt_c };
        self.emit(f, now, from_server, seq, flags, len, false)?;
        let adv = (len as u32).wrapping_add(u32::from(flags & FIN != 0));
        if from_server {
            f.nxt_s = f.nxt_s.wrapping_add(adv);
        } else {
            f.nxt_c = f.nxt_c.wrapping_add(adv);
        }
        if may_retx && self.rng.chance(self.cfg.retrans) {
            f.retx_pending = true;
            f.retx_server = from_server;
            f.retx_seq = seq;
            f.retx_len = len as u16;
            f.retx_flags = flags;
            // Retransmission timer: 2-8 ms.
            return Ok(self.rng.range(2_000_000, 8_000_000));
        }
        Ok(0)
    }

    fn pure_ack(&mut self, f: &mut Flow, now: u64, from_server: bool) -> io::Result<()> {
        let seq = if from_server { f.nxt_s } else { f.nxt_c };
        self.emit(f, now, from_server, seq, ACK, 0, false)
    }

    fn set_state(&mut self, f: &mut Flow, s: SState, now_ns: u64) {
        if s == SState::TimeWait {
            let ts_us = now_ns / 1000;
            f.tw_at_us = ts_us;
            let q = &mut self.truth.time_wait[usize::from(f.v6)];
            while q.front().is_some_and(|&t| t + TIME_WAIT_US <= ts_us) {
                q.pop_front();
            }
            q.push_back(ts_us);
        }
        if f.sstate == SState::Established && s == SState::Closed {
            // Every reset in this model hits an ESTABLISHED endpoint.
            self.truth.tcp[usize::from(f.v6)].reset_connections += 1;
        }
        f.sstate = s;
    }

    /// Emits the next packet of `f` at time `now` (ns).
    pub fn step(&mut self, f: &mut Flow, now: u64) -> io::Result<Next> {
        if !f.started {
            f.started = true;
            let t = &mut self.truth;
            t.flows += 1;
            t.by_outcome[f.outcome as usize] += 1;
            if t.flows > LIST_LIMIT {
                t.rows = None;
            }
        }
        let mut delay = 0;
        if f.retx_pending {
            f.retx_pending = false;
            self.emit(f, now, f.retx_server, f.retx_seq, f.retx_flags, usize::from(f.retx_len), true)?;
        } else {
            let s = f.step;
            f.step += 1;
            delay = match f.outcome {
                Outcome::Refused => self.step_refused(f, now, s)?,
                Outcome::Unanswered => {
                    // Retransmitted SYNs reuse the ISN (nxt_c is ISN + 1 after the first).
                    let seq = f.nxt_c.wrapping_sub(u32::from(s > 0));
                    self.emit(f, now, false, seq, SYN, 0, s > 0)?;
                    f.nxt_c = seq.wrapping_add(1);
                    match s {
                        0 => return Ok(Next::Park(1_000_000_000)),
                        1 => return Ok(Next::Park(2_000_000_000)),
                        _ => 0,
                    }
                }
                _ => self.step_normal(f, now, s)?,
            };
        }
        Ok(if f.retx_pending {
            Next::Wait(delay)
        } else if f.step >= f.total_steps() {
            Next::Done
        } else {
            Next::Continue
        })
    }

    fn step_refused(&mut self, f: &mut Flow, now: u64, s: u32) -> io::Result<u64> {
        if s == 0 {
            self.emit(f, now, false, f.nxt_c, SYN, 0, false)?;
            f.nxt_c = f.nxt_c.wrapping_add(1);
        } else {
            self.emit(f, now, true, 0, RST | ACK, 0, false)?;
        }
        Ok(0)
    }

    fn step_normal(&mut self, f: &mut Flow, now: u64, s: u32) -> io::Result<u64> {
        let data_end = 3 + 4 * f.rounds;
        match s {
            0 => {
                self.emit(f, now, false, f.nxt_c, SYN, 0, false)?;
                f.nxt_c = f.nxt_c.wrapping_add(1);
            }
            1 => {
                self.emit(f, now, true, f.nxt_s, SYN | ACK, 0, false)?;
                f.nxt_s = f.nxt_s.wrapping_add(1);
                let pi = LISTEN_PORTS.iter().position(|&p| p == f.port).unwrap_or(0);
                self.truth.listening[usize::from(f.v6)][pi] = true;
                self.set_state(f, SState::SynRcvd, now);
            }
            2 => {
                self.pure_ack(f, now, false)?;
                self.truth.tcp[usize::from(f.v6)].passive_opens += 1;
                self.set_state(f, SState::Established, now);
            }
            s if s < data_end => match (s - 3) % 4 {
                0 => return self.send(f, now, false, PSH | ACK, true),
                1 => self.pure_ack(f, now, true)?,
                2 => return self.send(f, now, true, PSH | ACK, true),
                _ => self.pure_ack(f, now, false)?,
            },
            s => return self.step_tail(f, now, s - data_end),
        }
        Ok(0)
    }

    fn step_tail(&mut self, f: &mut Flow, now: u64, t: u32) -> io::Result<u64> {
        let mut delay = 0;
        match (f.outcome, t) {
            (Outcome::ClientClose | Outcome::HalfClose, 0) => {
                delay = self.send(f, now, false, FIN | ACK, true)?;
                self.set_state(f, SState::CloseWait, now);
            }
            (Outcome::ClientClose | Outcome::HalfClose, 1) => self.pure_ack(f, now, true)?,
            (Outcome::ClientClose, 2) => {
                delay = self.send(f, now, true, FIN | ACK, true)?;
                self.set_state(f, SState::LastAck, now);
            }
            (Outcome::ClientClose, _) => {
                self.pure_ack(f, now, false)?;
                self.set_state(f, SState::Closed, now);
            }
            (Outcome::ServerClose, 0) => {
                delay = self.send(f, now, true, FIN | ACK, true)?;
                self.set_state(f, SState::FinWait1, now);
            }
            (Outcome::ServerClose, 1) => {
                self.pure_ack(f, now, false)?;
                self.set_state(f, SState::FinWait2, now);
            }
            (Outcome::ServerClose, 2) => {
                self.send(f, now, false, FIN | ACK, false)?;
                self.set_state(f, SState::TimeWait, now);
            }
            (Outcome::ServerClose, _) => self.pure_ack(f, now, true)?,
            (Outcome::ClientReset, _) => {
                self.emit(f, now, false, f.nxt_c, RST | ACK, 0, false)?;
                self.set_state(f, SState::Closed, now);
            }
            (Outcome::ServerReset, _) => {
                self.emit(f, now, true, f.nxt_s, RST | ACK, 0, false)?;
                self.set_state(f, SState::Closed, now);
            }
            (Outcome::HalfClose | Outcome::Open | Outcome::Refused | Outcome::Unanswered, _) => {
                unreachable!("no tail step {t} for {:?}", f.outcome)
            }
        }
        Ok(delay)
    }

    /// Writes the `i`th spoofed SYN of `--flood` to the server's port 80 at
    /// `now_ns`. The server's answers are not in the capture (as when a
    /// mirror port only sees the inbound side, or the backlog is full), so each
    /// SYN only adds to the server's Segments Received.
    pub fn flood_syn(&mut self, i: u64, now_ns: u64) -> io::Result<()> {
        let v6 = flood_v6(i, self.cfg.seed, self.cfg.flood_v6_ratio);
        let (src_ip, sport) = flood_source(i, self.cfg.seed, v6);
        let seq = random_isn(&mut self.rng);
        let seg = Seg {
            v6,
            src_mac: frame::ROUTER_MAC,
            dst_mac: frame::SERVER_MAC,
            src_ip,
            dst_ip: server_addr(v6, false),
            sport,
            dport: 80,
            seq,
            ack: 0,
            flags: SYN,
            window: CLIENT_WINDOW,
            opts: Opts::Syn { val: seq, ecr: 0 },
            payload_len: 0,
        };
        let ts_us = now_ns / 1000;
        self.w.write(ts_us, &seg)?;
        let t = &mut self.truth;
        t.first_ts_us.get_or_insert(ts_us);
        t.last_ts_us = t.last_ts_us.max(ts_us);
        t.tcp[v6 as usize].segments_received += 1;
        t.flood_syns += 1;
        Ok(())
    }

    /// Records the server endpoint of a finished (or cut) flow.
    pub fn finalize(&mut self, f: &Flow) {
        if !f.started {
            return;
        }
        debug_assert!(f.outcome.is_normal() || f.sstate == SState::Closed);
        let t = &mut self.truth;
        if f.sstate == SState::Closed {
            return;
        }
        if f.sstate != SState::TimeWait {
            t.states[usize::from(f.v6)][f.sstate as usize] += 1;
        }
        if let Some(rows) = &mut t.rows {
            rows.push(Row { id: f.id, v6: f.v6, port: f.port, state: f.sstate, tw_at_us: f.tw_at_us });
        }
    }
}

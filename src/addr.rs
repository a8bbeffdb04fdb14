//! Addresses and the canonical flow keys the shard tables are indexed by.
//!
//! A key orders its two endpoints so that both directions of a connection map
//! to one key; `dir` says which side sent a given packet. IPv4 and IPv6 keys
//! are separate types so that the common IPv4 flow does not pay for 128-bit
//! addresses in its table entry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address as the decoder hands it over: 16 bytes, IPv4 in the first four.
pub type RawAddr = [u8; 16];

pub fn to_ip(raw: &RawAddr, v6: bool) -> IpAddr {
    if v6 { IpAddr::V6(Ipv6Addr::from(*raw)) } else { IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])) }
}

pub fn from_ip(ip: IpAddr) -> (RawAddr, bool) {
    let mut raw = [0u8; 16];
    match ip {
        IpAddr::V4(a) => {
            raw[..4].copy_from_slice(&a.octets());
            (raw, false)
        }
        IpAddr::V6(a) => (a.octets(), true),
    }
}

/// A finaliser from the splitmix64 family: cheap, and good enough to spread
/// flows evenly over shards and hash buckets.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const K3: u64 = 0x1656_67b1_9e37_79f9;

/// Multiply two words into 128 bits and fold the halves: one multiplication
/// mixes every input bit into the result (the core of wyhash-style hashes).
#[inline]
pub(crate) fn fold(x: u64, y: u64) -> u64 {
    let p = x as u128 * y as u128;
    (p as u64) ^ ((p >> 64) as u64)
}

/// A per-process random value mixed into the tables' index hashes, so that
/// nobody can craft 4-tuples that all land in one bucket.
static SEED: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_f10a_u64)
});

#[inline]
fn seed() -> u64 {
    *SEED
}

/// The fixed key of the shard hash (see [`shard_hash`]): any odd constant.
const SHARD_KEY: u64 = 0x2545_f491_4f6c_dd1d;

/// Direction-independent hash of a 4-tuple, used to pick the shard: each
/// endpoint is hashed on its own (one folded multiply: this runs on the reader
/// thread, the pipeline's critical path) and the two are added, so both
/// directions land on the same worker.
///
/// Unlike the tables' index hashes it is not seeded per process. Which worker
/// owns a connection decides what each worker's `--max-flows` share and
/// `--idle-timeout` sweeps see, so a per-process seed made those results
/// differ from run to run; with a fixed key the same input and flags give the
/// same output every time. The price: someone who crafts a flood knowing this
/// key can aim it at one worker. That costs balance (one core does that
/// worker's share while the others wait), not correctness, and not quadratic
/// time, since each worker's table still finds connections through its own
/// seeded index.
#[inline]
pub fn shard_hash(src: &RawAddr, dst: &RawAddr, sport: u16, dport: u16) -> u64 {
    let endpoint = |a: &RawAddr, port: u16| {
        let w0 = u64::from_le_bytes(a[..8].try_into().unwrap());
        let w1 = u64::from_le_bytes(a[8..].try_into().unwrap());
        // The port sits in bits the second word of an IPv4 address never uses.
        fold(w0 ^ SHARD_KEY, w1 ^ (port as u64) << 48 ^ K1)
    };
    endpoint(src, sport).wrapping_add(endpoint(dst, dport))
}

/// A fast hasher for maps keyed by addresses, seeded per process so that
/// crafted addresses cannot aim at one bucket.
#[derive(Clone, Copy, Debug)]
pub struct AddrHash(u64);

impl Default for AddrHash {
    fn default() -> Self {
        use std::hash::BuildHasher;
        AddrHash(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64))
    }
}

impl std::hash::BuildHasher for AddrHash {
    type Hasher = AddrHasher;
    fn build_hasher(&self) -> AddrHasher {
        AddrHasher(self.0)
    }
}

pub struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.0 = mix64(self.0 ^ u64::from_le_bytes(w));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = mix64(self.0 ^ n);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type AddrMap<V> = std::collections::HashMap<IpAddr, V, AddrHash>;
pub type AddrSet<T> = std::collections::HashSet<T, AddrHash>;

/// What a shard table needs from its key type.
pub trait FlowKey: Copy + Eq + std::fmt::Debug {
    /// Builds the canonical key; the second value is 0 when `src` is side A.
    fn canonical(src: &RawAddr, dst: &RawAddr, sport: u16, dport: u16) -> (Self, usize);
    fn hash64(&self) -> u64;
    fn ip(&self, side: usize) -> IpAddr;
    fn port(&self, side: usize) -> u16;
    /// Tag of this family's slots in a shard-wide flow id (see `flow::tables`).
    const BIT: u32;
    /// A zero-sized type whose alignment the table entry takes on.
    type Align: Copy + std::fmt::Debug;
}

/// Cache-line alignment, for table entries that fit two lines exactly.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
pub struct Line;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Key4 {
    a: u32,
    b: u32,
    pa: u16,
    pb: u16,
}

impl FlowKey for Key4 {
    const BIT: u32 = 0;
    type Align = Line;

    #[inline]
    fn canonical(src: &RawAddr, dst: &RawAddr, sport: u16, dport: u16) -> (Self, usize) {
        let s = u32::from_be_bytes(src[..4].try_into().unwrap());
        let d = u32::from_be_bytes(dst[..4].try_into().unwrap());
        if (s, sport) <= (d, dport) {
            (Key4 { a: s, b: d, pa: sport, pb: dport }, 0)
        } else {
            (Key4 { a: d, b: s, pa: dport, pb: sport }, 1)
        }
    }

    #[inline]
    fn hash64(&self) -> u64 {
        fold(((self.a as u64) << 32 | self.b as u64) ^ seed(), ((self.pa as u64) << 16 | self.pb as u64) ^ K1)
    }

    fn ip(&self, side: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(if side == 0 { self.a } else { self.b }))
    }

    fn port(&self, side: usize) -> u16 {
        if side == 0 { self.pa } else { self.pb }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Key6 {
    // Two u64 words rather than u128 keep the key 8-byte aligned (40 bytes, not 48).
    a: [u64; 2],
    b: [u64; 2],
    pa: u16,
    pb: u16,
}

fn words(raw: &RawAddr) -> [u64; 2] {
    [u64::from_be_bytes(raw[..8].try_into().unwrap()), u64::from_be_bytes(raw[8..].try_into().unwrap())]
}

impl FlowKey for Key6 {
    const BIT: u32 = 1 << 31;
    // 136 bytes: aligning to lines would cost 56 more per connection.
    type Align = u64;

    #[inline]
    fn canonical(src: &RawAddr, dst: &RawAddr, sport: u16, dport: u16) -> (Self, usize) {
        let s = words(src);
        let d = words(dst);
        if (s, sport) <= (d, dport) {
            (Key6 { a: s, b: d, pa: sport, pb: dport }, 0)
        } else {
            (Key6 { a: d, b: s, pa: dport, pb: sport }, 1)
        }
    }

    #[inline]
    fn hash64(&self) -> u64 {
        // Each pair of words is multiplied together before the pairs are
        // combined, so words differing in the same low bits (client address
        // vs. client port) cannot cancel.
        let k = seed();
        let x = fold(self.a[0] ^ k, self.a[1] ^ K1);
        let y = fold(self.b[0] ^ K2, self.b[1] ^ K3);
        fold(x ^ k.rotate_left(32), y ^ ((self.pa as u64) << 16 | self.pb as u64))
    }

    fn ip(&self, side: usize) -> IpAddr {
        let w = if side == 0 { self.a } else { self.b };
        IpAddr::V6(Ipv6Addr::from(((w[0] as u128) << 64) | w[1] as u128))
    }

    fn port(&self, side: usize) -> u16 {
        if side == 0 { self.pa } else { self.pb }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw4(a: [u8; 4]) -> RawAddr {
        let mut r = [0; 16];
        r[..4].copy_from_slice(&a);
        r
    }

    #[test]
    fn both_directions_share_key_and_shard() {
        let (x, y) = (raw4([10, 0, 0, 1]), raw4([10, 0, 0, 2]));
        let (k1, d1) = Key4::canonical(&x, &y, 1000, 80);
        let (k2, d2) = Key4::canonical(&y, &x, 80, 1000);
        assert_eq!(k1, k2);
        assert_ne!(d1, d2);
        assert_eq!(shard_hash(&x, &y, 1000, 80), shard_hash(&y, &x, 80, 1000));
        assert_eq!(k1.ip(d1), to_ip(&x, false));
        assert_eq!(k1.port(d2), 80);
    }

    #[test]
    fn v6_key_roundtrip() {
        let a: Ipv6Addr = "fd00:201::1".parse().unwrap();
        let b: Ipv6Addr = "fd00:201::2".parse().unwrap();
        let (k, d) = Key6::canonical(&b.octets(), &a.octets(), 5001, 40000);
        assert_eq!(d, 1);
        assert_eq!(k.ip(0), IpAddr::V6(a));
        assert_eq!(k.port(1), 5001);
        assert_eq!(std::mem::size_of::<Key6>(), 40);
    }
}

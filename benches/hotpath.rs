//! Micro-benchmarks of the per-packet hot path: decoding a frame into a
//! summary, and a shard applying summaries to its connections.
//!
//!     cargo bench --bench hotpath

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use std::hint::black_box;
use wirestat::analysis::Interest;
use wirestat::decode::{self, Packet, flag, link};
use wirestat::flow::shard::Shard;
use wirestat::os::{Os, Profile};

fn frame_v4(payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 1, 0, 7], 64)
        .tcp(443, 40000, 1_000_000, 64240)
        .ack(2_000_000)
        .psh();
    let mut v = Vec::new();
    b.write(&mut v, &vec![0u8; payload]).unwrap();
    v
}

fn frame_v6(payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv6(
            "fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            "fd00:1::7".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            64,
        )
        .tcp(443, 40000, 1_000_000, 64240)
        .ack(2_000_000);
    let mut v = Vec::new();
    b.write(&mut v, &vec![0u8; payload]).unwrap();
    v
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for (name, f) in [("ipv4_tcp", frame_v4(100)), ("ipv6_tcp", frame_v6(100))] {
        // Header-only, as most benchmark captures are.
        let data = f[..f.len().min(96)].to_vec();
        let mut s = Packet::default();
        g.bench_function(name, |b| b.iter(|| decode::decode(link::ETHERNET, black_box(&data), black_box(&mut s))));
    }
    g.finish();
}

/// `flows` connections, each a handshake, `rounds` exchanges of data and ACK, and a close.
fn traffic(flows: u32, rounds: u32) -> Vec<Packet> {
    let mut out = Vec::new();
    let server = [10u8, 0, 0, 1];
    for step in 0..(3 + 2 * rounds + 4) {
        for i in 0..flows {
            let mut client = [0u8; 16];
            client[..4].copy_from_slice(&[10, 1, (i >> 8) as u8, i as u8]);
            let mut srv = [0u8; 16];
            srv[..4].copy_from_slice(&server);
            let (cport, sport) = (1024 + (i % 50000) as u16, 443u16);
            let (ci, si) = (i.wrapping_mul(7919), i.wrapping_mul(104729));
            let mut s = Packet {
                ts: 1_700_000_000_000_000_000 + (step as u64 * flows as u64 + i as u64) * 1000,
                ..Default::default()
            };
            let to_server = |s: &mut Packet| {
                (s.src, s.dst, s.sport, s.dport) = (client, srv, cport, sport);
            };
            let to_client = |s: &mut Packet| {
                (s.src, s.dst, s.sport, s.dport) = (srv, client, sport, cport);
            };
            let k = step.saturating_sub(3);
            match step {
                0 => {
                    to_server(&mut s);
                    (s.seq, s.flags) = (ci, flag::SYN);
                }
                1 => {
                    to_client(&mut s);
                    (s.seq, s.ack, s.flags) = (si, ci + 1, flag::SYN | flag::ACK);
                }
                2 => {
                    to_server(&mut s);
                    (s.seq, s.ack, s.flags) = (ci + 1, si + 1, flag::ACK);
                }
                _ if k < 2 * rounds && k % 2 == 0 => {
                    to_server(&mut s);
                    (s.seq, s.ack, s.flags, s.payload_len) =
                        (ci + 1 + 100 * (k / 2), si + 1, flag::ACK | flag::PSH, 100);
                }
                _ if k < 2 * rounds => {
                    to_client(&mut s);
                    (s.seq, s.ack, s.flags) = (si + 1, ci + 1 + 100 * (k / 2 + 1), flag::ACK);
                }
                _ => {
                    let fin = ci + 1 + 100 * rounds;
                    match k - 2 * rounds {
                        0 => {
                            to_server(&mut s);
                            (s.seq, s.ack, s.flags) = (fin, si + 1, flag::FIN | flag::ACK);
                        }
                        1 => {
                            to_client(&mut s);
                            (s.seq, s.ack, s.flags) = (si + 1, fin + 1, flag::ACK);
                        }
                        2 => {
                            to_client(&mut s);
                            (s.seq, s.ack, s.flags) = (si + 1, fin + 1, flag::FIN | flag::ACK);
                        }
                        _ => {
                            to_server(&mut s);
                            (s.seq, s.ack, s.flags) = (fin + 1, si + 2, flag::ACK);
                        }
                    }
                }
            }
            out.push(s);
        }
    }
    out
}

fn bench_state(c: &mut Criterion) {
    let mut g = c.benchmark_group("state_update");
    for flows in [1_000u32, 100_000] {
        let pkts = traffic(flows, 3);
        g.throughput(Throughput::Elements(pkts.len() as u64));
        g.bench_function(format!("{flows}_flows"), |b| {
            b.iter_batched(
                || Shard::new(Profile::new(Os::Linux), Interest::All, 1 << 24),
                |mut shard| {
                    for chunk in pkts.chunks(512) {
                        shard.process_batch(chunk);
                    }
                    shard
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// The tracking stage alone on 1..=cores worker threads, each with its shard's
/// share of 100k connections (split by the pipeline's own shard hash): how the
/// state update scales with `--workers` when the reader is not the limit.
fn bench_state_parallel(c: &mut Criterion) {
    let pkts = traffic(100_000, 3);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("state_update_parallel");
    g.throughput(Throughput::Elements(pkts.len() as u64));
    for n in 1..=cores {
        let mut shares: Vec<Vec<Packet>> = vec![Vec::new(); n];
        for s in &pkts {
            let h = wirestat::addr::shard_hash(&s.src, &s.dst, s.sport, s.dport);
            shares[((h as u128 * n as u128) >> 64) as usize].push(*s);
        }
        g.bench_function(format!("{n}_workers"), |b| {
            b.iter_batched(
                || (0..n).map(|_| Shard::new(Profile::new(Os::Linux), Interest::All, 1 << 24)).collect::<Vec<_>>(),
                |shards| {
                    std::thread::scope(|sc| {
                        let hs: Vec<_> = shards
                            .into_iter()
                            .zip(&shares)
                            .map(|(mut shard, share)| {
                                sc.spawn(move || {
                                    for chunk in share.chunks(512) {
                                        shard.process_batch(chunk);
                                    }
                                    shard
                                })
                            })
                            .collect();
                        hs.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
                    })
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench_decode, bench_state, bench_state_parallel);
criterion_main!(benches);

//! Replay you can trust on real captures: time and determinism.
//!
//! - Every INTERVAL boundary gets a view; consecutive views that nothing
//!   changed are folded into one line (text) or one object without a `host`
//!   key (JSON), so a multi-day gap costs a line, not millions of views.
//! - A jump of more than a day that the next frame confirms is time passing;
//!   a lone outlier (contradicted by the next frame, or the last frame of the
//!   capture) is a bad timestamp, tracked at the capture's time.
//! - Frames out of time order are counted and tracked at the clock's time.
//! - `--idle-timeout` forgets a connection at its last packet plus the timeout,
//!   so timers due later never fire, whatever the INTERVAL.
//! - The same input and flags give the same output on every run, and (without
//!   `--max-flows` pressure) with any number of workers.
//!
//! The captures are in fixtures/repro/ (copies of ../shared/repro/) and
//! fixtures/corpus/; the rest are crafted here.

mod common;

use common::cli::{capture_count, connection_rows, run_wirestat, stderr_of, stdout_of};
use common::craft::*;
use common::pcapfile::{Rec, write_pcap};
use common::ticking::{Ticking, live_config};
use common::tmp::TestDir;
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wirestat::pipeline::{self, Reading, Repeated};
use wirestat::report::HostView;

const ETHERNET: u32 = 1;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// Runs wirestat, asserts it succeeded, returns stdout and stderr.
fn wirestat(args: &[&str]) -> (String, String) {
    let o = run_wirestat(args);
    let (out, err) = (stdout_of(&o), stderr_of(&o));
    assert!(o.status.success(), "wirestat {args:?}: {:?}\n{err}", o.status);
    (out, err)
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn row(proto: &str, local: &str, foreign: &str, state: &str) -> (String, String, String, String) {
    (proto.into(), local.into(), foreign.into(), state.into())
}

fn at_ms(ms: u64, frame: Vec<u8>) -> Rec {
    Rec::new((ms / 1000) as u32, (ms % 1000) as u32 * 1000, frame)
}

const DAY_MS: u64 = 86_400_000;

/// The crafted conversation (client 40000 ends in TIME_WAIT, 40001 stays
/// ESTABLISHED) from `start_ms`, one frame per millisecond.
fn conversation_at(start_ms: u64) -> Vec<Rec> {
    conversation(false).into_iter().enumerate().map(|(i, f)| at_ms(start_ms + i as u64, eth(&f))).collect()
}

/// A bare ACK on the ESTABLISHED connection 40001 (changes no state).
fn keepalive(ms: u64) -> Rec {
    at_ms(ms, eth(&tcp_ip(&Seg { sport: 40001, dport: 22, ts_opt: true, ..Seg::new(false, ACK, 7051, 9001, 0) })))
}

#[test]
fn every_interval_boundary_gets_a_view_and_quiet_ones_fold() {
    // 10.0.0.1:40000 -> 10.0.0.2:80 opens and closes at 1000 s (TIME_WAIT until 1060 s);
    // the next packets come at 1200 s.
    let f = fixture("repro/interval.pcap");
    let f = f.to_str().unwrap();
    let (out, _) = wirestat(&["-r", f, "--host", "10.0.0.1", "-an", "--format", "json", "30"]);
    let v = json_lines(&out);
    let time = |i: usize| v[i]["time"].as_f64().unwrap();
    assert_eq!(v.len(), 5, "{out}");
    assert_eq!(time(0), 1020.0);
    assert_eq!(connection_rows(&v[0]), [row("TCP", "10.0.0.1:40000", "10.0.0.2:80", "TIME_WAIT")]);
    // 1050 s: still TIME_WAIT, the same view: folded, in an object with no `host` key.
    assert!(v[1].get("host").is_none());
    assert_eq!(
        (v[1]["repeated_views"].as_u64(), v[1]["from"].as_f64(), v[1]["to"].as_f64()),
        (Some(1), Some(1050.0), Some(1050.0))
    );
    assert_eq!(v[1]["from_utc"], "1970-01-01T00:17:30.000000Z");
    // 1080 s: TIME_WAIT expired at 1060 s.
    assert_eq!(time(2), 1080.0);
    assert!(connection_rows(&v[2]).is_empty(), "{out}");
    // 1110 to 1200 s: nothing happens (the packet at 1200 s comes after the boundary's view).
    assert_eq!(
        (v[3]["repeated_views"].as_u64(), v[3]["from"].as_f64(), v[3]["to"].as_f64()),
        (Some(4), Some(1110.0), Some(1200.0))
    );
    assert_eq!(time(4), 1200.002);
    assert_eq!(connection_rows(&v[4]), [row("TCP", "10.0.0.1:40001", "10.0.0.2:80", "ESTABLISHED")]);
    // A boundary's view describes the frames before it.
    assert_eq!(capture_count(&v[2], "frames"), 8);
    assert_eq!(v[2]["capture"]["last_frame_time"].as_f64(), Some(1000.052));

    let (text, _) = wirestat(&["-r", f, "--host", "10.0.0.1", "-an", "30"]);
    assert_eq!(text.matches("Capture time").count(), 3, "{text}");
    assert!(text.contains("\n(1 identical view at 1970-01-01 00:17:30.000000 UTC not repeated)\n"), "{text}");
    assert!(
        text.contains(
            "\n(4 identical views from 1970-01-01 00:18:30.000000 UTC to 1970-01-01 00:20:00.000000 UTC not repeated)\n"
        ),
        "{text}"
    );
}

#[test]
fn a_multi_day_gap_at_a_short_interval_is_one_line_and_quick() {
    let (d0, d2) = (fixture("repro/day0.pcap"), fixture("repro/day2.pcap"));
    let (d0, d2) = (d0.to_str().unwrap(), d2.to_str().unwrap());
    for interval in ["1", "0.000001"] {
        let start = Instant::now();
        let (out, _) = wirestat(&["-r", d0, "-r", d2, "--host", "10.0.0.1", "-an", "--format", "json", interval]);
        assert!(start.elapsed().as_secs() < 10, "INTERVAL {interval}: {:?}", start.elapsed());
        let v = json_lines(&out);
        let step: f64 = interval.parse().unwrap();
        assert!(v.len() < 100, "INTERVAL {interval}: {} lines", v.len());
        let folded: u64 = v.iter().filter_map(|l| l["repeated_views"].as_u64()).sum();
        let shown = v.iter().filter(|l| l.get("host").is_some()).count() as u64;
        // Every boundary after the first frame, up to the last, is a view shown or folded (and the
        // last view, at the last frame, is not a boundary).
        let (first_us, last_us, step_us) = (1_700_000_000_000_000u64, 1_700_172_800_022_000u64, (step * 1e6) as u64);
        assert_eq!(v[0]["capture"]["first_frame_time"].as_f64(), Some(1_700_000_000.0));
        assert_eq!(folded + shown - 1, last_us / step_us - first_us / step_us, "INTERVAL {interval}");
        assert!(folded > 170_000, "INTERVAL {interval}: {folded}");
        let end = v.last().unwrap();
        assert_eq!(connection_rows(end), [row("TCP", "10.0.0.1:40001", "10.0.0.2:80", "ESTABLISHED")]);
    }
}

#[test]
fn a_jump_the_next_frame_confirms_is_time_passing() {
    // day0: a connection closed (TIME_WAIT); day2: more traffic two days later.
    let (d0, d2) = (fixture("repro/day0.pcap"), fixture("repro/day2.pcap"));
    let (out, err) = wirestat(&[
        "-r",
        d0.to_str().unwrap(),
        "-r",
        d2.to_str().unwrap(),
        "--host",
        "10.0.0.1",
        "-an",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(connection_rows(&v), [row("TCP", "10.0.0.1:40001", "10.0.0.2:80", "ESTABLISHED")]);
    assert_eq!(v["time"].as_f64(), Some(1_700_172_800.022));
    assert_eq!(v["capture"]["last_frame_time"].as_f64(), Some(1_700_172_800.022));
    assert_eq!(capture_count(&v, "bad_timestamps"), 0, "{err}");

    // http-get, a SYN two days later, an unrelated RST 300 s after that: at the
    // last frame the TIME_WAIT is long gone and the SYN has given up.
    let t = fixture("repro/timejump.pcap");
    let (out, _) = wirestat(&["-r", t.to_str().unwrap(), "-a", "-n", "-s", "--format", "json"]);
    let views = json_lines(&out);
    for h in &views {
        let rows: Vec<_> = connection_rows(h).into_iter().filter(|r| r.3 != "LISTEN").collect();
        assert!(rows.is_empty(), "{h}");
        assert_eq!(h["time_utc"], "2013-03-09T21:47:06.869344Z");
        assert_eq!(capture_count(h, "bad_timestamps"), 0);
    }
    let syn = views.iter().find(|h| h["host"][0] == "147.183.77.73").expect("the SYN's host");
    assert_eq!(syn["tcp_stats"]["ipv4"]["failed_connection_attempts"], 1);
    assert_eq!(syn["tcp_stats"]["ipv4"]["active_opens"], 1);
}

#[test]
fn a_lone_jump_is_a_bad_timestamp_even_as_the_last_frame() {
    let dir = TestDir::new("lone-jump");
    let run = |name: &str, recs: Vec<Rec>| {
        let file = dir.file(name);
        write_pcap(&file, ETHERNET, 65535, &recs);
        let (out, err) =
            wirestat(&["-r", file.to_str().unwrap(), "--host", V4_CLIENT_STR, "-an", "-s", "--format", "json"]);
        (serde_json::from_str::<Value>(out.trim()).unwrap(), err)
    };
    let tw_and_est = [
        row("TCP", "192.0.2.1:40000", "198.51.100.2:80", "TIME_WAIT"),
        row("TCP", "192.0.2.1:40001", "198.51.100.2:22", "ESTABLISHED"),
    ];

    // The last frame is three days ahead: nothing follows to confirm it.
    let mut recs = conversation_at(100_000);
    recs.push(keepalive(100_000 + 3 * DAY_MS));
    let (v, err) = run("last.pcap", recs);
    assert_eq!(connection_rows(&v), tw_and_est);
    assert_eq!(capture_count(&v, "bad_timestamps"), 1);
    assert_eq!(v["time"].as_f64(), Some(100.014), "the clock stays at the last real time");
    assert!(err.contains("1 frames with a timestamp far ahead"), "{err}");

    // Two frames three days ahead: the second confirms the first.
    let mut recs = conversation_at(100_000);
    recs.push(keepalive(100_000 + 3 * DAY_MS));
    recs.push(keepalive(100_000 + 3 * DAY_MS + 500));
    let (v, _) = run("confirmed.pcap", recs);
    assert_eq!(connection_rows(&v), [tw_and_est[1].clone()], "TIME_WAIT ended days ago");
    assert_eq!(capture_count(&v, "bad_timestamps"), 0);
    assert_eq!(v["time"].as_f64(), Some(100.0 + 3.0 * 86_400.0 + 0.5));

    // Two outliers far from each other, then the capture goes on: both are bad.
    let mut recs = conversation_at(100_000);
    recs.push(keepalive(100_000 + 3 * DAY_MS));
    recs.push(keepalive(100_000 + 9 * DAY_MS));
    recs.push(keepalive(100_100));
    let (v, _) = run("two-outliers.pcap", recs);
    assert_eq!(connection_rows(&v), tw_and_est);
    assert_eq!(capture_count(&v, "bad_timestamps"), 2);
    assert_eq!(v["time"].as_f64(), Some(100.1));
    assert_eq!(capture_count(&v, "frames"), 18);
}

#[test]
fn frames_out_of_order_are_counted_and_tracked_at_the_clock() {
    // A kernel-truth capture with its records in reverse order.
    let f = fixture("repro/reversed.pcap");
    let f = f.to_str().unwrap();
    let args = |w: &'static str| {
        ["-r", f, "--host", "10.201.0.1", "--host", "fd00:201::1", "-an", "--format", "json", "--workers", w]
    };
    let (out, err) = wirestat(&args("1"));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(capture_count(&v, "out_of_order"), 2420);
    assert!(err.contains("2420 frames out of time order"), "{err}");
    // The whole capture is tracked at its first record's time, the latest.
    assert_eq!(v["time"], v["capture"]["last_frame_time"]);
    assert_eq!(wirestat(&args("3")).0, out, "the same with 3 workers");

    // One frame stamped 0.5 s before the one ahead of it: counted, and tracked
    // as if in order (its connection's state cannot go back in time).
    let dir = TestDir::new("ooo");
    let file = dir.file("ooo.pcap");
    let mut recs = conversation_at(100_000);
    let ordered = dir.file("ordered.pcap");
    write_pcap(&ordered, ETHERNET, 65535, &recs);
    recs[5].sec = 99;
    recs[5].usec = 500_000;
    write_pcap(&file, ETHERNET, 65535, &recs);
    let view = |p: &Path| {
        let (out, _) = wirestat(&["-r", p.to_str().unwrap(), "--host", V4_CLIENT_STR, "-an", "-s", "--format", "json"]);
        serde_json::from_str::<Value>(out.trim()).unwrap()
    };
    let (a, b) = (view(&file), view(&ordered));
    assert_eq!(capture_count(&a, "out_of_order"), 1);
    assert_eq!(capture_count(&b, "out_of_order"), 0);
    assert_eq!((connection_rows(&a), &a["tcp_stats"]), (connection_rows(&b), &b["tcp_stats"]));
    assert_eq!(a["capture"]["first_frame_time"].as_f64(), Some(99.5), "the earliest frame read");
}

#[test]
fn an_idle_connection_is_forgotten_before_a_later_give_up_whatever_the_interval() {
    // One SYN from 10.0.0.1 never answered, background traffic every 0.5 s for 200 s.
    let f = fixture("repro/race3.pcap");
    let f = f.to_str().unwrap();
    for (idle, failed, idle_expired) in [("5", 0, 1), ("30", 1, 0)] {
        for interval in [None, Some("10"), Some("1")] {
            let mut args = vec!["-r", f, "--host", "10.0.0.1", "-s", "--os", "windows", "--format", "json"];
            args.extend(["--idle-timeout", idle, "--workers", "1"]);
            args.extend(interval);
            let (out, _) = wirestat(&args);
            let last = json_lines(&out).pop().unwrap();
            let what = format!("--idle-timeout {idle}, INTERVAL {interval:?}");
            // Windows gives up on a SYN after 21 s: after 5 s idle it is already forgotten, after 30 s not yet.
            assert_eq!(last["tcp_stats"]["ipv4"]["failed_connection_attempts"], failed, "{what}");
            assert_eq!(capture_count(&last, "flows_idle_expired"), idle_expired, "{what}");
        }
    }
}

#[test]
fn same_input_and_flags_give_the_same_output_every_run() {
    // Idle expiry with 8 workers: Failed Connection Attempts was 0, 2 or 3 from run to run.
    let gre = fixture("corpus/zeek/tunnels-gre-aruba.pcap");
    let gre = gre.to_str().unwrap();
    let mut outs = Vec::new();
    for w in ["8", "8", "8", "8", "1", "3"] {
        let args = ["-r", gre, "-s", "--host", "10.37.36.92", "--os", "windows", "--idle-timeout", "5", "--workers", w];
        outs.push(wirestat(&args).0);
    }
    assert!(outs[0].contains("Failed Connection Attempts          = 0"), "{}", outs[0]);
    assert!(outs.iter().all(|o| *o == outs[0]), "{outs:#?}");

    // Eviction under --max-flows: the same rows every run (with the same --workers).
    let synth = fixture("synth-small.pcap");
    let synth = synth.to_str().unwrap();
    for w in ["1", "3"] {
        let args =
            ["-r", synth, "--host", "10.0.0.1", "--host", "fd00::1", "-an", "-s", "--max-flows", "100", "--workers", w];
        let first = run_wirestat(&args);
        assert!(stderr_of(&first).contains("flows evicted"), "{}", stderr_of(&first));
        for _ in 0..4 {
            let again = run_wirestat(&args);
            assert_eq!((stdout_of(&again), stderr_of(&again)), (stdout_of(&first), stderr_of(&first)), "--workers {w}");
        }
    }
}

/// The corpus traces that span days (some of them years): the same views with
/// 1, 3 and 8 workers, on every run (20 runs each), to the byte, capture
/// figures included; and the same with an INTERVAL.
#[test]
fn multi_day_traces_give_the_same_views_with_any_workers_every_run() {
    let start = Instant::now();
    for name in [
        "mixed-vlan-mpls",
        "modbus-and-non-modbus-p502",
        "smtp",
        "ssh-client-side-half-duplex",
        "ssh-server-side-half-duplex",
    ] {
        let p = fixture(&format!("corpus/zeek/{name}.pcap"));
        let p = p.to_str().unwrap();
        let run = |w: &str, interval: Option<&str>| {
            let mut args = vec!["-r", p, "-a", "-n", "-s", "--format", "json", "--workers", w];
            args.extend(interval);
            let (out, err) = wirestat(&args);
            (out, err)
        };
        let (want, _) = run("1", None);
        let span = json_lines(&want)[0]["capture"].clone();
        let days = (span["last_frame_time"].as_f64().unwrap() - span["first_frame_time"].as_f64().unwrap()) / 86_400.0;
        assert!(days > 1.0, "{name} spans {days} days");
        assert_eq!(span["bad_timestamps"], 0, "{name}: its jumps are real time");
        for w in ["1", "3", "8"] {
            for _ in 0..20 {
                assert_eq!(run(w, None).0, want, "{name}, --workers {w}");
            }
        }
        let (hourly, _) = run("1", Some("3600"));
        for w in ["3", "8"] {
            assert_eq!(run(w, Some("3600")).0, hourly, "{name}, --workers {w}, INTERVAL 3600");
        }
    }
    eprintln!("multi-day traces: {:?}", start.elapsed());
}

/// Ticks follow the same boundary rule as frames, except that the last
/// boundary a tick reaches is always shown (a live display shows the view of
/// now): every boundary while ticks come more often than INTERVAL, and after
/// a stall of an hour, only the views that differ plus the latest one.
#[test]
fn ticks_share_the_boundary_rule_and_show_the_latest_view() {
    const S: u64 = 1_000_000_000;
    let t0 = 1_700_000_000 * S;
    let mut ticks: Vec<u64> = (1..=30).map(|i| t0 + i * S / 10).collect();
    ticks.push(t0 + 3600 * S + S / 2);
    let client: IpAddr = V4_CLIENT_STR.parse().unwrap();
    let cfg = live_config();
    let mut seen: Vec<(u64, Option<Repeated>, usize)> = Vec::new();
    let reading = Reading { interval: S, ..Reading::default() };
    pipeline::run(Ticking::conversation(t0, ticks), &reading, &cfg, |store, h, at| {
        let tw = HostView::build(store, &[client]).rows.iter().filter(|(_, r)| r.state.name() == "TIME_WAIT").count();
        seen.push((
            (at - t0) / S,
            h.repeated.map(|r| Repeated { from: (r.from - t0) / S, to: (r.to - t0) / S, ..r }),
            tw,
        ));
        Ok(())
    })
    .unwrap();
    let fold = |views, from, to| Some(Repeated { views, from, to });
    assert_eq!(
        seen,
        [
            // Each tick that reaches a boundary shows it, quiet or not.
            (1, None, 1),
            (2, None, 1),
            (3, None, 1),
            // The stall: TIME_WAIT ends 60 s after the close, then nothing changes.
            (61, fold(57, 4, 60), 0),
            (3600, fold(3538, 62, 3599), 0),
            // The last view, at the last tick.
            (3600, None, 0),
        ]
    );
}

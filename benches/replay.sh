#!/usr/bin/env bash
# Whole-program benchmark: wirestat against the project's bare libpcap read
# loop (examples/pcap_loop.rs) on the same synthetic capture, file in page cache.
#
#   benches/replay.sh [PACKETS] [FLOWS] [CONCURRENCY] [RUNS]
#     defaults: 10000000 1000000 100000 5  (the issue's reference capture)
#   MEMORY_FLOWS=2000000 benches/replay.sh ...   also size the memory capture
#
# Prints, for the throughput capture: median wall seconds of each, Mpps, the
# ratio wirestat/bare (and against the bare loop reading through the same
# 64 KiB stdio buffer wirestat uses, `pcap_loop --buffered`); for the memory capture (MEMORY_FLOWS connections open
# at once): peak RSS and bytes per tracked connection above a tiny run's RSS.
# Needs GNU time (/usr/bin/time, Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
PACKETS=${1:-10000000}
FLOWS=${2:-1000000}
CONC=${3:-100000}
RUNS=${4:-5}
MEMORY_FLOWS=${MEMORY_FLOWS:-2000000}
WORKERS=${WORKERS:-}
OUT=${BENCH_OUT:-bench-out}
mkdir -p "$OUT"
[ -x /usr/bin/time ] || { echo "benches/replay.sh: needs GNU time: apt-get install -y time" >&2; exit 2; }

cargo build --release --quiet --bin wirestat --bin wirestat-synth --example pcap_loop
WS=target/release/wirestat
BARE=target/release/examples/pcap_loop
SYNTH=target/release/wirestat-synth
wflag=()
[ -n "$WORKERS" ] && wflag=(--workers "$WORKERS")

CAP="$OUT/replay-$PACKETS-$FLOWS-$CONC.pcap"
if [ ! -f "$CAP" ]; then
  echo "generating $CAP ..." >&2
  "$SYNTH" --out "$CAP" --truth "$CAP.json" --packets "$PACKETS" --flows "$FLOWS" --concurrency "$CONC" --seed 1
fi
npk=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['packets'])" "$CAP.json")
cat "$CAP" > /dev/null  # into the page cache

# run CMD... -> prints "wall_seconds peak_kb"
run() { /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$@" > /dev/null 2>&1; cat "$OUT/time.txt"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$OUT/bare.txt"; : > "$OUT/buffered.txt"; : > "$OUT/ws.txt"; : > "$OUT/ratio.txt"; : > "$OUT/ratio-buffered.txt"
run "$BARE" "$CAP" > /dev/null; run "$WS" -r "$CAP" -a -n -s "${wflag[@]}" > /dev/null  # warm-up
for _ in $(seq "$RUNS"); do
  b=$(run "$BARE" "$CAP" | cut -d' ' -f1)
  w=$(run "$WS" -r "$CAP" -a -n -s "${wflag[@]}" | cut -d' ' -f1)
  bb=$(run "$BARE" --buffered "$CAP" | cut -d' ' -f1)
  echo "$b" >> "$OUT/bare.txt"; echo "$w" >> "$OUT/ws.txt"; echo "$bb" >> "$OUT/buffered.txt"
  python3 -c "print($w / $b)" >> "$OUT/ratio.txt"
  python3 -c "print($w / $bb)" >> "$OUT/ratio-buffered.txt"
done
b=$(median < "$OUT/bare.txt"); w=$(median < "$OUT/ws.txt"); r=$(median < "$OUT/ratio.txt")
bb=$(median < "$OUT/buffered.txt"); rb=$(median < "$OUT/ratio-buffered.txt")
python3 - "$npk" "$b" "$w" "$r" "$RUNS" "$bb" "$rb" <<'PY'
import sys
n, b, w, r, runs, bb, rb = int(sys.argv[1]), *map(float, sys.argv[2:5]), sys.argv[5], *map(float, sys.argv[6:8])
print(f"throughput ({n} packets, median of {runs} alternating runs, wall clock, whole process)")
print(f"  bare libpcap loop            {b:7.3f} s  {n / b / 1e6:6.2f} Mpps")
print(f"  wirestat -a -n -s            {w:7.3f} s  {n / w / 1e6:6.2f} Mpps  = {100 / r:4.1f}% of the bare loop (median pair ratio {r:.2f})")
print(f"  bare loop, wirestat's buffer {bb:7.3f} s  {n / bb / 1e6:6.2f} Mpps  (wirestat = {100 / rb:4.1f}% of it)")
PY

if [ "$MEMORY_FLOWS" -gt 0 ]; then
  MEM="$OUT/memory-$MEMORY_FLOWS.pcap"
  if [ ! -f "$MEM" ]; then
    echo "generating $MEM ..." >&2
    "$SYNTH" --out "$MEM" --truth "$MEM.json" --flows "$MEMORY_FLOWS" --concurrency "$MEMORY_FLOWS" \
      --mix open=1 --data-segs-max 1 --snaplen 96 --seed 2
  fi
  cat "$MEM" > /dev/null
  base=$(run "$WS" -r fixtures/oracle/client-s1/capture.pcap -a -n -s | cut -d' ' -f2)
  peak=$(run "$WS" -r "$MEM" -a -n -s "${wflag[@]}" | cut -d' ' -f2)
  python3 - "$MEMORY_FLOWS" "$base" "$peak" <<'PY'
import sys
f, base, peak = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"memory ({f} connections open at once, all still open at the end)")
print(f"  peak RSS {peak / 1024:.1f} MiB (a tiny capture: {base / 1024:.1f} MiB) = {(peak - base) * 1024 / f:.0f} bytes per tracked connection")
PY
fi

#!/usr/bin/env bash
# Whole-program benchmarks: wirestat against the project's bare libpcap read
# loop (examples/pcap_loop.rs) on synthetic captures, files in page cache.
#
#   benches/replay.sh [PACKETS] [FLOWS] [CONCURRENCY] [RUNS]
#     defaults: 10000000 1000000 100000 5  (the issue's reference capture)
#
# Captures (generated into $BENCH_OUT, default bench-out/, on first use):
#   throughput  PACKETS packets, FLOWS flows, CONCURRENCY at once, from the
#               default ~500 client addresses: wirestat -a -n -s
#   clients     the same with one client address per flow (CLIENTS, default
#               FLOWS): every host shown vs --top (the default) vs --host
#   memory      MEMORY_FLOWS connections open at once (default 1900000), each
#               from a client address of its own: peak RSS per connection
#               above a tiny run's, without --host
#   flood       FLOOD spoofed SYNs (default 5000000), each from a source of its
#               own, to one service among 20000 ordinary connections:
#               --max-flows 100000 -a -s, with and without --host; then the
#               same flood over IPv6, and half over each family
# Set any of CLIENTS, MEMORY_FLOWS, FLOOD to 0 to skip that capture.
#
# Each comparison alternates the bare loop and wirestat RUNS times and prints
# median wall seconds, packets/s, the median pair ratio, and median peak RSS.
# Needs GNU time (/usr/bin/time, Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
PACKETS=${1:-10000000}
FLOWS=${2:-1000000}
CONC=${3:-100000}
RUNS=${4:-5}
CLIENTS=${CLIENTS:-$FLOWS}
MEMORY_FLOWS=${MEMORY_FLOWS:-1900000}
FLOOD=${FLOOD:-5000000}
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

# capture FILE SYNTH-ARGS...: generates FILE (and FILE.json) unless it exists.
capture() {
  local f=$1; shift
  if [ ! -f "$f" ]; then
    echo "generating $f ..." >&2
    "$SYNTH" --out "$f" --truth "$f.json" "$@"
  fi
  cat "$f" > /dev/null  # into the page cache
}
packets() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['packets'])" "$1.json"; }
# run CMD... -> "wall_seconds peak_kb"; stderr kept in $OUT/stderr.txt
run() { /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$@" > /dev/null 2> "$OUT/stderr.txt"; cat "$OUT/time.txt"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# compare LABEL CAPTURE WIRESTAT-ARGS...: alternates the bare loop and wirestat.
compare() {
  local label=$1 cap=$2; shift 2
  local n; n=$(packets "$cap")
  : > "$OUT/b.txt"; : > "$OUT/w.txt"; : > "$OUT/r.txt"; : > "$OUT/m.txt"
  run "$BARE" "$cap" > /dev/null; run "$WS" -r "$cap" "$@" "${wflag[@]}" > /dev/null  # warm-up
  for _ in $(seq "$RUNS"); do
    local b w
    b=$(run "$BARE" "$cap" | cut -d' ' -f1)
    w=$(run "$WS" -r "$cap" "$@" "${wflag[@]}")
    echo "$b" >> "$OUT/b.txt"; echo "${w% *}" >> "$OUT/w.txt"; echo "${w#* }" >> "$OUT/m.txt"
    python3 -c "print(${w% *} / $b)" >> "$OUT/r.txt"
  done
  local evicted dropped
  evicted=$(grep -o '[0-9]* flows evicted' "$OUT/stderr.txt" | cut -d' ' -f1 || true)
  dropped=$(grep -o '[0-9]* per-address entries not kept' "$OUT/stderr.txt" | cut -d' ' -f1 || true)
  python3 - "$label" "$n" "$(median < "$OUT/b.txt")" "$(median < "$OUT/w.txt")" "$(median < "$OUT/r.txt")" \
    "$(median < "$OUT/m.txt")" "${evicted:-0}" "${dropped:-0}" "$*" <<'PY'
import sys
label, n, b, w, r, m, ev, dr, args = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:7]), *sys.argv[7:10]
print(f"{label}: wirestat {args}")
print(f"  bare loop {b:6.3f} s {n / b / 1e6:6.2f} Mpps | wirestat {w:6.3f} s {n / w / 1e6:6.2f} Mpps"
      f" = {100 / r:4.1f}% of the bare loop (median pair ratio {r:.2f}) | peak RSS {m / 1024:.0f} MiB"
      f" | {ev} flows evicted, {dr} per-address entries not kept")
PY
}

echo "median of $RUNS alternating runs, wall clock, whole process"
CAP="$OUT/replay-$PACKETS-$FLOWS-$CONC.pcap"
capture "$CAP" --packets "$PACKETS" --flows "$FLOWS" --concurrency "$CONC" --seed 1
compare "throughput ($(packets "$CAP") packets)" "$CAP" -a -n -s
BUF="$OUT/buffered.txt"; : > "$BUF"
for _ in $(seq "$RUNS"); do run "$BARE" --buffered "$CAP" | cut -d' ' -f1 >> "$BUF"; done
echo "  bare loop through wirestat's 64 KiB buffer: $(median < "$BUF") s"

if [ "$CLIENTS" -gt 0 ]; then
  CC="$OUT/clients-$PACKETS-$FLOWS-$CONC-$CLIENTS.pcap"
  capture "$CC" --packets "$PACKETS" --flows "$FLOWS" --concurrency "$CONC" --clients "$CLIENTS" --seed 1
  compare "$CLIENTS client addresses, every host" "$CC" -a -n -s --top 0
  compare "$CLIENTS client addresses, the 10 busiest (default)" "$CC" -a -n -s
  compare "$CLIENTS client addresses, one host" "$CC" -a -n -s --host 10.0.0.1 --host fd00::1
fi

if [ "$MEMORY_FLOWS" -gt 0 ]; then
  MEM="$OUT/open-$MEMORY_FLOWS.pcap"
  capture "$MEM" --flows "$MEMORY_FLOWS" --concurrency "$MEMORY_FLOWS" --clients "$MEMORY_FLOWS" \
    --mix open=1 --data-segs-max 1 --snaplen 96 --seed 2
  base=$(run "$WS" -r fixtures/oracle/client-s1/capture.pcap -a -n -s | cut -d' ' -f2)
  : > "$OUT/m.txt"
  for _ in $(seq "$RUNS"); do run "$WS" -r "$MEM" -a -n -s "${wflag[@]}" | cut -d' ' -f2 >> "$OUT/m.txt"; done
  peak=$(median < "$OUT/m.txt")
  python3 - "$MEMORY_FLOWS" "$base" "$peak" <<'PY'
import sys
f, base, peak = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"memory ({f} connections open at once, each from its own client address, no --host)")
print(f"  peak RSS {peak / 1024:.1f} MiB (a tiny capture: {base / 1024:.1f} MiB) = {(peak - base) * 1024 / f:.0f} bytes per open connection")
PY
fi

if [ "$FLOOD" -gt 0 ]; then
  FL="$OUT/flood-$FLOOD.pcap"
  capture "$FL" --flows 20000 --concurrency 2000 --flood "$FLOOD" --snaplen 96 --seed 3
  compare "flood ($FLOOD spoofed SYNs)" "$FL" --max-flows 100000 -a -s
  compare "flood ($FLOOD spoofed SYNs)" "$FL" --max-flows 100000 -a -s --host 10.0.0.1
  # The same over IPv6, and with the two families mixed SYN by SYN.
  for ratio in 1 0.5; do
    F6="$OUT/flood-$FLOOD-v6-$ratio.pcap"
    capture "$F6" --flows 20000 --concurrency 2000 --flood "$FLOOD" --flood-v6-ratio "$ratio" --snaplen 96 --seed 3
    compare "flood ($FLOOD spoofed SYNs, IPv6 share $ratio)" "$F6" --max-flows 100000 -a -s
  done
fi

#!/usr/bin/env bash
# Live capture rate: replay a capture with tcpreplay onto one end of a veth
# pair while `shadowmcp run` captures on the other end, at rising rates, and
# report the loss at each rate (packets tcpreplay sent vs packets the sensor
# processed, and the kernel's own drop counter).
#
#   bench/live.sh [--file PCAP] [--mbps "200 500 1000 2000 4000"] [--pps "..."] [--workers N] [--loops N]
#                 [--binary PATH]
#
# --binary: the sensor to run (default target/release/shadowmcp, built here;
# target/pgo/release/shadowmcp after scripts/build-pgo.sh).
#
# A rate of "top" (in either list) replays as fast as tcpreplay can, with the
# file preloaded into memory.
#
# Needs root (network namespaces, capture), tcpreplay, curl and iproute2 —
# `apt-get install tcpreplay` if missing. Traffic stays inside two namespaces
# created here (smcpl-tx, smcpl-rx) and removed on exit. Without --file it
# generates a 256 MiB egress mix (bench/data/). Results go to stdout and to
# bench/results/live-<UTC stamp>.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."

file=""
mbps="250 500 1000 2000 top"
pps=""
workers=1
loops=1
while [ $# -gt 0 ]; do
    case "$1" in
        --file) file=$2; shift 2 ;;
        --mbps) mbps=$2; shift 2 ;;
        --pps) pps=$2; mbps=""; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        --loops) loops=$2; shift 2 ;;
        --binary) bin=$2; shift 2 ;;
        -h|--help) sed -n 2,20p "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "bench/live.sh needs root (namespaces, capture)" >&2; exit 1; }
command -v tcpreplay >/dev/null || { echo "tcpreplay missing: apt-get install tcpreplay" >&2; exit 1; }

cargo build --release --bins --quiet
bin=${bin:-target/release/shadowmcp}
[ -x "$bin" ] || { echo "bench/live.sh: $bin is not an executable" >&2; exit 2; }
if [ -z "$file" ]; then
    file=bench/data/egress-mix-256mb-seed42.pcap
    mkdir -p bench/data
    [ -f "$file" ] || target/release/shadowmcp-bench-gen --scenario egress-mix --size-mb 256 --seed 42 --output "$file"
fi
[ -f "$file" ] || { echo "no such capture: $file" >&2; exit 1; }

tx=smcpl-tx rx=smcpl-rx
work=$(mktemp -d)
sensor=""
cleanup() {
    [ -n "$sensor" ] && kill "$sensor" 2>/dev/null && wait "$sensor" 2>/dev/null
    ip netns del "$tx" 2>/dev/null || true
    ip netns del "$rx" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns del "$tx" 2>/dev/null || true
ip netns del "$rx" 2>/dev/null || true
ip netns add "$tx"
ip netns add "$rx"
ip -n "$tx" link add vtx type veth peer name vrx netns "$rx"
ip -n "$tx" link set vtx up
ip -n "$rx" link set vrx up
ip -n "$rx" link set lo up

port=9199
ip netns exec "$rx" "$bin" run -i vrx --workers "$workers" --metrics-listen "127.0.0.1:$port" \
    --buffer-size 256 --sink "jsonl:$work/findings.jsonl" 2>"$work/sensor.log" &
sensor=$!

metric() { # name{labels} sum over series matching the prefix
    ip netns exec "$rx" curl -sf "http://127.0.0.1:$port/metrics" |
        awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { printf "%d\n", s }'
}
for _ in $(seq 1 100); do
    metric shadowmcp_packets_total >/dev/null 2>&1 && break
    sleep 0.1
done

# Frames the receiving veth dropped before any capture saw them (its
# backlog overflowed): loss of the test bed, not of the sensor.
rx_dropped() {
    ip -n "$rx" -s link show vrx | awk '/RX:/ { getline; print $4; exit }'
}

# Wait until the workers have processed everything the capture handed them
# (workers and capture threads publish their counters every 500 ms).
settle() {
    local last=-1 now
    for _ in $(seq 1 60); do
        now=$(metric shadowmcp_processed_packets_total)+$(metric shadowmcp_packets_total)
        [ "$now" = "$last" ] && return
        last=$now
        sleep 1.1
    done
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
out=bench/results/live-$stamp.tsv
printf 'rate\tsent\tveth_rx_drops\tcaptured\tkernel_drops\tqueue_drops\tprocessed\tloss_pct\tactual_mbps\tactual_pps\tsensor_cpu_pct\tsensor_us_per_pkt\n' | tee "$out"
rates=${mbps:-$pps}
unit=$([ -n "$mbps" ] && echo mbps || echo pps)
# The counters compared before and after each replay, as one line:
# processed captured veth_rx_drops kernel_drops queue_drops.
counters() {
    echo "$(metric shadowmcp_processed_packets_total) $(metric shadowmcp_packets_total) $(rx_dropped)" \
        "$(metric 'shadowmcp_capture_drops_total{cause="kernel"')" \
        "$(metric 'shadowmcp_capture_drops_total{cause="queue_full"')"
}
# CPU seconds the sensor process has used (user + system), to show how much
# headroom it had at a rate.
cpu_secs() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$sensor/stat"
}
# Per thread: id, name, user and system ticks.
threads_cpu() {
    for t in /proc/"$sensor"/task/*; do
        awk '{ c = $0; sub(/^[^(]*\(/, "", c); sub(/\).*/, "", c); gsub(/ /, "_", c);
            n = split($0, f, ") "); split(f[n], r, " ");
            print FILENAME, c, r[12], r[13] }' "$t/stat" | sed 's|^/proc/[0-9]*/task/\([0-9]*\)/stat|\1|'
    done | sort
}
settle
threads_cpu >"$work/threads.start"
for r in $rates; do
    settle
    read -r p0 c0 v0 k0 q0 <<<"$(counters)"
    cpu0=$(cpu_secs) t0=$(date +%s.%N)
    # "top": as fast as tcpreplay can send, the file preloaded into memory.
    if [ "$r" = top ]; then speed=(--topspeed --preload-pcap); else speed=("--$unit=$r"); fi
    ip netns exec "$tx" tcpreplay -i vtx "${speed[@]}" --loop="$loops" "$file" >"$work/replay.txt" 2>&1
    cpu1=$(cpu_secs) t1=$(date +%s.%N)
    settle
    read -r p1 c1 v1 k1 q1 <<<"$(counters)"
    cpu2=$(cpu_secs)
    # Sensor CPU during the replay, in % of one core.
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / (e - s) }')
    sent=$(awk '/Successful packets:/ { print $3 }' "$work/replay.txt")
    rate_line=$(grep -m1 'Rated:' "$work/replay.txt" || true)
    act_mbps=$(echo "$rate_line" | sed -n 's/.*, \([0-9.]*\) Mbps.*/\1/p')
    act_pps=$(echo "$rate_line" | sed -n 's/.*Mbps, \([0-9.]*\) pps.*/\1/p')
    got=$((p1 - p0))
    loss=$(awk -v s="$sent" -v g="$got" 'BEGIN { printf "%.3f", (s > 0 && g < s) ? 100 * (s - g) / s : 0 }')
    # Sensor CPU per processed packet, until every packet was processed.
    us=$(awk -v a="$cpu0" -v b="$cpu2" -v g="$got" 'BEGIN { printf "%.3f", (g > 0) ? 1e6 * (b - a) / g : 0 }')
    printf '%s %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$unit" "$sent" $((v1 - v0)) $((c1 - c0)) \
        $((k1 - k0)) $((q1 - q0)) "$got" "$loss" "$act_mbps" "$act_pps" "$cpu" "$us" | tee -a "$out"
done
# Where the sensor's CPU went during the replays, by thread (capture,
# workers, findings, I/O, main), start-up excluded.
threads_cpu >"$work/threads.end"
join -a1 "$work/threads.end" "$work/threads.start" |
    awk -v hz="$(getconf CLK_TCK)" '{ printf "thread %-8s %-20s %.2f s user, %.2f s system\n", $1, $2, ($3 - $6) / hz, ($4 - $7) / hz }' |
    tee -a "$out"
# The same file through `analyze` (same binary, same workers): CPU per
# packet offline, the figure the live sensor is compared with. Median of 3.
packets=$("$bin" analyze --no-progress -o /dev/null --workers "$workers" "$file" 2>&1 | awk '/^packets/ { print $2; exit }')
offline=$(for _ in 1 2 3; do
    /usr/bin/time -f '%U %S' "$bin" analyze --quiet --no-progress -o /dev/null --workers "$workers" "$file" 2>&1 |
        awk -v n="$packets" 'END { printf "%.3f\n", 1e6 * ($1 + $2) / n }'
done | sort -n | sed -n 2p)
echo "analyze on the same file: $offline us of CPU per packet ($packets packets, median of 3)" | tee -a "$out"
echo "file: $file ($(stat -c %s "$file") bytes), workers: $workers, results: $out"

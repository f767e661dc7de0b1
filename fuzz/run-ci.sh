#!/bin/sh
# Run every fuzz target for a bounded time; exit non-zero on the first crash.
#
#   fuzz/run-ci.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60, all targets)
#
# Builds once (cargo fuzz build -O), seeds the corpora from the captures if
# fuzz/corpus/ is missing, then runs each target alone (libFuzzer, 1 job) for
# SECONDS_PER_TARGET and prints "target seconds executions result".
# A crashing input is saved under fuzz/artifacts/<target>/ (reproduce with
# `cargo fuzz run <target> <file>`), and the script exits 1.
#
# Toolchain: cargo-fuzz needs -Z flags (sanitizers). A nightly toolchain is
# used when rustup has one; otherwise RUSTC_BOOTSTRAP=1 lets stable rustc
# accept them. Set FUZZ_TOOLCHAIN to force one (e.g. FUZZ_TOOLCHAIN=stable).
set -eu
secs=${1:-60}
[ $# -gt 0 ] && shift
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

tc=${FUZZ_TOOLCHAIN:-}
if [ -z "$tc" ]; then
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then tc=nightly; else tc=stable; fi
fi
if [ "$tc" != nightly ]; then export RUSTC_BOOTSTRAP=1; fi
fuzz() { cargo "+$tc" fuzz "$@"; }

targets=${*:-$(fuzz list)}
[ -d fuzz/corpus ] || fuzz/seed.sh

start=$(date +%s)
fuzz build -O
echo "build: $(( $(date +%s) - start )) s"

status=0
logdir=$(mktemp -d)
printf '%-16s %8s %14s  %s\n' target seconds executions result
for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    log="$logdir/$t.log"
    t0=$(date +%s)
    if fuzz run -O "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
        >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        status=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    printf '%-16s %8s %14s  %s\n' "$t" "$(( $(date +%s) - t0 ))" "${execs:-?}" "$result"
    if [ "$result" = CRASH ]; then
        grep -E 'panicked|ERROR: |SUMMARY|Test unit written' "$log" | head -n 20 || true
    fi
done
rm -rf "$logdir"
exit "$status"

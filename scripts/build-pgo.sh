#!/usr/bin/env bash
# Release build of the sensor with profile-guided optimisation (PGO).
#
#   scripts/build-pgo.sh            # -> target/pgo/release/shadowmcp
#
# 1. builds an instrumented binary (target/pgo-gen);
# 2. runs it on the training set: every committed capture (pcaps/*.pcap)
#    and two generated ones of different shapes from the benchmark's (a
#    64 MiB egress mix and a 20,000-flow flood, seed 7; the benchmark uses
#    seed 42 and larger files), with one and with two workers;
# 3. merges the profiles and builds the optimised binaries with them
#    (target/pgo/release), as one codegen unit with fat LTO (both builds:
#    the profile must describe the code it optimises; about 9 minutes in
#    all on 2 cores);
# 4. checks that the optimised sensor writes exactly what the plain release
#    build writes for every training capture (findings, summary, exit status).
#
# Needs the llvm-tools rustup component (for llvm-profdata, matching rustc's
# LLVM); the script installs it with rustup when it is missing. The plain
# `cargo build --release` stays the reference build; this one only changes
# how the compiler lays out and inlines the same code. Measurements:
# docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# For the two PGO builds only; target/release stays the plain build.
pgo_profile=(env CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1)

die() { echo "scripts/build-pgo.sh: $*" >&2; exit 1; }
case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
  *) die "no options are taken (see --help)" ;;
esac

sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$sysroot/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  echo "== installing the llvm-tools rustup component (llvm-profdata)" >&2
  rustup component add llvm-tools >&2 || die "llvm-tools could not be installed; build with: cargo build --release"
fi
[ -x "$profdata" ] || die "llvm-profdata not found at $profdata"

work=target/pgo-work
rm -rf "$work"
mkdir -p "$work/profiles" "$work/train" "$work/out"

echo "== plain release build (reference output, capture generator)" >&2
cargo build --release --locked --bins >&2

echo "== instrumented build" >&2
RUSTFLAGS="-Cprofile-generate=$PWD/$work/profiles" "${pgo_profile[@]}" \
  cargo build --release --locked --bin shadowmcp --target-dir target/pgo-gen >&2

echo "== training" >&2
gen=target/release/shadowmcp-bench-gen
"$gen" --scenario egress-mix --size-mb 64 --seed 7 -o "$work/train/egress.pcap" >&2
"$gen" --scenario flow-flood --flows 20000 --seed 7 -o "$work/train/flood.pcap" >&2
train=(pcaps/*.pcap "$work/train/egress.pcap" "$work/train/flood.pcap")
for f in "${train[@]}"; do
  for w in 1 2; do
    target/pgo-gen/release/shadowmcp analyze --workers "$w" --quiet --no-progress \
      -o /dev/null "$f" >/dev/null 2>&1 || die "training run failed on $f"
  done
done
"$profdata" merge -o "$work/merged.profdata" "$work"/profiles/*.profraw

echo "== optimised build" >&2
RUSTFLAGS="-Cprofile-use=$PWD/$work/merged.profdata" "${pgo_profile[@]}" \
  cargo build --release --locked --bins --target-dir target/pgo >&2

echo "== checking the optimised build against the plain one" >&2
for f in "${train[@]}"; do
  name=$(basename "$f" .pcap)
  for build in release pgo/release; do
    tag=${build//\//-}
    rc=0
    target/$build/shadowmcp analyze --no-progress -o "$work/out/$name.$tag.jsonl" "$f" \
      >"$work/out/$name.$tag.summary" 2>&1 || rc=$?
    echo "exit status $rc" >>"$work/out/$name.$tag.summary"
  done
  cmp -s "$work/out/$name.release.jsonl" "$work/out/$name.pgo-release.jsonl" &&
    cmp -s "$work/out/$name.release.summary" "$work/out/$name.pgo-release.summary" ||
    die "$f: the optimised build's output differs from the plain build's (see $work/out)"
done
echo "target/pgo/release/shadowmcp (${#train[@]} training captures; the same output as the plain build on each)" >&2

#!/usr/bin/env bash
# compare-builds.sh OUT-DIR BIN [DATA-DIR]
#
# Runs `BIN analyze` on every committed capture (with its golden arguments),
# on every capture of ../shared/testdata/suricata-verify/pcaps and on every
# capture in DATA-DIR (generated benchmark captures), with one and two
# workers, and writes each run's findings and summary into OUT-DIR. Two
# builds are then compared with `diff -r OUT-A OUT-B`: a refactoring must
# leave every file identical.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: compare-builds.sh OUT-DIR BIN [DATA-DIR]}
bin=$(realpath "${2:?usage: compare-builds.sh OUT-DIR BIN [DATA-DIR]}")
data=${3:-}
mkdir -p "$out/pcaps" "$out/suricata" "$out/data"
# Overlays installed on this machine must not change what is compared.
overlays=()
if "$bin" analyze --help | grep -q -- --no-default-overlays; then
  overlays=(--no-default-overlays)
fi

run() { # run NAME-PREFIX WORKERS ARGS... CAPTURE
  local prefix=$1 workers=$2
  shift 2
  local rc=0
  timeout 300 "$bin" analyze --no-progress "${overlays[@]}" --workers "$workers" "$@" \
    >"$prefix.w$workers.jsonl" 2>"$prefix.w$workers.err" || rc=$?
  echo "$rc" >"$prefix.w$workers.rc"
}

for cap in pcaps/*.pcap pcaps/*.pcapng; do
  [ -e "$cap" ] || continue
  name=$(basename "${cap%.*}")
  args=()
  if [ -f "pcaps/expected/$name.args" ]; then
    while IFS= read -r line; do
      line=${line%%#*}
      [ -n "${line// /}" ] && args+=("$line")
    done <"pcaps/expected/$name.args"
  fi
  for w in 1 2; do run "$out/pcaps/$name" "$w" "${args[@]}" "$cap"; done
done

sv=../shared/testdata/suricata-verify/pcaps
if [ -d "$sv" ]; then
  # One run over all of them (a timeline), and the findings of each.
  find "$sv" -type f -name '*.pcap' | sort >"$out/suricata/list"
  : >"$out/suricata/each.jsonl"
  while IFS= read -r f; do
    timeout 60 "$bin" analyze --no-progress -q "${overlays[@]}" "$f" >>"$out/suricata/each.jsonl" 2>/dev/null || echo "rc=$? $f" >>"$out/suricata/each.jsonl"
  done <"$out/suricata/list"
fi

if [ -n "$data" ]; then
  for cap in "$data"/*.pcap; do
    name=$(basename "${cap%.*}")
    for w in 1 2; do run "$out/data/$name" "$w" "$cap"; done
  done
fi
echo "outputs in $out"

#!/bin/sh
# Build the seed corpora (fuzz/corpus/<target>/) from pcaps/*.pcap and the
# shipped signature, config and allowlist files. Idempotent: files are named
# by content hash, so rerunning only adds new seeds. Needs python3.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
exec python3 "$root/fuzz/seed.py" "$root"

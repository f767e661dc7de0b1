#!/usr/bin/env bash
# Every check the project runs: formatting, lints, unit, integration and
# golden-capture tests; as root on Debian/Ubuntu also the packaging (the
# install-by-hand steps in a scratch root, and the .deb installed, checked
# and purged: a release build, about 5 minutes more on 2 cores, plus
# installing cargo-deb once). This is the command README.md gives and CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test-receivers
cargo fmt --all -- --check
# Shell scripts that CI does not run (benchmarks, the PGO build): parsed at least.
for script in scripts/*.sh bench/*.sh; do
  bash -n "$script"
done
cargo clippy --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi
if [ "$(id -u)" -eq 0 ] && command -v dpkg >/dev/null 2>&1; then
  scripts/test-install.sh
  scripts/test-deb.sh
else
  echo "packaging tests skipped (they need root and dpkg): scripts/test-install.sh, scripts/test-deb.sh"
fi

#!/usr/bin/env bash
# Build the Debian package of the sensor.
#
#   scripts/build-deb.sh      # prints the path of the .deb (under TARGET/debian/)
#
# 1. release build of the binary (cargo build --release --locked);
# 2. from that binary: the man pages (gzip -9n) and the bash, zsh and fish
#    completions (`shadowmcp generate`), and the systemd unit as packaged
#    (ExecStart=/usr/bin/shadowmcp instead of /usr/local/bin, and the
#    install-by-hand notes replaced), all into TARGET/release/deb/;
# 3. `cargo deb --no-build --no-strip` with [package.metadata.deb] of
#    Cargo.toml (assets, conffiles, deploy/debian/ maintainer scripts). The
#    binary keeps its symbol table, as the release profile leaves it.
#
# Installs cargo-deb (`cargo install cargo-deb --locked`) when it is missing.
# Honours CARGO_TARGET_DIR, and SOURCE_DATE_EPOCH for the build date.
# scripts/test-deb.sh installs the package on this machine, checks it and
# purges it.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "scripts/build-deb.sh: $*" >&2; exit 1; }
case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  *) die "no options are taken (see --help)" ;;
esac

if ! cargo deb --version >/dev/null 2>&1; then
  echo "== installing cargo-deb" >&2
  cargo install cargo-deb --locked >&2 || die "cargo-deb could not be installed"
fi

target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || die "cannot find the target directory (cargo metadata)"

echo "== release build" >&2
cargo build --release --locked --bin shadowmcp >&2
bin="$target_dir/release/shadowmcp"

gen="$target_dir/release/deb"
rm -rf "$gen"
mkdir -p "$gen/man" "$gen/completions"
"$bin" generate man "$gen/man" >/dev/null
gzip -9n "$gen"/man/*.1
for shell in bash zsh fish; do
  "$bin" generate completions "$shell" "$gen/completions" >/dev/null
done

unit=deploy/systemd/shadowmcp.service
grep -q '^ExecStart=/usr/local/bin/shadowmcp ' "$unit" ||
  die "$unit: no 'ExecStart=/usr/local/bin/shadowmcp ' line to rewrite"
grep -q '^# Install by hand' "$unit" || die "$unit: no '# Install by hand' block to replace"
awk '
  /^# Install by hand/ {
    print "# Installed by the shadowmcp Debian package. Set the capture interface in"
    print "# /etc/shadowmcp/shadowmcp.toml and the approved servers in"
    print "# /etc/shadowmcp/allowlist.txt, then: systemctl enable --now shadowmcp"
    skip = 1
    next
  }
  skip && /^#$/ { skip = 0 }
  skip { next }
  { sub(/^ExecStart=\/usr\/local\/bin\/shadowmcp /, "ExecStart=/usr/bin/shadowmcp "); print }
' "$unit" >"$gen/shadowmcp.service"
grep -q '^ExecStart=/usr/bin/shadowmcp run ' "$gen/shadowmcp.service" ||
  die "the packaged unit has no ExecStart=/usr/bin/shadowmcp"

echo "== cargo deb" >&2
deb=$(cargo deb --no-build --no-strip | tail -n 1)
[ -f "$deb" ] || die "cargo deb did not report a package file (got: $deb)"
echo "$deb"

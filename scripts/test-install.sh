#!/usr/bin/env bash
# Run the install-by-hand steps written in deploy/systemd/shadowmcp.service
# into an empty scratch root (DESTDIR style) and check the result, so that
# the steps work on a clean host and install what they say.
#
#   scripts/test-install.sh        # as root (install -g); run by scripts/test.sh as root
#
# The steps are taken from the unit's comment block verbatim and relocated:
# every absolute destination gets the scratch root in front,
# `systemd-sysusers` gets --root, the group name becomes the gid that
# systemd-sysusers wrote into the scratch /etc/group (the host has no such
# group), and `systemctl` is left out (nothing to start in a scratch root).
# Needs the release binary (built here when missing) and systemd-sysusers.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "scripts/test-install.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (install -g)"
command -v systemd-sysusers >/dev/null || die "systemd-sysusers not found"

unit=deploy/systemd/shadowmcp.service
steps=$(sed -n '/^# Install by hand/,/^# *systemctl /p' "$unit" | sed -n 's/^#   //p')
[ "$(grep -c . <<<"$steps")" -ge 7 ] || die "$unit: fewer than 7 install steps found:
$steps"

target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -x "$target_dir/release/shadowmcp" ] || cargo build --release --locked --bin shadowmcp >&2

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# What every host has: /etc (systemd-sysusers writes passwd and group there).
mkdir -m 0755 "$root/etc"

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
bad() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; }
equal() {
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1"; printf '      want %s\n      got  %s\n' "$2" "$3"; fi
}

while IFS= read -r step; do
  case "$step" in
    systemctl*) echo "skip  $step"; continue ;;
  esac
  cmd=$(sed -E "s# /(usr|etc|var)/# $root/\1/#g" <<<"$step")
  cmd=${cmd//target\/release\//$target_dir/release/}
  cmd=${cmd/systemd-sysusers /systemd-sysusers --root=$root }
  if [[ $cmd == *"-g shadowmcp"* ]]; then
    gid=$(awk -F: '$1 == "shadowmcp" { print $3 }' "$root/etc/group" 2>/dev/null || true)
    [ -n "$gid" ] || die "no shadowmcp group in the scratch root before: $step"
    cmd=${cmd//-g shadowmcp/-g $gid}
  fi
  if out=$(bash -c "$cmd" 2>&1); then
    ok "$step"
  else
    bad "$step"
    printf '      %s\n      %s\n' "$cmd" "$out"
  fi
done <<<"$steps"

gid=$(awk -F: '$1 == "shadowmcp" { print $3 }' "$root/etc/group")
equal "user shadowmcp (home, shell)" "/var/lib/shadowmcp:/usr/sbin/nologin" \
  "$(awk -F: '$1 == "shadowmcp" { print $6 ":" $7 }' "$root/etc/passwd")"
equal "binary" "0 0 755" "$(stat -c '%u %g %a' "$root/usr/local/bin/shadowmcp")"
equal "config" "0 $gid 640" "$(stat -c '%u %g %a' "$root/etc/shadowmcp/shadowmcp.toml")"
equal "allowlist" "0 $gid 640" "$(stat -c '%u %g %a' "$root/etc/shadowmcp/allowlist.txt")"
equal "allowlist is the empty one" "$(sha256sum <deploy/allowlist.txt)" \
  "$(sha256sum <"$root/etc/shadowmcp/allowlist.txt")"
equal "unit" "$(sha256sum <"$unit")" "$(sha256sum <"$root/etc/systemd/system/shadowmcp.service")"
equal "ExecStart names the installed binary" "/usr/local/bin/shadowmcp" \
  "$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")"
# The installed configuration loads with the installed allowlist.
# --check-config checks the host too: the interface given here, the log
# directory inside the scratch root.
mkdir -p "$root/var/log/shadowmcp"
sed -e "s#\"/etc/shadowmcp/allowlist.txt\"#\"$root/etc/shadowmcp/allowlist.txt\"#" \
  -e "s#/var/log/shadowmcp#$root/var/log/shadowmcp#" \
  "$root/etc/shadowmcp/shadowmcp.toml" >"$root/check.toml"
if out=$("$root/usr/local/bin/shadowmcp" run --config "$root/check.toml" -i lo --check-config 2>&1) &&
  grep -q "allowlist 0 entries" <<<"$out"; then
  ok "installed config and allowlist load (--check-config)"
else
  bad "installed config and allowlist load (--check-config)"
  printf '      %s\n' "$out"
fi

echo "test-install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Build the Debian package, install it on this machine with dpkg, check what
# it installed, then remove and purge it and check that nothing is left.
#
#   scripts/test-deb.sh        # as root, on Debian/Ubuntu; run by scripts/test.sh as root
#
# Checks: conffiles; the unit (systemd-analyze verify, or a parse check);
# the system user and group; /var/lib/shadowmcp and /var/log/shadowmcp
# owned by it; the configuration root:shadowmcp 0640 and readable by the
# user (`shadowmcp run --check-config` as shadowmcp); the allowlist without
# entries; the capabilities on the binary (getcap); `shadowmcp --version`
# naming a commit; the man pages (man -l) and completion files; after
# `dpkg -r`: binary gone, configuration kept; after `dpkg -P`: configuration,
# directories, user, group and permission overrides gone.
#
# Refuses to run when shadowmcp is already installed (a package, or a file at
# /usr/bin/shadowmcp) or a shadowmcp user exists: it would remove them.
# Whatever happens, the package is purged on exit.
# The checks run `bash -c '...'`: $ in them expands in the inner shell.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "scripts/test-deb.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (dpkg -i)"
command -v dpkg >/dev/null || die "dpkg not found: Debian or Ubuntu only"
installed() { dpkg-query -W -f='${Status}' shadowmcp 2>/dev/null | grep -q 'ok installed\|config-files'; }
installed && die "the shadowmcp package is installed here; not touching it"
[ -e /usr/bin/shadowmcp ] && die "/usr/bin/shadowmcp exists; not touching it"
getent passwd shadowmcp >/dev/null && die "a shadowmcp user exists; not touching it"
getent group shadowmcp >/dev/null && die "a shadowmcp group exists; not touching it"

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
bad() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; }
# check NAME CMD...: one check; the command's output only on failure.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else bad "$name"; printf '%s\n' "$out" | sed 's/^/      /'; fi
}
# equal NAME WANT GOT
equal() {
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1"; printf '      want %s\n      got  %s\n' "$2" "$3"; fi
}

# dpkg waits for no lock: retry for up to two minutes while apt or dpkg
# runs elsewhere on the machine.
dpkg_locked() {
  local out
  for _ in $(seq 1 60); do
    if out=$(dpkg "$@" 2>&1); then printf '%s\n' "$out"; return 0; fi
    grep -q 'lock' <<<"$out" || { printf '%s\n' "$out" >&2; return 1; }
    sleep 2
  done
  printf '%s\n' "$out" >&2
  return 1
}

cleanup() {
  if installed; then
    dpkg_locked --purge shadowmcp >/dev/null || echo "scripts/test-deb.sh: could not purge shadowmcp" >&2
  fi
}
trap cleanup EXIT

# The package's dependencies (dpkg -i does not fetch them) and man.
missing=()
for p in libpcap0.8 libcap2-bin man-db; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

start=$SECONDS
deb=$(scripts/build-deb.sh)
echo "built $deb ($(stat -c %s "$deb") bytes) in $((SECONDS - start)) s"

# ------------------------------------------------------------- package ---
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | sort | tr '\n' ' ')
equal "conffiles" "/etc/shadowmcp/allowlist.txt /etc/shadowmcp/shadowmcp.toml " "$conffiles"
check "Depends has libpcap, libcap2-bin" \
  bash -c 'dpkg-deb -f "$1" Depends | grep -q libpcap && dpkg-deb -f "$1" Depends | grep -q libcap2-bin' _ "$deb"

dpkg_locked -i "$deb" >/dev/null || die "dpkg -i $deb failed"
check "installed" installed

# ---------------------------------------------------------------- files ---
unit=/usr/lib/systemd/system/shadowmcp.service
for f in /usr/bin/shadowmcp "$unit" /usr/lib/sysusers.d/shadowmcp.conf \
  /usr/share/man/man1/shadowmcp.1.gz /usr/share/man/man1/shadowmcp-analyze.1.gz \
  /usr/share/man/man1/shadowmcp-run.1.gz /usr/share/man/man1/shadowmcp-signatures-check.1.gz \
  /usr/share/bash-completion/completions/shadowmcp /usr/share/zsh/vendor-completions/_shadowmcp \
  /usr/share/fish/vendor_completions.d/shadowmcp.fish \
  /usr/share/doc/shadowmcp/operations.md /usr/share/doc/shadowmcp/NOTICE \
  /usr/share/doc/shadowmcp/signatures.md /usr/share/doc/shadowmcp/signature-format.md \
  /usr/share/doc/shadowmcp/copyright; do
  check "file $f" test -s "$f"
done

# ----------------------------------------------------------------- unit ---
equal "unit ExecStart" "ExecStart=/usr/bin/shadowmcp run --config /etc/shadowmcp/shadowmcp.toml" \
  "$(grep '^ExecStart=' "$unit")"
check "unit has no install-by-hand notes" bash -c '! grep -q "/usr/local/bin\|Install by hand" "$1"' _ "$unit"
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify $unit" systemd-analyze verify --man=no "$unit"
else
  check "unit sections parse" bash -c 'grep -qx "\[Unit\]" "$1" && grep -qx "\[Service\]" "$1" &&
    grep -qx "\[Install\]" "$1" && ! grep -v "^[[:space:]]*\(#.*\)\?$" "$1" |
    grep -v "^\[[A-Za-z]*\]$" | grep -qv "^[A-Za-z]*="' _ "$unit"
fi

# ----------------------------------------------------- user, directories ---
equal "user shadowmcp (home, shell)" "/var/lib/shadowmcp:/usr/sbin/nologin" \
  "$(getent passwd shadowmcp | cut -d: -f6,7)"
check "group shadowmcp" getent group shadowmcp
check "system user (uid below 1000)" bash -c '[ "$(id -u shadowmcp)" -lt 1000 ]'
for d in /var/lib/shadowmcp /var/log/shadowmcp; do
  equal "$d" "shadowmcp:shadowmcp 750" "$(stat -c '%U:%G %a' "$d")"
done
for f in /etc/shadowmcp/shadowmcp.toml /etc/shadowmcp/allowlist.txt; do
  equal "$f" "root:shadowmcp 640" "$(stat -c '%U:%G %a' "$f")"
done
equal "allowlist has no entries" "" "$(grep -v '^[[:space:]]*\(#.*\)\?$' /etc/shadowmcp/allowlist.txt || true)"
check "config and empty allowlist load as user shadowmcp (--check-config)" bash -c \
  'out=$(setpriv --reuid=shadowmcp --regid=shadowmcp --clear-groups --inh-caps=-all \
      /usr/bin/shadowmcp run --config /etc/shadowmcp/shadowmcp.toml -i lo --check-config) &&
   echo "$out" && grep -q "allowlist 0 entries" <<<"$out"'

# -------------------------------------------------- binary, capabilities ---
check "getcap: cap_net_admin,cap_net_raw=ep" bash -c \
  'getcap /usr/bin/shadowmcp | grep -q "cap_net_admin,cap_net_raw=ep"'
version=$(/usr/bin/shadowmcp --version)
echo "      $version"
check "--version names a commit and a date" bash -c \
  'grep -Eq "^shadowmcp [0-9]+\.[0-9]+\.[0-9]+ \(commit [0-9a-f]{7}(-dirty)?, built [0-9]{4}-[0-9]{2}-[0-9]{2}\)$" <<<"$1"' \
  _ "$version"
# An unprivileged user opens a packet socket on loopback through the file
# capabilities alone (the sensor runs until SIGTERM: 2 s).
check "capture as user shadowmcp with the file capabilities" bash -c '
  cfg=$(mktemp) && trap "rm -f $cfg" EXIT &&
  printf "[capture]\ninterfaces = [\"lo\"]\npromisc = false\n[metrics]\nlisten = \"127.0.0.1:0\"\n[[sinks]]\ntype = \"jsonl\"\nname = \"out\"\npath = \"-\"\n" >"$cfg" &&
  chmod 644 "$cfg" &&
  rc=0 && out=$(timeout --preserve-status -s TERM 2 setpriv --reuid=shadowmcp --regid=shadowmcp --clear-groups \
      /usr/bin/shadowmcp run --config "$cfg" 2>&1) || rc=$? &&
  echo "$out" && [ "$rc" -eq 0 ] && ! grep -qi "denied\|not permitted" <<<"$out"'

# ------------------------------------------------------- man, completions ---
check "man -l shadowmcp-analyze.1.gz" bash -c \
  'MANWIDTH=80 man -l /usr/share/man/man1/shadowmcp-analyze.1.gz 2>/dev/null | grep -q -- "--max-flows"'
check "man -w shadowmcp-run" bash -c 'man -w shadowmcp-run | grep -q /usr/share/man/man1/shadowmcp-run.1.gz'
check "bash completion completes subcommands" bash -c \
  'source /usr/share/bash-completion/completions/shadowmcp && COMP_WORDS=(shadowmcp an) COMP_CWORD=1 &&
   _shadowmcp shadowmcp an shadowmcp && [ "${COMPREPLY[*]}" = analyze ]'

# --------------------------------------------------------------- remove ---
dpkg_locked -r shadowmcp >/dev/null || die "dpkg -r failed"
check "removed: no /usr/bin/shadowmcp" test ! -e /usr/bin/shadowmcp
check "removed: no unit" test ! -e "$unit"
check "removed: configuration kept" test -f /etc/shadowmcp/shadowmcp.toml
check "removed: user kept" getent passwd shadowmcp

# ---------------------------------------------------------------- purge ---
dpkg_locked -P shadowmcp >/dev/null || die "dpkg -P failed"
check "purged: package unknown to dpkg" bash -c '! dpkg-query -W shadowmcp >/dev/null 2>&1 ||
  [ -z "$(dpkg-query -W -f="\${Status}" shadowmcp | grep -v "not-installed")" ]'
for p in /etc/shadowmcp /var/lib/shadowmcp /var/log/shadowmcp /usr/bin/shadowmcp \
  /usr/lib/sysusers.d/shadowmcp.conf /usr/share/doc/shadowmcp; do
  check "purged: no $p" test ! -e "$p"
done
check "purged: no user" bash -c '! getent passwd shadowmcp'
check "purged: no group" bash -c '! getent group shadowmcp'
check "purged: no permission overrides" bash -c '! dpkg-statoverride --list | grep -q shadowmcp'

echo "test-deb: took $((SECONDS - start)) s"
echo "test-deb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

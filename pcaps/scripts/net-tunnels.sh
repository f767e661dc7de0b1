#!/usr/bin/env bash
# tunnel-vxlan: one MCP session carried by the Linux kernel's own VXLAN, as
# a sensor on a cloud traffic mirror (AWS VPC Traffic Mirroring, Azure
# virtual network TAP) sees it. Two network namespaces joined by a veth
# (underlay 192.0.2.1/2) carry a VXLAN (VNI 42, UDP 4789; 172.30.0.0/24
# inside). The Python `mcp` 1.30.0 FastMCP server (stateless JSON) runs in
# one namespace; curl in the other POSTs initialize and tools/call through
# the tunnel; tcpdump records the underlay, so only the outer packets are in
# the capture. (The kernel here has no GRE or GENEVE devices: those tunnels,
# ERSPAN and MPLS are covered by src/decode/tunnel.rs's tests.)
source "$(dirname "${BASH_SOURCE[0]}")/net/common.sh"
PY1="$SCRIPTS/.venv-mcp1/bin/python"
[[ -x "$PY1" ]] || "$SCRIPTS/setup.sh"
PCAPS=$(cd "$SCRIPTS/.." && pwd)
A=smcptuna$$
B=smcptunb$$
teardown() {
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  cleanup
}
trap teardown EXIT
ip netns add "$A"
ip netns add "$B"
ip link add tuna type veth peer name tunb
ip link set tuna netns "$A"
ip link set tunb netns "$B"
for n in "$A:tuna:192.0.2.1:192.0.2.2:172.30.0.1" "$B:tunb:192.0.2.2:192.0.2.1:172.30.0.2"; do
  IFS=: read -r ns dev me peer vx <<<"$n"
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$me/24" dev "$dev"
  ip -n "$ns" link set "$dev" up
  ip -n "$ns" link add vx0 type vxlan id 42 local "$me" remote "$peer" dstport 4789 dev "$dev"
  ip -n "$ns" addr add "$vx/24" dev vx0
  ip -n "$ns" link set vx0 up
done
PORT=8792
body() {
  printf '{"jsonrpc":"2.0","id":%s,"method":"%s","params":%s}' "$1" "$2" "$3"
}
INIT=$(body 0 initialize '{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"tunnel-client","version":"1.0"}}')
CALL=$(body 1 tools/call '{"name":"search","arguments":{"query":"through a tunnel"}}')
for t in vxlan:172.30.0.2; do
  IFS=: read -r name server <<<"$t"
  bg ip netns exec "$B" "$PY1" "$SCRIPTS/py/server_v1.py" --transport streamable-http \
    --json --stateless --host "$server" --port $PORT
  ip netns exec "$A" bash -c "for _ in \$(seq 1 100); do (exec 3<>/dev/tcp/$server/$PORT) 2>/dev/null && exit 0; sleep 0.1; done; exit 1"
  out="$PCAPS/tunnel-$name.pcap"
  rm -f "$out"
  ip netns exec "$A" tcpdump -i tuna -s 0 -U --immediate-mode -Z root -w "$out" \
    "udp port 4789" 2>"$TMP/tcpdump.log" &
  dump=$!
  for _ in $(seq 1 50); do grep -q "listening on" "$TMP/tcpdump.log" && break; sleep 0.1; done
  for b in "$INIT" "$CALL"; do
    ip netns exec "$A" curl -s --max-time 10 -H "Content-Type: application/json" \
      -H "Accept: application/json, text/event-stream" \
      -H "MCP-Protocol-Version: 2025-06-18" \
      --data-binary "$b" "http://$server:$PORT/mcp" >/dev/null
  done
  sleep 0.5
  kill -INT "$dump"
  wait "$dump" || true
  kill -TERM "${pids[-1]}" 2>/dev/null || true
  sleep 0.3
done
ls -l "$PCAPS"/tunnel-*.pcap >&2

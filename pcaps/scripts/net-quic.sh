#!/usr/bin/env bash
# QUIC client Initials from aioquic: v1 with SNI mcp.deepwiki.com, v2
# (0x6b3343cf) with SNI mcp.context7.com, and v1 with a ClientHello padded
# (long ALPN list) so that it spans two Initial packets, SNI mcp.exa.ai.
source "$(dirname "${BASH_SOURCE[0]}")/net/common.sh"
make_cert
bg python3 "$SCRIPTS/net/quic_peer.py" server --cert "$TMP/cert.pem" --key "$TMP/key.pem" --lifetime 60
sleep 1.5
"$SCRIPTS/capture.sh" quic "udp port 4433" -- bash -c "
  python3 '$SCRIPTS/net/quic_peer.py' client --sni mcp.deepwiki.com --version 1
  python3 '$SCRIPTS/net/quic_peer.py' client --sni mcp.context7.com --version 6b3343cf
  python3 '$SCRIPTS/net/quic_peer.py' client --sni mcp.exa.ai --version 1 --pad-alpn 14
"

#!/usr/bin/env bash
# py-tls12-h1 (+ .keys): as py-tls13-h1, but the server caps TLS at
# 1.2 with the single suite ECDHE-ECDSA-AES128-GCM-SHA256 (the certificate key
# is P-256), and the client caps at 1.2 too. Key log lines are CLIENT_RANDOM.
# Check: tshark -r pcaps/py-tls12-h1.pcap -o tls.keylog_file:pcaps/py-tls12-h1.keys -Y http
source "$(dirname "${BASH_SOURCE[0]}")/pending-common.sh"
py_tls_session py-tls12-h1 9442 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-GCM-SHA256 -- --tls-max 1.2

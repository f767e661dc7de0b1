#!/usr/bin/env bash
# grpc-h2c-negative: gRPC over cleartext HTTP/2 (grpcio server and
# client, insecure channel = h2c prior knowledge): one unary call
# /acme.toolbox.v1.Toolbox/ListTools and one server-streaming call
# /acme.toolbox.v1.Toolbox/WatchStock (3 messages). Not MCP: protobuf bodies,
# content-type application/grpc, te: trailers, grpc-status trailers.
source "$(dirname "${BASH_SOURCE[0]}")/pending-common.sh"
PORT=8785
"$PYH2" -m grpc_tools.protoc -I "$SCRIPTS/py/proto" --python_out="$WORK" --grpc_python_out="$WORK" \
  "$SCRIPTS/py/proto/toolbox.proto"
start_server grpc-h2c-negative "$PYH2" "$SCRIPTS/py/grpc_toolbox.py" "$WORK" server $PORT
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" grpc-h2c-negative "tcp port $PORT" -- \
  "$PYH2" "$SCRIPTS/py/grpc_toolbox.py" "$WORK" client $PORT

"""An LSP client session over TCP against pylsp: initialize (processId,
rootUri, textDocument capabilities), initialized, shutdown, exit."""
import json
import socket
import sys


def send(sock, msg):
    body = json.dumps(msg).encode()
    sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)


def recv(sock, f):
    headers = {}
    while True:
        line = f.readline().decode().strip()
        if not line:
            break
        k, v = line.split(":", 1)
        headers[k.lower()] = v.strip()
    return json.loads(f.read(int(headers["content-length"])))


s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
send(s, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "processId": 4242, "rootUri": "file:///tmp", "clientInfo": {"name": "fixture-editor", "version": "1.0"},
    "capabilities": {"textDocument": {"hover": {"contentFormat": ["markdown"]}}}}})
while "id" not in (r := recv(s, f)) or r.get("id") != 1:
    pass
send(s, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
send(s, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
while "id" not in (r := recv(s, f)) or r.get("id") != 2:
    pass
send(s, {"jsonrpc": "2.0", "method": "exit"})
s.close()

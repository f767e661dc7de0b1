"""HTTPS webhook receiver for the live-sensor end-to-end test (tests/e2e_sensor.rs).

Appends the body of every POST to OUT, one request per line (newlines in the
body replaced by spaces), and answers 200. GET answers 200 "ok" (readiness).

usage: webhook_receiver.py HOST PORT CERT_PEM KEY_PEM OUT
"""

import http.server
import ssl
import sys

# A request body larger than this is refused (the sensor's batches are far smaller).
MAX_BODY = 4 << 20

host, port, cert, key, out = sys.argv[1:6]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            self._answer(413)
            self.close_connection = True
            return
        body = self.rfile.read(n)
        with open(out, "ab") as f:
            f.write(body.replace(b"\r", b" ").replace(b"\n", b" ") + b"\n")
        self._answer(200)

    def do_GET(self):
        self._answer(200, b"ok")

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer((host, int(port)), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()

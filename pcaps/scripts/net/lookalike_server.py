"""A local HTTP server answering look-alike JSON-RPC and web traffic that must
NOT be reported as MCP: an Ethereum node, an OpenAI-style chat completions
API, an A2A agent, an ACP agent, and documentation pages that merely contain
MCP JSON examples."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOC_EXAMPLE = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "search", "arguments": {"q": "x"}}}
INIT_EXAMPLE = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "example", "version": "1.0"}}}
HTML = ("<html><head><title>MCP quick start</title></head><body><h1>Calling tools</h1>"
        f"<pre>{json.dumps(INIT_EXAMPLE)}</pre><pre>{json.dumps(DOC_EXAMPLE)}</pre></body></html>")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code, ctype, body):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/docs/mcp.html"):
            self._send(200, "text/html; charset=utf-8", HTML)
        elif self.path.startswith("/docs/examples.json"):
            self._send(200, "application/json", json.dumps({"title": "MCP examples", "examples": [INIT_EXAMPLE, DOC_EXAMPLE]}))
        else:
            self._send(404, "text/plain", "not found")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        if self.path.startswith("/v1/chat/completions"):
            self._send(200, "application/json", json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}]}))
            return
        method = req.get("method", "")
        if method.startswith("eth_"):
            result = "0x1b4"
        elif method == "initialize":  # ACP: integer protocol version, agent capabilities
            result = {"protocolVersion": 1, "agentCapabilities": {"loadSession": False}, "authMethods": []}
        elif method in ("message/send", "tasks/get"):
            result = {"id": "task-1", "contextId": "ctx-1", "status": {"state": "completed"}, "kind": "task"}
        else:
            result = None
        self._send(200, "application/json", json.dumps({"jsonrpc": "2.0", "id": req.get("id"), "result": result}))

    def log_message(self, *a):
        pass


ThreadingHTTPServer((sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1", int(sys.argv[1])), Handler).serve_forever()

// Fixture MCP server: official TypeScript SDK 1.x, McpServer +
// StreamableHTTPServerTransport on plain node:http (stateful, SSE responses).
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 8770);
const path = process.argv[4] ?? '/mcp';

function makeServer() {
  const server = new McpServer({ name: 'fixture-ts-server', version: '2.0.1' });
  server.registerTool('search', { description: 'Search the fixture corpus.', inputSchema: { query: z.string() } },
    async ({ query }) => ({ content: [{ type: 'text', text: `0 results for a query of ${query.length} characters` }] }));
  server.registerTool('get_weather', { description: 'Current weather for a city.', inputSchema: { city: z.string() } },
    async ({ city }) => ({ content: [{ type: 'text', text: `Sunny in ${city}` }] }));
  return server;
}

const transports = new Map();

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const s = Buffer.concat(chunks).toString('utf8');
  return s ? JSON.parse(s) : undefined;
}

http.createServer(async (req, res) => {
  try {
    if (new URL(req.url, 'http://x').pathname !== path) { res.writeHead(404).end(); return; }
    const sid = req.headers['mcp-session-id'];
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    let transport = sid ? transports.get(sid) : undefined;
    if (!transport) {
      if (req.method === 'POST' && !sid && isInitializeRequest(body)) {
        transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => transports.set(id, transport),
        });
        transport.onclose = () => { if (transport.sessionId) transports.delete(transport.sessionId); };
        await makeServer().connect(transport);
      } else {
        res.writeHead(400, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: no valid session' }, id: null }));
        return;
      }
    }
    await transport.handleRequest(req, res, body);
  } catch (e) {
    console.error(e);
    if (!res.headersSent) res.writeHead(500).end();
  }
}).listen(port, host, () => console.error(`listening on ${host}:${port}${path}`));

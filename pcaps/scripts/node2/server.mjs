// Fixture MCP server: official TypeScript SDK 2.x (@modelcontextprotocol/server
// createMcpHandler, served on node:http via @modelcontextprotocol/node).
// Serves 2026-07-28 requests natively (plus a stateless legacy fallback).
import http from 'node:http';
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { z } from 'zod';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 8773);
const path = process.argv[4] ?? '/mcp';

const handler = createMcpHandler(() => {
  const server = new McpServer({ name: 'fixture-ts2-server', version: '3.0.0' });
  server.registerTool('search', { description: 'Search the fixture corpus.', inputSchema: z.object({ query: z.string() }) },
    async ({ query }) => ({ content: [{ type: 'text', text: `0 results for a query of ${query.length} characters` }] }));
  server.registerTool('get_weather', { description: 'Current weather for a city.', inputSchema: z.object({ city: z.string() }) },
    async ({ city }) => ({ content: [{ type: 'text', text: `Sunny in ${city}` }] }));
  return server;
});
const node = toNodeHandler(handler, { onerror: (e) => console.error(e) });

http.createServer((req, res) => {
  if (new URL(req.url, 'http://x').pathname !== path) { res.writeHead(404).end(); return; }
  node(req, res);
}).listen(port, host, () => console.error(`listening on ${host}:${port}${path}`));

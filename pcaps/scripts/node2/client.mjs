// Fixture MCP client: official TypeScript SDK 2.x (@modelcontextprotocol/client),
// Client + StreamableHTTPClientTransport: connect, tools/list, tools/call.
// argv[3] = versionNegotiation mode: 'auto' (server/discover probe, speaks
// 2026-07-28 when offered) or 'legacy' (the SDK default: initialize handshake).
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const url = new URL(process.argv[2] ?? 'http://127.0.0.1:8773/mcp');
const mode = process.argv[3] ?? 'auto';
const client = new Client({ name: 'fixture-ts2-client', version: '0.9.4' }, { versionNegotiation: { mode } });
const transport = new StreamableHTTPClientTransport(url);
await client.connect(transport);
console.log('era', client.getProtocolEra(), 'server', JSON.stringify(client.getServerVersion()));
const tools = await client.listTools();
console.log('tools', tools.tools.map((t) => t.name));
const res = await client.callTool({ name: 'search', arguments: { query: 'secret-argument-value' } });
console.log('call', JSON.stringify(res.content));
await client.close();

// Fixture MCP client: official TypeScript SDK 1.x, Client +
// StreamableHTTPClientTransport: initialize, tools/list, tools/call, DELETE.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const url = new URL(process.argv[2] ?? 'http://127.0.0.1:8770/mcp');
const client = new Client({ name: 'fixture-ts-client', version: '0.9.2' });
const transport = new StreamableHTTPClientTransport(url);
await client.connect(transport);
console.log('negotiated', transport.protocolVersion, client.getServerVersion());
const tools = await client.listTools();
console.log('tools', tools.tools.map((t) => t.name));
const res = await client.callTool({ name: 'search', arguments: { query: 'secret-argument-value' } });
console.log('call', JSON.stringify(res.content));
await transport.terminateSession();
await client.close();

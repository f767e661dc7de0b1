#!/usr/bin/env python3
"""Shapes of traffic that push the sensor's slow paths, for whole-process
timing (docs/performance.md, "Slow paths"). Writes classic pcap files
(Ethernet, IPv4, correct IP checksums) deterministically:

  tinyhead    100 connections, each an 8 KB HTTP request head in 1-byte segments
  reverse     200 connections, each a 60 KB MCP POST whose body segments
              arrive in reverse order (everything out of order until the last)
  tinychunks  50 connections, each a 20 KB chunked MCP POST of 1-byte chunks
  sse         100 connections, each an SSE response of 3,000 JSON-RPC events
  pipeline    200 connections, each 2,000 pipelined GET requests
  synflood    2,000,000 SYNs from random sources (every packet a new flow)

usage: bench/adversarial-gen.py OUTDIR
"""
import os
import random
import struct
import sys

S, A, F, P = 2, 16, 1, 8


def write_pcap(path, packets):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
        for t, p in packets:
            f.write(struct.pack('<IIII', 1750000000 + t // 1000000, t % 1000000, len(p), len(p)))
            f.write(p)


def checksum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def tcp(src, dst, sp, dp, seq, ack, flags, payload=b''):
    th = struct.pack('!HHIIBBHHH', sp, dp, seq & 0xffffffff, ack & 0xffffffff, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(th) + len(payload), 0, 0x4000, 64, 6, 0,
                     bytes(src), bytes(dst))
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    return b'\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00' + ip + th + payload


def conn(i, client_segments, server_segments=()):
    """Handshake, then (offset, bytes) segments of each side."""
    c, s = [10, 0, (i >> 8) & 255, i & 255], [10, 1, 0, 1]
    sp, dp = 10000 + i % 50000, 80
    out = [tcp(c, s, sp, dp, 1000, 0, S), tcp(s, c, dp, sp, 5000, 1001, S | A), tcp(c, s, sp, dp, 1001, 5001, A)]
    out += [tcp(c, s, sp, dp, 1001 + off, 5001, A | P, d) for off, d in client_segments]
    out += [tcp(s, c, dp, sp, 5001 + off, 1001, A | P, d) for off, d in server_segments]
    return out


def cut(msg, n):
    return [(k, msg[k:k + n]) for k in range(0, len(msg), n)]


def scenario(name):
    if name == 'tinyhead':
        head = b'GET /x HTTP/1.1\r\nHost: a.example\r\n' + b''.join(
            b'X-H%d: %s\r\n' % (k, b'v' * 60) for k in range(120)) + b'\r\n'
        for i in range(100):
            yield from conn(i, cut(head, 1))
    elif name == 'reverse':
        body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"x":"' + b'a' * 60000 + b'"}}'
        msg = (b'POST /mcp HTTP/1.1\r\nHost: a.example\r\nContent-Type: application/json\r\n'
               b'Content-Length: %d\r\n\r\n' % len(body)) + body
        segs = cut(msg, 600)
        for i in range(200):
            yield from conn(i, [segs[0]] + segs[:0:-1])
    elif name == 'tinychunks':
        body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"x":"' + b'a' * 20000 + b'"}}'
        chunked = b''.join(b'1\r\n' + body[k:k + 1] + b'\r\n' for k in range(len(body))) + b'0\r\n\r\n'
        msg = (b'POST /mcp HTTP/1.1\r\nHost: a.example\r\nContent-Type: application/json\r\n'
               b'Transfer-Encoding: chunked\r\n\r\n') + chunked
        for i in range(50):
            yield from conn(i, cut(msg, 1400))
    elif name == 'sse':
        req = b'GET /sse HTTP/1.1\r\nHost: a.example\r\nAccept: text/event-stream\r\n\r\n'
        events = b''.join(b'event: message\ndata: {"jsonrpc":"2.0","id":%d,"result":{}}\n\n' % k for k in range(3000))
        resp = b'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n' + events
        for i in range(100):
            yield from conn(i, [(0, req)], cut(resp, 1400))
    elif name == 'pipeline':
        reqs = b''.join(b'GET /r%d HTTP/1.1\r\nHost: a.example\r\n\r\n' % k for k in range(2000))
        for i in range(200):
            yield from conn(i, cut(reqs, 1400))
    elif name == 'synflood':
        rng = random.Random(1)
        base = tcp([10, 0, 0, 1], [10, 1, 0, 1], 1234, 80, 1, 0, S)
        for _ in range(2000000):
            b = bytearray(base)
            b[26:30] = struct.pack('!I', 0x0a000000 | rng.getrandbits(24))
            b[34:36] = struct.pack('!H', 1024 + rng.getrandbits(15))
            yield bytes(b)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    for name in ['tinyhead', 'reverse', 'tinychunks', 'sse', 'pipeline', 'synflood']:
        path = os.path.join(sys.argv[1], name + '.pcap')
        step = 5 if name == 'synflood' else 10
        write_pcap(path, ((k * step, p) for k, p in enumerate(scenario(name))))
        print(path)


if __name__ == '__main__':
    main()

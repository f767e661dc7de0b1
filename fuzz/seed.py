#!/usr/bin/env python3
"""Build fuzz seed corpora from the test captures (pcaps/*.pcap) and fixtures.

Standard library only. Writes fuzz/corpus/<target>/<sha1> files in the input
format of each target (see the comment at the top of fuzz_targets/*.rs).
Usage: seed.py [REPO_ROOT [OUT_DIR]]   (OUT_DIR defaults to REPO_ROOT/fuzz/corpus)
"""
import glob
import hashlib
import os
import struct
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(ROOT, "fuzz", "corpus")
MAX_SEED = 64 * 1024  # keep seeds small: libFuzzer's -max_len follows the corpus
PER_TARGET = 300  # cap of seeds per target from pcaps

# Index into decode.rs LINKTYPES, pipeline.rs LINKTYPES.
DECODE_SEL = {1: 1, 101: 4, 276: 9, 0: 0}
PIPE_SEL = {1: 0, 101: 1, 276: 2, 0: 3}

counts = {}


def put(target, data):
    if not data or len(data) > MAX_SEED:
        data = data[:MAX_SEED]
        if not data:
            return
    if counts.get(target, 0) >= PER_TARGET:
        return
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
        counts[target] = counts.get(target, 0) + 1


def read_pcap(path):
    """Classic pcap (either byte order, µs or ns)."""
    b = open(path, "rb").read()
    magic = b[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None, []
    linktype = struct.unpack(e + "I", b[20:24])[0]
    frames, off = [], 24
    while off + 16 <= len(b):
        _, _, incl, _ = struct.unpack(e + "IIII", b[off:off + 16])
        frames.append(b[off + 16:off + 16 + incl])
        off += 16 + incl
    return linktype, frames


def l3(linktype, f):
    """(ethertype-ish, ip bytes) or None."""
    if linktype == 1:
        et, off = struct.unpack(">H", f[12:14])[0] if len(f) >= 14 else 0, 14
        while et in (0x8100, 0x88A8) and len(f) >= off + 4:
            et, off = struct.unpack(">H", f[off + 2:off + 4])[0], off + 4
        return f[off:] if et in (0x0800, 0x86DD) else None
    if linktype == 276:
        return f[20:] if len(f) > 20 else None
    if linktype == 113:
        return f[16:] if len(f) > 16 else None
    if linktype == 0:
        return f[4:]
    return f


def l4(ip):
    """(proto, src, sport, dst, dport, seq, flags, payload) or None."""
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4 and len(ip) >= 20:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        proto, src, dst, body = ip[9], ip[12:16], ip[16:20], ip[ihl:total]
    elif v == 6 and len(ip) >= 40:
        proto, src, dst = ip[6], ip[8:24], ip[24:40]
        body = ip[40:40 + struct.unpack(">H", ip[4:6])[0]]
    else:
        return None
    if proto == 6 and len(body) >= 20:
        sport, dport, seq = struct.unpack(">HHI", body[:8])
        doff = (body[12] >> 4) * 4
        return (6, src, sport, dst, dport, seq, body[13], body[doff:])
    if proto == 17 and len(body) >= 8:
        sport, dport = struct.unpack(">HH", body[:4])
        return (17, src, sport, dst, dport, 0, 0, body[8:])
    return None


def tls_message(stream):
    """The handshake bytes of the leading TLS handshake records."""
    out, off = b"", 0
    while off + 5 <= len(stream) and stream[off] == 0x16:
        n = struct.unpack(">H", stream[off + 3:off + 5])[0]
        out += stream[off + 5:off + 5 + n]
        off += 5 + n
        if len(out) >= 4 and len(out) >= 4 + int.from_bytes(out[1:4], "big"):
            break
    return out


def varint(v):
    return bytes([v]) if v < 64 else struct.pack(">H", v | 0x4000)


def frame_seeds(linktype, frames, name):
    # Whole capture as one pipeline input (truncated to MAX_SEED).
    rec = bytes([PIPE_SEL.get(linktype, 0)])
    for f in frames:
        r = bytes([1]) + struct.pack(">H", len(f)) + f
        if len(rec) + len(r) > MAX_SEED:
            break
        rec += r
    put("pipeline", rec)
    put("pipeline", bytes([rec[0] | 4]) + rec[1:8192])  # small flow table
    # The IP packets of the capture, for the reassembly target (fragments
    # come from the fragroute-*.pcap captures).
    rec = b""
    for f in frames:
        ip = l3(linktype, f)
        if ip:
            r = bytes([0]) + struct.pack(">H", len(ip)) + ip
            if len(rec) + len(r) > MAX_SEED:
                break
            rec += r
    if rec:
        put("defrag", rec)
    streams, datagrams = {}, {}
    for f in frames:
        put("decode", bytes([DECODE_SEL.get(linktype, 1)]) + f)
        p = l4(l3(linktype, f))
        if not p:
            continue
        proto, src, sport, dst, dport, seq, flags, payload = p
        key = (src, sport, dst, dport)
        if proto == 6:
            if payload:
                s = streams.setdefault(key, {})
                s.setdefault(seq, payload)  # first copy of a retransmission wins
        elif proto == 17 and payload:
            datagrams.setdefault(key, []).append(payload)
            if sport == 53 or dport == 53:
                put("dns", payload)
    return {k: b"".join(v[s] for s in sorted(v)) for k, v in streams.items()}, datagrams


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(ty, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ty, flags]) + struct.pack(">I", sid) + payload


def hpack_literal(name, value):
    """Literal without indexing, new name, no Huffman (RFC 7541 §6.2.2)."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def hpack_indexing(name, value):
    """Literal with incremental indexing, new name (§6.2.1)."""
    return b"\x40" + bytes([len(name)]) + name + bytes([len(value)]) + value


def http2_capture_seeds(streams):
    """Capture streams that begin with the HTTP/2 client preface, with the
    server's bytes."""
    for key, data in streams.items():
        if data.startswith(H2_PREFACE):
            rev = streams.get((key[2], key[3], key[0], key[1]), b"")
            client = data[:0xFFFF]
            put("http2", bytes([0, 5]) + struct.pack(">H", len(client)) + client + rev)


def http2_seeds():
    """Hand-built HTTP/2 connections covering every frame type, and HPACK
    blocks (RFC 7541 Appendix C)."""
    req = (b"\x83\x86" + hpack_literal(b":path", b"/mcp") +
           hpack_indexing(b":authority", b"mcp.example.com") +
           hpack_literal(b"content-type", b"application/json") +
           hpack_indexing(b"mcp-protocol-version", b"2025-06-18"))
    body = b'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}'
    c = h2_frame(4, 0, 0, b"\x00\x01\x00\x00\x10\x00\x00\x05\x00\x00\x40\x00")
    c += h2_frame(8, 0, 0, b"\x00\x01\x00\x00")
    c += h2_frame(1, 4, 1, req) + h2_frame(0, 1, 1, body)
    # Stream 3: padded and prioritised, in three pieces, then reset.
    req3 = b"\x82\x86\x84\xbe\xbf"  # GET http / + the two indexed fields
    c += h2_frame(1, 0x28, 3, b"\x02" + b"\x00\x00\x00\x00\x10" + req3[:2] + b"\x00\x00")
    c += h2_frame(9, 0, 3, req3[2:4]) + h2_frame(9, 4, 3, req3[4:])
    c += h2_frame(0, 8, 3, b"\x03abc\x00\x00\x00") + h2_frame(3, 0, 3, b"\x00\x00\x00\x08")
    c += h2_frame(2, 0, 5, b"\x00\x00\x00\x03\x20") + h2_frame(6, 0, 0, b"\x00" * 8)
    c += h2_frame(0xfa, 0, 0, b"ext")
    resp = (b"\x88" + hpack_indexing(b"content-type", b"text/event-stream") +
            hpack_literal(b"mcp-session-id", b"s-1"))
    srv = h2_frame(4, 0, 0, b"\x00\x03\x00\x00\x00\x64") + h2_frame(4, 1, 0, b"")
    srv += h2_frame(1, 4, 1, resp)
    srv += h2_frame(0, 0, 1, b'data: {"jsonrpc":"2.0","id":0,"result":{}}\n\n')
    srv += h2_frame(1, 5, 1, hpack_literal(b"x-trailer", b"1"))
    srv += h2_frame(5, 4, 1, b"\x00\x00\x00\x02" + b"\x82\x87\x85" + hpack_literal(b":authority", b"a"))
    srv += h2_frame(1, 4, 2, b"\x88\x5f\x87\x49\x7c\xa5\x8a\xe8\x19\xaa")  # Huffman text/html
    srv += h2_frame(0, 1, 2, b"<p>")
    srv += h2_frame(6, 1, 0, b"\x00" * 8) + h2_frame(7, 0, 0, b"\x00\x00\x00\x03\x00\x00\x00\x00debug")
    for flags, client in ((0, H2_PREFACE + c), (4, c), (6, c), (9, H2_PREFACE + c), (1, H2_PREFACE + c)):
        put("http2", bytes([flags, 3]) + struct.pack(">H", len(client)) + client + srv)
    # HPACK: RFC 7541 Appendix C, C.5/C.6 after a size update to 256.
    c2 = ["400a637573746f6d2d6b65790d637573746f6d2d686561646572", "040c2f73616d706c652f70617468",
          "100870617373776f726406736563726574", "82"]
    c3 = ["828684410f7777772e6578616d706c652e636f6d", "828684be58086e6f2d6361636865",
          "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"]
    c4 = ["828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf",
          "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"]
    c5 = ["3fe1014803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d",
          "4803333037c1c0bf",
          "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31"]
    c6 = ["3fe101488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
          "4883640effc1c0bf",
          "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007"]
    for blocks in (c2, c3, c4, c5, c6):
        seed = bytes([0x80 | 64])
        for b in blocks:
            raw = bytes.fromhex(b)
            seed += struct.pack(">H", len(raw)) + raw
        put("hpack", seed)
    put("hpack", bytes([4]) + struct.pack(">H", len(req)) + req + struct.pack(">H", len(resp)) + resp)


def main():
    for path in sorted(glob.glob(os.path.join(ROOT, "pcaps", "*.pcap"))):
        with open(path, "rb") as f:
            put("pcap_file", f.read(MAX_SEED))
        linktype, frames = read_pcap(path)
        if linktype is None:
            continue
        streams, datagrams = frame_seeds(linktype, frames, path)
        http2_capture_seeds(streams)
        for key, data in streams.items():
            rev = streams.get((key[2], key[3], key[0], key[1]), b"")
            if data[:1] == b"\x16":
                put("tls_records", data[:20000])
                put("tls_message", tls_message(data))
            if key[1] == 53 or key[3] == 53:
                put("dns", data[2:])
            head_end = data.find(b"\r\n\r\n")
            is_req = data[:8].split(b" ")[0] in (b"GET", b"POST", b"DELETE", b"PUT", b"HEAD", b"OPTIONS")
            is_resp = data.startswith(b"HTTP/1.")
            if is_req or is_resp:
                put("http1", bytes([0 if is_req else 1, len(data) & 0xFF]) + data)
                put("http1", bytes([10 if is_req else 11, 7]) + data)
                sel = 0 if is_req else 3
                put("jsonrpc_mcp", bytes([sel]) + data[:8192])
                if is_resp and b"text/event-stream" in data[:head_end] and head_end > 0:
                    put("sse", b"\x00\x01" + data[head_end + 4:])
                    put("jsonrpc_mcp", bytes([sel | 8]) + data[:8192])
                if is_resp and b" 101 " in data[:20] and head_end > 0:
                    deflate = b"permessage-deflate" in data[:head_end].lower()
                    # Server frames after the 101; client frames after its request.
                    mode = (2 << 1 | 7 << 4) if deflate else 0
                    put("websocket", bytes([mode, 3]) + data[head_end + 4:])
                    rh = rev.find(b"\r\n\r\n")
                    if rh > 0:
                        put("websocket", bytes([mode | 1, 5]) + rev[rh + 4:])
        for key, dgrams in datagrams.items():
            if dgrams and dgrams[0][:1] and dgrams[0][0] & 0xC0 == 0xC0:
                rec = b"\x00"
                for d in dgrams[:4]:
                    rec += struct.pack(">H", len(d)) + d
                put("quic_initial", rec)
    http2_seeds()
    # Sealed-mode QUIC seeds: CRYPTO frames carrying real ClientHellos, whole
    # and split in two out of order.
    tls_dir = os.path.join(OUT, "tls_message")
    for i, name in enumerate(sorted(os.listdir(tls_dir))[:8] if os.path.isdir(tls_dir) else []):
        hello = open(os.path.join(tls_dir, name), "rb").read()
        whole = b"\x06\x00" + varint(len(hello)) + hello
        put("quic_initial", bytes([1 | (i & 1) << 1]) + struct.pack(">H", len(whole)) + whole)
        h = len(hello) // 2
        a = b"\x06" + varint(h) + varint(len(hello) - h) + hello[h:]
        b = b"\x01\x06\x00" + varint(h) + hello[:h]  # PING first
        put("quic_initial", b"\x01" + struct.pack(">H", len(a)) + a + struct.pack(">H", len(b)) + b)
    # Loaders: the shipped files.
    for i, name in enumerate(["manifest.toml", "servers.toml", "platforms.toml",
                              "heuristics.toml", "jsonrpc.toml", "http.toml"]):
        put("signatures_load", bytes([i]) + open(os.path.join(ROOT, "signatures", name), "rb").read())
    # An overlay in place of the registry snapshot (selector 6).
    put("signatures_load", bytes([6]) + open(os.path.join(ROOT, "signatures", "registry-snapshot.toml"), "rb").read())
    put("signatures_load", bytes([6]) + open(os.path.join(ROOT, "deploy", "signatures.d", "organisation.toml.example"), "rb").read())
    # Registry catalogues: saved pages (even selector), plain lists (odd).
    for p in [os.path.join(ROOT, "signatures", "tools", "data", "registry-excerpt.json"),
              os.path.join(ROOT, "tests", "data", "signatures", "overlay-e2e-pages.json")]:
        put("registry_pages", b"\x00" + open(p, "rb").read())
    put("registry_pages", b"\x01# urls\nhttps://mcp.a.example/mcp\nhttp://b.example:8080/sse?k=1\n")
    put("registry_pages", b"\x01name,url\n\"A, Inc.\",https://{t}.a.example/mcp\n")
    for p in glob.glob(os.path.join(ROOT, "deploy", "*.toml")):
        put("config", open(p, "rb").read())
    put("config", b"")
    for p in glob.glob(os.path.join(ROOT, "deploy", "allowlist*")):
        put("allowlist", open(p, "rb").read())
    put("allowlist", b"mcp.example.com\n*.example.org\n192.0.2.10\n10.0.0.0/8\n2001:db8::/32\n# c\n")
    # Key logs, and real TLS sessions with their key logs (made by
    # `cargo test --test tls_decrypt -- --ignored write_fuzz_seeds`).
    line = lambda label, n: "%s %s %s\n" % (label, ("%02x" % n) * 32, "ab" * 48)
    keylog = "# SSL/TLS secrets log file\n" + line("CLIENT_RANDOM", 1) + line(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET", 2) + line("EXPORTER_SECRET", 2) + "CLIENT_RANDOM zz\n"
    for step in (0, 1, 7, 64):
        put("tls_keylog", bytes([step]) + keylog.encode())
    for p in sorted(glob.glob(os.path.join(ROOT, "fuzz", "seeds", "tls_decrypt", "*"))):
        data = open(p, "rb").read()
        put("tls_decrypt", data)
        put("tls_keylog", b"\x00" + data[3:3 + struct.unpack(">H", data[1:3])[0]])
    for t, n in sorted(counts.items()):
        print(f"{t:16} {n} seeds")


main()

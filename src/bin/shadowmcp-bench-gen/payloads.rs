//! Names, addresses and the fixed payloads: TLS hellos, DNS, JSON.

use crate::rng::Rng;

/// Ordinary destinations of an office egress link.
pub const NAMES: &[&str] = &[
    "www.google.com",
    "www.gstatic.com",
    "fonts.googleapis.com",
    "accounts.google.com",
    "mail.google.com",
    "drive.google.com",
    "www.youtube.com",
    "i.ytimg.com",
    "rr3---sn-4g5e6nzz.googlevideo.com",
    "login.microsoftonline.com",
    "outlook.office365.com",
    "teams.microsoft.com",
    "graph.microsoft.com",
    "update.microsoft.com",
    "www.bing.com",
    "api.github.com",
    "github.com",
    "objects.githubusercontent.com",
    "registry.npmjs.org",
    "pypi.org",
    "files.pythonhosted.org",
    "crates.io",
    "static.crates.io",
    "index.docker.io",
    "production.cloudflare.docker.com",
    "slack.com",
    "wss-primary.slack.com",
    "edgeapi.slack.com",
    "zoom.us",
    "www.atlassian.com",
    "acme.atlassian.net",
    "www.salesforce.com",
    "acme.my.salesforce.com",
    "s3.amazonaws.com",
    "ec2.eu-west-1.amazonaws.com",
    "sts.amazonaws.com",
    "d1a2b3c4d5e6f7.cloudfront.net",
    "cdn.jsdelivr.net",
    "unpkg.com",
    "www.wikipedia.org",
    "en.wikipedia.org",
    "upload.wikimedia.org",
    "www.nytimes.com",
    "www.bbc.co.uk",
    "www.linkedin.com",
    "media.licdn.com",
    "www.dropbox.com",
    "api.openai.com",
    "api.anthropic.com",
    "ocsp.digicert.com",
    "ctldl.windowsupdate.com",
    "time.apple.com",
    "gateway.icloud.com",
    "www.apple.com",
    "play.googleapis.com",
    "firebaseinstallations.googleapis.com",
    "sentry.io",
    "o123456.ingest.sentry.io",
    "api.segment.io",
    "www.notion.so",
];

/// Known remote MCP servers (see known-servers.csv): a small share of names.
pub const MCP_NAMES: &[&str] = &[
    "mcp.notion.com",
    "mcp.linear.app",
    "mcp.sentry.dev",
    "mcp.atlassian.com",
    "mcp.asana.com",
    "mcp.stripe.com",
];

/// Internal REST services reached over cleartext HTTP.
pub const REST_HOSTS: &[&str] = &[
    "inventory.corp.example",
    "orders.corp.example",
    "api.internal.example",
    "billing.corp.example",
];

/// Internal MCP servers reached over cleartext Streamable HTTP.
pub const MCP_HTTP_HOSTS: &[&str] = &["mcp-gw.corp.example:8000", "tools.corp.example:8080"];

pub const WORDS: &[&str] = &[
    "alpha",
    "bravo",
    "cable",
    "delta",
    "engine",
    "filter",
    "gasket",
    "hinge",
    "insulator",
    "joint",
    "kettle",
    "lever",
    "magnet",
    "nozzle",
    "oxide",
    "piston",
    "quartz",
    "rotor",
    "sensor",
    "turbine",
    "valve",
    "washer",
    "yoke",
    "zinc",
];

/// Deterministic address of a server name (documentation ranges, RFC 5737 / RFC 3849).
pub fn name_v4(name: &str) -> [u8; 4] {
    let h = fnv1a(name.as_bytes());
    let nets = [[203, 0, 113], [198, 51, 100], [192, 0, 2]];
    let n = nets[(h % 3) as usize];
    [n[0], n[1], n[2], ((h >> 8) % 250 + 2) as u8]
}

pub fn name_v6(name: &str) -> [u8; 16] {
    let h = fnv1a(name.as_bytes());
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[8..].copy_from_slice(&h.to_be_bytes());
    a
}

pub fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn put_u16(v: &mut Vec<u8>, x: usize) {
    v.extend_from_slice(&(x as u16).to_be_bytes());
}

pub fn ext(out: &mut Vec<u8>, ty: u16, body: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    put_u16(out, body.len());
    out.extend_from_slice(body);
}

/// A TLS 1.3 ClientHello record as a current browser sends it (RFC 8446 §4.1.2),
/// with SNI (RFC 6066 §3), ALPN h2 + http/1.1 (RFC 7301) and an X25519 key share.
pub fn client_hello(sni: &str, rng: &mut Rng) -> Vec<u8> {
    client_hello_with_random(sni, rng).0
}

/// [`client_hello`] and its random (what key logs are keyed by).
pub fn client_hello_with_random(sni: &str, rng: &mut Rng) -> (Vec<u8>, [u8; 32]) {
    let name = sni.as_bytes();
    let mut exts = Vec::with_capacity(256);
    let mut sn = Vec::new();
    put_u16(&mut sn, name.len() + 3);
    sn.push(0); // host_name
    put_u16(&mut sn, name.len());
    sn.extend_from_slice(name);
    ext(&mut exts, 0x0000, &sn);
    ext(&mut exts, 0x0017, &[]); // extended_master_secret
    ext(&mut exts, 0xff01, &[0]); // renegotiation_info
    ext(
        &mut exts,
        0x000a,
        &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18],
    ); // x25519, P-256, P-384
    ext(&mut exts, 0x000b, &[1, 0]); // ec_point_formats: uncompressed
    ext(&mut exts, 0x0023, &[]); // session_ticket
    ext(
        &mut exts,
        0x0010,
        &[
            0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ],
    );
    ext(&mut exts, 0x0005, &[1, 0, 0, 0, 0]); // status_request: OCSP
    ext(
        &mut exts,
        0x000d,
        &[
            0, 16, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01, 0x08,
            0x06, 0x06, 0x01,
        ],
    );
    ext(&mut exts, 0x0012, &[]); // signed_certificate_timestamp
    let mut ks = vec![0, 36, 0x00, 0x1d, 0, 32];
    ks.extend_from_slice(&rng.bytes::<32>());
    ext(&mut exts, 0x0033, &ks); // key_share
    ext(&mut exts, 0x002d, &[1, 1]); // psk_key_exchange_modes: psk_dhe_ke
    ext(&mut exts, 0x002b, &[4, 0x03, 0x04, 0x03, 0x03]); // supported_versions
    let mut body = Vec::with_capacity(exts.len() + 128);
    body.extend_from_slice(&[0x03, 0x03]);
    let random = rng.bytes::<32>();
    body.extend_from_slice(&random);
    body.push(32);
    body.extend_from_slice(&rng.bytes::<32>());
    let suites: [u16; 9] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
    ];
    put_u16(&mut body, suites.len() * 2);
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    put_u16(&mut body, exts.len());
    body.extend_from_slice(&exts);
    (handshake_record(1, &body, [0x03, 0x01]), random)
}

/// ServerHello selecting TLS 1.3 and TLS_AES_128_GCM_SHA256, then the
/// middlebox-compatibility ChangeCipherSpec (RFC 8446 §D.4).
pub fn server_hello(rng: &mut Rng) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&rng.bytes::<32>());
    body.push(32);
    body.extend_from_slice(&rng.bytes::<32>());
    body.extend_from_slice(&[0x13, 0x01, 0]);
    let mut exts = Vec::new();
    ext(&mut exts, 0x002b, &[0x03, 0x04]);
    let mut ks = vec![0x00, 0x1d, 0, 32];
    ks.extend_from_slice(&rng.bytes::<32>());
    ext(&mut exts, 0x0033, &ks);
    put_u16(&mut body, exts.len());
    body.extend_from_slice(&exts);
    let mut rec = handshake_record(2, &body, [0x03, 0x03]);
    rec.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
    rec
}

pub fn handshake_record(msg_type: u8, body: &[u8], version: [u8; 2]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(body.len() + 9);
    rec.extend_from_slice(&[0x16, version[0], version[1]]);
    put_u16(&mut rec, body.len() + 4);
    rec.push(msg_type);
    rec.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(body);
    rec
}

/// DNS query and answer (RFC 1035 §4.1) for one A or AAAA record.
pub fn dns_pair(name: &str, aaaa: bool, rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let id = rng.next() as u16;
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; QDCOUNT 1
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    let qtype: u16 = if aaaa { 28 } else { 1 };
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    let mut a = q.clone();
    a[2..8].copy_from_slice(&[0x81, 0x80, 0, 1, 0, 1]); // QR RD RA; ANCOUNT 1
    a.extend_from_slice(&[0xc0, 0x0c]); // pointer to the question name
    a.extend_from_slice(&qtype.to_be_bytes());
    a.extend_from_slice(&[0, 1]);
    a.extend_from_slice(&(60 + rng.below(3540) as u32).to_be_bytes());
    if aaaa {
        a.extend_from_slice(&[0, 16]);
        a.extend_from_slice(&name_v6(name));
    } else {
        a.extend_from_slice(&[0, 4]);
        a.extend_from_slice(&name_v4(name));
    }
    (q, a)
}

/// A JSON object of about `target` bytes describing an inventory item.
pub fn json_item(rng: &mut Rng, target: usize) -> String {
    let id = rng.below(10_000_000);
    let mut s = format!(
        "{{\"id\":{id},\"name\":\"item-{id}\",\"sku\":\"SKU-{:06X}\",\"qty\":{},\"price\":{}.{:02},\"tags\":[\"{}\",\"{}\"],\"description\":\"",
        rng.below(0xFF_FFFF),
        rng.below(500),
        rng.below(1000),
        rng.below(100),
        rng.pick(WORDS),
        rng.pick(WORDS),
    );
    while s.len() + 3 < target {
        s.push_str(rng.pick(WORDS));
        s.push(' ');
    }
    s.push_str("\"}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_lengths_are_consistent() {
        let mut rng = Rng(1);
        let ch = client_hello("mcp.notion.com", &mut rng);
        assert_eq!(ch[0], 0x16);
        let rec_len = usize::from(u16::from_be_bytes([ch[3], ch[4]]));
        assert_eq!(rec_len + 5, ch.len());
        assert_eq!(ch[5], 1);
        let hs_len = (usize::from(ch[6]) << 16) | (usize::from(ch[7]) << 8) | usize::from(ch[8]);
        assert_eq!(hs_len + 4, rec_len);
        // Walk to the extensions and check they exactly fill the message.
        let mut p = 9 + 2 + 32;
        p += 1 + usize::from(ch[p]);
        p += 2 + usize::from(u16::from_be_bytes([ch[p], ch[p + 1]]));
        p += 1 + usize::from(ch[p]);
        let ext_len = usize::from(u16::from_be_bytes([ch[p], ch[p + 1]]));
        p += 2;
        assert_eq!(p + ext_len, ch.len());
        let mut types = Vec::new();
        while p < ch.len() {
            types.push(u16::from_be_bytes([ch[p], ch[p + 1]]));
            p += 4 + usize::from(u16::from_be_bytes([ch[p + 2], ch[p + 3]]));
        }
        assert_eq!(p, ch.len());
        for t in [0x0000, 0x0010, 0x002b, 0x0033] {
            assert!(types.contains(&t), "extension {t:#06x} missing");
        }
        let sni = b"mcp.notion.com";
        assert!(ch.windows(sni.len()).any(|w| w == sni));
    }

    #[test]
    fn dns_answer_echoes_the_question() {
        let mut rng = Rng(3);
        let (q, a) = dns_pair("mcp.linear.app", false, &mut rng);
        assert_eq!(&q[..2], &a[..2]);
        assert_eq!(&a[12..q.len()], &q[12..]);
        assert_eq!(&a[a.len() - 4..], &name_v4("mcp.linear.app"));
    }
}

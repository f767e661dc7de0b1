//! HTTP exchanges independent of the HTTP version, and their HTTP/1.1 form.
//!
//! A flow's requests and responses are built once as [`Exchange`]s; `h1`
//! writes them as HTTP/1.1 on a keep-alive connection, `h2` (module `h2`) as
//! HTTP/2 with prior knowledge. Both carry the same bodies, so two captures
//! that differ only in the HTTP version can be compared.

use crate::egress::{Msg, Part};
use crate::payloads::{WORDS, json_item};
use crate::rng::Rng;
use std::collections::VecDeque;

/// A message body: JSON text, or a stretch of the generator's random pool
/// (a binary download, `application/octet-stream`).
pub enum Body {
    Json(String),
    Pool { off: usize, len: usize },
}

impl Body {
    pub fn len(&self) -> usize {
        match self {
            Body::Json(s) => s.len(),
            Body::Pool { len, .. } => *len,
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            Body::Json(_) => "application/json",
            Body::Pool { .. } => "application/octet-stream",
        }
    }

    /// The body as message parts (a pool stretch is not copied).
    pub fn part(&self) -> Part {
        match self {
            Body::Json(s) => Part::Bytes(s.clone().into_bytes()),
            Body::Pool { off, len } => Part::Pool {
                off: *off,
                len: *len,
            },
        }
    }
}

/// Header fields beyond the ones every request or response has, in the
/// HTTP/1.1 spelling (HTTP/2 lower-cases the names).
pub type Fields = Vec<(&'static str, String)>;

pub struct Request {
    pub method: &'static str,
    /// Host, with the port when it is not the scheme's default.
    pub host: &'static str,
    pub path: String,
    pub extra: Fields,
    pub body: Body,
}

pub struct Response {
    pub status: u16,
    pub extra: Fields,
    pub body: Body,
}

pub struct Exchange {
    pub req: Request,
    pub resp: Response,
}

/// Exchanges that a client sends without waiting for the previous answer
/// (HTTP/2 streams open at once; HTTP/1.1 sends them one after another).
pub type Batch = Vec<Exchange>;

pub const USER_AGENT: &str = "bench-client/1.0";
pub const DATE: &str = "Sun, 15 Jun 2025 00:00:00 GMT";
pub const SERVER: &str = "bench";

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        _ => "Unknown",
    }
}

fn json(s: impl Into<String>) -> Body {
    Body::Json(s.into())
}

fn empty() -> Body {
    Body::Json(String::new())
}

// ---------------------------------------------------------------- HTTP/1.1

/// The request head and body as HTTP/1.1 sends them.
pub fn h1_request(r: &Request) -> Vec<Part> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {USER_AGENT}\r\nAccept: application/json\r\n",
        r.method, r.path, r.host
    );
    for (n, v) in &r.extra {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if r.method != "GET" {
        head.push_str(&format!(
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            r.body.content_type(),
            r.body.len()
        ));
    }
    head.push_str("\r\n");
    with_body(head, &r.body)
}

pub fn h1_response(r: &Response) -> Vec<Part> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nDate: {DATE}\r\nServer: {SERVER}\r\n",
        r.status,
        reason(r.status)
    );
    if r.body.len() > 0 {
        head.push_str(&format!("Content-Type: {}\r\n", r.body.content_type()));
    }
    for (n, v) in &r.extra {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", r.body.len()));
    with_body(head, &r.body)
}

/// Head and body: one part when the body is text (as one buffer is written).
fn with_body(mut head: String, body: &Body) -> Vec<Part> {
    match body {
        Body::Json(s) => {
            head.push_str(s);
            vec![Part::Bytes(head.into_bytes())]
        }
        Body::Pool { .. } => vec![Part::Bytes(head.into_bytes()), body.part()],
    }
}

/// A keep-alive HTTP/1.1 connection: each request, then its response.
pub fn h1_msgs(batches: &[Batch]) -> VecDeque<Msg> {
    let mut msgs = VecDeque::new();
    for ex in batches.iter().flatten() {
        msgs.push_back(Msg::parts(true, h1_request(&ex.req)));
        msgs.push_back(Msg::parts(false, h1_response(&ex.resp)));
    }
    msgs
}

// ---------------------------------------------------------------- what flows say

/// REST calls on one keep-alive connection: `POST /api/v1/items` with a
/// JSON body and a `201`, or `GET /api/v1/items?page=N` with a JSON list.
/// With `auth`, requests carry a bearer token (the twin captures do).
pub fn rest_exchanges(host: &'static str, rng: &mut Rng, auth: Option<&str>) -> Vec<Exchange> {
    let mut out = Vec::new();
    let extra = || -> Fields {
        auth.map(|t| vec![("Authorization", format!("Bearer {t}"))])
            .unwrap_or_default()
    };
    for _ in 0..rng.range(1, 12) {
        if rng.below(10) < 7 {
            let n = rng.range(80, 3000) as usize;
            let body = json_item(rng, n);
            let n = rng.range(100, 1500) as usize;
            let resp = format!("{{\"status\":\"created\",\"item\":{}}}", json_item(rng, n));
            out.push(Exchange {
                req: Request {
                    method: "POST",
                    host,
                    path: "/api/v1/items".into(),
                    extra: extra(),
                    body: json(body),
                },
                resp: Response {
                    status: 201,
                    extra: Vec::new(),
                    body: json(resp),
                },
            });
        } else {
            let page = rng.range(1, 50);
            let mut list = String::from("{\"items\":[");
            for i in 0..rng.range(1, 40) {
                if i > 0 {
                    list.push(',');
                }
                let n = rng.range(100, 600) as usize;
                list.push_str(&json_item(rng, n));
            }
            list.push_str(&format!("],\"page\":{page}}}"));
            out.push(Exchange {
                req: Request {
                    method: "GET",
                    host,
                    path: format!("/api/v1/items?page={page}&limit=50"),
                    extra: extra(),
                    body: empty(),
                },
                resp: Response {
                    status: 200,
                    extra: Vec::new(),
                    body: json(list),
                },
            });
        }
    }
    out
}

/// One to three binary downloads of `lo..=hi` bytes each (log-uniform).
pub fn bulk_exchanges(
    host: &'static str,
    rng: &mut Rng,
    pool_len: usize,
    lo: u64,
    hi: u64,
) -> Vec<Exchange> {
    (0..rng.range(1, 3))
        .map(|_| {
            let len = rng.log_uniform(lo, hi) as usize;
            let off = rng.below(pool_len as u64) as usize;
            let path = format!(
                "/files/{}-{}-{}.bin",
                rng.pick(WORDS),
                rng.pick(WORDS),
                rng.below(100_000)
            );
            Exchange {
                req: Request {
                    method: "GET",
                    host,
                    path,
                    extra: Vec::new(),
                    body: empty(),
                },
                resp: Response {
                    status: 200,
                    extra: Vec::new(),
                    body: Body::Pool { off, len },
                },
            }
        })
        .collect()
}

/// A Streamable HTTP MCP session (protocol 2025-06-18): initialize,
/// notifications/initialized, tools/list, one to three tools/call.
pub fn mcp_exchanges(host: &'static str, rng: &mut Rng) -> Vec<Exchange> {
    let mut out = Vec::new();
    let sid = format!("{:016x}{:016x}", rng.next(), rng.next());
    let accept = ("Accept", "application/json, text/event-stream".to_string());
    let post = |extra: Fields, body: String| Request {
        method: "POST",
        host,
        path: "/mcp".into(),
        extra,
        body: json(body),
    };
    let ok = |body: String| Response {
        status: 200,
        extra: Vec::new(),
        body: json(body),
    };
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench-client","version":"1.0"}}}"#;
    let result = r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true}},"serverInfo":{"name":"bench-server","version":"1.0"}}}"#;
    out.push(Exchange {
        req: post(vec![accept.clone()], init.into()),
        resp: Response {
            status: 200,
            extra: vec![("Mcp-Session-Id", sid.clone())],
            body: json(result),
        },
    });
    let hdrs = || -> Fields {
        vec![
            accept.clone(),
            ("Mcp-Session-Id", sid.clone()),
            ("MCP-Protocol-Version", "2025-06-18".into()),
        ]
    };
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    out.push(Exchange {
        req: post(hdrs(), note.into()),
        resp: Response {
            status: 202,
            extra: Vec::new(),
            body: empty(),
        },
    });
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    let tools = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search","description":"Search the item catalogue","inputSchema":{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}},{"name":"get_item","description":"Fetch one item by id","inputSchema":{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}}]}}"#;
    out.push(Exchange {
        req: post(hdrs(), list.into()),
        resp: ok(tools.into()),
    });
    for id in 2..2 + rng.range(1, 3) {
        let call = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"search","arguments":{{"query":"{} {}"}}}}}}"#,
            rng.pick(WORDS),
            rng.pick(WORDS)
        );
        let len = rng.range(200, 4000) as usize;
        let text = json_item(rng, len).replace('"', "'");
        let res = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"{text}"}}],"isError":false}}}}"#
        );
        out.push(Exchange {
            req: post(hdrs(), call),
            resp: ok(res),
        });
    }
    out
}

/// Plaintext bytes of the exchanges (bodies and an estimate of the heads):
/// the version-independent size a flow is budgeted by.
pub fn nominal_bytes(batches: &[Batch]) -> u64 {
    batches
        .iter()
        .flatten()
        .map(|e| (e.req.body.len() + e.resp.body.len() + 300) as u64)
        .sum()
}

//! The passive HTTP/2 parser on the bytes of a real implementation: the h2
//! crate's client and server talk over an in-memory pipe, every write of
//! each side is recorded in order, and the parser must find every request,
//! response, body, event stream and trailer section that went through,
//! whatever the segmentation.
//!
//! The exchange covers what MCP over HTTP/2 looks like (a JSON POST
//! answered by an event stream with a session id, a GET with the session
//! id, gzip bodies), with concurrent streams, a body larger than the flow
//! control window (WINDOW_UPDATE), trailers, and repeated field sets so the
//! HPACK dynamic table is used in both directions.

use std::collections::BTreeMap;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use shadowmcp::proto::http2::{H2Connection, H2Event, H2Limits, Sender};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

type Log = Arc<Mutex<Vec<(Sender, Vec<u8>)>>>;

/// One end of the pipe, recording what it writes.
struct Tap {
    inner: DuplexStream,
    who: Sender,
    log: Log,
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            let who = self.who;
            self.log.lock().unwrap().push((who, buf[..n].to_vec()));
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"h2-test","version":"1"}}}"#;
const SSE_1: &str = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{\"protocolVersion\":\"2025-06-18\"}}\n\n";
const SSE_2: &str = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\n";
const TOOLS: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}}"#;
const BIG_LEN: usize = 100_000;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

async fn read_body(body: &mut h2::RecvStream) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        all.extend_from_slice(&chunk);
    }
    all
}

async fn serve(io: Tap) {
    let mut conn = h2::server::handshake(io).await.unwrap();
    while let Some(next) = conn.accept().await {
        let Ok((req, mut respond)) = next else { break };
        tokio::spawn(async move {
            let (parts, mut body) = req.into_parts();
            let got = read_body(&mut body).await;
            match parts.uri.path() {
                "/mcp" if parts.method == "POST" && got.len() == BIG_LEN => {
                    let resp = http::Response::builder().status(204).body(()).unwrap();
                    respond.send_response(resp, true).unwrap();
                }
                "/mcp" if parts.method == "POST" => {
                    let resp = http::Response::builder()
                        .status(200)
                        .header("content-type", "text/event-stream")
                        .header("mcp-session-id", "sess-1")
                        .body(())
                        .unwrap();
                    let mut send = respond.send_response(resp, false).unwrap();
                    send.send_data(Bytes::from_static(SSE_1.as_bytes()), false)
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    send.send_data(Bytes::from_static(SSE_2.as_bytes()), true)
                        .unwrap();
                }
                _ => {
                    let resp = http::Response::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .header("content-encoding", "gzip")
                        .body(())
                        .unwrap();
                    let mut send = respond.send_response(resp, false).unwrap();
                    send.send_data(Bytes::from(gzip(TOOLS.as_bytes())), false)
                        .unwrap();
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("x-checksum", "ok".parse().unwrap());
                    send.send_trailers(trailers).unwrap();
                }
            }
        });
    }
}

fn request(method: &str, path: &str, session: bool) -> http::Request<()> {
    let mut b = http::Request::builder()
        .method(method)
        .uri(format!("http://mcp.example.com{path}"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    if method == "POST" {
        b = b.header("content-type", "application/json");
    }
    if session {
        b = b.header("mcp-session-id", "sess-1");
    }
    b.body(()).unwrap()
}

async fn client(io: Tap) {
    let (client, conn) = h2::client::Builder::new()
        .header_table_size(8192)
        .handshake::<_, Bytes>(io)
        .await
        .unwrap();
    let conn_task = tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    // 1: initialize, answered by an event stream.
    let (resp, mut send) = client
        .send_request(request("POST", "/mcp", false), false)
        .unwrap();
    send.send_data(Bytes::from_static(INIT.as_bytes()), true)
        .unwrap();
    let (parts, mut body) = resp.await.unwrap().into_parts();
    assert_eq!(parts.status, 200);
    assert_eq!(
        read_body(&mut body).await,
        format!("{SSE_1}{SSE_2}").as_bytes()
    );
    // 3, 5, 7: concurrent GETs with the session id (gzip bodies, trailers).
    let mut pending = Vec::new();
    for _ in 0..3 {
        let mut client = client.clone().ready().await.unwrap();
        let (resp, _) = client
            .send_request(request("GET", "/tools", true), true)
            .unwrap();
        pending.push(resp);
    }
    for resp in pending {
        let (_, mut body) = resp.await.unwrap().into_parts();
        let _ = read_body(&mut body).await;
        let t = body.trailers().await.unwrap().unwrap();
        assert_eq!(t["x-checksum"], "ok");
    }
    // 9: a body beyond the initial flow control window.
    let mut client = client.ready().await.unwrap();
    let (resp, mut send) = client
        .send_request(request("POST", "/mcp", true), false)
        .unwrap();
    send.send_data(Bytes::from(vec![b'x'; BIG_LEN]), true)
        .unwrap();
    assert_eq!(resp.await.unwrap().status(), 204);
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(2), conn_task).await;
}

/// The recorded writes of one whole exchange (made once per test process).
fn recording() -> &'static Vec<(Sender, Vec<u8>)> {
    static LOG: OnceLock<Vec<(Sender, Vec<u8>)>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log: Log = Arc::default();
        // One thread: the two sides' writes are logged in one order run
        // after run (with two, a late END_STREAM of the client could be
        // logged after the server's answer, reordering the events the
        // assertions index).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (a, b) = tokio::io::duplex(16 * 1024);
            let c = Tap {
                inner: a,
                who: Sender::Client,
                log: log.clone(),
            };
            let s = Tap {
                inner: b,
                who: Sender::Server,
                log: log.clone(),
            };
            let server = tokio::spawn(serve(s));
            tokio::time::timeout(Duration::from_secs(20), client(c))
                .await
                .expect("exchange finishes in time");
            server.abort();
        });
        log.lock().unwrap().clone()
    })
}

/// Feed writes in order, each split at `cuts` (fractions), keeping the
/// unconsumed bytes of each direction as the engine does.
fn parse(writes: &[(Sender, Vec<u8>)], cuts: &[usize]) -> (Vec<H2Event>, H2Connection) {
    let mut conn = H2Connection::new(H2Limits::default());
    let mut pending: [Vec<u8>; 2] = Default::default();
    let mut out = Vec::new();
    let mut k = 0usize;
    for (who, bytes) in writes {
        let i = usize::from(*who == Sender::Server);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let cut = cuts.get(k).map_or(rest.len(), |&c| c % rest.len() + 1);
            k += 1;
            let (seg, r) = rest.split_at(cut);
            rest = r;
            pending[i].extend_from_slice(seg);
            let n = conn.feed(*who, &pending[i], &mut out).expect("no error");
            pending[i].drain(..n);
            assert!(pending[i].len() <= conn.limits().max_caller_buffer());
        }
    }
    (out, conn)
}

/// Events per stream, with consecutive `StreamData` joined (their split
/// follows the feed calls).
fn per_stream(events: &[H2Event]) -> BTreeMap<u32, Vec<H2Event>> {
    let mut m: BTreeMap<u32, Vec<H2Event>> = BTreeMap::new();
    for e in events {
        let list = m.entry(e.stream().unwrap_or(0)).or_default();
        if let (Some(H2Event::StreamData { data: prev, .. }), H2Event::StreamData { data, .. }) =
            (list.last_mut(), e)
        {
            prev.extend_from_slice(data);
            continue;
        }
        list.push(e.clone());
    }
    m
}

#[test]
fn every_exchange_of_a_real_client_and_server_is_found() {
    let (events, conn) = parse(recording(), &[]);
    let streams = per_stream(&events);
    assert_eq!(
        streams.keys().copied().collect::<Vec<_>>(),
        vec![1, 3, 5, 7, 9]
    );
    // Stream 1: the initialize POST and its event stream.
    let s1 = &streams[&1];
    let H2Event::Head { head: req, .. } = &s1[0] else {
        panic!("{s1:?}")
    };
    assert_eq!((req.method(), req.target()), ("POST", "/mcp"));
    assert_eq!(req.header("host"), Some("mcp.example.com"));
    assert_eq!(req.header("mcp-protocol-version"), Some("2025-06-18"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert!(
        matches!(&s1[1], H2Event::Body { data, truncated: false, .. } if data == INIT.as_bytes())
    );
    assert!(matches!(s1[2], H2Event::MessageEnd { .. }));
    let H2Event::Head { head: resp, .. } = &s1[3] else {
        panic!("{s1:?}")
    };
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("mcp-session-id"), Some("sess-1"));
    assert!(
        matches!(&s1[4], H2Event::StreamData { data, .. } if data == format!("{SSE_1}{SSE_2}").as_bytes())
    );
    assert!(matches!(s1[5], H2Event::MessageEnd { .. }));
    assert_eq!(s1.len(), 6);
    // Streams 3, 5, 7: the same GET (HPACK indexed after the first),
    // gzip-decoded bodies and trailers.
    for id in [3, 5, 7] {
        let s = &streams[&id];
        let H2Event::Head { head: req, .. } = &s[0] else {
            panic!("{s:?}")
        };
        assert_eq!((req.method(), req.target()), ("GET", "/tools"));
        assert_eq!(req.header("mcp-session-id"), Some("sess-1"));
        assert!(matches!(s[1], H2Event::MessageEnd { .. }));
        assert!(
            matches!(&s[2], H2Event::Head { head, .. } if head.status == 200 && head.header("content-encoding") == Some("gzip"))
        );
        assert!(
            matches!(&s[3], H2Event::Body { data, truncated: false, .. } if data == TOOLS.as_bytes()),
            "{s:?}"
        );
        assert!(
            matches!(&s[4], H2Event::Trailers { head, .. } if head.header("x-checksum") == Some("ok"))
        );
        assert!(matches!(s[5], H2Event::MessageEnd { .. }));
    }
    // Stream 9: a 100 kB body, under the 256 KiB bound, in many frames.
    let s9 = &streams[&9];
    assert!(
        matches!(&s9[1], H2Event::Body { data, truncated: false, .. } if data.len() == BIG_LEN)
    );
    assert!(matches!(&s9[3], H2Event::Head { head, .. } if head.status == 204));
    let st = conn.stats();
    assert_eq!(st.errors, 0);
    assert_eq!(st.streams_opened, 5);
    assert_eq!(st.heads, 10);
    assert_eq!(st.trailers, 3);
    assert!(st.frames[8] > 0, "WINDOW_UPDATE frames: {:?}", st.frames);
    assert!(st.frames[0] > 7, "DATA frames: {:?}", st.frames);
    assert_eq!(conn.open_streams(), 0);
}

#[test]
fn all_client_bytes_before_all_server_bytes_give_the_same_streams() {
    let log = recording();
    let want = per_stream(&parse(log, &[]).0);
    let mut reordered: Vec<(Sender, Vec<u8>)> = log
        .iter()
        .filter(|(w, _)| *w == Sender::Client)
        .cloned()
        .collect();
    reordered.extend(log.iter().filter(|(w, _)| *w == Sender::Server).cloned());
    assert_eq!(per_stream(&parse(&reordered, &[]).0), want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any segmentation of the recorded writes gives the same events.
    #[test]
    fn any_segmentation_gives_the_same_events(cuts in proptest::collection::vec(0usize..5000, 0..400)) {
        let log = recording();
        let want = per_stream(&parse(log, &[]).0);
        let (got, conn) = parse(log, &cuts);
        prop_assert_eq!(per_stream(&got), want);
        prop_assert_eq!(conn.stats().errors, 0);
    }
}

/// The hand-over to the MCP classifier: heads, bodies and event streams of
/// HTTP/2 streams go to the same calls as HTTP/1.1 exchanges, with one SSE
/// parser per stream, and the initialize exchange confirms MCP.
#[test]
fn http2_streams_feed_the_mcp_classifier_as_http1_does() {
    use shadowmcp::detect::mcp::{Carrier, Direction, McpClassifier, McpSession};
    use shadowmcp::proto::sse::SseParser;
    use shadowmcp::signatures::SignatureSet;

    let sigs = SignatureSet::builtin().expect("builtin signatures");
    let classifier = McpClassifier::new(&sigs);
    let mut session = McpSession::new();
    let mut sse: BTreeMap<u32, SseParser> = BTreeMap::new();
    let mut events = Vec::new();
    // Responses are told apart from requests by their status, as the
    // engine will by the direction it fed.
    for ev in parse(recording(), &[]).0 {
        match ev {
            H2Event::Head { head, .. } if head.status == 0 => {
                classifier.inspect_request_head(&head, &mut session)
            }
            H2Event::Head { head, .. } => classifier.inspect_response_head(&head, &mut session),
            H2Event::Body { data, .. } => classifier.inspect_payload(
                &data,
                Direction::ClientToServer,
                Carrier::HttpBody,
                &mut session,
            ),
            H2Event::StreamData { stream, data } => {
                let p = sse
                    .entry(stream)
                    .or_insert_with(|| SseParser::new(64 * 1024));
                p.feed(&data, &mut events);
                for e in events.drain(..) {
                    classifier.inspect_sse_event(&e, &mut session);
                }
            }
            _ => {}
        }
    }
    assert!(session.is_confirmed(), "{:?}", session.take_new_evidence());
    let inv = session.inventory();
    assert!(format!("{inv:?}").contains("echo"), "{inv:?}");
}

//! `signatures update` against a real HTTP server on 127.0.0.1 serving
//! registry pages in the official format (cursor pagination, every status,
//! both transports, shared and platform hosts), against saved copies, and
//! against failures that must keep the previous overlay.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use shadowmcp::signatures::update::{self, UpdateError, UpdateOptions};
use shadowmcp::signatures::{OverlayDirs, SignatureSet};
use tokio::net::TcpListener;

/// (status, body) per cursor (`""` = first page).
type Routes = HashMap<String, (u16, Vec<u8>)>;

struct Server {
    base: String,
    /// Query strings of the requests seen.
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn cursor_of(query: &str) -> String {
    query
        .split('&')
        .find_map(|p| p.strip_prefix("cursor="))
        .unwrap_or("")
        .to_string()
}

async fn serve(routes: Routes) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let routes = Arc::new(routes);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let query = req.uri().query().unwrap_or("").to_string();
                    seen.lock().unwrap().push(query.clone());
                    let (status, body) = routes
                        .get(&cursor_of(&query))
                        .cloned()
                        .unwrap_or((404, b"{\"error\":\"no such page\"}".to_vec()));
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Server {
        base: format!("http://127.0.0.1:{port}/v0.1/servers"),
        seen,
        task,
    }
}

fn entry(name: &str, version: &str, status: &str, latest: bool, remotes: &[(&str, &str)]) -> Value {
    json!({
        "server": {
            "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
            "name": name,
            "description": "test server",
            "version": version,
            "remotes": remotes.iter().map(|(t, u)| json!({"type": t, "url": u})).collect::<Vec<_>>(),
        },
        "_meta": {"io.modelcontextprotocol.registry/official": {
            "status": status,
            "publishedAt": "2025-10-01T00:00:00Z",
            "updatedAt": format!("2025-10-0{}T00:00:00Z", if latest { 9 } else { 1 }),
            "isLatest": latest,
        }}
    })
}

fn page(servers: Vec<Value>, next: Option<&str>) -> Value {
    let count = servers.len();
    match next {
        Some(c) => json!({"servers": servers, "metadata": {"nextCursor": c, "count": count}}),
        None => json!({"servers": servers, "metadata": {"count": count}}),
    }
}

/// Three pages in the registry's format.
fn pages() -> Vec<Value> {
    vec![
        page(
            vec![
                // an older version with another URL: still counted
                entry(
                    "com.alpha/mcp",
                    "1.0.0",
                    "active",
                    false,
                    &[("sse", "https://mcp.alpha.example/sse")],
                ),
                entry(
                    "com.alpha/mcp",
                    "1.1.0",
                    "active",
                    true,
                    &[("streamable-http", "https://mcp.alpha.example/mcp")],
                ),
                entry(
                    "com.beta/tools",
                    "2.0.0",
                    "active",
                    true,
                    &[("sse", "https://tools.beta.example/v1/sse")],
                ),
                entry(
                    "com.old/mcp",
                    "0.9.0",
                    "deprecated",
                    true,
                    &[("streamable-http", "https://mcp.old.example/mcp")],
                ),
            ],
            Some("com.old/mcp:0.9.0"),
        ),
        page(
            vec![
                entry(
                    "com.gone/mcp",
                    "1.0.0",
                    "deleted",
                    true,
                    &[("streamable-http", "https://mcp.gone.example/mcp")],
                ),
                // two publishers on one host: a shared host
                entry(
                    "com.one/a",
                    "1.0.0",
                    "active",
                    true,
                    &[("streamable-http", "https://api.shared.example/a/mcp")],
                ),
                entry(
                    "org.two/b",
                    "1.0.0",
                    "active",
                    true,
                    &[("streamable-http", "https://api.shared.example/b/mcp")],
                ),
                // a deployment on a generic platform keeps its full name
                entry(
                    "io.github.dev/thing",
                    "0.1.0",
                    "active",
                    true,
                    &[("streamable-http", "https://thing-mcp.onrender.com/mcp")],
                ),
                // a template covering a whole platform is refused
                entry(
                    "io.github.dev/tpl",
                    "0.1.0",
                    "active",
                    true,
                    &[("streamable-http", "https://{app}.vercel.app/mcp")],
                ),
            ],
            Some("org.two/b:1.0.0"),
        ),
        page(
            vec![
                entry(
                    "com.acme/tenant",
                    "3.0.0",
                    "active",
                    true,
                    &[("streamable-http", "https://{tenant}.mcp.acme.example/mcp")],
                ),
                entry(
                    "com.local/dev",
                    "0.0.1",
                    "active",
                    true,
                    &[("streamable-http", "http://localhost:3000/mcp")],
                ),
                entry(
                    "com.github/copilot",
                    "1.0.0",
                    "active",
                    true,
                    &[(
                        "streamable-http",
                        "https://api.githubcopilot.com/mcp/x/repos",
                    )],
                ),
            ],
            None,
        ),
    ]
}

fn routes_for(p: &[Value]) -> Routes {
    let mut r = Routes::new();
    r.insert(String::new(), (200, serde_json::to_vec(&p[0]).unwrap()));
    r.insert(
        "com.old%2Fmcp%3A0.9.0".into(),
        (200, serde_json::to_vec(&p[1]).unwrap()),
    );
    r.insert(
        "org.two%2Fb%3A1.0.0".into(),
        (200, serde_json::to_vec(&p[2]).unwrap()),
    );
    r
}

/// A scratch directory, removed when dropped.
fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("shadowmcp-upd-{tag}-"))
        .tempdir()
        .unwrap()
}

fn opts(sources: Vec<String>, out: &Path) -> UpdateOptions {
    UpdateOptions {
        sources,
        output_dir: out.to_path_buf(),
        timeout: Duration::from_secs(5),
        ..UpdateOptions::default()
    }
}

fn curated() -> SignatureSet {
    SignatureSet::load_curated(None).unwrap()
}

/// The set the sensor would load with `--overlay DIR` only.
fn with_overlay(dir: &Path) -> SignatureSet {
    SignatureSet::load_with_overlays(
        None,
        &OverlayDirs::from_flags(vec![dir.to_path_buf()], true),
    )
    .unwrap()
}

async fn run(o: &UpdateOptions) -> Result<update::UpdateSummary, UpdateError> {
    tokio::time::timeout(Duration::from_secs(30), update::run_async(o, &curated()))
        .await
        .expect("update finished in time")
}

fn check_overlay(dir: &Path) {
    let set = with_overlay(dir);
    let file = dir.join(update::OUTPUT_FILE).display().to_string();
    let get = |h: &str| {
        set.servers
            .iter()
            .find(|s| s.host == h)
            .unwrap_or_else(|| panic!("{h} missing"))
    };
    let alpha = get("mcp.alpha.example");
    assert_eq!(alpha.paths, vec!["/sse".to_string(), "/mcp".to_string()]);
    assert!(!alpha.shared_host, "mcp label: dedicated");
    assert!(alpha.origin.starts_with(&file), "{}", alpha.origin);
    assert!(
        alpha.source.contains("com.alpha/mcp@1.1.0"),
        "{}",
        alpha.source
    );
    let beta = get("tools.beta.example");
    assert!(
        beta.shared_host,
        "no mcp label, not the whole host: low confidence"
    );
    assert_eq!(beta.paths, vec!["/v1/sse".to_string()]);
    assert!(get("mcp.old.example").deprecated);
    assert!(!alpha.deprecated);
    assert!(!set.servers.iter().any(|s| s.host == "mcp.gone.example"));
    let shared = get("api.shared.example");
    assert!(shared.shared_host, "two publishers on one host");
    assert_eq!(shared.paths.len(), 2);
    let render = get("thing-mcp.onrender.com");
    assert!(!render.context_only);
    assert!(set.servers.iter().any(|s| s.host == "*.onrender.com"));
    assert!(
        !set.servers
            .iter()
            .any(|s| s.host.contains("vercel.app") && s.host.contains('{'))
    );
    assert!(set.match_host("eu1.mcp.acme.example").is_some());
    assert!(!set.servers.iter().any(|s| s.host.contains("localhost")));
    // A curated entry wins over the generated one.
    let gh = set.match_host("api.githubcopilot.com").unwrap().server;
    assert!(
        gh.origin.starts_with("<builtin>/servers.toml"),
        "{}",
        gh.origin
    );
    // Exact names beat the platform pattern.
    assert_eq!(
        set.match_host("thing-mcp.onrender.com")
            .unwrap()
            .server
            .origin,
        render.origin
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_cursors_and_writes_the_overlay() {
    let p = pages();
    let srv = serve(routes_for(&p)).await;
    let out = scratch("http");
    let out = out.path();
    let s = run(&opts(vec![srv.base.clone()], out)).await.unwrap();
    assert!(s.written);
    assert_eq!(s.pages, 3);
    assert_eq!(s.versions_read, 12);
    let seen = srv.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            "limit=100".to_string(),
            "limit=100&cursor=com.old%2Fmcp%3A0.9.0".into(),
            "limit=100&cursor=org.two%2Fb%3A1.0.0".into()
        ]
    );
    check_overlay(out);
    assert!(s.added.contains(&"mcp.alpha.example".to_string()));
    assert!(s.skipped.iter().any(|k| k.url.contains("{app}.vercel.app")));
    assert!(s.skipped.iter().any(|k| k.url.contains("localhost")));
    // No temporary file left behind.
    let names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![update::OUTPUT_FILE.to_string()]);

    // A second run: a host deprecated, one removed, one added.
    let mut p2 = pages();
    p2[0] = page(
        vec![
            entry(
                "com.alpha/mcp",
                "1.2.0",
                "deprecated",
                true,
                &[("streamable-http", "https://mcp.alpha.example/mcp")],
            ),
            entry(
                "com.new/mcp",
                "1.0.0",
                "active",
                true,
                &[("streamable-http", "https://mcp.new.example/mcp")],
            ),
        ],
        Some("com.old/mcp:0.9.0"),
    );
    let srv2 = serve(routes_for(&p2)).await;
    let s2 = run(&opts(vec![srv2.base.clone()], out)).await.unwrap();
    assert_eq!(s2.added, vec!["mcp.new.example".to_string()]);
    assert_eq!(
        s2.removed,
        vec![
            "mcp.old.example".to_string(),
            "tools.beta.example".to_string()
        ]
    );
    assert_eq!(s2.deprecated, vec!["mcp.alpha.example".to_string()]);
    assert!(
        with_overlay(out)
            .match_host("mcp.alpha.example")
            .unwrap()
            .server
            .deprecated
    );
}

#[tokio::test]
async fn saved_pages_give_the_same_overlay() {
    let dir = scratch("saved");
    let dir = dir.path();
    let file = dir.join("pages.json");
    std::fs::write(&file, serde_json::to_vec(&pages()).unwrap()).unwrap();
    let out = dir.join("out");
    let s = run(&opts(vec![file.display().to_string()], &out))
        .await
        .unwrap();
    assert_eq!(s.versions_read, 12);
    check_overlay(&out);
    // One saved page (an object) is read too.
    let one = dir.join("one.json");
    std::fs::write(&one, serde_json::to_vec(&pages()[2]).unwrap()).unwrap();
    let out1 = dir.join("out1");
    run(&opts(vec![one.display().to_string()], &out1))
        .await
        .unwrap();
    assert!(
        with_overlay(&out1)
            .match_host("x.mcp.acme.example")
            .is_some()
    );
    // A copy whose last page still has a cursor is incomplete.
    let partial = dir.join("partial.json");
    std::fs::write(&partial, serde_json::to_vec(&pages()[..2]).unwrap()).unwrap();
    let e = run(&opts(vec![partial.display().to_string()], &dir.join("o2")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("incomplete"), "{e}");
}

#[tokio::test]
async fn plain_lists_and_csv_catalogues() {
    let dir = scratch("lists");
    let dir = dir.path();
    let list = dir.join("urls.txt");
    std::fs::write(
        &list,
        "# our servers\nhttps://mcp.corp.example/mcp\nhttps://tools.corp.example/sse\n",
    )
    .unwrap();
    let csv = dir.join("cat.csv");
    std::fs::write(&csv, "name,url\nHR bot,https://hr-mcp.corp.example/mcp\n").unwrap();
    let out = dir.join("out");
    let s = run(&opts(
        vec![list.display().to_string(), csv.display().to_string()],
        &out,
    ))
    .await
    .unwrap();
    assert_eq!(s.entries, 3);
    let set = with_overlay(&out);
    let hr = set.match_host("hr-mcp.corp.example").unwrap().server;
    assert_eq!(hr.vendor, "HR bot");
    assert!(hr.source.contains("cat.csv:2"), "{}", hr.source);
}

/// A previous overlay that a failed update must leave byte for byte.
async fn seeded(tag: &str) -> (tempfile::TempDir, Vec<u8>) {
    let out = scratch(tag);
    let p = pages();
    let srv = serve(routes_for(&p)).await;
    run(&opts(vec![srv.base.clone()], out.path()))
        .await
        .unwrap();
    let before = std::fs::read(out.path().join(update::OUTPUT_FILE)).unwrap();
    (out, before)
}

fn assert_kept(out: &Path, before: &[u8]) {
    assert_eq!(
        std::fs::read(out.join(update::OUTPUT_FILE)).unwrap(),
        before
    );
    assert_eq!(std::fs::read_dir(out).unwrap().count(), 1, "no leftovers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_keep_the_previous_overlay() {
    let (out, before) = seeded("fail").await;
    let out = out.path();
    let p = pages();

    // HTTP 500 on the second page.
    let mut r = routes_for(&p);
    r.insert(
        "com.old%2Fmcp%3A0.9.0".into(),
        (500, b"database down".to_vec()),
    );
    let srv = serve(r).await;
    let e = run(&opts(vec![srv.base.clone()], out)).await.unwrap_err();
    assert!(matches!(e, UpdateError::Status { status: 500, .. }), "{e}");
    assert!(e.to_string().contains("database down"), "{e}");
    assert_kept(out, &before);

    // Malformed JSON.
    let mut r = routes_for(&p);
    r.insert(String::new(), (200, b"{\"servers\": [}".to_vec()));
    let srv = serve(r).await;
    let e = run(&opts(vec![srv.base.clone()], out)).await.unwrap_err();
    assert!(e.to_string().contains("malformed JSON"), "{e}");
    assert_kept(out, &before);

    // A page cut in the middle.
    let mut r = routes_for(&p);
    let full = serde_json::to_vec(&p[1]).unwrap();
    r.insert(
        "com.old%2Fmcp%3A0.9.0".into(),
        (200, full[..full.len() / 2].to_vec()),
    );
    let srv = serve(r).await;
    let e = run(&opts(vec![srv.base.clone()], out)).await.unwrap_err();
    assert!(e.to_string().contains("truncated JSON"), "{e}");
    assert_kept(out, &before);

    // A page whose count says more servers than it holds.
    let mut r = routes_for(&p);
    let mut short = p[2].clone();
    short["metadata"]["count"] = json!(7);
    r.insert(
        "org.two%2Fb%3A1.0.0".into(),
        (200, serde_json::to_vec(&short).unwrap()),
    );
    let srv = serve(r).await;
    let e = run(&opts(vec![srv.base.clone()], out)).await.unwrap_err();
    assert!(e.to_string().contains("metadata.count 7"), "{e}");
    assert_kept(out, &before);

    // Cursors that loop.
    let mut r = routes_for(&p);
    let mut looping = p[1].clone();
    looping["metadata"]["nextCursor"] = json!("com.old/mcp:0.9.0");
    r.insert(
        "com.old%2Fmcp%3A0.9.0".into(),
        (200, serde_json::to_vec(&looping).unwrap()),
    );
    let srv = serve(r).await;
    let e = run(&opts(vec![srv.base.clone()], out)).await.unwrap_err();
    assert!(e.to_string().contains("already used"), "{e}");
    assert_kept(out, &before);

    // An empty list where the previous overlay had entries.
    let mut r = Routes::new();
    r.insert(
        String::new(),
        (200, serde_json::to_vec(&page(vec![], None)).unwrap()),
    );
    let srv = serve(r).await;
    let e = run(&opts(vec![srv.base.clone()], out)).await.unwrap_err();
    assert!(matches!(e, UpdateError::Empty), "{e}");
    assert_kept(out, &before);

    // Nobody listening.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let e = run(&opts(
        vec![format!("http://127.0.0.1:{port}/v0.1/servers")],
        out,
    ))
    .await
    .unwrap_err();
    assert!(matches!(e, UpdateError::Fetch { .. }), "{e}");
    assert_kept(out, &before);

    // A page larger than allowed.
    let srv = serve(routes_for(&p)).await;
    let mut o = opts(vec![srv.base.clone()], out);
    o.max_page_bytes = 100;
    let e = run(&o).await.unwrap_err();
    assert!(matches!(e, UpdateError::Bound { .. }), "{e}");
    assert_kept(out, &before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_shrink_is_refused_unless_allowed() {
    let dir = scratch("shrink");
    let dir = dir.path();
    // A previous overlay of 12 hosts.
    let list = dir.join("many.txt");
    let many: String = (0..12)
        .map(|i| format!("https://mcp{i}.big.example/mcp\n"))
        .collect();
    std::fs::write(&list, many).unwrap();
    let out = dir.join("out");
    run(&opts(vec![list.display().to_string()], &out))
        .await
        .unwrap();
    let before = std::fs::read(out.join(update::OUTPUT_FILE)).unwrap();
    let few = dir.join("few.txt");
    std::fs::write(
        &few,
        "https://mcp0.big.example/mcp\nhttps://mcp1.big.example/mcp\n",
    )
    .unwrap();
    let e = run(&opts(vec![few.display().to_string()], &out))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            UpdateError::Shrink {
                previous: 12,
                new: 2,
                ..
            }
        ),
        "{e}"
    );
    assert_kept(&out, &before);
    let mut o = opts(vec![few.display().to_string()], &out);
    o.allow_shrink = true;
    let s = run(&o).await.unwrap();
    assert_eq!(s.removed.len(), 10);
}

#[test]
fn cli_update_then_overlay_is_listed_and_checked() {
    let dir = scratch("cli");
    let dir = dir.path();
    let out = dir.join("out");
    let pages = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/signatures/overlay-e2e-pages.json");
    let bin = env!("CARGO_BIN_EXE_shadowmcp");
    let o = std::process::Command::new(bin)
        .args(["signatures", "update", "--source"])
        .arg(&pages)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("+ www.example.org"), "{stdout}");
    let o = std::process::Command::new(bin)
        .args(["signatures", "list", "--no-default-overlays", "--overlay"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("www.example.org "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains(&format!("{}:", out.join("registry.toml").display())),
        "{line}"
    );
    let o = std::process::Command::new(bin)
        .args(["signatures", "check", "--no-default-overlays", "--overlay"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    // A failing update exits 1 and says the old overlay stays.
    let o = std::process::Command::new(bin)
        .args(["signatures", "update", "--source"])
        .arg(dir.join("absent.json"))
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("kept unchanged"));
}

/// The committed capture `pcaps/tls-sni-known.pcap` has a TLS connection
/// with SNI `www.example.org`, which no built-in entry knows: with the
/// overlay made from `tests/data/signatures/overlay-e2e-pages.json` it
/// becomes a finding.
#[tokio::test]
async fn an_overlay_only_host_becomes_a_finding() {
    use shadowmcp::analyze::{AnalyzeOptions, analyze};
    use shadowmcp::detect::hosts::Detector;
    use shadowmcp::findings::aggregate::Confidence;
    use shadowmcp::signatures::allowlist::Allowlist;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = scratch("e2e");
    let out = out.path();
    let src = root.join("tests/data/signatures/overlay-e2e-pages.json");
    run(&opts(vec![src.display().to_string()], out))
        .await
        .unwrap();
    let names = |set: SignatureSet| -> Vec<String> {
        let opts = AnalyzeOptions {
            files: vec![root.join("pcaps/tls-sni-known.pcap")],
            engine: Default::default(),
            report_sanctioned: false,
            min_confidence: Confidence::Low,
            progress: false,
            workers: 1,
            observer: shadowmcp::findings::Observer::new(Some("test-sensor")),
            decrypt: None,
        };
        let r = analyze(&opts, Arc::new(Detector::new(set, Allowlist::empty())));
        r.records
            .iter()
            .filter_map(|f| {
                serde_json::to_value(f).ok()?["server"]["name"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    };
    let without = names(SignatureSet::builtin().unwrap());
    assert!(
        !without.iter().any(|n| n == "www.example.org"),
        "{without:?}"
    );
    let with = names(with_overlay(out));
    assert!(with.iter().any(|n| n == "www.example.org"), "{with:?}");
}

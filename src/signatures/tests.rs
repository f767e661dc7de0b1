//! Tests of the signature loader and of the default set.

use super::*;
use std::path::PathBuf;

fn builtin() -> SignatureSet {
    match SignatureSet::builtin() {
        Ok(s) => s,
        Err(errs) => {
            for e in &errs {
                eprintln!("{e}");
            }
            panic!("builtin set has {} errors", errs.len());
        }
    }
}

/// The reference CSV lives outside the repository; skip when it is absent.
fn reference_csv() -> Option<String> {
    let dir = std::env::var_os("SHADOWMCP_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/reference"));
    let path = dir.join("known-servers.csv");
    match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(_) => {
            eprintln!("note: {} not found, test skipped", path.display());
            None
        }
    }
}

/// Minimal CSV reader for the reference file (quoted fields with `""`).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        fields.push(cur);
        rows.push(fields);
    }
    rows
}

/// A concrete name for a host pattern: `*.x` -> `probe.x`, `{r}` -> `r1`.
fn instantiate(pattern: &str) -> String {
    let p = pattern
        .strip_prefix("*.")
        .map_or(pattern.to_string(), |r| format!("probe.{r}"));
    p.split('.')
        .map(|l| if l.starts_with('{') { "r1" } else { l })
        .collect::<Vec<_>>()
        .join(".")
}

#[test]
fn builtin_loads_without_errors() {
    let s = builtin();
    assert_eq!(s.name, "shadowmcp-default");
    assert!(!s.version.is_empty());
    assert!(s.servers.len() >= 150, "{} entries", s.servers.len());
    let servers = s
        .servers
        .iter()
        .filter(|k| k.kind == ServerKind::Server)
        .count();
    let platforms = s
        .servers
        .iter()
        .filter(|k| k.kind == ServerKind::Platform)
        .count();
    assert!(
        servers >= 140 && platforms >= 20,
        "{servers} servers, {platforms} platforms"
    );
    assert!(
        s.servers
            .iter()
            .all(|k| !k.source.is_empty() && !k.vendor.is_empty())
    );
    assert_eq!(s.heuristics.tokens, vec!["mcp".to_string()]);
    assert!(s.jsonrpc.is_mcp_method("tools/call"));
    assert!(s.jsonrpc.is_mcp_method("notifications/initialized"));
    assert!(!s.jsonrpc.is_mcp_method("initialize"));
    assert!(s.jsonrpc.is_shared_method("tasks/get"));
    assert_eq!(
        s.jsonrpc.foreign_protocol("eth_blockNumber"),
        Some("Ethereum JSON-RPC")
    );
    assert_eq!(
        s.jsonrpc.foreign_protocol("textDocument/didOpen"),
        Some("LSP")
    );
    assert_eq!(
        s.jsonrpc
            .foreign_protocol("tasks/pushNotificationConfig/set"),
        Some("A2A")
    );
    assert_eq!(s.jsonrpc.foreign_protocol("tools/call"), None);
    assert!(s.jsonrpc.is_known_version("2025-06-18"));
    assert_eq!(s.jsonrpc.meta_key_prefix, "io.modelcontextprotocol/");
    assert_eq!(s.http.session_header, "Mcp-Session-Id");
    assert_eq!(s.http.websocket_subprotocols, vec!["mcp".to_string()]);
    assert!(s.is_ech_public_name("Cloudflare-ECH.com."));
    assert!(!s.is_ech_public_name("cloudflare.com"));
}

#[test]
fn builtin_is_the_checked_in_directory() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("signatures");
    let a = SignatureSet::load_dir(&dir).unwrap();
    let b = builtin();
    // Same entries; origins differ only in the directory part.
    let strip = |s: &SignatureSet| -> Vec<KnownServer> {
        s.servers
            .iter()
            .map(|k| KnownServer {
                origin: k.origin.rsplit('/').next().unwrap_or("").to_string(),
                ..k.clone()
            })
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
    assert_eq!(a.version, b.version);
    assert!(b.servers.iter().all(|k| k.origin.starts_with("<builtin>/")));
}

#[test]
fn every_csv_host_matches() {
    let Some(text) = reference_csv() else { return };
    let s = builtin();
    let rows = csv_rows(&text);
    assert!(rows.len() >= 200, "{} rows", rows.len());
    for r in &rows {
        let (host, path, kind, shared) = (&r[0], &r[1], &r[2], &r[6]);
        let probe = if is_pattern(host) {
            instantiate(host)
        } else {
            host.clone()
        };
        let m = s
            .match_host(&probe)
            .unwrap_or_else(|| panic!("{host} ({probe}) does not match"));
        assert_eq!(
            m.server.host,
            host.to_ascii_lowercase(),
            "{probe} matched the wrong entry"
        );
        assert_eq!(m.exact, !is_pattern(host), "{host}");
        if kind == "server" {
            // Literal published paths must hit the entry's paths.
            if !path.contains('{') {
                assert!(SignatureSet::path_matches(m.server, path), "{host}{path}");
            }
            if shared.starts_with("no(") {
                assert!(m.server.shared_host, "{host} should be shared");
            }
        }
    }
}

#[test]
fn pattern_rows() {
    let s = builtin();
    let m = s
        .match_host("workers-observability.mcp.cloudflare.com")
        .unwrap();
    assert_eq!(m.server.host, "*.mcp.cloudflare.com");
    assert!(!m.exact && !m.server.context_only);
    assert!(s.match_host("x.y.mcp.cloudflare.com").is_some());
    // the exact entry wins over the suffix
    let m = s.match_host("radar.mcp.cloudflare.com").unwrap();
    assert!(m.exact);
    assert_eq!(m.server.kind, ServerKind::Server);
    // the bare suffix is its own exact entry (Cloudflare Code Mode)
    assert!(s.match_host("mcp.cloudflare.com").unwrap().exact);
    assert!(s.match_host("cloudflare.com").is_none());

    let m = s
        .match_host("bedrock-agentcore.us-east-1.amazonaws.com")
        .unwrap();
    assert_eq!(m.server.host, "bedrock-agentcore.{region}.amazonaws.com");
    assert!(m.server.context_only && m.server.shared_host);
    let m = s
        .match_host("gw-123.gateway.bedrock-agentcore.eu-west-1.amazonaws.com")
        .unwrap();
    assert_eq!(
        m.server.host,
        "{gateway-id}.gateway.bedrock-agentcore.{region}.amazonaws.com"
    );
    assert!(!m.server.context_only);
    assert!(s.match_host("bedrock-agentcore.amazonaws.com").is_none());
    assert!(
        s.match_host("x.bedrock-agentcore.us-east-1.amazonaws.com")
            .is_none()
    );

    for generic in [
        "foo.workers.dev",
        "a.vercel.app",
        "shop.myshopify.com",
        "eu1.make.com",
    ] {
        let m = s.match_host(generic).unwrap();
        assert!(m.server.context_only, "{generic}");
    }
    assert!(s.match_host("workers.dev").is_none());
    // a listed server below a generic suffix keeps its own entry
    let m = s.match_host("netlify-mcp.netlify.app").unwrap();
    assert!(m.exact && !m.server.context_only);
}

#[test]
fn case_and_trailing_dot() {
    let s = builtin();
    for h in ["MCP.NOTION.COM", "mcp.notion.com.", "Mcp.Notion.Com."] {
        let m = s.match_host(h).unwrap();
        assert_eq!(m.server.host, "mcp.notion.com");
        assert!(m.exact);
    }
    assert!(s.match_host("FOO.MCP.CLOUDFLARE.COM.").is_some());
    for bad in [
        "mcp.notion.com..",
        ".mcp.notion.com",
        "",
        ".",
        "mcp.notion.com:443",
        "mcp.notion.co",
    ] {
        assert!(s.match_host(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn heuristic() {
    let s = builtin();
    for yes in [
        "mcp.x.com",
        "x-mcp.y.io",
        "mcp-server.z.dev",
        "MCP.Example.ORG.",
    ] {
        assert!(s.heuristic_match(yes), "{yes}");
    }
    for no in [
        "mcpherson.edu",
        "smcp.com",
        "mcpe.net",
        "amcp.org",
        "",
        "..",
        "example.com",
    ] {
        assert!(!s.heuristic_match(no), "{no}");
    }
    let mut t = s.clone();
    t.heuristics.exclude = vec!["mcp.corp.example".into(), "*.lab.example".into()];
    assert!(!t.heuristic_match("MCP.corp.example."));
    assert!(t.heuristic_match("x.mcp.corp.example"));
    assert!(!t.heuristic_match("mcp.a.lab.example"));
    assert!(t.heuristic_match("mcp.lab.example.org"));
}

#[test]
fn path_matching_on_entries() {
    let s = builtin();
    let notion = s.match_host("mcp.notion.com").unwrap().server;
    assert!(SignatureSet::path_matches(notion, "/mcp"));
    assert!(SignatureSet::path_matches(notion, "/mcp?x=1"));
    assert!(SignatureSet::path_matches(notion, "/sse"));
    assert!(!SignatureSet::path_matches(notion, "/mcpx"));
    assert!(!SignatureSet::path_matches(notion, "/"));
    let gh = s.match_host("api.githubcopilot.com").unwrap().server;
    assert!(gh.shared_host);
    assert!(SignatureSet::path_matches(gh, "/mcp/readonly"));
    assert!(!SignatureSet::path_matches(gh, "/chat/completions"));
    let zapier = s.match_host("mcp.zapier.com").unwrap().server;
    assert!(SignatureSet::path_matches(zapier, "/api/mcp/s/SECRET/mcp"));
    assert!(!SignatureSet::path_matches(zapier, "/app"));
    let any = s.match_host("x.workers.dev").unwrap().server;
    assert!(SignatureSet::path_matches(any, "/whatever"));
}

#[test]
fn edited_set_without_rebuild_still_matches() {
    let mut s = builtin();
    s.servers.push(KnownServer {
        host: "mcp.new.example".into(),
        vendor: "New".into(),
        kind: ServerKind::Server,
        paths: vec![],
        shared_host: false,
        context_only: false,
        source: "test".into(),
        note: None,
        origin: "test".into(),
        deprecated: false,
    });
    assert!(s.match_host("MCP.new.example").unwrap().exact);
    assert_eq!(
        s.match_host("a.mcp.cloudflare.com").unwrap().server.host,
        "*.mcp.cloudflare.com"
    );
    s.rebuild_index();
    assert!(s.match_host("mcp.new.example").is_some());
    // an empty set matches nothing and does not panic
    let e = SignatureSet::default();
    assert!(e.match_host("mcp.notion.com").is_none());
    assert!(!e.heuristic_match("mcp.x.com"));
}

#[test]
fn hostile_host_names_do_not_panic() {
    let s = builtin();
    let long = "a.".repeat(200) + "mcp.cloudflare.com";
    let inputs = [
        long.as_str(),
        "\u{0}",
        "é.mcp.cloudflare.com",
        "*.mcp.cloudflare.com",
        "{region}.amazonaws.com",
        "..mcp.cloudflare.com",
        "a.\u{202e}.com",
    ];
    for h in inputs {
        let _ = s.match_host(h);
        let _ = s.heuristic_match(h);
    }
    assert!(s.match_host("*.mcp.cloudflare.com").is_none());
    // every prefix/suffix of a real name
    let name = "gw.gateway.bedrock-agentcore.us-east-1.amazonaws.com.";
    for i in 0..=name.len() {
        let _ = s.match_host(&name[..i]);
        let _ = s.match_host(&name[i..]);
    }
}

// ------------------------------------------------------------ broken directories

/// A scratch copy of the default set that a test can break.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("shadowmcp-sigs-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for ((_, text), name) in BUILTIN.iter().zip(FILES) {
            std::fs::write(dir.join(name), text).unwrap();
        }
        std::fs::write(dir.join(overlay::SNAPSHOT_FILE), BUILTIN_SNAPSHOT.1).unwrap();
        Fixture { dir }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    fn errors(&self) -> Vec<SignatureError> {
        match SignatureSet::load_dir(&self.dir) {
            Ok(_) => panic!("expected errors"),
            Err(e) => e,
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const ONE_SERVER: &str = "\
# comment
[[server]]
host = \"mcp.one.example\"
vendor = \"One\"
paths = [\"/mcp\"]
shared_host = false
source = \"test\"
";

#[test]
fn fixture_copy_loads() {
    let f = Fixture::new("ok");
    let s = SignatureSet::load_dir(&f.dir).unwrap();
    assert_eq!(s.servers.len(), builtin().servers.len());
    f.write("servers.toml", ONE_SERVER);
    let s = SignatureSet::load_dir(&f.dir).unwrap();
    assert!(s.match_host("mcp.one.example").unwrap().exact);
}

#[test]
fn syntax_error_position() {
    let f = Fixture::new("syntax");
    f.write(
        "servers.toml",
        &ONE_SERVER.replace("vendor = \"One\"", "vendor = \"One"),
    );
    let errs = f.errors();
    let e = &errs[0];
    assert_eq!(e.file, f.file("servers.toml"));
    assert_eq!(e.line, 4, "{e}");
    assert!(e.column >= 10, "{e}");
}

#[test]
fn unknown_key_position() {
    let f = Fixture::new("unknown");
    f.write(
        "servers.toml",
        &ONE_SERVER.replace("source = ", "hots = \"x\"\nsource = "),
    );
    let errs = f.errors();
    assert_eq!(errs.len(), 1, "{errs:?}");
    let e = &errs[0];
    assert_eq!(
        (e.file.as_str(), e.line, e.column),
        (f.file("servers.toml").as_str(), 7, 1),
        "{e}"
    );
    assert!(e.message.contains("hots"), "{e}");
}

#[test]
fn wrong_type_position() {
    let f = Fixture::new("type");
    f.write(
        "servers.toml",
        &ONE_SERVER.replace("shared_host = false", "shared_host = \"no\""),
    );
    let errs = f.errors();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!((errs[0].line, errs[0].column), (6, 15), "{}", errs[0]);
}

#[test]
fn bad_host_and_path_positions() {
    let f = Fixture::new("host");
    let text = format!(
        "{ONE_SERVER}\n[[server]]\nhost = \"mcp..two.example\"\nvendor = \"Two\"\npaths = [\"/ok\", \"sse\"]\nshared_host = true\nsource = \"t\"\n\n[[server]]\nhost = \"x{{r}}.example.com\"\nvendor = \"\"\npaths = []\nshared_host = true\nsource = \"t\"\n"
    );
    f.write("servers.toml", &text);
    let errs = f.errors();
    let got: Vec<(usize, usize)> = errs.iter().map(|e| (e.line, e.column)).collect();
    // host of entry 2, its bad path, host of entry 3 (placeholder), empty vendor
    assert_eq!(got, vec![(10, 8), (12, 17), (17, 8), (18, 10)], "{errs:#?}");
    assert!(errs[0].message.contains("empty label"), "{}", errs[0]);
    assert!(errs[1].message.contains("start with `/`"), "{}", errs[1]);
    assert!(errs[2].message.contains("whole label"), "{}", errs[2]);
}

#[test]
fn errors_of_all_files_are_collected() {
    let f = Fixture::new("many");
    // duplicate of a builtin platform host, defined in servers.toml too
    f.write(
        "servers.toml",
        &ONE_SERVER.replace("mcp.one.example", "MCP.Zapier.com."),
    );
    f.write("heuristics.toml", "tokens = [\"mcp\", \"m-cp\", \"\"]\n");
    f.write(
        "http.toml",
        &BUILTIN[5].1.replace(
            "session_header = \"Mcp-Session-Id\"",
            "session_header = \"Mcp Session\"\nextra = 1",
        ),
    );
    std::fs::remove_file(f.dir.join("jsonrpc.toml")).unwrap();
    let errs = f.errors();
    let files: Vec<&str> = errs.iter().map(|e| e.file.as_str()).collect();
    assert!(
        files.contains(&f.file("jsonrpc.toml").as_str()),
        "{errs:#?}"
    );
    let missing = errs
        .iter()
        .find(|e| e.file == f.file("jsonrpc.toml"))
        .unwrap();
    assert_eq!(missing.line, 0);
    assert!(missing.message.contains("missing"));
    let dup = errs
        .iter()
        .find(|e| e.message.contains("duplicate host"))
        .expect("duplicate reported");
    // servers.toml is loaded before platforms.toml: the platform is the duplicate
    assert_eq!(dup.file, f.file("platforms.toml"));
    assert!(dup.message.contains("servers.toml:3:8"), "{dup}");
    let tokens: Vec<_> = errs
        .iter()
        .filter(|e| e.message.contains("invalid token"))
        .collect();
    assert_eq!(tokens.len(), 2);
    assert_eq!((tokens[0].line, tokens[0].column), (1, 18));
    assert!(
        errs.iter()
            .any(|e| e.file == f.file("http.toml") && e.message.contains("extra"))
    );
}

#[test]
fn semantic_errors_in_small_files() {
    let f = Fixture::new("semantic");
    f.write(
        "jsonrpc.toml",
        "mcp_methods = [\"tools/call\", \"bad method\"]\nshared_methods = [\"tools/call\"]\n\
         foreign_method_prefixes = [{ prefix = \"tools/\", protocol = \"X\" }]\n\
         meta_key_prefix = \"io.modelcontextprotocol/\"\nprotocol_versions = [\"2025-6-18\"]\n",
    );
    f.write(
        "manifest.toml",
        "name = \"x\"\nversion = \"1 2\"\ndescription = \"\"\nformat = 2\n",
    );
    let errs = f.errors();
    let at: Vec<(usize, usize)> = errs.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(
        at,
        vec![(2, 11), (4, 10), (1, 30), (2, 19), (3, 39), (5, 22)],
        "{errs:#?}"
    );
}

#[test]
fn oversize_file_is_refused() {
    let f = Fixture::new("big");
    let mut text = String::from("# padding\n");
    text.push_str(&"#".repeat(MAX_FILE_BYTES as usize));
    f.write("platforms.toml", &text);
    let errs = f.errors();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].file, f.file("platforms.toml"));
    assert!(errs[0].message.contains("larger than"), "{}", errs[0]);
}

#[test]
fn not_an_array_of_tables() {
    let f = Fixture::new("shape");
    f.write("servers.toml", "server = \"x\"\n[other]\na = 1\n");
    f.write("platforms.toml", "platform = [1, 2]\n");
    let errs = f.errors();
    let at: Vec<(String, usize)> = errs.iter().map(|e| (e.file.clone(), e.line)).collect();
    assert_eq!(
        at,
        vec![
            (f.file("servers.toml"), 2),
            (f.file("servers.toml"), 1),
            (f.file("platforms.toml"), 1),
            (f.file("platforms.toml"), 1),
        ],
        "{errs:#?}"
    );
}

#[test]
fn truncated_files_never_panic() {
    // Every prefix of a small file and of the manifest: errors or a set, never a panic.
    let text = format!("{ONE_SERVER}paths2 = [\"/é{{x}}\"]\n");
    for (i, _) in text.char_indices() {
        let files: Vec<(&str, &str)> = BUILTIN
            .iter()
            .enumerate()
            .map(|(n, &(name, t))| (name, if n == 1 { &text[..i] } else { t }))
            .collect();
        let _ = load::load_texts(&files, Vec::new());
    }
    for (name, t) in BUILTIN {
        for (i, _) in t.char_indices().step_by(1009) {
            let files: Vec<(&str, &str)> = BUILTIN
                .iter()
                .map(|&(n, b)| (n, if n == name { &t[..i] } else { b }))
                .collect();
            let _ = load::load_texts(&files, Vec::new());
        }
    }
}

// ------------------------------------------------------------ overlays

/// A scratch directory of overlay files.
struct OverlayDir(PathBuf);

impl OverlayDir {
    fn new(tag: &str, files: &[(&str, &str)]) -> OverlayDir {
        let dir = std::env::temp_dir().join(format!("shadowmcp-ovl-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        OverlayDir(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for OverlayDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn server_toml(host: &str, vendor: &str, extra: &str) -> String {
    format!(
        "[[server]]\nhost = \"{host}\"\nvendor = \"{vendor}\"\npaths = [\"/mcp\"]\nshared_host = false\nsource = \"test\"\n{extra}\n"
    )
}

fn dirs(org: &OverlayDir, extra: &[&OverlayDir], generated: &OverlayDir) -> OverlayDirs {
    OverlayDirs {
        organisation: Some(org.0.clone()),
        extra: extra.iter().map(|d| d.0.clone()).collect(),
        generated: Some(generated.0.clone()),
    }
}

#[test]
fn overlays_merge_in_order_first_definition_wins() {
    let org = OverlayDir::new(
        "org",
        &[
            // name order: a.toml before b.toml
            ("b.toml", &server_toml("mcp.org.example", "Org B", "")),
            (
                "a.toml",
                &(server_toml("mcp.notion.com", "Not Notion", "")
                    + &server_toml("api.githubcopilot.com", "Copilot here", "replace = true")),
            ),
            (".hidden.toml", "this is not TOML ["),
            ("README.txt", "not an overlay"),
        ],
    );
    let extra = OverlayDir::new(
        "extra",
        &[("x.toml", &server_toml("mcp.org.example", "Extra", ""))],
    );
    let generated = OverlayDir::new(
        "gen",
        &[(
            "registry.toml",
            &("[overlay]\ngenerated = true\nentries = 4\n".to_string()
                + &server_toml("radar2.mcp.cloudflare.com", "Gen CF", "")
                + &server_toml("thing.vercel.app", "Gen Vercel", "")
                + &server_toml("mcp.gen.example", "Gen", "status = \"deprecated\"")
                + &server_toml("mcp.org.example", "Gen Org", "")),
        )],
    );
    let (s, report) =
        SignatureSet::load_with_overlays_report(None, &dirs(&org, &[&extra], &generated)).unwrap();
    let m = |h: &str| s.match_host(h).unwrap().server;
    // Base wins over a later plain entry; `replace` takes over.
    assert_eq!(m("mcp.notion.com").vendor, "Notion");
    assert_eq!(m("api.githubcopilot.com").vendor, "Copilot here");
    assert!(!m("api.githubcopilot.com").shared_host);
    assert_eq!(
        m("api.githubcopilot.com").origin,
        format!("{}:9", org.file("a.toml"))
    );
    // The organisation's directory before --overlay before generated.
    assert_eq!(m("mcp.org.example").vendor, "Org B");
    assert_eq!(
        m("mcp.org.example").origin,
        format!("{}:2", org.file("b.toml"))
    );
    // Generated entries yield to an attributing pattern, not to a
    // context-only one.
    assert_eq!(m("radar2.mcp.cloudflare.com").host, "*.mcp.cloudflare.com");
    assert_eq!(m("thing.vercel.app").vendor, "Gen Vercel");
    assert!(m("mcp.gen.example").deprecated);
    assert_eq!(report.replaced.len(), 1);
    let shadowed: Vec<&str> = report.shadowed.iter().map(|n| n.host.as_str()).collect();
    assert_eq!(
        shadowed,
        vec![
            "mcp.notion.com",
            "mcp.org.example",
            "radar2.mcp.cloudflare.com",
            "mcp.org.example"
        ]
    );
    let paths: Vec<&str> = s.overlays.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            org.file("a.toml").as_str(),
            org.file("b.toml").as_str(),
            extra.file("x.toml").as_str(),
            generated.file("registry.toml").as_str(),
            "<builtin>/registry-snapshot.toml"
        ]
    );
    assert!(s.overlays.get(3).unwrap().generated);
}

#[test]
fn suppressions_remove_entries_of_every_layer() {
    let org = OverlayDir::new(
        "sup",
        &[(
            "org.toml",
            "[[suppress]]\nhost = \"API.GitHubCopilot.com.\"\nreason = \"sanctioned and shared here\"\n\
             [[suppress]]\nhost = \"*.workers.dev\"\nreason = \"our own workers\"\n\
             [[suppress]]\nhost = \"mcp.gen.example\"\nreason = \"a generated entry\"\n\
             [[suppress]]\nhost = \"nothing.example\"\nreason = \"stale\"\n",
        )],
    );
    let generated = OverlayDir::new(
        "sup-gen",
        &[("r.toml", &server_toml("mcp.gen.example", "Gen", ""))],
    );
    let (s, report) =
        SignatureSet::load_with_overlays_report(None, &dirs(&org, &[], &generated)).unwrap();
    assert!(s.match_host("api.githubcopilot.com").is_none());
    assert!(s.match_host("x.workers.dev").is_none());
    assert!(s.match_host("mcp.gen.example").is_none());
    assert!(s.match_host("mcp.notion.com").is_some());
    assert_eq!(report.suppressed.len(), 3);
    assert_eq!(report.unused_suppressions.len(), 1);
    assert_eq!(report.unused_suppressions[0].host, "nothing.example");
    assert_eq!(
        report.unused_suppressions[0].origin,
        format!("{}:11", org.file("org.toml"))
    );
    // Without the overlay the entries are back.
    assert!(builtin().match_host("api.githubcopilot.com").is_some());
}

#[test]
fn overlay_errors_name_file_line_and_column() {
    let bad = OverlayDir::new(
        "bad",
        &[(
            "bad.toml",
            "[[server]]\nhost = \"a..b\"\nvendor = \"x\"\npaths = []\nshared_host = false\nsource = \"t\"\n\
             [[suppress]]\nhost = \"mcp.notion.com\"\nreason = \" \"\n\
             [[rules]]\nx = 1\n",
        )],
    );
    let truncated = OverlayDir::new(
        "trunc",
        &[(
            "registry.toml",
            &("[overlay]\ngenerated = true\nentries = 3\n".to_string()
                + &server_toml("mcp.t1.example", "T", "")
                + &server_toml("mcp.t2.example", "T", "")),
        )],
    );
    let d = OverlayDirs {
        organisation: None,
        extra: vec![bad.0.clone(), truncated.0.clone()],
        generated: None,
    };
    let errs = SignatureSet::load_with_overlays(None, &d).unwrap_err();
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let f = bad.file("bad.toml");
    assert!(
        shown.contains(&format!("{f}:2:8: empty label in host `a..b`")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with(&format!("{f}:9:10: empty reason"))),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with(&format!("{f}:10:3: unknown key `rules`"))),
        "{shown:#?}"
    );
    let t = truncated.file("registry.toml");
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with(&format!("{t}:3:11: the header declares 3 entries"))),
        "{shown:#?}"
    );
    // An --overlay directory must exist; the default ones may be absent.
    let missing = std::env::temp_dir().join(format!("shadowmcp-ovl-{}-absent", std::process::id()));
    let e = SignatureSet::load_with_overlays(
        None,
        &OverlayDirs::from_flags(vec![missing.clone()], true),
    )
    .unwrap_err();
    assert!(
        e[0].to_string().contains("cannot read overlay directory"),
        "{}",
        e[0]
    );
    let absent_defaults = OverlayDirs {
        organisation: Some(missing.clone()),
        extra: vec![],
        generated: Some(missing),
    };
    assert!(SignatureSet::load_with_overlays(None, &absent_defaults).is_ok());
}

#[test]
fn replace_is_refused_in_base_files() {
    let f = Fixture::new("replace");
    f.write(
        "servers.toml",
        &(ONE_SERVER.to_string() + "replace = true\n"),
    );
    let errs = f.errors();
    assert!(
        errs.iter()
            .any(|e| e.message.contains("only meaningful in overlay")),
        "{errs:?}"
    );
}

#[test]
fn bundled_snapshot_never_repeats_a_curated_host() {
    let curated = SignatureSet::load_curated(None).unwrap();
    let (name, text) = BUILTIN_SNAPSHOT;
    let mut errors = Vec::new();
    let mut budget = overlay::MAX_OVERLAY_ENTRIES;
    let snap = overlay::parse_overlay(name, text, &mut errors, &mut budget).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(snap.generated);
    for (s, _) in &snap.servers {
        assert!(
            !curated.servers.iter().any(|c| c.host == s.host),
            "{} is curated",
            s.host
        );
        assert!(
            s.source.contains('@') || s.source.contains("registry"),
            "{}",
            s.source
        );
    }
    assert_eq!(
        builtin().servers.len(),
        curated.servers.len() + snap.servers.len()
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
    /// The host index finds what a scan of every entry finds (the most
    /// specific pattern), for names made of the labels the built-in
    /// patterns use.
    #[test]
    fn index_agrees_with_a_scan(
        labels in proptest::collection::vec(
            proptest::sample::select(vec![
                "mcp", "com", "dev", "app", "net", "io", "onrender", "vercel",
                "workers", "cloudflare", "example", "a", "x1", "notion", "linear",
                "amazonaws", "us-east-1", "azurewebsites", "fly", "pages", "deno",
            ]),
            1..6,
        ),
    ) {
        static SETS: std::sync::OnceLock<(SignatureSet, SignatureSet)> = std::sync::OnceLock::new();
        let (indexed, scanned) = SETS.get_or_init(|| {
            // The built-in set, plus patterns that overlap across the
            // index's groups (two literal last labels, one, none).
            let mut indexed = builtin();
            for host in ["*.com", "*.example.com", "{tenant}.example.com", "mcp.{region}.com", "*.{tld}", "a.{x}.{y}"] {
                indexed.servers.push(KnownServer {
                    host: host.into(),
                    vendor: format!("test {host}"),
                    kind: ServerKind::Platform,
                    paths: vec![],
                    shared_host: false,
                    context_only: false,
                    source: "test".into(),
                    note: None,
                    origin: "test".into(),
                    deprecated: false,
                });
            }
            indexed.rebuild_index();
            let mut scanned = indexed.clone();
            scanned.index = Default::default();
            (indexed, scanned)
        });
        let name = labels.join(".");
        let got = indexed.match_host(&name).map(|m| (m.server.host.clone(), m.exact));
        let want = scanned.match_host(&name).map(|m| (m.server.host.clone(), m.exact));
        proptest::prop_assert_eq!(got, want, "{}", name);
    }
}

//! Signature set loading: the input replaces one of the six TOML files of a
//! copy of the built-in set, or is its `registry-snapshot.toml` overlay
//! (byte 0 picks which), then the directory is loaded with the public
//! loader, as `--signatures DIR` / `signatures check` do.
use shadowmcp::signatures::SignatureSet;
use shadowmcp::signatures::load::FILES;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A private copy of the built-in set, made once per fuzzing process.
fn dir() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        // Built from fuzz/ (libFuzzer) or from the repository root (smoke test).
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let src = if manifest.join("signatures/manifest.toml").is_file() {
            manifest.join("signatures")
        } else {
            manifest.join("../signatures")
        };
        let dst = std::env::temp_dir().join(format!("shadowmcp-fuzz-sigs-{}", std::process::id()));
        std::fs::create_dir_all(&dst).expect("temp dir");
        for f in FILES {
            std::fs::copy(src.join(f), dst.join(f)).expect("copy signature file");
        }
        dst
    })
}

pub fn run(data: &[u8]) {
    let Some((&sel, text)) = data.split_first() else {
        return;
    };
    let d = dir();
    let pick = usize::from(sel) % (FILES.len() + 1);
    let result = match FILES.get(pick) {
        Some(name) => {
            let path = d.join(name);
            let original = std::fs::read(&path).expect("read signature file");
            std::fs::write(&path, text).expect("write signature file");
            let r = SignatureSet::load_dir(d);
            std::fs::write(&path, original).expect("restore signature file");
            r
        }
        None => {
            // The optional overlay of a directory.
            let path = d.join(shadowmcp::signatures::overlay::SNAPSHOT_FILE);
            std::fs::write(&path, text).expect("write overlay");
            let r = SignatureSet::load_dir(d);
            std::fs::remove_file(&path).expect("remove overlay");
            r
        }
    };
    if let Ok(set) = result {
        // A set that loads must answer queries without panicking.
        for host in ["mcp.example.com", "", ".", "a..b", "*.x", "MCP.NOTION.COM."] {
            let _ = set.match_host(host);
            let _ = set.heuristic_match(host);
            let _ = set.is_ech_public_name(host);
        }
        for m in ["initialize", "tools/call", "textDocument/hover", ""] {
            let _ = (
                set.jsonrpc.is_mcp_method(m),
                set.jsonrpc.is_shared_method(m),
                set.jsonrpc.foreign_protocol(m),
            );
        }
        let _ = shadowmcp::detect::mcp::McpClassifier::new(&set);
    } else if let Err(errors) = result {
        assert!(!errors.is_empty());
        for e in &errors {
            let _ = e.to_string();
        }
    }
}

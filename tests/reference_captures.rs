//! The reference captures in `../shared/testdata/quic-initial/` (real Chrome
//! traffic, pcapng) through the whole engine: SNI, JA4 and Community ID must
//! match the values published with them (PROVENANCE.md). Skipped with a note
//! when the shared folder is absent.

use shadowmcp::analyze::{AnalyzeOptions, analyze};
use shadowmcp::detect::hosts::Detector;
use shadowmcp::engine::EngineConfig;
use shadowmcp::findings::aggregate::Confidence;
use shadowmcp::signatures::allowlist::Allowlist;
use shadowmcp::signatures::{KnownServer, ServerKind, SignatureSet};
use std::path::PathBuf;
use std::sync::Arc;

fn testdata() -> Option<PathBuf> {
    let dir = std::env::var("SHADOWMCP_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata"));
    let q = dir.join("quic-initial");
    if q.is_dir() {
        Some(q)
    } else {
        eprintln!("skipping: {} not present", q.display());
        None
    }
}

/// The built-in set plus the reference hosts, so their hellos become findings.
fn detector() -> Arc<Detector> {
    let mut sigs = SignatureSet::builtin().expect("built-in signatures");
    for host in ["www.google.com", "ogs.google.com", "cloudflare-quic.com"] {
        sigs.servers.push(KnownServer {
            host: host.into(),
            vendor: "Reference".into(),
            kind: ServerKind::Server,
            paths: Vec::new(),
            shared_host: false,
            context_only: false,
            source: "test".into(),
            note: None,
            origin: "test".into(),
            deprecated: false,
        });
    }
    sigs.rebuild_index();
    Arc::new(Detector::new(sigs, Allowlist::empty()))
}

fn run(file: &str) -> Vec<serde_json::Value> {
    let Some(dir) = testdata() else {
        return Vec::new();
    };
    let opts = AnalyzeOptions {
        files: vec![dir.join(file)],
        engine: EngineConfig::default(),
        report_sanctioned: false,
        min_confidence: Confidence::Low,
        progress: false,
        workers: 1,
        observer: shadowmcp::findings::Observer::new(Some("test-sensor")),
        decrypt: None,
    };
    let r = analyze(&opts, detector());
    assert!(
        r.unusable.is_empty() && r.damaged.is_empty(),
        "{:?} {:?}",
        r.unusable,
        r.damaged
    );
    r.records
        .iter()
        .map(|f| serde_json::to_value(f).expect("json"))
        .collect()
}

fn evidence_text(f: &serde_json::Value) -> String {
    f["evidence"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["detail"].as_str().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

#[test]
fn chrome_quic_initials() {
    for (file, sni, cid) in [
        (
            "quic-tls-handshake.pcapng",
            "www.google.com",
            "1:YzVkOOYiTuBXnYUbOrwvXhS5ZJ0=",
        ),
        (
            "quic-with-several-tls-frames.pcapng",
            "ogs.google.com",
            "1:66E4grhyD0Cqe7u3CsfsPWUns5M=",
        ),
    ] {
        let found = run(file);
        if testdata().is_none() {
            return;
        }
        assert_eq!(found.len(), 1, "{file}: {found:#?}");
        let f = &found[0];
        assert_eq!(f["server"]["name"], sni);
        assert_eq!(f["transport"], "quic");
        assert_eq!(f["community_id"], cid, "{file}");
        assert!(
            evidence_text(f).contains("JA4 q13d0310h3_55b375c5d22e_cd85d2d88918"),
            "{file}: {}",
            evidence_text(f)
        );
    }
}

#[test]
fn chrome_tls_and_quic_to_the_same_server_aggregate() {
    let found = run("chrome-cloudflare-quic-with-secrets.pcapng");
    if testdata().is_none() {
        return;
    }
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f["server"]["name"], "cloudflare-quic.com");
    assert_eq!(f["client"]["ip"], "2001:db8:1::1");
    assert_eq!(f["count"], 2, "one TLS flow and one QUIC flow");
    // The QUIC flow is the strongest view, so its Community ID is shown.
    assert_eq!(f["transport"], "quic");
    assert_eq!(f["community_id"], "1:SpUrLMD7k8xo/wQPzOx89gkCk1k=");
    let ev = evidence_text(f);
    assert!(
        ev.contains("JA4 t13d1516h2_8daaf6152771_e5627efa2ab1"),
        "{ev}"
    );
    assert!(
        ev.contains("JA4 q13d0310h3_55b375c5d22e_cd85d2d88918"),
        "{ev}"
    );
}

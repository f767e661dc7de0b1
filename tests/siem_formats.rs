//! The OCSF and ECS encodings of real findings, checked against the schema
//! definitions. Samples in `tests/data/{ocsf,ecs}/` are the encodings of
//! the findings of `pcaps/demo.pcap`, `py-websocket.pcap` and `ipv6.pcap`
//! (analysed through the library, with a fixed observer, and the TLS fields
//! of each ClientHello in the capture);
//! regenerate after a reviewed change with
//! `SHADOWMCP_BLESS=1 cargo test --test siem_formats` and review the diff.

mod siem_schemas;

use serde_json::Value;
use shadowmcp::analyze::{AnalyzeOptions, analyze};
use shadowmcp::capture::FileSource;
use shadowmcp::decode::{self, Transport as L4};
use shadowmcp::detect::hosts::Detector;
use shadowmcp::engine::EngineConfig;
use shadowmcp::findings::aggregate::Confidence;
use shadowmcp::findings::encode::{self, Format};
use shadowmcp::findings::output::FindingRecord;
use shadowmcp::findings::{Observer, TlsInfo, Transport};
use shadowmcp::proto::ja4::{Ja4Transport, ja4};
use shadowmcp::proto::tls::{HelloProgress, parse_client_hello_records};
use shadowmcp::signatures::SignatureSet;
use shadowmcp::signatures::allowlist::Allowlist;
use siem_schemas::ecs::Ecs;
use siem_schemas::ocsf::Ocsf;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const CLASS: &str = "events/findings/detection_finding.json";

/// A named change to a valid document that must make it invalid.
type Mutation = (&'static str, fn(&mut Value));

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// TLS fields of every single-segment ClientHello in a capture, by client.
fn client_hellos(path: &Path) -> HashMap<(IpAddr, u16), TlsInfo> {
    let mut src = FileSource::open(path).expect("open capture");
    let link = src.linktype();
    let mut out = HashMap::new();
    while let Ok(Some(f)) = src.next_frame() {
        let Ok(p) = decode::decode(link, f.data) else {
            continue;
        };
        if let L4::Tcp { sport, payload, .. } = p.transport
            && let HelloProgress::Complete(h) = parse_client_hello_records(payload)
        {
            let info = TlsInfo::from_client_hello(&h, ja4(&h, Ja4Transport::Tcp));
            out.entry((p.src, sport)).or_insert(info);
        }
    }
    out
}

fn demo_records() -> Vec<FindingRecord> {
    records_of("demo.pcap")
}

/// The findings of `pcaps/<name>`, as `analyze` makes them, named by a
/// fixed observer; TLS findings get the fields of their flow's ClientHello.
fn records_of(name: &str) -> Vec<FindingRecord> {
    let capture = root().join("pcaps").join(name);
    let det = Detector::new(
        SignatureSet::builtin().expect("signatures"),
        Allowlist::parse("", "test").expect("allowlist"),
    );
    let opts = AnalyzeOptions {
        files: vec![capture.clone()],
        engine: EngineConfig::default(),
        report_sanctioned: true,
        min_confidence: Confidence::Low,
        progress: false,
        workers: 1,
        observer: shadowmcp::findings::Observer::new(Some("test-sensor")),
        decrypt: None,
    };
    let result = analyze(&opts, Arc::new(det));
    assert!(!result.records.is_empty(), "{name} gives findings");
    let hellos = client_hellos(&capture);
    let observer = Observer {
        name: "sensor-1".into(),
        hostname: Some("sensor-1.example.org".into()),
        interfaces: Vec::new(),
        files: vec![format!("pcaps/{name}")],
    };
    result
        .records
        .into_iter()
        .map(|mut r| {
            if r.transport == Transport::Tls
                && let Some(port) = r.client.port
                && let Some(t) = hellos.get(&(r.client.ip, port))
            {
                // Once the engine attaches it, it must be the same.
                if let Some(have) = &r.tls {
                    assert_eq!(have, t, "engine TLS fields differ from the hello");
                }
                r.tls = Some(t.clone());
            }
            r.with_observer(&observer)
        })
        .collect()
}

/// A live roll-up of the first TLS finding: an update with repeats,
/// observed on an interface.
fn live_rollup(records: &[FindingRecord]) -> FindingRecord {
    let mut r = records
        .iter()
        .find(|r| r.tls.is_some())
        .expect("a TLS finding in demo.pcap")
        .clone();
    r.repeats = Some(3);
    r.timestamp = "2026-11-22T05:40:07.838845Z".into();
    if let Some(o) = r.observer.as_mut() {
        o.files.clear();
        o.interfaces = vec!["eth1".into()];
    }
    r
}

fn samples(format: Format) -> Vec<(PathBuf, Value)> {
    let records = demo_records();
    let encode_all = |rs: &[FindingRecord]| -> Value {
        Value::Array(
            rs.iter()
                .map(|r| encode::encode(format, r).expect("encode"))
                .collect(),
        )
    };
    let dir = root().join("tests/data").join(format.name());
    vec![
        (dir.join("demo.json"), encode_all(&records)),
        (
            dir.join("live-rollup.json"),
            encode_all(&[live_rollup(&records)]),
        ),
        // WebSocket and IPv6, which demo.pcap lacks.
        (
            dir.join("websocket-ipv6.json"),
            encode_all(&[records_of("py-websocket.pcap"), records_of("ipv6.pcap")].concat()),
        ),
    ]
}

fn check_samples_are_current(format: Format) {
    let bless = std::env::var_os("SHADOWMCP_BLESS").is_some();
    for (path, fresh) in samples(format) {
        let text = serde_json::to_string_pretty(&fresh).expect("json") + "\n";
        if bless {
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
            std::fs::write(&path, text).expect("write sample");
            continue;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with SHADOWMCP_BLESS=1 and review)",
                path.display()
            )
        });
        assert_eq!(have, text, "{} is out of date", path.display());
    }
}

/// Every sample file of a format, each an array of documents, and the
/// documents the encoder makes now (so a broken encoder fails validation
/// even before the samples are re-blessed).
fn sample_documents(format: Format) -> Vec<(String, Value)> {
    let dir = root().join("tests/data").join(format.name());
    let mut out = Vec::new();
    for (path, fresh) in samples(format) {
        for (i, d) in fresh.as_array().expect("array").iter().enumerate() {
            out.push((format!("fresh {}[{i}]", path.display()), d.clone()));
        }
    }
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("sample dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("read"))
            .expect("sample is JSON");
        for (i, d) in v.as_array().expect("array of documents").iter().enumerate() {
            out.push((format!("{}[{i}]", p.display()), d.clone()));
        }
    }
    assert!(!out.is_empty());
    out
}

#[test]
fn ocsf_samples_are_current() {
    check_samples_are_current(Format::Ocsf);
}

#[test]
fn ecs_samples_are_current() {
    check_samples_are_current(Format::Ecs);
}

#[test]
fn ocsf_samples_are_valid_detection_findings() {
    let Some(dir) = siem_schemas::schemas_dir() else {
        return;
    };
    let ocsf = Ocsf::load(&dir);
    let docs = sample_documents(Format::Ocsf);
    for (name, d) in &docs {
        let errs = ocsf.validate_event(CLASS, d);
        assert!(errs.is_empty(), "{name}:\n{}", errs.join("\n"));
    }
    // The samples carry what the mapping promises.
    let tls = docs
        .iter()
        .find(|(_, d)| d["evidences"][0]["tls"].is_object())
        .expect("a sample with TLS");
    assert!(tls.1["evidences"][0]["ja4_fingerprint_list"][0]["value"].is_string());
    assert!(docs.iter().any(|(_, d)| d["activity_id"] == 2), "an update");
}

#[test]
fn ecs_samples_are_valid_alerts() {
    let Some(dir) = siem_schemas::schemas_dir() else {
        return;
    };
    let ecs = Ecs::load(&dir, "shadowmcp");
    let docs = sample_documents(Format::Ecs);
    for (name, d) in &docs {
        let errs = ecs.validate(d);
        assert!(errs.is_empty(), "{name}:\n{}", errs.join("\n"));
    }
    assert!(
        docs.iter()
            .any(|(_, d)| d["tls"]["client"]["server_name"].is_string()
                && d["shadowmcp"]["tls"]["ja4"].is_string())
    );
    assert!(
        docs.iter()
            .any(|(_, d)| d["observer"]["ingress"]["interface"]["name"] == "eth1")
    );
}

/// The validators catch the mistakes they are there for.
#[test]
fn ocsf_validator_rejects_mutations() {
    let Some(dir) = siem_schemas::schemas_dir() else {
        return;
    };
    let ocsf = Ocsf::load(&dir);
    let (_, good) = sample_documents(Format::Ocsf).remove(0);
    assert!(ocsf.validate_event(CLASS, &good).is_empty());
    let mutations: [Mutation; 9] = [
        ("required finding_info.uid", |d| {
            d["finding_info"].as_object_mut().map(|m| m.remove("uid"));
        }),
        ("required metadata", |d| {
            d.as_object_mut().map(|m| m.remove("metadata"));
        }),
        ("severity_id enum", |d| d["severity_id"] = 7.into()),
        ("severity caption", |d| d["severity"] = "Severe".into()),
        ("unknown attribute", |d| d["shadow"] = true.into()),
        ("unknown nested attribute", |d| {
            d["evidences"][0]["src_endpoint"]["sni"] = "x".into()
        }),
        ("type of time", |d| d["time"] = "yesterday".into()),
        ("type_uid", |d| d["type_uid"] = 200499.into()),
        ("ip_t", |d| d["device"]["ip"] = "10.0.0.300".into()),
    ];
    for (what, mutate) in mutations {
        let mut d = good.clone();
        mutate(&mut d);
        assert!(
            !ocsf.validate_event(CLASS, &d).is_empty(),
            "mutation not caught: {what}"
        );
    }
}

#[test]
fn ecs_validator_rejects_mutations() {
    let Some(dir) = siem_schemas::schemas_dir() else {
        return;
    };
    let ecs = Ecs::load(&dir, "shadowmcp");
    let (_, good) = sample_documents(Format::Ecs).remove(0);
    assert!(ecs.validate(&good).is_empty());
    let mutations: [Mutation; 7] = [
        ("required @timestamp", |d| {
            d.as_object_mut().map(|m| m.remove("@timestamp"));
        }),
        ("event.kind value", |d| {
            d["event"]["kind"] = "finding".into()
        }),
        ("event.category value", |d| {
            d["event"]["category"] = serde_json::json!(["network", "mcp"])
        }),
        ("event.type expected by category", |d| {
            d["event"]["type"] = serde_json::json!(["creation"])
        }),
        ("array field", |d| d["event"]["category"] = "network".into()),
        ("unknown field", |d| {
            d["tls"]["client"]["ja4"] = "t13d".into()
        }),
        ("ip type", |d| d["source"]["ip"] = "not-an-ip".into()),
    ];
    for (what, mutate) in mutations {
        let mut d = good.clone();
        mutate(&mut d);
        assert!(!ecs.validate(&d).is_empty(), "mutation not caught: {what}");
    }
}

/// Sinks get the documented JSON and encode it: the result must equal
/// encoding the record directly.
#[test]
fn encoding_the_documented_json_equals_encoding_the_record() {
    for r in demo_records() {
        let json = serde_json::to_value(&r).expect("json");
        for f in Format::ALL {
            let via_json = encode::encode_value(f, &json).expect("encode").into_owned();
            assert_eq!(via_json, encode::encode(f, &r).expect("encode"), "{f}");
        }
    }
    assert!(encode::encode_value(Format::Ocsf, &serde_json::json!({"a": 1})).is_err());
}

/// `analyze` output: `json` is byte for byte the documented JSON Lines;
/// the other formats write one document per record and line.
#[test]
fn write_records_writes_one_document_per_line() {
    let records = demo_records();
    let mut plain = Vec::new();
    shadowmcp::findings::output::write_json_lines(&mut plain, &records).expect("write");
    let mut json = Vec::new();
    encode::write_records(&mut json, Format::Json, &records).expect("write");
    assert_eq!(json, plain);
    for (format, key, want) in [
        (Format::Ocsf, "/class_uid", Value::from(2004)),
        (Format::Ecs, "/event/kind", Value::from("alert")),
    ] {
        let mut out = Vec::new();
        encode::write_records(&mut out, format, &records).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON document per line"))
            .collect();
        assert_eq!(lines.len(), records.len(), "{format}");
        assert!(
            lines.iter().all(|d| d.pointer(key) == Some(&want)),
            "{format}"
        );
    }
}

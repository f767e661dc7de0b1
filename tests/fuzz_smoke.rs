//! Time-bounded fuzzing of every fuzz target in the ordinary test run.
//!
//! Each test replays the seed corpus of one target (built from the captures
//! by `fuzz/seed.py`), then feeds random mutations of it (bit flips, byte
//! sets, inserts, deletions, duplicated ranges, splices of two seeds,
//! truncation) until its time budget is spent. The harnesses are the same
//! code as the libFuzzer targets (`fuzz/harness/`), so their invariants are
//! checked here too; a debug build adds overflow checks. This is a
//! regression net, not a campaign: it has no coverage feedback and no
//! sanitizer. Long, coverage-guided runs are `fuzz/run-ci.sh` (see
//! docs/reliability.md).
//!
//! Budget per target: `SHADOWMCP_FUZZ_SECS` seconds (default 8). A failing
//! input is written to `target/fuzz-smoke/<target>-<n>.bin`; replay it with
//! `cargo +nightly fuzz run <target> FILE` from `fuzz/`.

#[path = "../fuzz/harness/mod.rs"]
#[allow(dead_code)]
mod harness;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MAX_INPUT: usize = 64 * 1024;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The seed corpora, built once per test process by `fuzz/seed.py` into a
/// scratch directory (removed once read): target name → seeds, in file-name
/// order.
fn corpora() -> &'static HashMap<String, Vec<Vec<u8>>> {
    static CORPORA: OnceLock<HashMap<String, Vec<Vec<u8>>>> = OnceLock::new();
    CORPORA.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("shadowmcp-fuzz-smoke-")
            .tempdir()
            .expect("scratch dir");
        let out = std::process::Command::new("python3")
            .arg(root().join("fuzz/seed.py"))
            .arg(root())
            .arg(dir.path())
            .output()
            .expect("python3 runs fuzz/seed.py");
        assert!(
            out.status.success(),
            "fuzz/seed.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut corpora = HashMap::new();
        for target in std::fs::read_dir(dir.path())
            .expect("seed corpora")
            .flatten()
        {
            let mut names: Vec<PathBuf> = std::fs::read_dir(target.path())
                .unwrap_or_else(|e| panic!("seed corpus {}: {e}", target.path().display()))
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            names.sort();
            let seeds = names.iter().filter_map(|p| std::fs::read(p).ok()).collect();
            corpora.insert(target.file_name().to_string_lossy().into_owned(), seeds);
        }
        corpora
    })
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    corpora()
        .get(target)
        .unwrap_or_else(|| panic!("fuzz/seed.py wrote no seed corpus for {target}"))
        .clone()
}

/// xorshift64*: deterministic per target, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: [u8; 8] = [0x00, 0x01, 0x7f, 0x80, 0xff, b'\r', b'\n', b'"'];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                input.drain(at..at + n);
            }
            4 if len > 0 => {
                // Duplicate a range (repeated headers, records, frames).
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(256));
                let copy = input[at..at + n].to_vec();
                let to = rng.below(len + 1);
                input.splice(to..to, copy);
            }
            5 if !seeds.is_empty() => {
                // Splice: our prefix, another seed's suffix.
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            _ if len > 0 => {
                // A little-endian or big-endian length field set to an edge value.
                let i = rng.below(len);
                let v = [0u8, 0xff][rng.below(2)];
                for b in input.iter_mut().skip(i).take(2) {
                    *b = v;
                }
            }
            _ => input.push(rng.next() as u8),
        }
    }
    input.truncate(MAX_INPUT);
}

fn save(target: &str, n: u64, input: &[u8]) -> PathBuf {
    let dir = root().join("target/fuzz-smoke");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{target}-{n}.bin"));
    let _ = std::fs::write(&path, input);
    path
}

fn smoke(target: &str, run: fn(&[u8])) {
    let budget = std::env::var("SHADOWMCP_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(8.0);
    let seeds = seeds(target);
    assert!(!seeds.is_empty(), "no seeds for {target}");
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(budget);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (target.len() as u64 * 0x1000_0001));
    let mut execs = 0u64;
    let check = |input: &[u8], execs: u64| {
        if catch_unwind(AssertUnwindSafe(|| run(input))).is_err() {
            let path = save(target, execs, input);
            panic!(
                "{target}: input {execs} ({} bytes) failed; saved to {}",
                input.len(),
                path.display()
            );
        }
    };
    // Every seed once, whatever the budget: the corpus is the floor.
    for s in &seeds {
        check(s, execs);
        execs += 1;
    }
    let mut input = Vec::new();
    while Instant::now() < deadline {
        // Restart from a seed now and then, or keep mutating the last input.
        if execs.is_multiple_of(16) || input.is_empty() {
            input.clone_from(&seeds[rng.below(seeds.len())]);
        }
        mutate(&mut rng, &seeds, &mut input);
        check(&input, execs);
        execs += 1;
    }
    eprintln!(
        "{target}: {execs} executions in {:.1} s, {} seeds, no failure",
        start.elapsed().as_secs_f64(),
        seeds.len()
    );
}

macro_rules! smoke_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                smoke(stringify!($name), harness::$name::run);
            }
        )*
    };
}

smoke_tests!(
    allowlist,
    config,
    decode,
    defrag,
    dns,
    hpack,
    http1,
    http2,
    jsonrpc_mcp,
    pcap_file,
    pipeline,
    quic_initial,
    registry_pages,
    signatures_load,
    sse,
    tls_decrypt,
    tls_keylog,
    tls_message,
    tls_records,
    websocket,
);

/// The smoke run must be able to fail: a harness that panics on one byte
/// pattern is caught by mutation of a seed that lacks it.
#[test]
fn smoke_catches_a_planted_crash() {
    fn planted(data: &[u8]) {
        assert!(!data.windows(2).any(|w| w == [0xff, 0xff]), "planted crash");
    }
    let seeds = vec![b"GET / HTTP/1.1\r\n\r\n".to_vec()];
    let mut rng = Rng(7);
    let mut input = seeds[0].clone();
    let found = (0..200_000).any(|_| {
        mutate(&mut rng, &seeds, &mut input);
        if input.len() > 4096 {
            input.clone_from(&seeds[0]);
        }
        catch_unwind(AssertUnwindSafe(|| planted(&input))).is_err()
    });
    assert!(found, "mutation never produced the planted pattern");
}

//! Deterministic generator of large benchmark captures (classic pcap, Ethernet).
//!
//! Scenarios (see docs/performance.md):
//!
//! - `egress-mix` (module `egress`): interleaved traffic as on an egress
//!   link: DNS, TLS 1.3 bulk, cleartext HTTP/1.1 REST and a few MCP
//!   sessions. With `--http2-share` a share of the cleartext HTTP flows
//!   speaks HTTP/2 with prior knowledge, and `--http2-twin` writes the same
//!   flows as HTTP/1.1 carrying the same bodies.
//! - `flow-flood` (module `flood`): many distinct short TCP flows.
//! - `tls13-bulk` (module `tls13`): TLS 1.3 connections sealed with
//!   AES-128-GCM under random traffic secrets written to an NSS key log,
//!   mostly downloads, some MCP sessions.
//!
//! Same arguments and seed give the same file, byte for byte. Output is
//! streamed through a `BufWriter`; memory is bounded by the flow pool
//! (egress-mix, tls13-bulk) or by the flows in flight (flow-flood, about
//! 20k for 1M flows).

mod egress;
mod flood;
mod h2;
mod hpack;
mod http;
mod payloads;
mod pcap;
mod rng;
mod tls13;

use clap::{Parser, ValueEnum};
use pcap::{PcapWriter, START_NS};
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// ~1 GB of TLS bulk, DNS, HTTP REST and a few MCP sessions, interleaved.
    EgressMix,
    /// Many distinct short TCP flows of small packets.
    FlowFlood,
    /// TLS 1.3 (AES-128-GCM) downloads and MCP sessions, with a key log.
    Tls13Bulk,
}

#[derive(Parser)]
#[command(
    name = "shadowmcp-bench-gen",
    about = "Write deterministic benchmark captures (classic pcap, Ethernet) for shadowmcp"
)]
pub struct Cli {
    /// Which traffic to generate.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Output pcap file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// PRNG seed: same seed and arguments give the same file.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// egress-mix, tls13-bulk: size of the file in MiB (egress-mix: stop
    /// opening new flows once the file reaches it; with --http2-share and
    /// tls13-bulk: once the flows opened are budgeted at it, so the file
    /// comes out near it).
    #[arg(long, default_value_t = 1024)]
    size_mb: u64,
    /// egress-mix, tls13-bulk: flows open at once [default: 3000
    /// (egress-mix), 64 (tls13-bulk)].
    #[arg(long)]
    concurrency: Option<usize>,
    /// egress-mix: share (0 to 1) of the cleartext HTTP flows that speak
    /// HTTP/2 with prior knowledge. Builds the mix for twin captures: flows
    /// from per-flow PRNGs, downloads among the cleartext HTTP flows, every
    /// flow run to its end.
    #[arg(long, value_name = "SHARE", value_parser = share)]
    http2_share: Option<f64>,
    /// egress-mix with --http2-share: write the HTTP/2 share as HTTP/1.1
    /// with the same bodies (the twin of the capture without this flag).
    #[arg(long, requires = "http2_share")]
    http2_twin: bool,
    /// tls13-bulk: key log to write [default: the output with extension .keys].
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,
    /// tls13-bulk: share (0 to 1) of connections that are MCP sessions.
    #[arg(long, default_value_t = 0.2, value_parser = share)]
    mcp_share: f64,
    /// tls13-bulk: smallest download (KiB).
    #[arg(long, default_value_t = 64)]
    bulk_min_kb: u64,
    /// tls13-bulk: largest download (KiB); sizes are log-uniform.
    #[arg(long, default_value_t = 16 * 1024)]
    bulk_max_kb: u64,
    /// egress-mix, tls13-bulk: average link rate, sets the timestamps (Mbit/s).
    #[arg(long, default_value_t = 1000)]
    rate_mbps: u64,
    /// flow-flood: number of distinct TCP flows.
    #[arg(long, default_value_t = 1_000_000)]
    flows: u64,
    /// flow-flood: all flows start and end within this many seconds.
    #[arg(long, default_value_t = 60)]
    duration_s: u64,
    /// flow-flood: bytes of the client's request in each flow.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// flow-flood: leave every flow open (the server acknowledges the
    /// request, nobody closes), five packets per flow: all flows stay alive
    /// in a sensor's table until its idle timeout.
    #[arg(long)]
    open: bool,
}

fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number from 0 to 1")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let started = std::time::Instant::now();
    match run(&cli) {
        Ok(summary) => {
            eprintln!(
                "{}: {} packets, {} bytes, {} flows{}, {:.1} s of capture time, generated in {:.1} s",
                cli.output.display(),
                summary.packets,
                summary.bytes,
                summary.flows,
                summary.note,
                summary.capture_ns as f64 / 1e9,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shadowmcp-bench-gen: {}: {e}", cli.output.display());
            ExitCode::from(2)
        }
    }
}

struct Summary {
    packets: u64,
    bytes: u64,
    flows: u64,
    /// What the scenario adds to the summary line.
    note: String,
    capture_ns: u64,
}

fn run(cli: &Cli) -> io::Result<Summary> {
    let file = File::create(&cli.output)?;
    let mut pw = PcapWriter::new(BufWriter::with_capacity(1 << 20, file))?;
    let (flows, note) = match cli.scenario {
        Scenario::EgressMix => egress::egress_mix(cli, &mut pw)?,
        Scenario::FlowFlood => (flood::flow_flood(cli, &mut pw)?, String::new()),
        Scenario::Tls13Bulk => {
            let path = tls13::keylog_path(cli);
            let keylog = tls13::create_keylog(&path)?;
            let n = tls13::tls13_bulk(cli, &mut pw, keylog)?;
            let note = format!(
                " ({} MCP sessions, {} bytes of application data plaintext), key log {}",
                n.mcp_sessions,
                n.app_bytes,
                path.display()
            );
            (n.connections, note)
        }
    };
    let capture_ns = pw.last_ns.saturating_sub(START_NS);
    let (packets, bytes) = (pw.packets, pw.bytes);
    let file = pw.w.into_inner().map_err(|e| e.into_error())?;
    // Only a regular file can be synced (not /dev/null, a pipe).
    if file.metadata()?.is_file() {
        file.sync_all()?;
    }
    Ok(Summary {
        packets,
        bytes,
        flows,
        note,
        capture_ns,
    })
}

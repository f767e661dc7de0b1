//! The `shadowmcp` command line.

use clap::{Args, Parser, Subcommand, ValueEnum};
use shadowmcp::analyze::{AnalyzeOptions, AnalyzeResult, analyze};
use shadowmcp::decode::DecodeError;
use shadowmcp::detect::hosts::Detector;
use shadowmcp::engine::EngineConfig;
use shadowmcp::findings::aggregate::Confidence;
use shadowmcp::findings::output::{write_json_lines, write_text};
use shadowmcp::signatures::allowlist::Allowlist;
use shadowmcp::signatures::{ServerKind, SignatureSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

// --- build identity and generated documentation (build.rs, generate.rs) ---
mod generate;

/// `shadowmcp --version`: `0.1.0 (commit abc1234, built 2026-12-06)`; the
/// commit and date come from build.rs.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SHADOWMCP_GIT_COMMIT"),
    ", built ",
    env!("SHADOWMCP_BUILD_DATE"),
    ")"
);
// --- end build identity ---

/// Exit status when arguments or every input are unusable (also clap's).
const EXIT_USAGE: u8 = 2;
/// Exit status with --fail-on-findings when a shadow finding was made.
const EXIT_FINDINGS: u8 = 3;

#[derive(Parser)]
#[command(
    name = "shadowmcp",
    version = LONG_VERSION,
    about = "Passive network sensor that finds shadow MCP: clients talking to Model Context Protocol servers that security has not approved",
    long_about = "shadowmcp reads packets (capture files, or a live interface) and turns DNS lookups, TLS/QUIC \
ClientHellos and cleartext HTTP / SSE / WebSocket JSON-RPC into findings: which client talked to which MCP \
server, with what evidence and confidence, and whether that server is on your allowlist.\n\n\
Exit status: 0 success, 2 unusable input or arguments, 3 shadow findings with --fail-on-findings."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyze pcap/pcapng files and report clients that talked to MCP servers.
    #[command(
        after_help = "Examples:\n  shadowmcp analyze capture.pcap\n  shadowmcp analyze --format text --allowlist approved.txt day1.pcapng day2.pcapng\n  shadowmcp analyze --fail-on-findings -o findings.jsonl egress.pcap"
    )]
    Analyze(AnalyzeArgs),
    /// Run the live sensor on network interfaces until SIGTERM/SIGINT (SIGHUP reloads
    /// signatures and allowlist).
    #[command(
        after_help = "Settings come from --config (deploy/shadowmcp.toml, docs/configuration.md); flags override them.\n\nExamples:\n  shadowmcp run --config /etc/shadowmcp/shadowmcp.toml\n  shadowmcp run -i eth1 --sink jsonl:/var/log/shadowmcp/findings.jsonl --sink alertmanager:http://127.0.0.1:9093\n  shadowmcp run --config sensor.toml --check-config"
    )]
    Run(RunArgs),
    /// Validate or list signature sets.
    #[command(subcommand)]
    Signatures(SignaturesCommand),
}

#[derive(Args)]
struct RunArgs {
    /// TOML configuration file.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Interface to capture on (repeatable); `any` for all.
    #[arg(short = 'i', long = "interface", value_name = "NAME")]
    interfaces: Vec<String>,
    /// Kernel BPF filter (tcpdump syntax).
    #[arg(long, value_name = "FILTER")]
    bpf: Option<String>,
    /// Bytes captured per packet.
    #[arg(long, value_name = "BYTES")]
    snaplen: Option<u32>,
    /// Kernel capture buffer per interface, MiB.
    #[arg(long = "buffer-size", value_name = "MIB")]
    buffer_size: Option<u32>,
    /// Promiscuous mode (needs CAP_NET_ADMIN).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    promisc: Option<bool>,
    /// Worker threads (packets are sharded by flow).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Metrics listener (/metrics, /healthz, /readyz).
    #[arg(long = "metrics-listen", value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Allowlist of sanctioned servers.
    #[arg(long, value_name = "FILE")]
    allowlist: Option<PathBuf>,
    /// Signature directory replacing the built-in set.
    #[arg(long, value_name = "DIR")]
    signatures: Option<PathBuf>,
    /// Alert sink (repeatable): jsonl:PATH|-, webhook:URL, syslog+udp://HOST:PORT,
    /// syslog+tcp://…, syslog+tls://…, alertmanager:URL (docs/sinks.md).
    #[arg(long = "sink", value_name = "SPEC")]
    sinks: Vec<String>,
    /// User to switch to after opening the captures (when started as root).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Validate the configuration (and signatures, allowlist, sinks) and exit.
    #[arg(long)]
    check_config: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON object per line (docs/findings.md).
    Json,
    /// An aligned table with the evidence of each finding, for analysts.
    Text,
}

#[derive(Args)]
struct AnalyzeArgs {
    /// Capture files (pcap or pcapng), read in order as one timeline.
    #[arg(required = true, value_name = "PCAP")]
    files: Vec<PathBuf>,
    /// Signature directory replacing the built-in set (see signatures/README.md).
    #[arg(long, value_name = "DIR")]
    signatures: Option<PathBuf>,
    /// Sanctioned servers: one host, *.suffix, IP or CIDR per line; '#' comments.
    #[arg(long, value_name = "FILE")]
    allowlist: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Write findings to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Also report traffic to servers on the allowlist (verdict "sanctioned").
    #[arg(long)]
    report_sanctioned: bool,
    /// Exit with status 3 when at least one shadow finding was made.
    #[arg(long)]
    fail_on_findings: bool,
    /// Report only findings at or above this confidence.
    #[arg(long, value_enum, default_value = "low")]
    min_confidence: Confidence,
    /// Maximum flows tracked at once; the least recently seen is evicted.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    max_flows: usize,
    /// TCP streams reassembled and parsed at once; beyond, new streams are
    /// counted and not inspected.
    #[arg(long, default_value_t = 65_536, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=16_777_216))]
    max_tcp_streams: u32,
    /// MiB the buffers of inspected TCP streams may hold (out-of-order
    /// segments, partial messages, bodies); over it, streams holding more
    /// than their share are no longer inspected.
    #[arg(long, default_value_t = 256, value_name = "MIB",
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    tcp_buffer_mib: u32,
    /// Seconds without packets after which a flow is finished.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    flow_timeout: u64,
    /// Seconds a TCP flow is kept after it ended (FIN both ways, or RST),
    /// for its late packets; at most --flow-timeout.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    closed_timeout: u64,
    /// Engine threads (packets are sharded by flow); 1 keeps output order
    /// and DNS attribution exactly reproducible.
    #[arg(long, default_value_t = 1, value_name = "N")]
    workers: usize,
    /// Do not print the run summary on standard error.
    #[arg(short, long)]
    quiet: bool,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Subcommand)]
enum SignaturesCommand {
    /// Validate a signature directory; errors are printed as FILE:LINE:COLUMN: message.
    Check {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the loaded signature set (built-in unless --signatures is given).
    List {
        #[arg(long, value_name = "DIR")]
        signatures: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // `shadowmcp generate ...` (man pages, completions) is parsed apart, so
    // that it appears in neither the help nor the pages it writes.
    if let Some(code) = generate::dispatch(<Cli as clap::CommandFactory>::command) {
        return code;
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Analyze(args) => run_analyze(args),
        Command::Run(args) => run_sensor(args),
        Command::Signatures(SignaturesCommand::Check { dir }) => match SignatureSet::load_dir(&dir)
        {
            Ok(set) => {
                println!(
                    "{}: OK — signature set {} with {} servers/platforms, {} MCP methods",
                    dir.display(),
                    set.version,
                    set.servers.len(),
                    set.jsonrpc.mcp_methods.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                eprintln!("{}: {} error(s)", dir.display(), errors.len());
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Signatures(SignaturesCommand::List { signatures }) => {
            match load_signatures(signatures.as_deref()) {
                Ok(set) => {
                    print_signatures(&set);
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            }
        }
    }
}

fn run_sensor(args: RunArgs) -> ExitCode {
    use shadowmcp::config::Config;
    use shadowmcp::sinks::SinkConfig;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHADOWMCP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let mut cfg = match &args.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => Config::default(),
    };
    if !args.interfaces.is_empty() {
        cfg.capture.interfaces = args.interfaces.clone();
    }
    if let Some(v) = args.bpf {
        cfg.capture.bpf = v;
    }
    if let Some(v) = args.snaplen {
        cfg.capture.snaplen = v;
    }
    if let Some(v) = args.buffer_size {
        cfg.capture.buffer_size_mib = v;
    }
    if let Some(v) = args.promisc {
        cfg.capture.promisc = v;
    }
    if let Some(v) = args.workers {
        cfg.capture.workers = v;
    }
    if let Some(v) = args.metrics_listen {
        cfg.metrics.listen = v;
    }
    if args.allowlist.is_some() {
        cfg.detection.allowlist = args.allowlist;
    }
    if args.signatures.is_some() {
        cfg.detection.signatures = args.signatures;
    }
    if args.user.is_some() {
        cfg.privileges.user = args.user;
    }
    for spec in &args.sinks {
        match SinkConfig::parse_cli(spec) {
            Ok(s) => cfg.sinks.push(s),
            Err(e) => {
                eprintln!("error: --sink {spec}: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let origin = args
        .config
        .as_ref()
        .map_or_else(|| "command line".to_owned(), |p| p.display().to_string());
    if let Err(e) = cfg.validate(&origin) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    for (i, s) in cfg.sinks.iter().enumerate() {
        if let Err(e) = s.validate() {
            eprintln!("error: sinks[{i}]: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if args.check_config {
        return match shadowmcp::sensor::load_detector(&cfg) {
            Ok(d) => {
                println!(
                    "{origin}: OK — {} interface(s), {} worker(s), {} sink(s), signatures {} ({} servers), allowlist {} entries",
                    cfg.capture.interfaces.len(),
                    cfg.capture.workers,
                    cfg.sinks.len(),
                    d.signatures.version,
                    d.signatures.servers.len(),
                    d.allowlist.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in errors {
                    eprintln!("error: {e}");
                }
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    match shadowmcp::sensor::run(shadowmcp::sensor::RunOptions { config: cfg }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn load_signatures(dir: Option<&Path>) -> Result<SignatureSet, ExitCode> {
    let loaded = match dir {
        Some(d) => SignatureSet::load_dir(d),
        None => SignatureSet::builtin(),
    };
    loaded.map_err(|errors| {
        for e in &errors {
            eprintln!("error: {e}");
        }
        ExitCode::from(EXIT_USAGE)
    })
}

fn print_signatures(set: &SignatureSet) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "signature set {}", set.version);
    let _ = writeln!(
        out,
        "\n{:<58} {:<9} {:<24} {:<7} PATHS",
        "HOST", "KIND", "VENDOR", "SHARED"
    );
    for s in &set.servers {
        let kind = match s.kind {
            ServerKind::Server => "server",
            ServerKind::Platform if s.context_only => "context",
            ServerKind::Platform => "platform",
        };
        let _ = writeln!(
            out,
            "{:<58} {:<9} {:<24} {:<7} {}",
            s.host,
            kind,
            s.vendor,
            if s.shared_host { "yes" } else { "no" },
            s.paths.join(" ")
        );
    }
    let _ = writeln!(
        out,
        "\nhostname heuristic tokens: {}",
        set.heuristics.tokens.join(", ")
    );
    let _ = writeln!(out, "ECH public names: {}", set.ech_public_names.join(", "));
    let _ = writeln!(
        out,
        "MCP methods ({}): {}",
        set.jsonrpc.mcp_methods.len(),
        set.jsonrpc.mcp_methods.join(" ")
    );
    let _ = writeln!(
        out,
        "shared methods: {}",
        set.jsonrpc.shared_methods.join(" ")
    );
    let _ = writeln!(
        out,
        "protocol versions: {}",
        set.jsonrpc.protocol_versions.join(" ")
    );
}

fn run_analyze(args: AnalyzeArgs) -> ExitCode {
    let signatures = match load_signatures(args.signatures.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let allowlist = match &args.allowlist {
        Some(p) => match Allowlist::load(p) {
            Ok(a) => a,
            Err(errors) => {
                for e in &errors {
                    eprintln!("error: {e}");
                }
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => Allowlist::empty(),
    };
    let detector = Arc::new(Detector::new(signatures, allowlist));
    let engine = EngineConfig {
        max_flows: args.max_flows.max(1),
        max_tcp_streams: args.max_tcp_streams as usize,
        max_buffered_bytes: (args.tcp_buffer_mib as usize).saturating_mul(1 << 20),
        flow_idle_timeout: i64::try_from(args.flow_timeout.saturating_mul(1_000_000))
            .unwrap_or(i64::MAX),
        flow_closed_timeout: i64::try_from(args.closed_timeout.saturating_mul(1_000_000))
            .unwrap_or(i64::MAX),
        ..EngineConfig::default()
    };
    let opts = AnalyzeOptions {
        files: args.files.clone(),
        engine,
        report_sanctioned: args.report_sanctioned,
        min_confidence: args.min_confidence,
        progress: !args.no_progress,
        workers: args.workers.max(1),
    };
    let result = analyze(&opts, detector);

    let written = match &args.output {
        Some(path) => std::fs::File::create(path)
            .map_err(|e| format!("{}: cannot create: {e}", path.display()))
            .and_then(|f| {
                let mut w = std::io::BufWriter::new(f);
                write_findings(&mut w, args.format, &result)
                    .map_err(|e| format!("{}: {e}", path.display()))
            }),
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            write_findings(&mut w, args.format, &result)
                .map_err(|e| format!("standard output: {e}"))
        }
    };
    if let Err(e) = written {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    for e in &result.unusable {
        eprintln!("error: {e}");
    }
    for e in &result.damaged {
        eprintln!("warning: {e} (packets before it were analyzed)");
    }
    if !args.quiet {
        print_summary(&result);
    }
    if !result.unusable.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    if args.fail_on_findings && result.shadow > 0 {
        return ExitCode::from(EXIT_FINDINGS);
    }
    ExitCode::SUCCESS
}

fn write_findings(w: &mut dyn Write, format: Format, r: &AnalyzeResult) -> std::io::Result<()> {
    match format {
        Format::Json => write_json_lines(w, &r.records)?,
        Format::Text => write_text(w, &r.records)?,
    }
    w.flush()
}

fn print_summary(r: &AnalyzeResult) {
    let s = &r.stats;
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "── shadowmcp summary ──");
    let _ = writeln!(
        e,
        "packets {}  bytes {}  (ipv4 {}, ipv6 {}, tcp {}, udp {}, other {})",
        s.packets, s.bytes, s.ipv4, s.ipv6, s.tcp, s.udp, s.other_ip
    );
    let errs: Vec<String> = DecodeError::ALL
        .iter()
        .zip(s.decode_errors.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{} {n}", k.as_str()))
        .collect();
    let _ = writeln!(
        e,
        "decode errors {}{}",
        s.decode_errors_total(),
        if errs.is_empty() {
            String::new()
        } else {
            format!(" ({})", errs.join(", "))
        }
    );
    let _ = writeln!(
        e,
        "flows {}  evicted idle {}  evicted at cap {}  tcp gaps {}{}",
        s.flows_created,
        s.flows_evicted_idle,
        s.flows_evicted_capacity,
        s.tcp_gaps,
        // Analysis was partial: say so, and why.
        if s.tcp_streams_skipped + s.tcp_streams_shed > 0 {
            format!(
                "  tcp streams not inspected: {} at the stream cap, {} over the buffer budget",
                s.tcp_streams_skipped, s.tcp_streams_shed
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        e,
        "dns {} (errors {})  tls hellos {} (errors {}, ech {})  quic hellos {} (errors {})",
        s.dns_messages,
        s.dns_errors,
        s.tls_client_hellos,
        s.tls_errors,
        s.tls_ech,
        s.quic_client_hellos,
        s.quic_errors
    );
    let _ = writeln!(
        e,
        "http requests {} responses {} (errors {})  sse events {}  websocket messages {} (errors {})  mcp sessions {}",
        s.http_requests,
        s.http_responses,
        s.http_errors,
        s.sse_events,
        s.websocket_messages,
        s.websocket_errors,
        s.mcp_sessions_confirmed
    );
    let _ = writeln!(
        e,
        "findings: shadow {}  sanctioned {}  | reported high {}  medium {}  low {}{}{}",
        r.shadow,
        r.sanctioned,
        r.by_confidence[2],
        r.by_confidence[1],
        r.by_confidence[0],
        if r.suppressed_below_confidence > 0 {
            format!(
                "  (below --min-confidence: {})",
                r.suppressed_below_confidence
            )
        } else {
            String::new()
        },
        if r.findings_dropped > 0 {
            format!("  (dropped at cap: {})", r.findings_dropped)
        } else {
            String::new()
        },
    );
}

//! The `shadowmcp` command line.

use clap::{Args, Parser, Subcommand, ValueEnum};
use shadowmcp::analyze::{AnalyzeOptions, AnalyzeResult, analyze};
use shadowmcp::config::Config;
use shadowmcp::detect::hosts::Detector;
use shadowmcp::engine::EngineConfig;
use shadowmcp::findings::aggregate::Confidence;
use shadowmcp::findings::output::{write_json_lines, write_text};
use shadowmcp::findings::{Observer, encode};
use shadowmcp::signatures::{OverlayDirs, ServerKind, SignatureSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

// --- build identity and generated documentation (build.rs, generate.rs) ---
mod generate;
mod help_defaults;

/// The command line with the defaults that live in `Config` shown in its
/// help (help_defaults.rs).
fn cli_command() -> clap::Command {
    help_defaults::with_defaults(<Cli as clap::CommandFactory>::command())
}

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
/// Exit status of `run` when a sink gave up on findings (dropped them).
const EXIT_FINDINGS_LOST: u8 = 4;

#[derive(Parser)]
#[command(
    name = "shadowmcp",
    version = LONG_VERSION,
    about = "Passive network sensor that finds shadow MCP: clients talking to Model Context Protocol servers that security has not approved",
    long_about = "shadowmcp reads packets (capture files, or a live interface) and turns DNS lookups, TLS/QUIC \
ClientHellos and cleartext HTTP / SSE / WebSocket JSON-RPC into findings: which client talked to which MCP \
server, with what evidence and confidence, and whether that server is on your allowlist.\n\n\
Exit status: 0 success, 1 `signatures update` failed, 2 unusable input or arguments, 3 shadow findings \
with `analyze --fail-on-findings`, 4 `run` lost findings (a sink dropped at least one; docs/sinks.md)."
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
        after_help = "Settings come from --config (deploy/shadowmcp.toml, docs/configuration.md); flags override them.\n\nExit status: 0 stopped by SIGTERM/SIGINT with every finding delivered or spooled, 2 unusable configuration or arguments (nothing captured), 4 stopped but a sink dropped findings over the run or at the final flush (the log names the sink).\n\nExamples:\n  shadowmcp run --config /etc/shadowmcp/shadowmcp.toml\n  shadowmcp run -i eth1 --sink jsonl:/var/log/shadowmcp/findings.jsonl --sink alertmanager:http://127.0.0.1:9093\n  shadowmcp run --config sensor.toml --check-config"
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
    /// Worker threads, packets sharded by flow.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Metrics listener (/metrics, /healthz, /readyz): ADDRESS:PORT or
    /// HOST:PORT.
    #[arg(long = "metrics-listen", value_name = "ADDR", value_parser = shadowmcp::config::parse_listen_address)]
    metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    detection: DetectionArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Alert sink (repeatable): jsonl:PATH|-, webhook:URL, syslog+udp://HOST:PORT,
    /// syslog+tcp://…, syslog+tls://…, alertmanager:URL (docs/sinks.md).
    #[arg(long = "sink", value_name = "SPEC")]
    sinks: Vec<String>,
    /// User to switch to after opening the captures (when started as root).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// TLS key log to follow (SSLKEYLOGFILE / NSS format; repeatable, added
    /// to decryption.keylogs): read as it grows, like `tail -F`, and TLS
    /// connections whose keys it holds are decrypted (docs/decryption.md).
    /// It may not exist yet.
    #[arg(long = "tls-keylog", value_name = "FILE")]
    tls_keylog: Vec<PathBuf>,
    /// Validate the configuration (and signatures, allowlist, sinks) and exit.
    #[arg(long)]
    check_config: bool,
    /// Log format on standard error: `text` for people, `json` (one object
    /// per line) for log collectors. Level: SHADOWMCP_LOG (default info).
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON object per line (docs/findings.md).
    Json,
    /// One OCSF 1.7.0 Detection Finding (class 2004) per line, for SIEMs.
    Ocsf,
    /// One ECS 9.x alert document per line, for Elastic and others.
    Ecs,
    /// An aligned table with the evidence of each finding, for analysts.
    Text,
}

#[derive(Args)]
struct AnalyzeArgs {
    /// Capture files (pcap or pcapng), read in order as one timeline; `-`
    /// reads standard input.
    #[arg(required = true, value_name = "PCAP")]
    files: Vec<PathBuf>,
    /// TOML configuration file, as for `run`: its detection and limits
    /// settings apply (flags override them); capture, sinks and metrics
    /// settings are not used.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    detection: DetectionArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Write findings to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Exit with status 3 when at least one shadow finding was made.
    #[arg(long)]
    fail_on_findings: bool,
    /// TLS key log (SSLKEYLOGFILE / NSS format; repeatable): TLS
    /// connections whose keys it holds are decrypted and their plaintext
    /// classified (docs/decryption.md). Keys inside pcapng files are read
    /// too.
    #[arg(long = "tls-keylog", value_name = "FILE")]
    tls_keylog: Vec<PathBuf>,
    /// Engine threads (packets are sharded by flow); the output is the same
    /// for any number.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
    /// Do not print the run summary on standard error.
    #[arg(short, long)]
    quiet: bool,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Detection settings of `analyze` and `run`; each overrides the
/// configuration file's `[detection]` value.
#[derive(Args)]
struct DetectionArgs {
    /// The sensor's name in every finding (`observer.name`) [default: the
    /// host name].
    #[arg(long, value_name = "NAME")]
    sensor_name: Option<String>,
    /// Signature directory replacing the built-in set (see signatures/README.md)
    /// [default: the built-in set].
    #[arg(long, value_name = "DIR")]
    signatures: Option<PathBuf>,
    /// Sanctioned servers: one host, *.suffix, IP or CIDR per line; '#' comments.
    #[arg(long, value_name = "FILE")]
    allowlist: Option<PathBuf>,
    /// Also report traffic to servers on the allowlist (verdict "sanctioned").
    #[arg(long)]
    report_sanctioned: bool,
    /// Report only findings at or above this confidence.
    #[arg(long, value_enum, value_name = "LEVEL")]
    min_confidence: Option<Confidence>,
    #[command(flatten)]
    overlays: OverlayArgs,
}

impl DetectionArgs {
    fn apply(&self, cfg: &mut Config) {
        if self.sensor_name.is_some() {
            cfg.sensor.name.clone_from(&self.sensor_name);
        }
        let d = &mut cfg.detection;
        if self.signatures.is_some() {
            d.signatures.clone_from(&self.signatures);
        }
        if self.allowlist.is_some() {
            d.allowlist.clone_from(&self.allowlist);
        }
        d.report_sanctioned |= self.report_sanctioned;
        if let Some(c) = self.min_confidence {
            d.min_confidence = c;
        }
        d.overlays.extend(self.overlays.overlay.iter().cloned());
        if self.overlays.no_default_overlays {
            d.default_overlays = false;
        }
    }
}

/// Memory bounds and timeouts of `analyze` and `run`; each overrides the
/// configuration file's `[limits]` value (docs/configuration.md gives
/// every default).
#[derive(Args)]
struct LimitArgs {
    /// Maximum flows tracked at once; the least recently seen is evicted.
    #[arg(long, value_name = "N")]
    max_flows: Option<usize>,
    /// TCP streams reassembled and parsed at once; beyond, new streams are
    /// counted and not inspected.
    #[arg(long, value_name = "N")]
    max_tcp_streams: Option<usize>,
    /// MiB the buffers of inspected TCP streams may hold (out-of-order
    /// segments, partial messages, bodies); over it, streams holding more
    /// than their share are no longer inspected.
    #[arg(long, value_name = "MIB")]
    tcp_buffer_mib: Option<usize>,
    /// Seconds without packets after which a flow is finished.
    #[arg(long, value_name = "SECS")]
    flow_timeout: Option<u64>,
    /// Seconds a TCP flow is kept after it ended (FIN both ways, or RST),
    /// for its late packets; at most --flow-timeout.
    #[arg(long, value_name = "SECS")]
    closed_timeout: Option<u64>,
}

impl LimitArgs {
    /// The flag that set the configuration key `key`, if one did.
    fn flag_for(&self, key: &str) -> Option<&'static str> {
        match key {
            "limits.max_flows" => self.max_flows.is_some().then_some("--max-flows"),
            "limits.max_tcp_streams" => self
                .max_tcp_streams
                .is_some()
                .then_some("--max-tcp-streams"),
            "limits.tcp_buffer_mib" => self.tcp_buffer_mib.is_some().then_some("--tcp-buffer-mib"),
            "limits.flow_timeout_secs" => self.flow_timeout.is_some().then_some("--flow-timeout"),
            "limits.closed_flow_timeout_secs" => {
                self.closed_timeout.is_some().then_some("--closed-timeout")
            }
            _ => None,
        }
    }

    fn apply(&self, cfg: &mut Config) {
        let l = &mut cfg.limits;
        if let Some(v) = self.max_flows {
            l.max_flows = v;
        }
        if let Some(v) = self.max_tcp_streams {
            l.max_tcp_streams = v;
        }
        if let Some(v) = self.tcp_buffer_mib {
            l.tcp_buffer_mib = v;
        }
        if let Some(v) = self.flow_timeout {
            l.flow_timeout_secs = v;
        }
        if let Some(v) = self.closed_timeout {
            l.closed_flow_timeout_secs = v;
        }
    }
}

/// Check the configuration after the flags were applied: an error in a
/// value a flag set names the flag, others the file and key.
fn validate(cfg: &Config, origin: &str, limits: &LimitArgs) -> anyhow::Result<()> {
    let Err(e) = cfg.validate(origin) else {
        return Ok(());
    };
    Err(match limits.flag_for(&e.key) {
        Some(flag) => anyhow::anyhow!("{flag}: {}", e.message),
        None => e.into(),
    })
}

/// The configuration file (or the defaults), where it came from for error
/// messages.
fn load_config(path: Option<&Path>) -> Result<(Config, String), ExitCode> {
    match path {
        Some(p) => match Config::load(p) {
            Ok(c) => Ok((c, p.display().to_string())),
            Err(e) => {
                eprintln!("error: {e}");
                Err(ExitCode::from(EXIT_USAGE))
            }
        },
        None => Ok((Config::default(), "command line".to_owned())),
    }
}

#[derive(Subcommand)]
enum SignaturesCommand {
    /// Validate a signature set and its overlays; errors are printed as FILE:LINE:COLUMN: message.
    #[command(
        after_help = "Examples:\n  shadowmcp signatures check                 # built-in set + /etc and /var/lib overlays\n  shadowmcp signatures check signatures/ --no-default-overlays\n  shadowmcp signatures check --overlay /etc/shadowmcp/extra.d"
    )]
    Check {
        /// Signature directory replacing the built-in set [default: the built-in set]
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        overlays: OverlayArgs,
    },
    /// Print the loaded signature set with the origin of every entry.
    List {
        /// Signature directory replacing the built-in set [default: the built-in set].
        #[arg(long, value_name = "DIR")]
        signatures: Option<PathBuf>,
        #[command(flatten)]
        overlays: OverlayArgs,
        /// Print only the host entries, one a line (for counting and diffs).
        #[arg(long)]
        hosts: bool,
    },
    /// Fetch MCP server catalogues (the official MCP Registry by default) and write the
    /// generated overlay; the previous overlay is kept when anything fails.
    #[command(
        after_help = "Exit status: 0 written (or --dry-run), 1 the update failed and the previous overlay is kept.\n\nExamples:\n  shadowmcp signatures update && systemctl reload shadowmcp\n  shadowmcp signatures update --source pages.json --output /var/lib/shadowmcp/signatures.d   # air-gapped copy\n  shadowmcp signatures update --source https://registry.modelcontextprotocol.io/v0.1/servers --source /etc/shadowmcp/catalogue.csv"
    )]
    Update(UpdateArgs),
}

/// Overlay selection shared by the signature-loading commands.
#[derive(Args, Clone, Default)]
struct OverlayArgs {
    /// Overlay directory merged after the base set (repeatable; must exist). See
    /// signatures/README.md, section Overlays.
    #[arg(long = "overlay", value_name = "DIR")]
    overlay: Vec<PathBuf>,
    /// Do not read /etc/shadowmcp/signatures.d and /var/lib/shadowmcp/signatures.d.
    #[arg(long)]
    no_default_overlays: bool,
}

impl OverlayArgs {
    fn dirs(&self) -> OverlayDirs {
        OverlayDirs::from_flags(self.overlay.clone(), self.no_default_overlays)
    }
}

#[derive(Args)]
struct UpdateArgs {
    /// Registry list URL (cursor pages followed), saved pages (a JSON file holding one page
    /// or an array of pages), or a plain list (one URL a line, or CSV with a `url` column);
    /// repeatable.
    #[arg(long = "source", value_name = "URL|FILE")]
    sources: Vec<String>,
    /// Directory of the generated overlay (the file written is registry.toml).
    #[arg(long, value_name = "DIR", default_value = shadowmcp::signatures::update::DEFAULT_OUTPUT_DIR)]
    output: PathBuf,
    /// Timeout of each HTTP request (connect, headers and body).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Most pages followed per source.
    #[arg(long, value_name = "N")]
    max_pages: Option<usize>,
    /// Accept a list with less than half the previous overlay's entries.
    #[arg(long)]
    allow_shrink: bool,
    /// PEM CA bundle replacing the web PKI roots (TLS-inspecting proxy).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Signature directory used to classify hosts [default: the built-in set]
    #[arg(long, value_name = "DIR")]
    signatures: Option<PathBuf>,
    /// Leave out hosts the curated set already attributes (used to build the bundled snapshot).
    #[arg(long)]
    exclude_known: bool,
    /// Show what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> ExitCode {
    // `shadowmcp generate ...` (man pages, completions) is parsed apart, so
    // that it appears in neither the help nor the pages it writes.
    if let Some(code) = generate::dispatch(cli_command) {
        return code;
    }
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&cli_command().get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Analyze(args) => run_analyze(args),
        Command::Run(args) => run_sensor(args),
        Command::Signatures(SignaturesCommand::Check { dir, overlays }) => {
            signatures_check(dir.as_deref(), &overlays)
        }
        Command::Signatures(SignaturesCommand::List {
            signatures,
            overlays,
            hosts,
        }) => match load_signatures_with(signatures.as_deref(), &overlays.dirs()) {
            Ok(set) if hosts => {
                let mut out = std::io::stdout().lock();
                for s in &set.servers {
                    let _ = writeln!(out, "{}", s.host);
                }
                ExitCode::SUCCESS
            }
            Ok(set) => {
                print_signatures(&set);
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Signatures(SignaturesCommand::Update(args)) => signatures_update(args),
    }
}

fn run_sensor(args: RunArgs) -> ExitCode {
    use shadowmcp::sinks::SinkConfig;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHADOWMCP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
    let (mut cfg, origin) = match args.config.as_deref() {
        Some(p) => match Config::load(p) {
            Ok(c) => (c, p.display().to_string()),
            Err(e) => return fail(e),
        },
        None => (Config::default(), "command line".to_owned()),
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
    args.detection.apply(&mut cfg);
    args.limits.apply(&mut cfg);
    if args.user.is_some() {
        cfg.privileges.user = args.user;
    }
    cfg.decryption.keylogs.extend(args.tls_keylog);
    // With --check-config every problem is listed, not only the first.
    let mut problems: Vec<String> = Vec::new();
    for spec in &args.sinks {
        match SinkConfig::parse_cli(spec) {
            Ok(s) => cfg.sinks.push(s),
            Err(e) if args.check_config => problems.push(e.to_string()),
            Err(e) => return fail(e),
        }
    }
    if let Err(e) = validate(&cfg, &origin, &args.limits) {
        return fail(e);
    }
    for (i, s) in cfg.sinks.iter().enumerate() {
        if let Err(e) = s.validate() {
            if !args.check_config {
                return fail(format!("sinks[{i}]: {e}"));
            }
            problems.push(format!("sinks[{i}]: {e}"));
        }
    }
    if args.check_config {
        return check_config(&cfg, &origin, problems);
    }
    match shadowmcp::sensor::run(shadowmcp::sensor::RunOptions { config: cfg }) {
        Ok(s) if s.findings_lost > 0 => {
            tracing::error!(
                lost = s.findings_lost,
                "findings were lost: sinks dropped {} finding(s)",
                s.findings_lost
            );
            ExitCode::from(EXIT_FINDINGS_LOST)
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// `run --check-config`: everything `run` checks short of capturing —
/// the interfaces exist, the BPF filter compiles, sinks can be written, the
/// user exists, signatures and allowlist load. Every problem is listed;
/// exit 2 if there is one.
fn check_config(cfg: &Config, origin: &str, mut problems: Vec<String>) -> ExitCode {
    if cfg.capture.interfaces.is_empty() {
        problems.push("no interface to capture on (capture.interfaces or --interface)".into());
    }
    for i in &cfg.capture.interfaces {
        if i != "any" && !Path::new("/sys/class/net").join(i).exists() {
            problems.push(format!("interface {i}: no such interface"));
        }
    }
    if !cfg.capture.bpf.is_empty() {
        let compiled = pcap::Capture::dead(pcap::Linktype::ETHERNET)
            .and_then(|c| c.compile(&cfg.capture.bpf, true).map(drop));
        if let Err(e) = compiled {
            problems.push(format!("BPF filter {:?}: {e}", cfg.capture.bpf));
        }
    }
    if let Some(u) = &cfg.privileges.user
        && !shadowmcp::privileges::user_exists(u)
    {
        problems.push(format!("privileges.user: no such user {u:?}"));
    }
    for s in &cfg.sinks {
        problems.extend(s.preflight());
    }
    for k in &cfg.decryption.keylogs {
        match keylog_preflight(k) {
            Ok(Some(note)) => tracing::warn!("{note}"),
            Ok(None) => {}
            Err(p) => problems.push(p),
        }
    }
    let detector = match Detector::load(&cfg.detection) {
        Ok(d) => Some(d),
        Err(errors) => {
            problems.extend(errors.0);
            None
        }
    };
    if !problems.is_empty() {
        for p in &problems {
            tracing::error!("{p}");
        }
        tracing::error!("{origin}: {} problem(s)", problems.len());
        return ExitCode::from(EXIT_USAGE);
    }
    if let Some(d) = detector {
        println!(
            "{origin}: OK — {} interface(s), {} worker(s), {} sink(s), signatures {} ({} servers), allowlist {} entries",
            cfg.capture.interfaces.len(),
            cfg.capture.workers,
            cfg.sinks.len(),
            d.signatures.version,
            d.signatures.servers.len(),
            d.allowlist.len()
        );
    }
    ExitCode::SUCCESS
}

/// Key log files read at most this large (a million lines is ~200 MB).
const MAX_KEYLOG_BYTES: u64 = 1 << 30;

/// `--check-config` of a followed key log: a file that can be read; one
/// that does not exist yet is normal (the client writes it when it starts)
/// and only noted, but its directory must exist, since clients do not
/// create directories. `Ok(Some(note))`: usable, with a warning.
fn keylog_preflight(path: &Path) -> Result<Option<String>, String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(format!("decryption key log {shown}: is a directory")),
        Ok(m) => {
            std::fs::File::open(path)
                .map_err(|e| format!("decryption key log {shown}: cannot read: {e}"))?;
            use std::os::unix::fs::PermissionsExt;
            Ok((m.permissions().mode() & 0o044 != 0).then(|| {
                format!(
                    "decryption key log {shown}: readable by group or others; it holds TLS session secrets (chmod 600)"
                )
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if dir.is_dir() {
                Ok(Some(format!(
                    "decryption key log {shown}: does not exist yet; it is followed once it appears"
                )))
            } else {
                Err(format!(
                    "decryption key log {shown}: directory {} does not exist",
                    dir.display()
                ))
            }
        }
        Err(e) => Err(format!("decryption key log {shown}: {e}")),
    }
}

/// The session keys of `--tls-keylog` files and of the configuration's
/// key logs, read whole. Without any, a dormant context that a capture
/// switches on when it turns out to be pcapng (which may carry its keys
/// in Decryption Secrets Blocks), whatever its name or source.
fn session_keys(
    keylogs: &[PathBuf],
    cfg: &shadowmcp::config::DecryptionConfig,
) -> Result<Arc<shadowmcp::tls_decrypt::DecryptContext>, String> {
    use shadowmcp::tls_decrypt::{DecryptContext, KeyTable};
    let table = Arc::new(KeyTable::new(cfg.max_session_keys));
    for k in keylogs.iter().chain(&cfg.keylogs) {
        let r = table
            .load_file(k, MAX_KEYLOG_BYTES)
            .map_err(|e| e.to_string())?;
        if let Some((line, e)) = &r.first_error {
            eprintln!(
                "warning: {}:{line}: {e} ({} malformed line(s) skipped, {} keys read)",
                k.display(),
                r.malformed,
                r.keys
            );
        }
    }
    let (limits, budget) = (cfg.limits(), cfg.hold_budget_bytes());
    Ok(Arc::new(if keylogs.is_empty() && cfg.keylogs.is_empty() {
        DecryptContext::dormant(table, limits, budget)
    } else {
        DecryptContext::new(table, limits, budget)
    }))
}

/// Before anything is read: every capture can be opened (a missing second
/// file must not leave the first one analysed and written), and the output
/// is not one of them (findings must never overwrite the evidence).
fn check_inputs(files: &[PathBuf], output: Option<&Path>) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let out = output.and_then(|o| std::fs::metadata(o).ok());
    for f in files {
        let meta = std::fs::File::open(f)
            .and_then(|h| h.metadata())
            .map_err(|e| anyhow::anyhow!("{}: cannot open: {e}", f.display()))?;
        if let (Some(o), Some(path)) = (&out, output)
            && o.dev() == meta.dev()
            && o.ino() == meta.ino()
        {
            anyhow::bail!(
                "-o {}: that is the input capture {}; refusing to overwrite it",
                path.display(),
                f.display()
            );
        }
    }
    Ok(())
}

/// A fatal error of `run`, logged in the chosen log format; exit 2.
fn fail(e: impl std::fmt::Display) -> ExitCode {
    for line in e.to_string().lines() {
        tracing::error!("{line}");
    }
    ExitCode::from(EXIT_USAGE)
}

fn load_signatures_with(
    dir: Option<&Path>,
    overlays: &OverlayDirs,
) -> Result<SignatureSet, ExitCode> {
    SignatureSet::load_with_overlays(dir, overlays).map_err(|errors| {
        for e in &errors {
            eprintln!("error: {e}");
        }
        ExitCode::from(EXIT_USAGE)
    })
}

fn signatures_check(dir: Option<&Path>, overlays: &OverlayArgs) -> ExitCode {
    let shown = dir.map_or_else(|| "built-in set".to_owned(), |d| d.display().to_string());
    match SignatureSet::load_with_overlays_report(dir, &overlays.dirs()) {
        Ok((set, report)) => {
            println!(
                "{shown}: OK — signature set {} with {} servers/platforms, {} MCP methods",
                set.version,
                set.servers.len(),
                set.jsonrpc.mcp_methods.len()
            );
            for o in &set.overlays {
                println!(
                    "  overlay {}: {} entries, {} added, {} suppressions{}",
                    o.path,
                    o.entries,
                    o.added,
                    o.suppressions,
                    o.fetched_at
                        .as_deref()
                        .map(|f| format!(", fetched {f}"))
                        .unwrap_or_default()
                );
            }
            if !report.shadowed.is_empty() {
                println!(
                    "  {} overlay entries shadowed by earlier ones (first definition wins)",
                    report.shadowed.len()
                );
            }
            for n in &report.replaced {
                println!("  {} replaces {} ({})", n.origin, n.other, n.host);
            }
            for n in &report.suppressed {
                println!("  {} suppressed by {}", n.origin, n.other);
            }
            for n in &report.unused_suppressions {
                eprintln!(
                    "warning: {}: suppression of `{}` matches no entry",
                    n.origin, n.host
                );
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{shown}: {} error(s)", errors.len());
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Most hosts listed per change kind after an update.
const MAX_LISTED_CHANGES: usize = 50;

fn signatures_update(args: UpdateArgs) -> ExitCode {
    use shadowmcp::signatures::update::{UpdateOptions, run};
    // Classification needs the curated set only (no overlays, no snapshot:
    // the snapshot is built from this command's output).
    let base = match SignatureSet::load_curated(args.signatures.as_deref()) {
        Ok(b) => b,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let defaults = UpdateOptions::default();
    let opts = UpdateOptions {
        sources: args.sources,
        output_dir: args.output,
        timeout: args.timeout.unwrap_or(defaults.timeout),
        max_pages: args.max_pages.unwrap_or(defaults.max_pages),
        allow_shrink: args.allow_shrink,
        ca_file: args.ca_file,
        exclude_known: args.exclude_known,
        dry_run: args.dry_run,
        ..defaults
    };
    match run(&opts, &base) {
        Ok(s) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{}: {} hosts from {} server versions ({} pages/files){}{}",
                s.path.display(),
                s.entries,
                s.versions_read,
                s.pages,
                s.previous
                    .map(|p| format!("; previously {p}"))
                    .unwrap_or_default(),
                if s.known > 0 {
                    format!("; {} already in the curated set left out", s.known)
                } else {
                    String::new()
                }
            );
            for (mark, what, list) in [
                ('+', "added", &s.added),
                ('-', "removed", &s.removed),
                ('!', "deprecated", &s.deprecated),
                ('*', "active again", &s.reactivated),
            ] {
                if list.is_empty() {
                    continue;
                }
                let _ = writeln!(out, "{what} ({}):", list.len());
                for h in list.iter().take(MAX_LISTED_CHANGES) {
                    let _ = writeln!(out, "  {mark} {h}");
                }
                if list.len() > MAX_LISTED_CHANGES {
                    let _ = writeln!(out, "  … and {} more", list.len() - MAX_LISTED_CHANGES);
                }
            }
            if !s.skipped.is_empty() {
                let mut reasons: std::collections::BTreeMap<&str, usize> = Default::default();
                for k in &s.skipped {
                    *reasons.entry(k.reason.as_str()).or_default() += 1;
                }
                let _ = writeln!(out, "left out {} remote URLs:", s.skipped.len());
                for (r, n) in reasons {
                    let _ = writeln!(out, "  {n} × {r}");
                }
            }
            let _ = writeln!(
                out,
                "{}",
                if s.written {
                    "written; reload the sensor (systemctl reload shadowmcp) to use it"
                } else {
                    "dry run: nothing written"
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("the previous overlay (if any) is kept unchanged");
            ExitCode::FAILURE
        }
    }
}

fn print_signatures(set: &SignatureSet) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "signature set {}", set.version);
    for o in &set.overlays {
        let _ = writeln!(
            out,
            "overlay {}: {} of {} entries added{}",
            o.path,
            o.added,
            o.entries,
            o.fetched_at
                .as_deref()
                .map(|f| format!(", fetched {f}"))
                .unwrap_or_default()
        );
    }
    let exact = set
        .servers
        .iter()
        .filter(|s| !shadowmcp::signatures::hostmatch::is_pattern(&s.host))
        .count();
    let _ = writeln!(
        out,
        "{} entries: {exact} exact hosts, {} patterns",
        set.servers.len(),
        set.servers.len() - exact
    );
    let _ = writeln!(
        out,
        "\n{:<58} {:<9} {:<24} {:<7} {:<24} ORIGIN",
        "HOST", "KIND", "VENDOR", "SHARED", "PATHS"
    );
    for s in &set.servers {
        let kind = match s.kind {
            ServerKind::Server => "server",
            ServerKind::Platform if s.context_only => "context",
            ServerKind::Platform => "platform",
        };
        let _ = writeln!(
            out,
            "{:<58} {:<9} {:<24} {:<7} {:<24} {}{}",
            s.host,
            kind,
            s.vendor,
            if s.shared_host { "yes" } else { "no" },
            s.paths.join(" "),
            s.origin,
            if s.deprecated { " (deprecated)" } else { "" }
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

fn run_analyze(mut args: AnalyzeArgs) -> ExitCode {
    // `-` is standard input (a capture piped in).
    for f in &mut args.files {
        if f.as_os_str() == "-" {
            *f = PathBuf::from("/dev/stdin");
        }
    }
    let (mut cfg, origin) = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    args.detection.apply(&mut cfg);
    args.limits.apply(&mut cfg);
    // The limits are checked against the analysis's workers.
    cfg.capture.workers = usize::from(args.workers);
    if let Err(e) = validate(&cfg, &origin, &args.limits) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let detector = match Detector::load(&cfg.detection) {
        Ok(d) => {
            for n in &d.allowlist.notes {
                eprintln!("note: {n}");
            }
            Arc::new(d)
        }
        Err(errors) => {
            for e in errors.0 {
                eprintln!("error: {e}");
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let decrypt = match session_keys(&args.tls_keylog, &cfg.decryption) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let opts = AnalyzeOptions {
        decrypt: decrypt.clone(),
        files: args.files.clone(),
        engine: EngineConfig::from(&cfg),
        report_sanctioned: cfg.detection.report_sanctioned,
        min_confidence: cfg.detection.min_confidence,
        progress: !args.no_progress,
        workers: usize::from(args.workers),
        // Offline the source is the files; the analyst's machine is not
        // named.
        observer: Observer {
            hostname: None,
            ..Observer::new(cfg.sensor.name.as_deref()).with_files(&args.files)
        },
    };
    if let Err(e) = check_inputs(&args.files, args.output.as_deref()) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
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
        if let Some(d) = decrypt.as_ref().filter(|d| d.enabled()) {
            let c = d.counters.snapshot();
            eprintln!(
                "tls decryption: flows with keys {}  decrypted {}  missing keys {}  auth failures {}  unsupported {}  records decrypted {}  records skipped {}  plaintext bytes {}  held {}  dropped {}",
                c.flows_with_keys,
                c.flows_decrypted,
                c.flows_missing_keys,
                c.auth_failures,
                c.unsupported,
                c.records_decrypted,
                c.records_skipped,
                c.plaintext_bytes,
                c.records_held,
                c.records_dropped
            );
        }
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
        Format::Ocsf => encode::write_records(w, encode::Format::Ocsf, &r.records)?,
        Format::Ecs => encode::write_records(w, encode::Format::Ecs, &r.records)?,
        Format::Text => write_text(w, &r.records)?,
    }
    w.flush()
}

fn print_summary(r: &AnalyzeResult) {
    let s = &r.stats;
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "── shadowmcp summary ──");
    for line in s.summary_lines() {
        let _ = writeln!(e, "{line}");
    }
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

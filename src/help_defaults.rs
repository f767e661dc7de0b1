//! `[default: …]` in `--help` (and the man pages) for the flags whose
//! default is not clap's: a `run`/`analyze` flag overrides a configuration
//! key, so its default is `Config::default()`'s, and a `signatures update`
//! flag falls back on `UpdateOptions::default()`. The values are read from
//! those, never written here a second time. Part of the binary crate
//! (declared in main.rs).

use clap::Command;
use shadowmcp::config::Config;
use shadowmcp::signatures::update::{DEFAULT_SOURCE, UpdateOptions};

/// The command line `Cli::command()` built, with the defaults added.
pub fn with_defaults(cli: Command) -> Command {
    let c = Config::default();
    let shared = [
        ("min_confidence", json_name(&c.detection.min_confidence)),
        ("max_flows", c.limits.max_flows.to_string()),
        ("max_tcp_streams", c.limits.max_tcp_streams.to_string()),
        ("tcp_buffer_mib", c.limits.tcp_buffer_mib.to_string()),
        ("flow_timeout", c.limits.flow_timeout_secs.to_string()),
        (
            "closed_timeout",
            c.limits.closed_flow_timeout_secs.to_string(),
        ),
    ];
    let run = [
        ("snaplen", c.capture.snaplen.to_string()),
        ("buffer_size", c.capture.buffer_size_mib.to_string()),
        ("promisc", c.capture.promisc.to_string()),
        // The number of cores of the machine that runs: not one number.
        ("workers", "one per core".to_owned()),
        ("metrics_listen", c.metrics.listen.to_string()),
    ];
    let u = UpdateOptions::default();
    let update = [
        ("sources", DEFAULT_SOURCE.to_owned()),
        ("timeout", humantime::format_duration(u.timeout).to_string()),
        ("max_pages", u.max_pages.to_string()),
    ];
    cli.mut_subcommand("run", |s| add(s, run.iter().chain(&shared)))
        .mut_subcommand("analyze", |s| add(s, shared.iter()))
        .mut_subcommand("signatures", |s| {
            s.mut_subcommand("update", |s| add(s, update.iter()))
        })
}

/// Appends ` [default: VALUE]` to the help of each argument named.
fn add<'a>(mut cmd: Command, defaults: impl Iterator<Item = &'a (&'a str, String)>) -> Command {
    for (id, value) in defaults {
        cmd = cmd.mut_arg(*id, |a| {
            let help = a.get_help().map(ToString::to_string).unwrap_or_default();
            a.help(format!("{help} [default: {value}]"))
        });
    }
    cmd
}

/// The spelling of a unit enum in the configuration file (`low`).
fn json_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

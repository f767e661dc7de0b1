//! `shadowmcp generate`: man pages and shell completions written from the
//! clap definitions of the command line, for packages (scripts/build-deb.sh)
//! and for installs by hand. Part of the binary crate (declared in main.rs).
//! It is not one of the `Cli` subcommands but parsed before them, so that it
//! shows in neither `--help`, the man pages nor the completions it writes
//! (clap_complete lists hidden subcommands too).

use clap::{Parser, Subcommand};
use clap_complete::Shell;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `shadowmcp generate`.
#[derive(Parser)]
#[command(
    name = "shadowmcp generate",
    bin_name = "shadowmcp generate",
    about = "Write the man pages or a shell completion script of shadowmcp"
)]
struct GenerateCli {
    #[command(subcommand)]
    what: GenerateCommand,
}

/// When the first argument is `generate`, runs it for the command line that
/// `cli` returns (`Cli::command`) and gives its exit status; else `None`.
pub fn dispatch(cli: impl FnOnce() -> clap::Command) -> Option<ExitCode> {
    let mut args = std::env::args_os();
    let _binary = args.next();
    if args.next().as_deref() != Some(OsStr::new("generate")) {
        return None;
    }
    let parsed =
        GenerateCli::parse_from(std::iter::once(OsString::from("shadowmcp generate")).chain(args));
    Some(run(parsed.what, cli()))
}

/// What `shadowmcp generate` writes.
#[derive(Subcommand)]
pub enum GenerateCommand {
    /// Write one man page per command into DIR: shadowmcp.1,
    /// shadowmcp-analyze.1, shadowmcp-run.1, shadowmcp-signatures.1, ...
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Write the completion script for SHELL into DIR (shadowmcp.bash,
    /// _shadowmcp for zsh, shadowmcp.fish, ...).
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: Shell,
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// A file or directory that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct GenerateError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Runs `what` for the command line `cli` (`Cli::command()`), printing
/// each file written; exit status 1 when a file cannot be written.
pub fn run(what: GenerateCommand, cli: clap::Command) -> ExitCode {
    let written = match what {
        GenerateCommand::Man { dir } => write_man_pages(cli, &dir),
        GenerateCommand::Completions { shell, dir } => write_completions(cli, shell, &dir),
    };
    match written {
        Ok(paths) => {
            for p in paths {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One page per visible command and subcommand, named after its display
/// name (`shadowmcp-signatures-check.1`); hidden commands and `help` get none.
pub fn write_man_pages(cli: clap::Command, dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    create_dir(dir)?;
    let mut cli = cli.disable_help_subcommand(true);
    // Sets the display names (`shadowmcp-analyze`) and usage lines of the
    // subcommands, which each page takes from its own command.
    cli.build();
    let mut written = Vec::new();
    man_pages_of(&cli, dir, &mut written)?;
    Ok(written)
}

fn man_pages_of(
    cmd: &clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), GenerateError> {
    let page = clap_mangen::Man::new(cmd.clone())
        .date(env!("SHADOWMCP_BUILD_DATE"))
        .source(concat!("shadowmcp ", env!("CARGO_PKG_VERSION")))
        .manual("shadowmcp manual");
    let path = dir.join(page.get_filename());
    let mut text = Vec::new();
    page.render(&mut text).map_err(|source| GenerateError {
        path: path.clone(),
        source,
    })?;
    write_file(&path, &text)?;
    written.push(path);
    for sub in cmd.get_subcommands() {
        if !sub.is_hide_set() && sub.get_name() != "help" {
            man_pages_of(sub, dir, written)?;
        }
    }
    Ok(())
}

/// The completion script of `shell` for the `shadowmcp` binary.
pub fn write_completions(
    mut cli: clap::Command,
    shell: Shell,
    dir: &Path,
) -> Result<Vec<PathBuf>, GenerateError> {
    create_dir(dir)?;
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cli, "shadowmcp", &mut text);
    let path = dir.join(clap_complete::Generator::file_name(&shell, "shadowmcp"));
    write_file(&path, &text)?;
    Ok(vec![path])
}

fn create_dir(dir: &Path) -> Result<(), GenerateError> {
    std::fs::create_dir_all(dir).map_err(|source| GenerateError {
        path: dir.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), GenerateError> {
    std::fs::write(path, bytes).map_err(|source| GenerateError {
        path: path.to_path_buf(),
        source,
    })
}

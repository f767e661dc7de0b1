//! Build identity: the git commit and the build date, for `shadowmcp --version`
//! and the `shadowmcp_build_info` metric.
//!
//! Sets two variables for the crate's code (`env!`/`option_env!`):
//!
//! * `SHADOWMCP_GIT_COMMIT`: the short commit hash, with `-dirty` when the
//!   files compiled into the binary (`src/`, `signatures/`, `build.rs`,
//!   `Cargo.toml`, `Cargo.lock`) differ from that commit; `unknown` without a
//!   git checkout (a source tarball) or without git. A value already set in the
//!   environment of the build wins (a container build without `.git` passes it
//!   as a build argument); a crates.io package's `.cargo_vcs_info.json` is used
//!   when there is no `.git`.
//! * `SHADOWMCP_GIT_COMMIT_ORIGIN`: where that came from: `git`,
//!   `environment`, `cargo-vcs-info` or `none` (for tests).
//! * `SHADOWMCP_BUILD_DATE`: the UTC date (`YYYY-MM-DD`) of `SOURCE_DATE_EPOCH`
//!   when set (reproducible builds), else of the time this script ran.
//!
//! Nothing here may fail the build: every problem gives `unknown`.
//! tests/build_identity.rs includes this file to test its functions (hence
//! the `pub` items).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The paths whose changes make a binary differ from its commit: watched
/// for reruns and checked for the `-dirty` mark (the same list, so the mark
/// cannot go stale between reruns).
const BUILD_INPUTS: &[&str] = &["src", "signatures", "build.rs", "Cargo.toml", "Cargo.lock"];

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-env-changed=SHADOWMCP_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    for input in BUILD_INPUTS {
        println!("cargo:rerun-if-changed={input}");
    }

    let (commit, origin) = match std::env::var("SHADOWMCP_GIT_COMMIT") {
        Ok(given) if is_plain(&given) => (given, "environment"),
        _ => match commit_from_checkout(&root) {
            Some(found) => found,
            None => ("unknown".to_owned(), "none"),
        },
    };
    println!("cargo:rustc-env=SHADOWMCP_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=SHADOWMCP_GIT_COMMIT_ORIGIN={origin}");
    println!("cargo:rustc-env=SHADOWMCP_BUILD_DATE={}", build_date());
}

/// A value fit for a version line and a metric label.
pub fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// The commit of the checkout at `root` (only `root` itself: a crate unpacked
/// inside some other repository must not report that repository's commit).
fn commit_from_checkout(root: &Path) -> Option<(String, &'static str)> {
    let dot_git = root.join(".git");
    if !dot_git.exists() {
        return commit_from_vcs_info(root).map(|c| (c, "cargo-vcs-info"));
    }
    watch_head(&dot_git);
    let hash = git(root, &["rev-parse", "--short=7", "HEAD"])?;
    let hash = hash.trim();
    if !is_plain(hash) {
        return None;
    }
    let mut status_args = vec!["status", "--porcelain", "--"];
    status_args.extend_from_slice(BUILD_INPUTS);
    // An unreadable status says nothing about changes: leave the mark off
    // rather than fail.
    let dirty = git(root, &status_args).is_some_and(|out| !out.trim().is_empty());
    let commit = if dirty {
        format!("{hash}-dirty")
    } else {
        hash.to_owned()
    };
    Some((commit, "git"))
}

/// Standard output of a successful `git -C root ARGS`.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

/// Reruns when HEAD moves: HEAD itself, the branch it points to, and
/// packed-refs (where a branch lives after `git pack-refs`). `.git` is a
/// directory in a clone and a file (`gitdir: PATH`) in a worktree, whose
/// branches live in the common directory named by its `commondir` file.
fn watch_head(dot_git: &Path) {
    let git_dir = if dot_git.is_file() {
        let Ok(text) = std::fs::read_to_string(dot_git) else {
            return;
        };
        let Some(target) = text.lines().find_map(|l| l.strip_prefix("gitdir:")) else {
            return;
        };
        let target = Path::new(target.trim());
        match dot_git.parent() {
            Some(parent) => parent.join(target),
            None => target.to_path_buf(),
        }
    } else {
        dot_git.to_path_buf()
    };
    let common_dir = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(rel) => git_dir.join(rel.trim()),
        Err(_) => git_dir.clone(),
    };
    let head = git_dir.join("HEAD");
    watch(&head);
    watch(&common_dir.join("packed-refs"));
    if let Ok(text) = std::fs::read_to_string(&head)
        && let Some(reference) = text.trim().strip_prefix("ref:")
    {
        let reference = reference.trim();
        // A branch name never climbs out of refs/.
        if reference.starts_with("refs/") && !reference.split('/').any(|c| c == "..") {
            watch(&git_dir.join(reference));
            watch(&common_dir.join(reference));
        }
    }
}

/// A missing path would make cargo rerun the script on every build.
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// `git.sha1` of the `.cargo_vcs_info.json` that `cargo package` writes.
pub fn commit_from_vcs_info(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join(".cargo_vcs_info.json")).ok()?;
    println!("cargo:rerun-if-changed=.cargo_vcs_info.json");
    // A flat search is enough for this small, machine-written file.
    let start = text.find("\"sha1\"")? + "\"sha1\"".len();
    let rest = text
        .get(start..)?
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let rest = rest.strip_prefix('"')?;
    let sha1 = rest.get(..rest.find('"')?)?;
    let short = sha1.get(..7)?;
    if !short.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let dirty = text.contains("\"dirty\": true") || text.contains("\"dirty\":true");
    Some(if dirty {
        format!("{short}-dirty")
    } else {
        short.to_owned()
    })
}

/// `YYYY-MM-DD` (UTC) of `SOURCE_DATE_EPOCH`, or of now.
fn build_date() -> String {
    date_string(
        std::env::var("SOURCE_DATE_EPOCH").ok().as_deref(),
        SystemTime::now(),
    )
}

/// The UTC date of `source_date_epoch` (seconds since 1970, as the
/// reproducible-builds convention gives it) when it parses, else of `now`.
pub fn date_string(source_date_epoch: Option<&str>, now: SystemTime) -> String {
    let seconds = source_date_epoch
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or_else(|| {
            now.duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_secs()).ok())
        });
    match seconds {
        Some(s) => {
            let (y, m, d) = civil_from_days(s.div_euclid(86_400));
            format!("{y:04}-{m:02}-{d:02}")
        }
        None => "unknown".to_owned(),
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

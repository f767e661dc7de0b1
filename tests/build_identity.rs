//! Build identity (build.rs) and the generated documentation
//! (`shadowmcp generate`): `--version` names the commit the binary was built
//! from and a correct date; the man pages and completions cover every
//! visible command and nothing hidden.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory, removed when dropped.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("shadowmcp-build-identity-{name}-"))
        .tempdir()
        .expect("scratch dir")
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root())
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn version_line_names_commit_and_date() {
    let out = bin().arg("--version").output().expect("run");
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).expect("utf-8");
    let want = format!(
        "shadowmcp {} (commit {}, built {})\n",
        env!("CARGO_PKG_VERSION"),
        env!("SHADOWMCP_GIT_COMMIT"),
        env!("SHADOWMCP_BUILD_DATE")
    );
    assert_eq!(line, want);
    let date = env!("SHADOWMCP_BUILD_DATE");
    assert!(
        date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
        "{date}"
    );
}

/// The commit in the binary is the checkout's HEAD, `-dirty` exactly when
/// the compiled files differ from it: fails when build.rs does not rerun
/// after a commit, or marks the wrong state.
#[test]
fn commit_is_the_checkouts_head() {
    let origin = env!("SHADOWMCP_GIT_COMMIT_ORIGIN");
    if origin != "git" {
        eprintln!("commit taken from {origin}, not git: nothing to compare");
        return;
    }
    let (Some(head), Some(status)) = (
        git(&["rev-parse", "--short=7", "HEAD"]),
        git(&[
            "status",
            "--porcelain",
            "--",
            "src",
            "signatures",
            "build.rs",
            "Cargo.toml",
            "Cargo.lock",
        ]),
    ) else {
        eprintln!("git does not run here: nothing to compare");
        return;
    };
    let built = env!("SHADOWMCP_GIT_COMMIT");
    let want = if status.trim().is_empty() {
        head.trim().to_owned()
    } else {
        format!("{}-dirty", head.trim())
    };
    assert_eq!(built, want);
}

#[test]
fn dates_match_the_system_calendar() {
    let cases: &[(i64, &str)] = &[
        (0, "1970-01-01"),
        (86_399, "1970-01-01"),
        (86_400, "1970-01-02"),
        (-1, "1969-12-31"),
        (951_782_400, "2000-02-29"),
        (951_868_800, "2000-03-01"),
        (1_709_164_800, "2024-02-29"),
        (1_798_675_200, "2026-12-31"),
        (4_107_542_400, "2100-03-01"),
        (253_402_300_799, "9999-12-31"),
    ];
    for &(seconds, want) in cases {
        let got = build_script::date_string(Some(&seconds.to_string()), UNIX_EPOCH);
        assert_eq!(got, want, "SOURCE_DATE_EPOCH={seconds}");
    }
    // Without SOURCE_DATE_EPOCH (or with junk in it), the time given as now.
    let now = UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    assert_eq!(build_script::date_string(None, now), "2026-05-28");
    assert_eq!(build_script::date_string(Some("soon"), now), "2026-05-28");
    // Against `date` where it runs, on a spread of days.
    if Command::new("date").arg("--version").output().is_ok() {
        for seconds in (-60_000_000_000i64..=253_402_300_799).step_by(1_234_567_891) {
            let out = Command::new("date")
                .args(["-u", "-d", &format!("@{seconds}"), "+%Y-%m-%d"])
                .output()
                .expect("date");
            let want = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            // Years before 1000 are not padded to four digits by `date`.
            if !out.status.success() || want.len() != 10 {
                continue;
            }
            let got = build_script::date_string(Some(&seconds.to_string()), UNIX_EPOCH);
            assert_eq!(got, want, "@{seconds}");
        }
    }
}

#[test]
fn source_tarball_commit_from_cargo_vcs_info() {
    let dir = scratch("vcs-info");
    let dir = dir.path();
    assert_eq!(build_script::commit_from_vcs_info(dir), None);
    let info = dir.join(".cargo_vcs_info.json");
    std::fs::write(
        &info,
        r#"{
  "git": {
    "sha1": "0123456789abcdef0123456789abcdef01234567"
  },
  "path_in_vcs": ""
}"#,
    )
    .unwrap();
    assert_eq!(
        build_script::commit_from_vcs_info(dir).as_deref(),
        Some("0123456")
    );
    std::fs::write(
        &info,
        r#"{"git":{"sha1":"0123456789abcdef0123456789abcdef01234567","dirty":true}}"#,
    )
    .unwrap();
    assert_eq!(
        build_script::commit_from_vcs_info(dir).as_deref(),
        Some("0123456-dirty")
    );
    // Hostile content gives no commit rather than a broken version line.
    for junk in [
        r#"{"git":{"sha1":"zz;rm -rf"}}"#,
        r#"{"sha1": 7}"#,
        "\"sha1\"",
    ] {
        std::fs::write(&info, junk).unwrap();
        assert_eq!(build_script::commit_from_vcs_info(dir), None, "{junk}");
    }
    assert!(build_script::is_plain("abc1234-dirty"));
    assert!(!build_script::is_plain("abc 1234"));
    assert!(!build_script::is_plain(""));
    let _ = std::fs::remove_dir_all(dir);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn man_pages_for_every_visible_command() {
    let dir = scratch("man");
    let dir = dir.path();
    let out = bin()
        .args(["generate", "man"])
        .arg(dir)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "shadowmcp-analyze.1",
            "shadowmcp-run.1",
            "shadowmcp-signatures-check.1",
            "shadowmcp-signatures-list.1",
            "shadowmcp-signatures-update.1",
            "shadowmcp-signatures.1",
            "shadowmcp.1",
        ]
    );
    // Each file written is printed, one per line.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 7);
    let top = read(&dir.join("shadowmcp.1"));
    assert!(top.starts_with(".ie"), "{top}");
    assert!(top.contains(".TH shadowmcp 1"), "{top}");
    assert!(top.contains(env!("SHADOWMCP_BUILD_DATE")), "{top}");
    assert!(top.contains("shadowmcp\\-analyze(1)"), "{top}");
    assert!(!names_generate(&top), "{top}");
    let analyze = read(&dir.join("shadowmcp-analyze.1"));
    assert!(analyze.contains("max\\-flows"), "{analyze}");
    assert!(analyze.contains("fail\\-on\\-findings"), "{analyze}");
    let run = read(&dir.join("shadowmcp-run.1"));
    assert!(run.contains("check\\-config"), "{run}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The word `generate` on its own (the hidden command), not in
/// "generated".
fn names_generate(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w == "generate")
}

#[test]
fn completions_for_bash_zsh_fish() {
    let dir = scratch("completions");
    let dir = dir.path();
    for (shell, file, first) in [
        ("bash", "shadowmcp.bash", "_shadowmcp()"),
        ("zsh", "_shadowmcp", "#compdef shadowmcp"),
        ("fish", "shadowmcp.fish", "# Print an optspec"),
    ] {
        let out = bin()
            .args(["generate", "completions", shell])
            .arg(dir)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = read(&dir.join(file));
        assert!(
            text.starts_with(first),
            "{shell}: starts {:?}",
            text.lines().next()
        );
        for word in ["analyze", "signatures", "max-flows", "check-config"] {
            assert!(text.contains(word), "{shell}: no {word}");
        }
        assert!(!names_generate(&text), "{shell}: lists generate");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn generate_is_hidden_and_reports_unwritable_paths() {
    let help = bin().arg("--help").output().expect("run");
    assert!(!String::from_utf8_lossy(&help.stdout).contains("generate"));
    let dir = scratch("unwritable");
    let dir = dir.path();
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = bin()
        .args(["generate", "man"])
        .arg(file.join("man"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a-file/man"), "{err}");
    let out = bin()
        .args(["generate", "completions", "tcsh"])
        .arg(dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "unknown shell is a usage error");
    let _ = std::fs::remove_dir_all(dir);
}

//! Overlays: signature files merged after the base set.
//!
//! An overlay is a TOML file with any of `[[server]]`, `[[platform]]` (the keys
//! of `servers.toml`, plus `replace` and the provenance keys written by
//! `signatures update`), `[[suppress]]` and an optional `[overlay]` header:
//!
//! ```toml
//! [overlay]
//! generated = true      # written by `signatures update`: entries yield (below)
//! entries = 2           # number of [[server]] + [[platform]] tables (truncation check)
//!
//! [[server]]
//! host = "mcp.example.com"
//! vendor = "Example"
//! paths = ["/mcp"]
//! shared_host = false
//! source = "https://catalogue.corp.example/mcp"
//!
//! [[suppress]]
//! host = "api.githubcopilot.com"   # a host entry exactly as written in any layer
//! reason = "Copilot is sanctioned here"
//! ```
//!
//! Load order (first definition of a host wins, unless a later entry says
//! `replace = true`):
//! 1. the base set: the curated files of the built-in set or of `--signatures DIR`;
//! 2. `/etc/shadowmcp/signatures.d/*.toml` (the organisation's additions and
//!    suppressions), when the directory exists;
//! 3. each `--overlay DIR`, in the order given (the directory must exist);
//! 4. `/var/lib/shadowmcp/signatures.d/*.toml` (written by `signatures update`),
//!    when the directory exists;
//! 5. the base set's registry snapshot (`registry-snapshot.toml`).
//!
//! Files of a directory load in name order; names starting with `.` (the
//! temporary files of an atomic update) and non-`.toml` files are skipped.
//! Entries of a `generated = true` file also yield to an earlier pattern
//! that already attributes the host (`x.mcp.cloudflare.com` stays with
//! `*.mcp.cloudflare.com`); only context-only patterns (`*.vercel.app`) give
//! way to an exact generated entry. Suppressions apply last, to every layer.

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::hostmatch::{is_pattern, validate_host_pattern};
use super::load::{
    self, Ctx, ServerToml, check_server, decode, for_each_table, push_error, read_capped,
};
use super::{KnownServer, ServerKind, SignatureError, SignatureSet};
use std::ops::ControlFlow;

/// Default directory of the organisation's overlays.
pub const DEFAULT_ORGANISATION_DIR: &str = "/etc/shadowmcp/signatures.d";
/// Default directory of the overlay written by `signatures update`.
pub const DEFAULT_GENERATED_DIR: &str = "/var/lib/shadowmcp/signatures.d";
/// Most `.toml` files read from one overlay directory.
pub const MAX_FILES_PER_DIR: usize = 1000;
/// Most directory entries looked at in one overlay directory.
const MAX_DIR_ENTRIES: usize = 100_000;
/// Most `[[server]]`/`[[platform]]`/`[[suppress]]` tables over all overlays:
/// the official registry lists a few thousand remote servers.
pub const MAX_OVERLAY_ENTRIES: usize = 250_000;

/// Where overlays are read from, in load order: `organisation`, `extra`,
/// `generated` (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverlayDirs {
    /// The organisation's additions and suppressions; skipped when absent.
    pub organisation: Option<PathBuf>,
    /// `--overlay DIR` (repeatable); each must exist.
    pub extra: Vec<PathBuf>,
    /// Written by `signatures update`; skipped when absent.
    pub generated: Option<PathBuf>,
}

impl OverlayDirs {
    /// No overlay at all (tests, `--no-default-overlays` without `--overlay`).
    pub fn none() -> Self {
        Self::default()
    }

    /// `/etc/shadowmcp/signatures.d` and `/var/lib/shadowmcp/signatures.d`.
    pub fn defaults() -> Self {
        Self {
            organisation: Some(PathBuf::from(DEFAULT_ORGANISATION_DIR)),
            extra: Vec::new(),
            generated: Some(PathBuf::from(DEFAULT_GENERATED_DIR)),
        }
    }

    /// What the command-line flags `--overlay DIR`… and
    /// `--no-default-overlays` ask for.
    pub fn from_flags(extra: Vec<PathBuf>, no_default_overlays: bool) -> Self {
        let mut d = if no_default_overlays {
            Self::none()
        } else {
            Self::defaults()
        };
        d.extra = extra;
        d
    }

    /// (directory, must exist) in load order.
    fn in_order(&self) -> Vec<(&Path, bool)> {
        let mut v: Vec<(&Path, bool)> = Vec::new();
        if let Some(d) = &self.organisation {
            v.push((d, false));
        }
        v.extend(self.extra.iter().map(|d| (d.as_path(), true)));
        if let Some(d) = &self.generated {
            v.push((d, false));
        }
        v
    }
}

/// One overlay file merged into a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlaySummary {
    pub path: String,
    /// Written by `signatures update` (`[overlay] generated = true`).
    pub generated: bool,
    /// `[overlay] fetched_at`, when given.
    pub fetched_at: Option<String>,
    /// `[[server]]` + `[[platform]]` tables in the file.
    pub entries: usize,
    /// Of those, how many were added to the set (not shadowed).
    pub added: usize,
    /// `[[suppress]]` tables in the file.
    pub suppressions: usize,
}

/// An entry that did not make it into the set, or replaced another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeNote {
    pub host: String,
    /// `FILE:LINE` of the entry concerned.
    pub origin: String,
    /// `FILE:LINE` of the other side (the earlier entry, or the suppression).
    pub other: String,
}

/// What a merge did, beyond the resulting set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverlayReport {
    /// Overlay entries left out because an earlier layer defines (or, for
    /// generated entries, attributes) the host; `other` is that entry.
    pub shadowed: Vec<MergeNote>,
    /// Entries replaced by a `replace = true` entry (`origin` = the new one).
    pub replaced: Vec<MergeNote>,
    /// Entries removed by a suppression (`other` = the suppression).
    pub suppressed: Vec<MergeNote>,
    /// Suppressions that matched no entry (`origin` = the suppression):
    /// worth a warning, not an error (the base set may have dropped it).
    pub unused_suppressions: Vec<MergeNote>,
}

// ---------------------------------------------------------------- schema

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderToml {
    #[serde(default)]
    generated: bool,
    #[serde(default)]
    entries: Option<Spanned<i64>>,
    #[serde(default)]
    fetched_at: Option<String>,
    // Informational keys written by `signatures update`.
    #[serde(default)]
    #[allow(dead_code)]
    generator: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    sources: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuppressToml {
    host: Spanned<String>,
    reason: Spanned<String>,
}

struct Suppression {
    host: String,
    origin: String,
}

/// One overlay file, parsed and checked.
pub(crate) struct ParsedOverlay {
    pub(crate) path: String,
    pub(crate) generated: bool,
    pub(crate) fetched_at: Option<String>,
    /// (entry, replace)
    pub(crate) servers: Vec<(KnownServer, bool)>,
    suppressions: Vec<Suppression>,
}

/// Check one overlay text as the loader would (alone, without merging):
/// the number of `[[server]]`/`[[platform]]` entries, or every error.
pub fn check_overlay_text(name: &str, text: &str) -> Result<usize, Vec<SignatureError>> {
    let mut errors = Vec::new();
    let mut budget = MAX_OVERLAY_ENTRIES;
    match parse_overlay(name, text, &mut errors, &mut budget) {
        Some(p) if errors.is_empty() => Ok(p.servers.len()),
        _ => Err(errors),
    }
}

/// Parse one overlay text; errors go to `errors`. `budget` is the number of
/// tables still allowed over all overlays.
pub(crate) fn parse_overlay(
    path: &str,
    text: &str,
    errors: &mut Vec<SignatureError>,
    budget: &mut usize,
) -> Option<ParsedOverlay> {
    let errors_before = errors.len();
    let mut cx = Ctx {
        file: path,
        text,
        errors,
    };
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in &syntax {
            cx.toml_err(e);
        }
        return None;
    }
    let mut out = ParsedOverlay {
        path: path.to_string(),
        generated: false,
        fetched_at: None,
        servers: Vec::new(),
        suppressions: Vec::new(),
    };
    let mut declared: Option<Spanned<i64>> = None;
    // Duplicate hosts within one file are errors, as in the base files.
    let mut seen: FxHashMap<String, (String, usize, usize)> = FxHashMap::default();
    let mut seen_suppress: FxHashMap<String, ()> = FxHashMap::default();
    for (k, v) in root.into_inner() {
        let key = k.get_ref().as_ref();
        let span = v.span();
        match key {
            "overlay" => {
                if !matches!(v.get_ref(), DeValue::Table(_)) {
                    cx.err(Some(span), "`overlay` must be a table (`[overlay]`)");
                    continue;
                }
                match HeaderToml::deserialize(ValueDeserializer::from(v)) {
                    Ok(h) => {
                        out.generated = h.generated;
                        out.fetched_at = h.fetched_at;
                        declared = h.entries;
                    }
                    Err(e) => {
                        let span = e.span().or(Some(span));
                        cx.err(span, e.message().trim_end().to_string());
                    }
                }
            }
            "server" | "platform" | "suppress" => {
                let mut on_table = |cx: &mut Ctx<'_>, item: Spanned<DeValue<'_>>| {
                    if *budget == 0 {
                        cx.err(
                            Some(item.span()),
                            format!(
                                "more than {MAX_OVERLAY_ENTRIES} overlay entries in all; the rest is not read"
                            ),
                        );
                        return ControlFlow::Break(());
                    }
                    *budget -= 1;
                    if key == "suppress" {
                        if let Some(s) = decode::<SuppressToml>(cx, item)
                            && let Some(sup) = check_suppression(cx, &s)
                        {
                            if seen_suppress.insert(sup.host.clone(), ()).is_some() {
                                cx.err_at(&s.host, format!("host `{}` suppressed twice", sup.host));
                            } else {
                                out.suppressions.push(sup);
                            }
                        }
                        return ControlFlow::Continue(());
                    }
                    let kind = if key == "server" {
                        ServerKind::Server
                    } else {
                        ServerKind::Platform
                    };
                    if let Some(s) = decode::<ServerToml>(cx, item) {
                        let replace = s.replace.as_ref().is_some_and(|r| *r.get_ref());
                        if let Some(server) = check_server(cx, s, kind, &mut seen) {
                            out.servers.push((server, replace));
                        }
                    }
                    ControlFlow::Continue(())
                };
                if for_each_table(&mut cx, key, v, &mut on_table).is_break() {
                    return None;
                }
            }
            _ => cx.err(
                Some(k.span()),
                format!(
                    "unknown key `{key}`, expected `[overlay]`, `[[server]]`, `[[platform]]` or `[[suppress]]`"
                ),
            ),
        }
    }
    if let Some(d) = &declared {
        let tables = seen.len();
        if usize::try_from(*d.get_ref()).ok() != Some(tables) {
            cx.err_at(
                d,
                format!(
                    "the header declares {} entries but the file holds {tables} [[server]]/[[platform]] tables (truncated or edited file?)",
                    d.get_ref()
                ),
            );
        }
    }
    (cx.errors.len() == errors_before).then_some(out)
}

fn check_suppression(cx: &mut Ctx<'_>, s: &SuppressToml) -> Option<Suppression> {
    if s.reason.get_ref().trim().is_empty() {
        cx.err_at(
            &s.reason,
            "empty reason: say why the entry does not apply here",
        );
        return None;
    }
    match validate_host_pattern(s.host.get_ref(), true) {
        Ok(host) => {
            let (line, _) = load::line_col(cx.text, s.host.span().start);
            Some(Suppression {
                host,
                origin: format!("{}:{line}", cx.file),
            })
        }
        Err(msg) => {
            cx.err_at(&s.host, msg.to_string());
            None
        }
    }
}

// ---------------------------------------------------------------- directories

/// The `.toml` files of an overlay directory in load order. `Ok(None)` when
/// the directory is absent and optional.
fn overlay_files(dir: &Path, required: bool) -> Result<Option<Vec<PathBuf>>, String> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => return Err(format!("cannot read overlay directory: {e}")),
    };
    let mut files = Vec::new();
    for (n, entry) in rd.enumerate() {
        if n >= MAX_DIR_ENTRIES {
            return Err(format!("more than {MAX_DIR_ENTRIES} directory entries"));
        }
        let entry = entry.map_err(|e| format!("cannot read overlay directory: {e}"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !name.ends_with(".toml") {
            continue;
        }
        let path = entry.path();
        // Follows symlinks: a link to a file in another place is fine.
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    if files.len() > MAX_FILES_PER_DIR {
        return Err(format!(
            "{} overlay files; at most {MAX_FILES_PER_DIR} are read from one directory",
            files.len()
        ));
    }
    files.sort();
    Ok(Some(files))
}

// ---------------------------------------------------------------- merge

struct Merger {
    set: SignatureSet,
    /// Host entry text -> index into `set.servers`.
    by_host: FxHashMap<String, usize>,
    report: OverlayReport,
    suppressions: Vec<Suppression>,
}

impl Merger {
    fn new(set: SignatureSet) -> Self {
        let by_host = set
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.host.clone(), i))
            .collect();
        Self {
            set,
            by_host,
            report: OverlayReport::default(),
            suppressions: Vec::new(),
        }
    }

    fn merge(&mut self, file: ParsedOverlay) {
        let entries = file.servers.len();
        let suppressions = file.suppressions.len();
        if file.generated {
            // Pattern attribution below uses the index.
            self.set.rebuild_index();
        }
        let mut accepted: Vec<KnownServer> = Vec::new();
        for (s, replace) in file.servers {
            if let Some(&i) = self.by_host.get(&s.host) {
                let Some(slot) = self.set.servers.get_mut(i) else {
                    continue;
                };
                let note = MergeNote {
                    host: s.host.clone(),
                    origin: s.origin.clone(),
                    other: slot.origin.clone(),
                };
                if replace {
                    *slot = s;
                    self.report.replaced.push(note);
                } else {
                    self.report.shadowed.push(note);
                }
                continue;
            }
            if file.generated
                && !is_pattern(&s.host)
                && let Some(m) = self.set.match_host(&s.host)
                && !m.server.context_only
            {
                self.report.shadowed.push(MergeNote {
                    host: s.host.clone(),
                    origin: s.origin.clone(),
                    other: m.server.origin.clone(),
                });
                continue;
            }
            accepted.push(s);
        }
        let added = accepted.len();
        for s in accepted {
            self.by_host.insert(s.host.clone(), self.set.servers.len());
            self.set.servers.push(s);
        }
        self.set.overlays.push(OverlaySummary {
            path: file.path,
            generated: file.generated,
            fetched_at: file.fetched_at,
            entries,
            added,
            suppressions,
        });
        self.suppressions.extend(file.suppressions);
    }

    fn finish(mut self) -> (SignatureSet, OverlayReport) {
        let mut wanted: FxHashMap<String, (String, bool)> = FxHashMap::default();
        for s in self.suppressions {
            // The first suppression of a host is the one reported.
            wanted.entry(s.host).or_insert((s.origin, false));
        }
        if !wanted.is_empty() {
            let report = &mut self.report;
            self.set.servers.retain(|s| match wanted.get_mut(&s.host) {
                Some((origin, used)) => {
                    *used = true;
                    report.suppressed.push(MergeNote {
                        host: s.host.clone(),
                        origin: s.origin.clone(),
                        other: origin.clone(),
                    });
                    false
                }
                None => true,
            });
            let mut unused: Vec<MergeNote> = wanted
                .into_iter()
                .filter(|(_, (_, used))| !used)
                .map(|(host, (origin, _))| MergeNote {
                    host,
                    origin,
                    other: String::new(),
                })
                .collect();
            unused.sort_by(|a, b| a.origin.cmp(&b.origin));
            self.report.unused_suppressions = unused;
        }
        self.set.rebuild_index();
        (self.set, self.report)
    }
}

/// Read, parse and merge one overlay file.
fn merge_path(
    merger: &mut Merger,
    path: &Path,
    errors: &mut Vec<SignatureError>,
    budget: &mut usize,
) {
    let shown = path.display().to_string();
    match read_capped(path) {
        Ok(text) => {
            if let Some(p) = parse_overlay(&shown, &text, errors, budget) {
                merger.merge(p);
            }
        }
        Err(message) => push_error(errors, &shown, "", None, message.to_string()),
    }
}

/// See [`SignatureSet::load_with_overlays`].
pub(crate) fn load_with_overlays(
    base: Option<&Path>,
    dirs: &OverlayDirs,
) -> Result<(SignatureSet, OverlayReport), Vec<SignatureError>> {
    let mut errors = Vec::new();
    let base_set = match base {
        Some(dir) => load::load_dir(dir),
        None => load::load_texts(&super::BUILTIN, Vec::new()),
    };
    // Overlays are parsed even when the base has errors, so that one run of
    // `signatures check` shows every problem.
    let mut merger = Merger::new(
        base_set
            .as_ref()
            .map_or_else(|_| SignatureSet::default(), Clone::clone),
    );
    if let Err(e) = base_set {
        errors.extend(e);
    }
    let mut budget = MAX_OVERLAY_ENTRIES;
    for (dir, required) in dirs.in_order() {
        match overlay_files(dir, required) {
            Ok(Some(files)) => {
                for f in files {
                    merge_path(&mut merger, &f, &mut errors, &mut budget);
                }
            }
            Ok(None) => {}
            Err(message) => push_error(&mut errors, &dir.display().to_string(), "", None, message),
        }
    }
    match base {
        Some(dir) => {
            let snap = dir.join(SNAPSHOT_FILE);
            if snap.is_file() {
                merge_path(&mut merger, &snap, &mut errors, &mut budget);
            }
        }
        None => {
            let (name, text) = super::BUILTIN_SNAPSHOT;
            if let Some(p) = parse_overlay(name, text, &mut errors, &mut budget) {
                merger.merge(p);
            }
        }
    }
    if errors.is_empty() {
        Ok(merger.finish())
    } else {
        Err(errors)
    }
}

/// The registry snapshot of a signature directory (optional).
pub const SNAPSHOT_FILE: &str = "registry-snapshot.toml";

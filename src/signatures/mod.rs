//! Signature sets: known MCP servers and platforms, hostname heuristics, and
//! the JSON-RPC / HTTP vocabulary of MCP. Loaded from TOML files (documented in
//! `signatures/README.md`); the default set is compiled into the binary.
//!
//! Host look-ups ([`SignatureSet::match_host`]) run once per TLS/DNS flow: the
//! exact names sit in an `FxHashMap` keyed by the lower-cased host, the few
//! patterns are scanned most-specific first, and the probe name is lower-cased
//! into a stack buffer, so the common path does not allocate.

use std::fmt;
use std::path::Path;

use rustc_hash::FxHashMap;

pub mod allowlist;
pub mod hostmatch;
pub mod load;
pub mod overlay;
pub mod registry;
pub mod update;

pub use load::{FILES, MAX_FILE_BYTES};
pub use overlay::{OverlayDirs, OverlayReport, OverlaySummary};

use hostmatch::{
    HostBuf, has_token, is_pattern, path_matches_one, pattern_matches, pattern_specificity,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// One vendor's MCP server.
    Server,
    /// A gateway or hosting platform that fronts many servers.
    Platform,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownServer {
    /// Host as written: exact (`mcp.notion.com`), suffix (`*.mcp.cloudflare.com`),
    /// or with one-label placeholders (`bedrock-agentcore.{region}.amazonaws.com`).
    pub host: String,
    pub vendor: String,
    pub kind: ServerKind,
    /// Published endpoint paths (`/mcp`, `/sse`, ...); empty = any.
    pub paths: Vec<String>,
    /// The host also serves ordinary web/API traffic: a name match alone is not
    /// proof of MCP use.
    pub shared_host: bool,
    /// Match only as context (vendor attribution) when MCP is proven by other
    /// evidence; never report on the name alone (generic hosting suffixes).
    pub context_only: bool,
    pub source: String,
    pub note: Option<String>,
    /// Where the entry was loaded from: `FILE:LINE` (`<builtin>/servers.toml:12`,
    /// `/etc/shadowmcp/signatures.d/org.toml:3`).
    pub origin: String,
    /// The registry marks the server deprecated; kept because deployed
    /// clients keep using published endpoints for a while.
    pub deprecated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostMatch<'a> {
    pub server: &'a KnownServer,
    /// Exact host entry (as opposed to a pattern).
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostnameHeuristics {
    /// Tokens that mark an MCP host when they are a whole DNS label or a
    /// dash-separated part of one (`mcp`).
    pub tokens: Vec<String>,
    /// Names (exact or `*.suffix`) never reported by the heuristic.
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonRpcSignatures {
    /// Methods (requests and notifications) that exist only in MCP.
    pub mcp_methods: Vec<String>,
    /// Methods MCP shares with other JSON-RPC protocols (`initialize`, `ping`,
    /// `tasks/get`, ...): never evidence on their own.
    pub shared_methods: Vec<String>,
    /// Method prefixes of other protocols: (prefix, protocol name), e.g.
    /// (`eth_`, `Ethereum JSON-RPC`), (`textDocument/`, `LSP`).
    pub foreign_method_prefixes: Vec<(String, String)>,
    /// `io.modelcontextprotocol/`: the `_meta` key namespace of 2026-07-28.
    pub meta_key_prefix: String,
    /// Published protocol revisions, e.g. `2024-11-05` … `2026-07-28`.
    pub protocol_versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpSignatures {
    /// `MCP-Protocol-Version`.
    pub protocol_version_header: String,
    /// `Mcp-Session-Id`.
    pub session_header: String,
    /// `Mcp-Method`, `Mcp-Name` (2026-07-28, required on every POST).
    pub method_headers: Vec<String>,
    /// WebSocket subprotocols used by MCP SDKs (`mcp`).
    pub websocket_subprotocols: Vec<String>,
    /// OAuth discovery paths (`/.well-known/oauth-protected-resource`, ...).
    pub oauth_discovery_paths: Vec<String>,
}

/// A problem in a signature file, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureError {
    pub file: String,
    /// 1-based; 0 when the error concerns the whole file.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

/// Look-up structures over [`SignatureSet::servers`], built by the loaders
/// and by [`SignatureSet::rebuild_index`].
#[derive(Debug, Clone, Default)]
pub struct HostIndex {
    /// Lower-cased exact host -> index into `servers`.
    exact: FxHashMap<Box<str>, usize>,
    /// Pattern entries as (rank, index into `servers`), rank being the
    /// position in specificity order (most specific first), in three
    /// disjoint groups so that a name tests only the patterns that can match
    /// it: those whose last two labels are literal, by those two labels
    /// (`onrender.com`); those with a literal last label only, by it; and
    /// those ending in a placeholder, tested for every name. The match is
    /// the candidate of lowest rank.
    by_last_two: FxHashMap<Box<str>, Vec<(usize, usize)>>,
    by_last_label: FxHashMap<Box<str>, Vec<(usize, usize)>>,
    any_last_label: Vec<(usize, usize)>,
    /// `servers.len()` when built; `None` = never built. A mismatch means
    /// `servers` was edited afterwards and look-ups fall back to a scan.
    built_for: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct SignatureSet {
    /// Set name (manifest `name`).
    pub name: String,
    /// Set version (from the set's manifest) for logs and metrics.
    pub version: String,
    /// Manifest `description`.
    pub description: String,
    pub servers: Vec<KnownServer>,
    pub heuristics: HostnameHeuristics,
    pub jsonrpc: JsonRpcSignatures,
    pub http: HttpSignatures,
    /// Public names of ECH fronts (`cloudflare-ech.com`).
    pub ech_public_names: Vec<String>,
    /// The overlay files merged into this set, in load order (the bundled
    /// registry snapshot included), for logs and `signatures list`.
    pub overlays: Vec<OverlaySummary>,
    /// Host look-up index over `servers`. Call [`SignatureSet::rebuild_index`]
    /// after editing `servers` by hand; until then look-ups use a linear scan.
    #[doc(hidden)]
    pub index: HostIndex,
}

/// The default set, embedded at build time (paths relative to this file).
pub(crate) const BUILTIN: [(&str, &str); 6] = [
    (
        "<builtin>/manifest.toml",
        include_str!("../../signatures/manifest.toml"),
    ),
    (
        "<builtin>/servers.toml",
        include_str!("../../signatures/servers.toml"),
    ),
    (
        "<builtin>/platforms.toml",
        include_str!("../../signatures/platforms.toml"),
    ),
    (
        "<builtin>/heuristics.toml",
        include_str!("../../signatures/heuristics.toml"),
    ),
    (
        "<builtin>/jsonrpc.toml",
        include_str!("../../signatures/jsonrpc.toml"),
    ),
    (
        "<builtin>/http.toml",
        include_str!("../../signatures/http.toml"),
    ),
];

/// The bundled registry snapshot (overlay format, generated by
/// `signatures/tools/make-registry-snapshot.sh`): merged after the curated
/// files and after every runtime overlay, so curated and fresher entries win.
const BUILTIN_SNAPSHOT: (&str, &str) = (
    "<builtin>/registry-snapshot.toml",
    include_str!("../../signatures/registry-snapshot.toml"),
);

impl SignatureSet {
    /// The set compiled into the binary (`signatures/` at build time),
    /// bundled registry snapshot included.
    pub fn builtin() -> Result<SignatureSet, Vec<SignatureError>> {
        Self::load_with_overlays(None, &OverlayDirs::none())
    }

    /// Load every file of a signature directory (and its
    /// `registry-snapshot.toml` when present); all errors are reported.
    pub fn load_dir(dir: &Path) -> Result<SignatureSet, Vec<SignatureError>> {
        Self::load_with_overlays(Some(dir), &OverlayDirs::none())
    }

    /// The base set (`base` directory, or the built-in set when `None`),
    /// then every overlay of `overlays` in order, then the base's registry
    /// snapshot; suppressions apply last. Every error of every file is
    /// reported; on error nothing is returned (keep the previous set).
    /// See [`overlay`] for the order and the merge rules.
    pub fn load_with_overlays(
        base: Option<&Path>,
        overlays: &OverlayDirs,
    ) -> Result<SignatureSet, Vec<SignatureError>> {
        overlay::load_with_overlays(base, overlays).map(|(set, _)| set)
    }

    /// Only the curated files of the base (`base` directory or the built-in
    /// set): no overlay, no registry snapshot. `signatures update` classifies
    /// hosts against it.
    pub fn load_curated(base: Option<&Path>) -> Result<SignatureSet, Vec<SignatureError>> {
        match base {
            Some(dir) => load::load_dir(dir),
            None => load::load_texts(&BUILTIN, Vec::new()),
        }
    }

    /// [`SignatureSet::load_with_overlays`] plus what the merge did
    /// (entries shadowed by earlier ones, replaced, suppressed, unused
    /// suppressions), for `signatures check` and reload logs.
    pub fn load_with_overlays_report(
        base: Option<&Path>,
        overlays: &OverlayDirs,
    ) -> Result<(SignatureSet, OverlayReport), Vec<SignatureError>> {
        overlay::load_with_overlays(base, overlays)
    }

    /// Rebuild the host index; needed only after editing `servers` directly.
    /// When two entries have the same host, the first one wins.
    pub fn rebuild_index(&mut self) {
        let mut exact = FxHashMap::default();
        let mut patterns = Vec::new();
        for (i, s) in self.servers.iter().enumerate() {
            if is_pattern(&s.host) {
                patterns.push(i);
            } else {
                let key = s
                    .host
                    .strip_suffix('.')
                    .unwrap_or(&s.host)
                    .to_ascii_lowercase();
                exact.entry(key.into_boxed_str()).or_insert(i);
            }
        }
        // Stable sort: equal specificity keeps file order.
        patterns.sort_by_key(|&i| {
            std::cmp::Reverse(self.servers.get(i).map(|s| pattern_specificity(&s.host)))
        });
        // The last two labels of each pattern, literal (lower-cased) or
        // `None` for a placeholder or no label.
        let tail = |i: usize| -> (Option<String>, Option<String>) {
            let Some(host) = self.servers.get(i).map(|s| s.host.as_str()) else {
                return (None, None);
            };
            let body = host.strip_prefix("*.").unwrap_or(host);
            let body = body.strip_suffix('.').unwrap_or(body);
            let mut labels = body.rsplit('.');
            let literal = |l: Option<&str>| {
                l.filter(|l| !hostmatch::is_placeholder(l))
                    .map(str::to_ascii_lowercase)
            };
            let last = literal(labels.next());
            (last, literal(labels.next()))
        };
        let mut by_last_two: FxHashMap<Box<str>, Vec<(usize, usize)>> = FxHashMap::default();
        let mut by_last_label: FxHashMap<Box<str>, Vec<(usize, usize)>> = FxHashMap::default();
        let mut any_last_label = Vec::new();
        for (rank, &i) in patterns.iter().enumerate() {
            match tail(i) {
                (Some(last), Some(second)) => by_last_two
                    .entry(format!("{second}.{last}").into_boxed_str())
                    .or_default()
                    .push((rank, i)),
                (Some(last), None) => by_last_label
                    .entry(last.into_boxed_str())
                    .or_default()
                    .push((rank, i)),
                (None, _) => any_last_label.push((rank, i)),
            }
        }
        self.index = HostIndex {
            exact,
            by_last_two,
            by_last_label,
            any_last_label,
            built_for: Some(self.servers.len()),
        };
    }

    /// Known server or platform for a host name (case-insensitive, trailing dot ignored).
    /// An exact entry wins over patterns; among patterns the one with the most
    /// labels (then the most literal labels) wins.
    pub fn match_host(&self, host: &str) -> Option<HostMatch<'_>> {
        self.match_host_buf(&HostBuf::new(host)?)
    }

    /// [`SignatureSet::match_host`] for a name already normalised.
    pub(crate) fn match_host_buf(&self, buf: &HostBuf<'_>) -> Option<HostMatch<'_>> {
        let (h, last) = buf.name_and_last_label();
        if self.index.built_for == Some(self.servers.len()) {
            if let Some(s) = self.index.exact.get(h).and_then(|&i| self.servers.get(i)) {
                return Some(HostMatch {
                    server: s,
                    exact: true,
                });
            }
            // Only the patterns that can match a name with these last
            // labels; the most specific (lowest rank) match wins.
            let ix = &self.index;
            let last_two = h
                .len()
                .checked_sub(last.len() + 1)
                .and_then(|dot| h.get(..dot))
                .map(|rest| {
                    let second = rest.rsplit('.').next().unwrap_or(rest);
                    h.get(h.len() - last.len() - 1 - second.len()..)
                        .unwrap_or("")
                });
            let groups = [
                last_two.and_then(|t| ix.by_last_two.get(t)),
                ix.by_last_label.get(last),
                Some(&ix.any_last_label),
            ];
            let best = groups
                .into_iter()
                .flatten()
                .filter_map(|list| {
                    list.iter()
                        .find(|&&(_, i)| {
                            self.servers
                                .get(i)
                                .is_some_and(|s| pattern_matches(&s.host, h))
                        })
                        .copied()
                })
                .min_by_key(|&(rank, _)| rank);
            return best
                .and_then(|(_, i)| self.servers.get(i))
                .map(|server| HostMatch {
                    server,
                    exact: false,
                });
        }
        // Slow path for a set edited without `rebuild_index`.
        let mut best: Option<&KnownServer> = None;
        for s in &self.servers {
            if is_pattern(&s.host) {
                if pattern_matches(&s.host, h)
                    && best.is_none_or(|b| {
                        is_pattern(&b.host)
                            && pattern_specificity(&s.host) > pattern_specificity(&b.host)
                    })
                {
                    best = Some(s);
                }
            } else if s
                .host
                .strip_suffix('.')
                .unwrap_or(&s.host)
                .eq_ignore_ascii_case(h)
            {
                return Some(HostMatch {
                    server: s,
                    exact: true,
                });
            }
        }
        best.map(|server| HostMatch {
            server,
            exact: false,
        })
    }

    /// The label-aware `mcp` heuristic: a token is a whole label or a whole
    /// dash-separated part of one (`x-mcp.y.io` yes, `mcpherson.edu` no), and
    /// the name is not excluded (exact or `*.suffix` entry of `exclude`).
    pub fn heuristic_match(&self, host: &str) -> bool {
        let Some(buf) = HostBuf::new(host) else {
            return false;
        };
        let h = buf.as_str();
        self.heuristics.tokens.iter().any(|t| has_token(h, t))
            && !self.heuristics.exclude.iter().any(|e| {
                if is_pattern(e) {
                    pattern_matches(e, h)
                } else {
                    e.strip_suffix('.').unwrap_or(e).eq_ignore_ascii_case(h)
                }
            })
    }

    /// Whether `path` (with or without query) is one of the server's published
    /// endpoints: exact, or continuing with `/` or `?` after a published path
    /// (`/mcp` matches `/mcp/` and `/mcp?x=1`, not `/mcpx`); a published path
    /// ending in `/` is a prefix; `{name}` segments match one segment.
    pub fn path_matches(server: &KnownServer, path: &str) -> bool {
        server.paths.is_empty() || server.paths.iter().any(|p| path_matches_one(p, path))
    }

    /// Whether `name` is a known ECH public name.
    pub fn is_ech_public_name(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name);
        self.ech_public_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }
}

impl JsonRpcSignatures {
    /// A method that exists only in MCP.
    pub fn is_mcp_method(&self, method: &str) -> bool {
        self.mcp_methods.iter().any(|m| m == method)
    }

    /// A method MCP shares with other protocols (`initialize`, `ping`, ...).
    pub fn is_shared_method(&self, method: &str) -> bool {
        self.shared_methods.iter().any(|m| m == method)
    }

    /// The other protocol a method belongs to (`eth_call` -> `Ethereum JSON-RPC`).
    pub fn foreign_protocol(&self, method: &str) -> Option<&str> {
        self.foreign_method_prefixes
            .iter()
            .find(|(p, _)| method.starts_with(p.as_str()))
            .map(|(_, proto)| proto.as_str())
    }

    /// A known MCP protocol revision string.
    pub fn is_known_version(&self, v: &str) -> bool {
        self.protocol_versions.iter().any(|p| p == v)
    }
}

#[cfg(test)]
mod tests;

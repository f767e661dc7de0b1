//! Reading MCP server catalogues and turning their remote URLs into host
//! knowledge: the official MCP Registry's list pages (live or saved), and
//! plain lists (one URL a line, or CSV with a `url` column).
//!
//! Registry format, from the registry's own OpenAPI description
//! (`modelcontextprotocol/registry` `docs/reference/api/openapi.yaml` @145c2ec,
//! `GET /v0.1/servers`, schemas `ServerList`, `ServerResponse`,
//! `ServerDetail`, `RemoteTransport`):
//!
//! ```text
//! { "servers": [ { "server": { "name": "io.github.user/weather",   // reverse-DNS/name
//!                             "version": "1.0.2", "title": "…",
//!                             "remotes": [ { "type": "streamable-http" | "sse",
//!                                            "url": "https://…", "headers": […],
//!                                            "variables": {…} } ] },
//!                  "_meta": { "io.modelcontextprotocol.registry/official":
//!                             { "status": "active" | "deprecated" | "deleted",
//!                               "publishedAt": …, "updatedAt": …, "isLatest": bool } } } ],
//!   "metadata": { "nextCursor": "…", "count": 30 } }
//! ```
//!
//! The list holds every version of every server; `cursor` takes the exact
//! `metadata.nextCursor` of the previous page, and an absent or empty
//! `nextCursor` ends the list. URLs are templates: `{name}` parts are filled
//! from `variables` by clients (`https://{tenant}.example.com/mcp`).
//! Older copies (schema 2025-09-16) carried the official block inside
//! `server._meta` and `status` on the server; both are read as well.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::hostmatch::{has_token, is_pattern, validate_host_pattern, validate_path};
use super::{ServerKind, SignatureSet};

/// The `_meta` key of the official registry's own metadata.
pub const OFFICIAL_META: &str = "io.modelcontextprotocol.registry/official";
/// Most rows of a plain list (a catalogue of one organisation).
pub const MAX_LIST_ROWS: usize = 100_000;
/// Hosts at least this many publishers (name spaces) share are multi-tenant
/// platforms rather than one vendor's server.
pub const PLATFORM_PUBLISHERS: usize = 5;
/// Most distinct paths kept per host; a host publishing more is matched on
/// any path (`/`).
pub const MAX_PATHS_PER_HOST: usize = 32;
/// Longest vendor text kept (registry titles and names are short; the cap
/// bounds what one entry can put in the overlay).
pub const MAX_VENDOR_CHARS: usize = 120;

/// Generic hosting suffixes: a deployment's own name below them is kept
/// whole, and a URL template never becomes a pattern covering all of them.
/// (The context-only `*.suffix` platforms of the base set count as well.)
pub const PLATFORM_SUFFIXES: &[&str] = &[
    "vercel.app",
    "netlify.app",
    "workers.dev",
    "pages.dev",
    "onrender.com",
    "herokuapp.com",
    "fly.dev",
    "railway.app",
    "up.railway.app",
    "azurewebsites.net",
    "azurecontainerapps.io",
    "run.app",
    "appspot.com",
    "cloudfunctions.net",
    "web.app",
    "firebaseapp.com",
    "deno.dev",
    "deno.net",
    "replit.app",
    "repl.co",
    "glitch.me",
    "ngrok.app",
    "ngrok-free.app",
    "ngrok.io",
    "trycloudflare.com",
    "hf.space",
    "modal.run",
    "github.io",
    "gitlab.io",
    "amazonaws.com",
    "on.aws",
];

/// Registry lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Active,
    Deprecated,
    Deleted,
}

impl Status {
    fn parse(s: Option<&str>) -> Status {
        match s {
            Some("deprecated") => Status::Deprecated,
            Some("deleted") => Status::Deleted,
            // Unknown future values are treated as active: the server exists.
            _ => Status::Active,
        }
    }
}

/// One remote endpoint of a server version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// `streamable-http`, `sse`, or `list` for plain lists.
    pub transport: String,
    pub url: String,
}

/// One server version read from a source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistryEntry {
    pub name: String,
    pub version: Option<String>,
    pub title: Option<String>,
    pub status: Status,
    pub is_latest: Option<bool>,
    pub updated_at: Option<String>,
    pub published_at: Option<String>,
    pub remotes: Vec<Remote>,
    /// Where it was read: the source URL or file (and line, for lists).
    pub source: String,
}

/// A problem with a source's content (not with the transfer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------- JSON model

#[derive(Deserialize)]
struct PageJson {
    servers: Vec<ServerResponseJson>,
    #[serde(default)]
    metadata: Option<MetadataJson>,
}

#[derive(Deserialize)]
struct MetadataJson {
    #[serde(default, rename = "nextCursor")]
    next_cursor: Option<String>,
    #[serde(default)]
    count: Option<u64>,
}

#[derive(Deserialize)]
struct ServerResponseJson {
    server: ServerJson,
    #[serde(default, rename = "_meta")]
    meta: Option<MetaJson>,
}

#[derive(Deserialize, Default)]
struct MetaJson {
    #[serde(default, rename = "io.modelcontextprotocol.registry/official")]
    official: Option<OfficialJson>,
}

#[derive(Deserialize, Default)]
struct OfficialJson {
    #[serde(default)]
    status: Option<String>,
    #[serde(default, rename = "publishedAt")]
    published_at: Option<String>,
    #[serde(default, rename = "updatedAt")]
    updated_at: Option<String>,
    #[serde(default, rename = "isLatest")]
    is_latest: Option<bool>,
}

#[derive(Deserialize)]
struct ServerJson {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    remotes: Vec<RemoteJson>,
    /// Schema 2025-09-16 placed the official block here.
    #[serde(default, rename = "_meta")]
    meta: Option<MetaJson>,
    /// Schema 2025-09-16 had the status on the server.
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct RemoteJson {
    #[serde(rename = "type")]
    transport: String,
    #[serde(default)]
    url: Option<String>,
}

/// One parsed list page.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub entries: Vec<RegistryEntry>,
    /// `metadata.nextCursor`, `None` when absent or empty (last page).
    pub next_cursor: Option<String>,
}

/// Whether a body is JSON (a page or saved pages) rather than a plain list.
pub fn looks_like_json(bytes: &[u8]) -> bool {
    let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    matches!(
        start.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

fn json_error(e: &serde_json::Error) -> FormatError {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "truncated JSON (the page ends early)",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Data => "unexpected JSON content",
        serde_json::error::Category::Io => "unreadable JSON",
    };
    FormatError(format!(
        "{what} at line {} column {}: {e}",
        e.line(),
        e.column()
    ))
}

fn convert_page(p: PageJson, source: &str) -> Result<Page, FormatError> {
    if let Some(n) = p.metadata.as_ref().and_then(|m| m.count)
        && usize::try_from(n).ok() != Some(p.servers.len())
    {
        return Err(FormatError(format!(
            "the page declares metadata.count {n} but holds {} servers (truncated page?)",
            p.servers.len()
        )));
    }
    let next_cursor = p
        .metadata
        .and_then(|m| m.next_cursor)
        .filter(|c| !c.is_empty());
    let entries = p
        .servers
        .into_iter()
        .map(|r| {
            let official = r
                .meta
                .and_then(|m| m.official)
                .or_else(|| r.server.meta.and_then(|m| m.official))
                .unwrap_or_default();
            let status = official.status.or(r.server.status);
            RegistryEntry {
                name: r.server.name,
                version: r.server.version,
                title: r.server.title,
                status: Status::parse(status.as_deref()),
                is_latest: official.is_latest,
                updated_at: official.updated_at,
                published_at: official.published_at,
                remotes: r
                    .server
                    .remotes
                    .into_iter()
                    .filter_map(|x| {
                        x.url.map(|url| Remote {
                            transport: x.transport,
                            url,
                        })
                    })
                    .collect(),
                source: source.to_string(),
            }
        })
        .collect();
    Ok(Page {
        entries,
        next_cursor,
    })
}

/// Parse one `GET /v0.1/servers` response body.
pub fn parse_page(bytes: &[u8], source: &str) -> Result<Page, FormatError> {
    let p: PageJson = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
    convert_page(p, source)
}

/// Parse a saved copy: one page, or an array of pages. The copy must be
/// whole: a last page that still has a `nextCursor` is refused.
pub fn parse_saved(bytes: &[u8], source: &str) -> Result<Vec<RegistryEntry>, FormatError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Saved {
        One(PageJson),
        Many(Vec<PageJson>),
    }
    let saved: Saved = serde_json::from_slice(bytes).map_err(|e| {
        // The untagged error hides the position; parse as a plain value to
        // tell a syntax problem from a shape problem.
        match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Err(e) => json_error(&e),
            Ok(_) => FormatError(format!(
                "not a registry page (an object with `servers`) nor an array of pages: {e}"
            )),
        }
    })?;
    let pages = match saved {
        Saved::One(p) => vec![p],
        Saved::Many(v) => v,
    };
    let n = pages.len();
    let mut out = Vec::new();
    for (i, p) in pages.into_iter().enumerate() {
        let page =
            convert_page(p, source).map_err(|e| FormatError(format!("page {}: {e}", i + 1)))?;
        if i + 1 == n && page.next_cursor.is_some() {
            return Err(FormatError(format!(
                "the saved copy is incomplete: its last page (page {n}) has a nextCursor"
            )));
        }
        out.extend(page.entries);
    }
    Ok(out)
}

/// Parse a plain list: one URL a line (`#` comments, blank lines), or CSV
/// with a header naming a `url` column (and optionally `name`/`vendor`).
pub fn parse_list(text: &str, source: &str) -> Result<Vec<RegistryEntry>, FormatError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i.saturating_add(1), l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let Some((first_no, first)) = rows.next() else {
        return Ok(Vec::new());
    };
    let header = csv_fields(first);
    let url_col = header
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("url"));
    let mut out = Vec::new();
    let mut push = |line: usize, url: &str, name: Option<&str>| -> Result<(), FormatError> {
        if out.len() >= MAX_LIST_ROWS {
            return Err(FormatError(format!("more than {MAX_LIST_ROWS} rows")));
        }
        let url = url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(FormatError(format!(
                "line {line}: `{}` is not an http(s) URL",
                url.chars().take(100).collect::<String>()
            )));
        }
        out.push(RegistryEntry {
            name: name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or(url)
                .to_string(),
            remotes: vec![Remote {
                transport: "list".into(),
                url: url.to_string(),
            }],
            source: format!("{source}:{line}"),
            ..RegistryEntry::default()
        });
        Ok(())
    };
    match url_col {
        Some(col) => {
            let name_col = header.iter().position(|h| {
                let h = h.trim();
                h.eq_ignore_ascii_case("name") || h.eq_ignore_ascii_case("vendor")
            });
            for (line, row) in rows {
                let f = csv_fields(row);
                let Some(url) = f.get(col) else {
                    return Err(FormatError(format!("line {line}: no `url` column")));
                };
                push(
                    line,
                    url,
                    name_col.and_then(|c| f.get(c)).map(String::as_str),
                )?;
            }
        }
        None => {
            push(first_no, first, None)?;
            for (line, row) in rows {
                push(line, row, None)?;
            }
        }
    }
    Ok(out)
}

/// Fields of one CSV line (RFC 4180 quoting with `""`; no multi-line fields).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

// ---------------------------------------------------------------- hosts

/// A remote URL that did not become an entry, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub url: String,
    pub reason: String,
}

/// One generated host entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedEntry {
    pub host: String,
    pub vendor: String,
    pub kind: ServerKind,
    pub paths: Vec<String>,
    pub shared_host: bool,
    pub deprecated: bool,
    pub transports: Vec<String>,
    /// The registry names served from this host, sorted.
    pub names: Vec<String>,
    /// The representative name's latest version and dates.
    pub version: Option<String>,
    pub updated_at: Option<String>,
    pub source: String,
    pub note: Option<String>,
}

/// What the base set tells the classification.
struct Knowledge {
    tokens: Vec<String>,
    /// Hosts the base set marks `shared_host` (general-purpose API hosts).
    shared: BTreeSet<String>,
    platform_suffixes: BTreeSet<String>,
}

impl Knowledge {
    fn new(base: &SignatureSet) -> Self {
        let mut platform_suffixes: BTreeSet<String> =
            PLATFORM_SUFFIXES.iter().map(|s| (*s).to_string()).collect();
        let mut shared = BTreeSet::new();
        for s in &base.servers {
            if let Some(suffix) = s.host.strip_prefix("*.")
                && s.context_only
                && !suffix.contains('{')
            {
                platform_suffixes.insert(suffix.to_string());
            }
            if s.shared_host && !is_pattern(&s.host) {
                shared.insert(s.host.clone());
            }
        }
        let mut tokens = base.heuristics.tokens.clone();
        if tokens.is_empty() {
            tokens.push("mcp".into());
        }
        Self {
            tokens,
            shared,
            platform_suffixes,
        }
    }

    /// The generic platform a host is under, if any.
    fn platform_of(&self, host: &str) -> Option<&str> {
        let mut rest = host;
        while let Some((_, tail)) = rest.split_once('.') {
            if let Some(s) = self.platform_suffixes.get(tail) {
                return Some(s.as_str());
            }
            rest = tail;
        }
        None
    }
}

/// Why a remote URL gives no host entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum UrlError {
    #[error("the whole base URL is a template variable")]
    TemplateBase,
    #[error("not an http(s) URL")]
    NotHttp,
    #[error("an IP address, not a name")]
    Address,
    #[error("malformed port")]
    Port,
    #[error("no host")]
    NoHost,
}

/// Host and path of a remote URL (template), or why it cannot be used.
fn split_url(url: &str) -> Result<(String, String), UrlError> {
    let lower_scheme = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower_scheme.starts_with("https://") {
        url.get(8..)
    } else if lower_scheme.starts_with("http://") {
        url.get(7..)
    } else if url.starts_with('{') {
        return Err(UrlError::TemplateBase);
    } else {
        return Err(UrlError::NotHttp);
    }
    .unwrap_or("");
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or("");
    let after = rest.get(end..).unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.starts_with('[') {
        return Err(UrlError::Address);
    }
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) || port.starts_with('{') => h,
        Some(_) => return Err(UrlError::Port),
        None => authority,
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    let path = after.split(['?', '#']).next().unwrap_or("");
    let path = if path.is_empty() { "/" } else { path };
    Ok((host, path.to_string()))
}

/// A template host (`{tenant}.example.com`, `x-{env}.example.com`) as a
/// signature pattern: each label with a `{` becomes one whole placeholder.
fn template_host(host: &str) -> String {
    host.split('.')
        .map(|label| {
            if label.contains('{') || label.contains('}') {
                let name: String = label
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                format!("{{{}}}", if name.is_empty() { "var" } else { &name })
            } else {
                label.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The published path as a signature path: a segment with a partial
/// template (`/x-{id}/sse`) cuts the path into a prefix (`/`…`/`).
fn signature_path(path: &str) -> String {
    if validate_path(path).is_ok() {
        return path.to_string();
    }
    let cut = cut_path(path);
    // Whatever the input, the result must load: else any path.
    if validate_path(&cut).is_ok() {
        cut
    } else {
        "/".to_string()
    }
}

fn cut_path(path: &str) -> String {
    let mut out = String::from("/");
    for seg in path.split('/').skip(1) {
        let whole_placeholder = seg.len() > 2
            && seg.starts_with('{')
            && seg.ends_with('}')
            && seg.get(1..seg.len() - 1).is_some_and(|n| {
                n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            });
        let plain =
            !seg.contains(['{', '}']) && !seg.chars().any(|c| c.is_whitespace() || c.is_control());
        if seg.is_empty() || !(plain || whole_placeholder) {
            break;
        }
        out.push_str(seg);
        out.push('/');
    }
    out
}

fn is_local_name(host: &str) -> bool {
    host == "localhost"
        || !host.contains('.')
        || [
            ".localhost",
            ".local",
            ".internal",
            ".invalid",
            ".home.arpa",
            ".lan",
        ]
        .iter()
        .any(|s| host.ends_with(s))
        || host
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Default)]
struct HostAgg {
    paths: Vec<String>,
    /// Too many paths: collapsed to `/`.
    any_path: bool,
    names: BTreeSet<String>,
    namespaces: BTreeSet<String>,
    transports: BTreeSet<String>,
    sources: BTreeSet<String>,
}

/// The per-name choice: the latest version and whether it is usable.
struct NameInfo<'a> {
    latest: &'a RegistryEntry,
}

fn newer(a: &RegistryEntry, b: &RegistryEntry) -> bool {
    match (a.is_latest, b.is_latest) {
        (Some(true), Some(true) | None) | (None, None) | (Some(false), Some(false)) => {
            a.updated_at.as_deref().unwrap_or("") >= b.updated_at.as_deref().unwrap_or("")
        }
        (Some(true), Some(false)) | (None, Some(false)) => true,
        (Some(false), _) | (None, Some(true)) => false,
    }
}

/// Turn registry entries into host entries (sorted by host) plus the URLs
/// left out. Every non-deleted version's remotes count (clients configured
/// with an older URL still use it); a server whose latest version is
/// deleted is left out whole; a host is deprecated when every server on it
/// is.
pub fn build_entries(
    entries: &[RegistryEntry],
    base: &SignatureSet,
) -> (Vec<GeneratedEntry>, Vec<Skipped>) {
    let k = Knowledge::new(base);
    let mut names: BTreeMap<&str, NameInfo<'_>> = BTreeMap::new();
    for e in entries {
        names
            .entry(e.name.as_str())
            .and_modify(|n| {
                if newer(e, n.latest) {
                    n.latest = e;
                }
            })
            .or_insert(NameInfo { latest: e });
    }
    let mut hosts: BTreeMap<String, HostAgg> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut skip = |e: &RegistryEntry, url: &str, reason: &str| {
        skipped.push(Skipped {
            name: e.name.clone(),
            url: url.to_string(),
            reason: reason.to_string(),
        });
    };
    for e in entries {
        let latest_deleted = names
            .get(e.name.as_str())
            .is_some_and(|n| n.latest.status == Status::Deleted);
        if e.status == Status::Deleted || latest_deleted {
            continue;
        }
        for r in &e.remotes {
            let (raw_host, path) = match split_url(&r.url) {
                Ok(v) => v,
                Err(reason) => {
                    skip(e, &r.url, &reason.to_string());
                    continue;
                }
            };
            let host = if raw_host.contains(['{', '}']) {
                template_host(&raw_host)
            } else {
                raw_host
            };
            let host = match validate_host_pattern(&host, true) {
                Ok(h) => h,
                Err(reason) => {
                    skip(e, &r.url, &reason.to_string());
                    continue;
                }
            };
            if is_local_name(&host) {
                skip(e, &r.url, "a local name or an IP address");
                continue;
            }
            if is_pattern(&host) {
                // The literal part after the last placeholder must not be a
                // whole hosting platform.
                let tail = host.rsplit_once("}.").map_or("", |(_, t)| t);
                if k.platform_suffixes.contains(tail) || !tail.contains('.') {
                    skip(
                        e,
                        &r.url,
                        "the template would cover a whole hosting platform",
                    );
                    continue;
                }
            }
            let agg = hosts.entry(host).or_default();
            let p = signature_path(&path);
            if !agg.any_path && !agg.paths.contains(&p) {
                agg.paths.push(p);
                if agg.paths.len() > MAX_PATHS_PER_HOST {
                    agg.paths = vec!["/".to_string()];
                    agg.any_path = true;
                }
            }
            agg.names.insert(e.name.clone());
            agg.namespaces.insert(
                e.name
                    .split('/')
                    .next()
                    .unwrap_or(&e.name)
                    .to_ascii_lowercase(),
            );
            agg.transports.insert(r.transport.clone());
            agg.sources.insert(e.source.clone());
        }
    }
    let mut out = Vec::with_capacity(hosts.len());
    for (host, agg) in hosts {
        let infos: Vec<&RegistryEntry> = agg
            .names
            .iter()
            .filter_map(|n| names.get(n.as_str()).map(|i| i.latest))
            .collect();
        let Some(first) = infos.first() else { continue };
        let deprecated = infos.iter().all(|e| e.status == Status::Deprecated);
        let publishers = agg.namespaces.len();
        let platform = k.platform_of(&host);
        let dedicated_name = has_any_token(&host, &k.tokens);
        let whole_host = agg.paths.iter().all(|p| p == "/");
        let shared_host =
            publishers >= 2 || k.shared.contains(&host) || !(dedicated_name || whole_host);
        let kind = if publishers >= PLATFORM_PUBLISHERS {
            ServerKind::Platform
        } else {
            ServerKind::Server
        };
        let vendor = if publishers >= PLATFORM_PUBLISHERS {
            format!("{host} ({publishers} publishers)")
        } else {
            let v: String = first
                .title
                .as_deref()
                .filter(|t| !t.trim().is_empty())
                .unwrap_or(&first.name)
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_VENDOR_CHARS)
                .collect();
            let v = if v.trim().is_empty() { host.clone() } else { v };
            if agg.names.len() > 1 {
                format!("{v} (+{} more)", agg.names.len() - 1)
            } else {
                v
            }
        };
        let source_label = agg.sources.iter().next().cloned().unwrap_or_default();
        let version = first.version.clone();
        let source = match &version {
            Some(v) => format!("{source_label} {}@{v}", first.name),
            None => format!("{source_label} {}", first.name),
        };
        let mut notes = Vec::new();
        if agg.names.len() > 1 {
            let shown: Vec<&str> = agg.names.iter().take(5).map(String::as_str).collect();
            let more = agg.names.len().saturating_sub(shown.len());
            notes.push(if more > 0 {
                format!("registry entries: {} (+{more} more)", shown.join(", "))
            } else {
                format!("registry entries: {}", shown.join(", "))
            });
        }
        if let Some(p) = platform {
            notes.push(format!("deployment on the generic platform {p}"));
        }
        if deprecated {
            notes.push("deprecated in the registry".into());
        }
        out.push(GeneratedEntry {
            host,
            vendor,
            kind,
            paths: agg.paths,
            shared_host,
            deprecated,
            transports: agg.transports.into_iter().collect(),
            names: agg.names.into_iter().collect(),
            version,
            updated_at: first.updated_at.clone(),
            source,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        });
    }
    (out, skipped)
}

fn has_any_token(host: &str, tokens: &[String]) -> bool {
    tokens.iter().any(|t| has_token(host, t))
}

// ---------------------------------------------------------------- rendering

#[derive(Serialize)]
struct DocOut<'a> {
    overlay: HeaderOut<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    server: Vec<EntryOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    platform: Vec<EntryOut<'a>>,
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    generated: bool,
    generator: &'a str,
    fetched_at: &'a str,
    sources: &'a [String],
    entries: usize,
}

#[derive(Serialize)]
struct EntryOut<'a> {
    host: &'a str,
    vendor: &'a str,
    paths: &'a [String],
    shared_host: bool,
    source: &'a str,
    status: &'a str,
    transport: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    registry_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    registry_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<&'a str>,
    fetched_at: &'a str,
}

/// The overlay file for `entries` (format of `signatures/README.md`,
/// section Overlays), with a header comment.
pub fn render_overlay(
    entries: &[GeneratedEntry],
    fetched_at: &str,
    sources: &[String],
    generator: &str,
) -> Result<String, FormatError> {
    let doc = DocOut {
        overlay: HeaderOut {
            generated: true,
            generator,
            fetched_at,
            sources,
            entries: entries.len(),
        },
        server: entries
            .iter()
            .filter(|e| e.kind == ServerKind::Server)
            .map(|e| entry_out(e, fetched_at))
            .collect(),
        platform: entries
            .iter()
            .filter(|e| e.kind == ServerKind::Platform)
            .map(|e| entry_out(e, fetched_at))
            .collect(),
    };
    let body = toml::to_string(&doc).map_err(|e| FormatError(format!("cannot render: {e}")))?;
    Ok(format!(
        "# Known remote MCP servers from public catalogues, in the overlay format of\n\
         # signatures/README.md. GENERATED by `{generator}`: do not edit, re-run\n\
         # instead; put your own entries and suppressions in another file.\n\n{body}"
    ))
}

fn entry_out<'a>(e: &'a GeneratedEntry, fetched_at: &'a str) -> EntryOut<'a> {
    EntryOut {
        host: &e.host,
        vendor: &e.vendor,
        paths: &e.paths,
        shared_host: e.shared_host,
        source: &e.source,
        status: if e.deprecated { "deprecated" } else { "active" },
        transport: e.transports.join(" | "),
        note: e.note.as_deref(),
        registry_name: e.names.first().map_or("", String::as_str),
        registry_version: e.version.as_deref(),
        updated_at: e.updated_at.as_deref(),
        fetched_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_path() {
        let s = |u: &str| split_url(u);
        assert_eq!(
            s("https://mcp.exa.ai/mcp").unwrap(),
            ("mcp.exa.ai".into(), "/mcp".into())
        );
        assert_eq!(
            s("HTTPS://X.Example.COM").unwrap(),
            ("x.example.com".into(), "/".into())
        );
        assert_eq!(
            s("https://u:p@h.example:8443/a/sse?key=SECRET#f").unwrap(),
            ("h.example".into(), "/a/sse".into())
        );
        assert_eq!(
            s("https://{tenant}.example.com/mcp").unwrap(),
            ("{tenant}.example.com".into(), "/mcp".into())
        );
        assert!(s("{baseUrl}/mcp").is_err());
        assert!(s("ftp://x.example/").is_err());
        assert!(s("https://[::1]/mcp").is_err());
        assert!(s("https://h.example:x/").is_err());
        assert!(s("https://").is_err());
        assert!(s("").is_err());
        assert!(s("https:/").is_err());
    }

    #[test]
    fn templates_become_whole_placeholders_and_prefixes() {
        assert_eq!(
            template_host("x-{env}.api.example.com"),
            "{x-env}.api.example.com"
        );
        assert_eq!(signature_path("/mcp"), "/mcp");
        assert_eq!(signature_path("/{id}/sse"), "/{id}/sse");
        assert_eq!(signature_path("/v1/x-{id}/sse"), "/v1/");
        assert_eq!(signature_path("/{}/x"), "/");
    }

    #[test]
    fn local_names_are_left_out() {
        for h in [
            "localhost",
            "x.local",
            "10.0.0.1",
            "intranet",
            "a.b.internal",
        ] {
            assert!(is_local_name(h), "{h}");
        }
        assert!(!is_local_name("mcp.example.com"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Whatever the registry says, the overlay written loads: one hostile
        /// entry must never block every update.
        #[test]
        fn any_entries_render_to_a_loadable_overlay(
            items in proptest::collection::vec(
                (
                    "[a-zA-Z0-9./_ {}-]{0,12}",
                    proptest::sample::select(vec![
                        "https://", "http://", "HTTPS://", "ftp://", "{base}", "https://{t}.",
                    ]),
                    "[a-zA-Z0-9.{}_:@-]{0,40}",
                    "[a-zA-Z0-9/{}%?#. _-]{0,60}",
                    proptest::option::of("[\\x00-\\x7f\\u{e9}\\u{200b}]{0,30}"),
                    0u8..3,
                ),
                0..40,
            )
        ) {
            static BASE: std::sync::OnceLock<SignatureSet> = std::sync::OnceLock::new();
            let base = BASE.get_or_init(|| SignatureSet::load_curated(None).unwrap());
            let entries: Vec<RegistryEntry> = items
                .iter()
                .map(|(name, scheme, host, path, title, status)| RegistryEntry {
                    name: name.clone(),
                    version: Some("1".into()),
                    title: title.clone(),
                    status: [Status::Active, Status::Deprecated, Status::Deleted][usize::from(*status)],
                    remotes: vec![Remote {
                        transport: "streamable-http".into(),
                        url: format!("{scheme}{host}{path}"),
                    }],
                    source: "prop".into(),
                    ..RegistryEntry::default()
                })
                .collect();
            let (out, _) = build_entries(&entries, base);
            let text = render_overlay(&out, "2026-01-01T00:00:00Z", &["prop".into()], "test").unwrap();
            let mut errors = Vec::new();
            let mut budget = super::super::overlay::MAX_OVERLAY_ENTRIES;
            let parsed = super::super::overlay::parse_overlay("p", &text, &mut errors, &mut budget);
            proptest::prop_assert!(errors.is_empty(), "{:?}\n{}", errors, text);
            proptest::prop_assert_eq!(parsed.map(|p| p.servers.len()), Some(out.len()));
        }
    }

    #[test]
    fn too_many_paths_collapse_to_any_path() {
        let base = SignatureSet::load_curated(None).unwrap();
        let e = RegistryEntry {
            name: "x/y".into(),
            remotes: (0..40)
                .map(|i| Remote {
                    transport: "sse".into(),
                    url: format!("https://mcp.many.example/p{i}"),
                })
                .collect(),
            ..RegistryEntry::default()
        };
        let (out, _) = build_entries(&[e], &base);
        assert_eq!(out[0].paths, vec!["/".to_string()]);
    }

    #[test]
    fn plain_lists_and_csv() {
        let l = parse_list(
            "# org catalogue\nhttps://a.example/mcp\n\nhttp://b.example/sse\n",
            "f",
        )
        .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].source, "f:4");
        let c = parse_list(
            "name,url,owner\n\"Acme, Inc.\",https://mcp.acme.example/mcp,x\n",
            "c",
        )
        .unwrap();
        assert_eq!(c[0].name, "Acme, Inc.");
        assert_eq!(c[0].remotes[0].url, "https://mcp.acme.example/mcp");
        let bad = parse_list("https://a.example/\nnot a url\n", "f").unwrap_err();
        assert!(bad.0.contains("line 2"), "{bad}");
    }
}

//! Parsing and validation of a signature directory (format in
//! `signatures/README.md`). Every problem is collected with its file, line and
//! column instead of stopping at the first one, so `signatures check` can list
//! them all in one run.

use std::collections::hash_map::Entry;
use std::io::Read;
use std::ops::{ControlFlow, Range};
use std::path::Path;

use rustc_hash::FxHashMap;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::hostmatch::{validate_host_pattern, validate_path};
use super::{
    HostnameHeuristics, HttpSignatures, JsonRpcSignatures, KnownServer, ServerKind, SignatureError,
    SignatureSet,
};

/// A signature file larger than this is refused before parsing: the default
/// set is ~60 KiB, so 8 MiB leaves room for large imported registries while
/// bounding memory.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// At most this many errors are collected; one summary error follows.
pub const MAX_ERRORS: usize = 1000;

/// Manifest format understood by this loader.
pub const FORMAT_VERSION: i64 = 1;

/// The files of a signature directory, in load order.
pub const FILES: [&str; 6] = [
    "manifest.toml",
    "servers.toml",
    "platforms.toml",
    "heuristics.toml",
    "jsonrpc.toml",
    "http.toml",
];

// ---------------------------------------------------------------- schema

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestToml {
    name: Spanned<String>,
    version: Spanned<String>,
    description: String,
    #[serde(default)]
    format: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerToml {
    pub(crate) host: Spanned<String>,
    vendor: Spanned<String>,
    paths: Vec<Spanned<String>>,
    shared_host: bool,
    #[serde(default)]
    context_only: bool,
    source: Spanned<String>,
    #[serde(default)]
    note: Option<String>,
    /// `active` (default) or `deprecated` (registry lifecycle status).
    #[serde(default)]
    status: Option<Spanned<String>>,
    /// Overlays only: take over an entry of the same host loaded earlier.
    #[serde(default)]
    pub(crate) replace: Option<Spanned<bool>>,
    // Provenance of generated entries (kept for readers and `signatures
    // list`; the sensor does not use them).
    #[serde(default)]
    #[allow(dead_code)]
    registry_name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    registry_version: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    fetched_at: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    updated_at: Option<String>,
    // Documentation-only fields (kept for readers, not used by the sensor).
    #[serde(default)]
    #[allow(dead_code)]
    transport: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    auth: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    url_shape: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeuristicsToml {
    tokens: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    #[serde(default)]
    ech_public_names: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForeignPrefixToml {
    prefix: Spanned<String>,
    protocol: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRpcToml {
    mcp_methods: Vec<Spanned<String>>,
    shared_methods: Vec<Spanned<String>>,
    foreign_method_prefixes: Vec<ForeignPrefixToml>,
    meta_key_prefix: Spanned<String>,
    protocol_versions: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpToml {
    protocol_version_header: Spanned<String>,
    session_header: Spanned<String>,
    method_headers: Vec<Spanned<String>>,
    websocket_subprotocols: Vec<Spanned<String>>,
    oauth_discovery_paths: Vec<Spanned<String>>,
}

// ---------------------------------------------------------------- errors

/// One file's text plus the shared error list.
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
    pub(crate) errors: &'a mut Vec<SignatureError>,
}

impl Ctx<'_> {
    pub(crate) fn err(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        push_error(self.errors, self.file, self.text, span, message.into());
    }

    pub(crate) fn err_at<T>(&mut self, v: &Spanned<T>, message: impl Into<String>) {
        self.err(Some(v.span()), message);
    }

    pub(crate) fn toml_err(&mut self, e: &toml::de::Error) {
        self.err(e.span(), e.message().trim_end().to_string());
    }
}

pub(crate) fn push_error(
    errors: &mut Vec<SignatureError>,
    file: &str,
    text: &str,
    span: Option<Range<usize>>,
    message: String,
) {
    if errors.len() > MAX_ERRORS {
        return;
    }
    if errors.len() == MAX_ERRORS {
        errors.push(SignatureError {
            file: file.to_string(),
            line: 0,
            column: 0,
            message: format!("too many errors; stopped after {MAX_ERRORS}"),
        });
        return;
    }
    let (line, column) = match span {
        Some(s) => line_col(text, s.start),
        None => (0, 0),
    };
    errors.push(SignatureError {
        file: file.to_string(),
        line,
        column,
        message,
    });
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let before = bytes.get(..offset.min(bytes.len())).unwrap_or(bytes);
    // Every entry's origin asks for its line: counted with memchr, since a
    // byte loop over the file for each of hundreds of entries dominated
    // start-up.
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i.saturating_add(1));
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let column = before
        .get(line_start..)
        .unwrap_or(&[])
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, column)
}

// ---------------------------------------------------------------- loading

/// Why a signature or overlay file could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("missing file (every signature file is required)")]
    Missing,
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    #[error("file larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    #[error("not valid UTF-8 (byte {0})")]
    NotUtf8(usize),
}

/// Read one file with the size cap.
pub(crate) fn read_capped(path: &Path) -> Result<String, ReadError> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::Missing,
        _ => ReadError::Open(e),
    })?;
    let mut buf = Vec::new();
    // Read one byte past the cap to detect oversize without trusting metadata.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(ReadError::Read)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    String::from_utf8(buf).map_err(|e| ReadError::NotUtf8(e.utf8_error().valid_up_to()))
}

/// Load a directory: each of [`FILES`] must exist.
pub(crate) fn load_dir(dir: &Path) -> Result<SignatureSet, Vec<SignatureError>> {
    let mut texts: Vec<(String, String)> = Vec::with_capacity(FILES.len());
    let mut errors = Vec::new();
    for name in FILES {
        let path = dir.join(name);
        let shown = path.display().to_string();
        match read_capped(&path) {
            Ok(t) => texts.push((shown, t)),
            Err(message) => {
                push_error(&mut errors, &shown, "", None, message.to_string());
                texts.push((shown, String::new()));
            }
        }
    }
    let files: Vec<(&str, &str)> = texts
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    // Parse what could be read, so a missing file does not hide the errors of
    // the others; the read errors already in `errors` make the result `Err`.
    load_texts(&files, errors)
}

/// Parse the six files given as (display name, text), in [`FILES`] order.
/// `errors` may already hold read errors; any error makes the result `Err`.
pub(crate) fn load_texts(
    files: &[(&str, &str)],
    mut errors: Vec<SignatureError>,
) -> Result<SignatureSet, Vec<SignatureError>> {
    let mut set = SignatureSet::default();
    // Host (normalised) -> where it was first defined, for duplicate checks.
    let mut seen_hosts: FxHashMap<String, (String, usize, usize)> = FxHashMap::default();

    for (i, &(file, text)) in files.iter().enumerate() {
        let Some(&kind) = FILES.get(i) else { break };
        if text.is_empty() && errors.iter().any(|e| e.file == file) {
            continue; // unreadable file, already reported
        }
        let mut cx = Ctx {
            file,
            text,
            errors: &mut errors,
        };
        let (root, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            // A document with syntax errors is not interpreted further: the
            // recovered tree may be misleading.
            for e in &syntax {
                cx.toml_err(e);
            }
            continue;
        }
        match kind {
            "manifest.toml" => {
                if let Some(m) = parse_whole::<ManifestToml>(&mut cx, root) {
                    check_manifest(&mut cx, &m);
                    set.name = m.name.into_inner();
                    set.version = m.version.into_inner();
                    set.description = m.description;
                }
            }
            "servers.toml" => load_servers(
                &mut cx,
                root,
                "server",
                ServerKind::Server,
                &mut set,
                &mut seen_hosts,
            ),
            "platforms.toml" => load_servers(
                &mut cx,
                root,
                "platform",
                ServerKind::Platform,
                &mut set,
                &mut seen_hosts,
            ),
            "heuristics.toml" => {
                if let Some(h) = parse_whole::<HeuristicsToml>(&mut cx, root) {
                    let (heur, ech) = check_heuristics(&mut cx, h);
                    set.heuristics = heur;
                    set.ech_public_names = ech;
                }
            }
            "jsonrpc.toml" => {
                if let Some(j) = parse_whole::<JsonRpcToml>(&mut cx, root) {
                    set.jsonrpc = check_jsonrpc(&mut cx, j);
                }
            }
            "http.toml" => {
                if let Some(h) = parse_whole::<HttpToml>(&mut cx, root) {
                    set.http = check_http(&mut cx, h);
                }
            }
            _ => {}
        }
    }

    if errors.is_empty() {
        set.rebuild_index();
        Ok(set)
    } else {
        Err(errors)
    }
}

fn parse_whole<T: for<'de> Deserialize<'de>>(
    cx: &mut Ctx<'_>,
    root: Spanned<DeTable<'_>>,
) -> Option<T> {
    match T::deserialize(toml::de::Deserializer::from(root)) {
        Ok(v) => Some(v),
        Err(e) => {
            cx.toml_err(&e);
            None
        }
    }
}

/// `[[server]]` / `[[platform]]` arrays: each table is deserialised on its own
/// so that every bad entry is reported, not only the first.
fn load_servers(
    cx: &mut Ctx<'_>,
    root: Spanned<DeTable<'_>>,
    key: &str,
    kind: ServerKind,
    set: &mut SignatureSet,
    seen: &mut FxHashMap<String, (String, usize, usize)>,
) {
    for (k, v) in root.into_inner() {
        if k.get_ref().as_ref() != key {
            cx.err(
                Some(k.span()),
                format!("unknown key `{}`, expected `[[{key}]]` tables", k.get_ref()),
            );
            continue;
        }
        let _ = for_each_table(cx, key, v, |cx, item| {
            if let Some(s) = decode::<ServerToml>(cx, item) {
                if let Some(r) = &s.replace {
                    cx.err_at(r, "`replace` is only meaningful in overlay files");
                }
                if let Some(server) = check_server(cx, s, kind, seen) {
                    set.servers.push(server);
                }
            }
            ControlFlow::Continue(())
        });
    }
}

/// Each table of a `[[key]]` array, in order, to `f`; a value that is not
/// an array of tables is reported where it is. Stops when `f` breaks.
pub(crate) fn for_each_table<'a, 'c>(
    cx: &mut Ctx<'c>,
    key: &str,
    v: Spanned<DeValue<'a>>,
    mut f: impl FnMut(&mut Ctx<'c>, Spanned<DeValue<'a>>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let span = v.span();
    let DeValue::Array(items) = v.into_inner() else {
        cx.err(
            Some(span),
            format!("`{key}` must be an array of tables (`[[{key}]]`)"),
        );
        return ControlFlow::Continue(());
    };
    for item in items {
        if !matches!(item.get_ref(), DeValue::Table(_)) {
            cx.err(
                Some(item.span()),
                format!("each `{key}` entry must be a table"),
            );
            continue;
        }
        f(cx, item)?;
    }
    ControlFlow::Continue(())
}

/// One table deserialised, or its error reported where it is.
pub(crate) fn decode<'a, T: Deserialize<'a>>(
    cx: &mut Ctx<'_>,
    item: Spanned<DeValue<'a>>,
) -> Option<T> {
    let item_span = item.span();
    match T::deserialize(ValueDeserializer::from(item)) {
        Ok(t) => Some(t),
        Err(e) => {
            let span = e.span().or(Some(item_span));
            cx.err(span, e.message().trim_end().to_string());
            None
        }
    }
}

// ---------------------------------------------------------------- checks

fn check_manifest(cx: &mut Ctx<'_>, m: &ManifestToml) {
    if m.name.get_ref().trim().is_empty() {
        cx.err_at(&m.name, "empty set name");
    }
    let v = m.version.get_ref();
    if v.is_empty()
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        cx.err_at(
            &m.version,
            "version must be non-empty letters, digits, `.`, `-` or `_` (e.g. 2026.11.22)",
        );
    }
    if let Some(f) = &m.format
        && *f.get_ref() != FORMAT_VERSION
    {
        cx.err_at(
            f,
            format!(
                "unsupported format {} (this build reads format {FORMAT_VERSION})",
                f.get_ref()
            ),
        );
    }
}

pub(crate) fn check_server(
    cx: &mut Ctx<'_>,
    s: ServerToml,
    kind: ServerKind,
    seen: &mut FxHashMap<String, (String, usize, usize)>,
) -> Option<KnownServer> {
    let mut ok = true;
    let host = match validate_host_pattern(s.host.get_ref(), true) {
        Ok(h) => Some(h),
        Err(msg) => {
            cx.err_at(&s.host, msg.to_string());
            ok = false;
            None
        }
    };
    if let Some(h) = &host {
        let (line, col) = line_col(cx.text, s.host.span().start);
        match seen.entry(h.clone()) {
            Entry::Occupied(first) => {
                let (f, l, c) = first.get();
                let msg = format!("duplicate host `{h}` (first defined at {f}:{l}:{c})");
                cx.err_at(&s.host, msg);
                ok = false;
            }
            Entry::Vacant(slot) => {
                slot.insert((cx.file.to_string(), line, col));
            }
        }
    }
    if s.vendor.get_ref().trim().is_empty() {
        cx.err_at(&s.vendor, "empty vendor");
        ok = false;
    }
    if s.source.get_ref().trim().is_empty() {
        cx.err_at(&s.source, "empty source: say where the entry comes from");
        ok = false;
    }
    let mut paths = Vec::with_capacity(s.paths.len());
    for p in &s.paths {
        match validate_path(p.get_ref()) {
            Ok(()) => {
                if !paths.contains(p.get_ref()) {
                    paths.push(p.get_ref().clone());
                }
            }
            Err(msg) => {
                cx.err_at(p, msg.to_string());
                ok = false;
            }
        }
    }
    let deprecated = match s.status.as_ref().map(|v| v.get_ref().as_str()) {
        None | Some("active") => false,
        Some("deprecated") => true,
        Some(other) => {
            let msg = format!("status must be `active` or `deprecated`, not `{other}`");
            if let Some(st) = &s.status {
                cx.err_at(st, msg);
            }
            ok = false;
            false
        }
    };
    let host = host?;
    let (line, _) = line_col(cx.text, s.host.span().start);
    ok.then(|| KnownServer {
        host,
        vendor: s.vendor.into_inner(),
        kind,
        paths,
        shared_host: s.shared_host,
        context_only: s.context_only,
        source: s.source.into_inner(),
        note: s.note.filter(|n| !n.trim().is_empty()),
        origin: format!("{}:{line}", cx.file),
        deprecated,
    })
}

fn check_heuristics(cx: &mut Ctx<'_>, h: HeuristicsToml) -> (HostnameHeuristics, Vec<String>) {
    let mut tokens = Vec::new();
    for t in &h.tokens {
        let v = t.get_ref();
        if v.is_empty()
            || v.len() > super::hostmatch::MAX_LABEL_LEN
            || !v.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            cx.err_at(
                t,
                format!("invalid token `{v}`: letters and digits only, 1 to 63 characters"),
            );
        } else {
            tokens.push(v.to_ascii_lowercase());
        }
    }
    let mut exclude = Vec::new();
    for e in &h.exclude {
        match validate_host_pattern(e.get_ref(), false) {
            Ok(v) => exclude.push(v),
            Err(msg) => cx.err_at(e, msg.to_string()),
        }
    }
    let mut ech = Vec::new();
    for e in &h.ech_public_names {
        match validate_host_pattern(e.get_ref(), false) {
            Ok(v) if !v.starts_with("*.") => ech.push(v),
            Ok(_) => cx.err_at(e, "ECH public names are exact host names"),
            Err(msg) => cx.err_at(e, msg.to_string()),
        }
    }
    (HostnameHeuristics { tokens, exclude }, ech)
}

/// JSON-RPC method names: non-empty, printable, no spaces; 256 bytes is far
/// above any real method name.
fn check_method(cx: &mut Ctx<'_>, m: &Spanned<String>, what: &str) -> bool {
    let v = m.get_ref();
    let ok =
        !v.is_empty() && v.len() <= 256 && v.chars().all(|c| !c.is_whitespace() && !c.is_control());
    if !ok {
        cx.err_at(
            m,
            format!("invalid {what} `{v}`: 1 to 256 printable characters, no spaces"),
        );
    }
    ok
}

fn check_jsonrpc(cx: &mut Ctx<'_>, j: JsonRpcToml) -> JsonRpcSignatures {
    let mut out = JsonRpcSignatures::default();
    for m in &j.mcp_methods {
        if check_method(cx, m, "method") {
            out.mcp_methods.push(m.get_ref().clone());
        }
    }
    for m in &j.shared_methods {
        if !check_method(cx, m, "method") {
            continue;
        }
        if out.mcp_methods.contains(m.get_ref()) {
            cx.err_at(
                m,
                format!(
                    "`{}` is listed in both mcp_methods and shared_methods",
                    m.get_ref()
                ),
            );
            continue;
        }
        out.shared_methods.push(m.get_ref().clone());
    }
    for f in &j.foreign_method_prefixes {
        let ok_prefix = check_method(cx, &f.prefix, "method prefix");
        if f.protocol.get_ref().trim().is_empty() {
            cx.err_at(&f.protocol, "empty protocol name");
            continue;
        }
        if !ok_prefix {
            continue;
        }
        if let Some(m) = out
            .mcp_methods
            .iter()
            .find(|m| m.starts_with(f.prefix.get_ref().as_str()))
        {
            cx.err_at(
                &f.prefix,
                format!(
                    "foreign prefix `{}` would match MCP method `{m}`",
                    f.prefix.get_ref()
                ),
            );
            continue;
        }
        out.foreign_method_prefixes
            .push((f.prefix.get_ref().clone(), f.protocol.get_ref().clone()));
    }
    if check_method(cx, &j.meta_key_prefix, "meta key prefix") {
        out.meta_key_prefix = j.meta_key_prefix.into_inner();
    }
    for v in &j.protocol_versions {
        if is_date_version(v.get_ref()) {
            out.protocol_versions.push(v.get_ref().clone());
        } else {
            cx.err_at(
                v,
                format!("protocol version `{}` is not YYYY-MM-DD", v.get_ref()),
            );
        }
    }
    out
}

/// MCP revisions are dates (`2025-06-18`), mcp-wire.md §1.
fn is_date_version(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// RFC 9110 §5.6.2 `tchar`; also the WebSocket subprotocol syntax (RFC 6455 §4.1).
fn is_token(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_http(cx: &mut Ctx<'_>, h: HttpToml) -> HttpSignatures {
    let mut out = HttpSignatures::default();
    let token = |cx: &mut Ctx<'_>, v: &Spanned<String>, what: &str| -> Option<String> {
        if is_token(v.get_ref()) {
            Some(v.get_ref().clone())
        } else {
            cx.err_at(
                v,
                format!(
                    "invalid {what} `{}`: must be an HTTP token (RFC 9110 §5.6.2)",
                    v.get_ref()
                ),
            );
            None
        }
    };
    out.protocol_version_header =
        token(cx, &h.protocol_version_header, "header name").unwrap_or_default();
    out.session_header = token(cx, &h.session_header, "header name").unwrap_or_default();
    out.method_headers = h
        .method_headers
        .iter()
        .filter_map(|v| token(cx, v, "header name"))
        .collect();
    out.websocket_subprotocols = h
        .websocket_subprotocols
        .iter()
        .filter_map(|v| token(cx, v, "subprotocol"))
        .collect();
    for p in &h.oauth_discovery_paths {
        match validate_path(p.get_ref()) {
            Ok(()) => out.oauth_discovery_paths.push(p.get_ref().clone()),
            Err(msg) => cx.err_at(p, msg.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars() {
        let t = "ab\ncdé\nx";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 2), (1, 3));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 7), (2, 4)); // after the 2-byte 'é'
        assert_eq!(line_col(t, 8), (3, 1));
        assert_eq!(line_col(t, 999), (3, 2));
    }

    #[test]
    fn date_versions() {
        assert!(is_date_version("2025-06-18"));
        for bad in ["2025-6-18", "2025_06_18", "20250618", "2025-06-1x", ""] {
            assert!(!is_date_version(bad));
        }
    }
}

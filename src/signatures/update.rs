//! `shadowmcp signatures update`: fetch MCP server catalogues (the official
//! MCP Registry by default, saved copies of its pages, an organisation's own
//! list) and write the generated overlay atomically.
//!
//! The previous overlay stays in place whenever anything goes wrong: a
//! transfer error or an HTTP error status, a malformed or truncated page, a
//! pagination bound reached, or a result that shrank to less than half of
//! the previous overlay (an upstream outage answering an empty list must
//! not erase what the sensor knows; `--allow-shrink` accepts it).

use crate::sinks::http::error_chain;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Uri;
use hyper::header::{ACCEPT, CONTENT_LENGTH, USER_AGENT};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::overlay::{self, DEFAULT_GENERATED_DIR};
use super::registry::{self, GeneratedEntry, RegistryEntry, Skipped};
use super::{SignatureError, SignatureSet};

/// The official registry's list endpoint.
pub const DEFAULT_SOURCE: &str = "https://registry.modelcontextprotocol.io/v0.1/servers";
/// Default output directory (loaded as the generated overlay layer).
pub const DEFAULT_OUTPUT_DIR: &str = DEFAULT_GENERATED_DIR;
/// The file written in the output directory.
pub const OUTPUT_FILE: &str = "registry.toml";
/// The previous overlay counts as "big" from this many entries: below it a
/// shrink is not suspicious.
pub const SHRINK_GUARD_MIN: usize = 10;

/// Settings of one update run.
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    /// URLs (`http://`, `https://`) or files; empty = [`DEFAULT_SOURCE`].
    pub sources: Vec<String>,
    pub output_dir: PathBuf,
    /// Per HTTP request (connect, headers and body).
    pub timeout: Duration,
    /// `limit` asked of the registry per page (unless the URL sets one).
    pub page_limit: u32,
    /// Most pages followed per source.
    pub max_pages: usize,
    /// Largest page (or file) accepted.
    pub max_page_bytes: usize,
    /// Most bytes over all pages and files.
    pub max_total_bytes: u64,
    /// Most server versions over all sources.
    pub max_entries: usize,
    /// Accept a result with less than half the previous overlay's entries.
    pub allow_shrink: bool,
    /// PEM bundle replacing the web PKI roots (a TLS-inspecting proxy).
    pub ca_file: Option<PathBuf>,
    /// Leave out hosts the base set already attributes (for the bundled
    /// snapshot, which must not repeat curated entries).
    pub exclude_known: bool,
    /// Print what would change, write nothing.
    pub dry_run: bool,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            output_dir: PathBuf::from(DEFAULT_OUTPUT_DIR),
            timeout: Duration::from_secs(30),
            page_limit: 100,
            max_pages: 1000,
            max_page_bytes: 32 * 1024 * 1024,
            max_total_bytes: 512 * 1024 * 1024,
            max_entries: 500_000,
            allow_shrink: false,
            ca_file: None,
            exclude_known: false,
            dry_run: false,
        }
    }
}

/// Why an update did not write anything.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{url}: HTTP {status}{body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{source_name}: {message}")]
    Format {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Bound {
        source_name: String,
        message: String,
    },
    #[error(
        "the new list has {new} entries, the previous overlay {previous} ({path}); \
         refusing to shrink it by more than half (an upstream outage?). \
         Re-run with --allow-shrink to accept it"
    )]
    Shrink {
        path: String,
        previous: usize,
        new: usize,
    },
    #[error("no usable remote MCP server in the sources (nothing written)")]
    Empty,
    #[error("{path}: {message}")]
    Write { path: String, message: String },
    #[error("the generated overlay does not load: {}", .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<SignatureError>),
    #[error("cannot start the HTTP client: {0}")]
    Client(String),
}

/// What an update did (or would do, with `dry_run`).
#[derive(Debug, Clone, Default)]
pub struct UpdateSummary {
    pub path: PathBuf,
    /// Server versions read from the sources.
    pub versions_read: usize,
    pub pages: usize,
    pub entries: usize,
    pub previous: Option<usize>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Hosts newly marked deprecated.
    pub deprecated: Vec<String>,
    /// Hosts no longer deprecated.
    pub reactivated: Vec<String>,
    pub skipped: Vec<Skipped>,
    /// Hosts left out because the base set already attributes them
    /// (`exclude_known`).
    pub known: usize,
    pub written: bool,
}

/// Run an update (blocking; starts its own small tokio runtime).
pub fn run(opts: &UpdateOptions, base: &SignatureSet) -> Result<UpdateSummary, UpdateError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UpdateError::Client(e.to_string()))?;
    rt.block_on(run_async(opts, base))
}

/// [`run`] inside an existing runtime.
pub async fn run_async(
    opts: &UpdateOptions,
    base: &SignatureSet,
) -> Result<UpdateSummary, UpdateError> {
    let sources: Vec<String> = if opts.sources.is_empty() {
        vec![DEFAULT_SOURCE.to_string()]
    } else {
        opts.sources.clone()
    };
    let mut fetcher = Fetcher::new(opts);
    let mut all: Vec<RegistryEntry> = Vec::new();
    for s in &sources {
        fetcher.read_source(s, &mut all).await?;
    }
    let (mut entries, skipped) = registry::build_entries(&all, base);
    let mut known = 0;
    if opts.exclude_known {
        let before = entries.len();
        entries.retain(|e| {
            base.match_host(&e.host)
                .is_none_or(|m| m.server.context_only && !m.exact)
                && !base.servers.iter().any(|s| s.host == e.host)
        });
        known = before - entries.len();
    }
    if entries.is_empty() && !opts.allow_shrink {
        return Err(UpdateError::Empty);
    }
    let fetched_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let generator = concat!("shadowmcp signatures update ", env!("CARGO_PKG_VERSION"));
    let text =
        registry::render_overlay(&entries, &fetched_at, &sources, generator).map_err(|e| {
            UpdateError::Format {
                source_name: "output".into(),
                message: e.0,
            }
        })?;
    let path = opts.output_dir.join(OUTPUT_FILE);
    let shown = path.display().to_string();
    // The file must load exactly as the sensor will load it.
    let mut errors = Vec::new();
    let mut budget = overlay::MAX_OVERLAY_ENTRIES;
    if overlay::parse_overlay(&shown, &text, &mut errors, &mut budget).is_none() {
        return Err(UpdateError::Invalid(errors));
    }
    let previous = previous_hosts(&path);
    let mut summary = UpdateSummary {
        path: path.clone(),
        versions_read: all.len(),
        pages: fetcher.pages,
        entries: entries.len(),
        previous: previous.as_ref().map(BTreeMap::len),
        skipped,
        known,
        ..UpdateSummary::default()
    };
    diff(previous.as_ref(), &entries, &mut summary);
    if let Some(prev) = summary.previous
        && prev >= SHRINK_GUARD_MIN
        && entries.len() < prev / 2
        && !opts.allow_shrink
    {
        return Err(UpdateError::Shrink {
            path: shown,
            previous: prev,
            new: entries.len(),
        });
    }
    if !opts.dry_run {
        write_atomic(&opts.output_dir, &path, text.as_bytes())?;
        summary.written = true;
    }
    Ok(summary)
}

/// Hosts (-> deprecated) of the overlay in place, if it loads.
fn previous_hosts(path: &Path) -> Option<BTreeMap<String, bool>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut errors = Vec::new();
    let mut budget = overlay::MAX_OVERLAY_ENTRIES;
    let p = overlay::parse_overlay(&path.display().to_string(), &text, &mut errors, &mut budget)?;
    Some(
        p.servers
            .into_iter()
            .map(|(s, _)| (s.host, s.deprecated))
            .collect(),
    )
}

fn diff(prev: Option<&BTreeMap<String, bool>>, new: &[GeneratedEntry], s: &mut UpdateSummary) {
    let empty = BTreeMap::new();
    let prev = prev.unwrap_or(&empty);
    let new_map: BTreeMap<&str, bool> = new
        .iter()
        .map(|e| (e.host.as_str(), e.deprecated))
        .collect();
    for (h, &dep) in &new_map {
        match prev.get(*h) {
            None => s.added.push((*h).to_string()),
            Some(&was) if dep && !was => s.deprecated.push((*h).to_string()),
            Some(&was) if !dep && was => s.reactivated.push((*h).to_string()),
            Some(_) => {}
        }
    }
    for h in prev.keys() {
        if !new_map.contains_key(h.as_str()) {
            s.removed.push(h.clone());
        }
    }
}

/// Write `path` through a temporary file in the same directory, flushed to
/// disk, then renamed over the old file: readers see the old or the new
/// file, never a partial one.
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), UpdateError> {
    let werr = |p: &Path, e: std::io::Error| UpdateError::Write {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| werr(dir, e))?;
    // A leading dot: the overlay loader skips it if a crash leaves it behind.
    let tmp = dir.join(format!(".{OUTPUT_FILE}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Persist the rename itself.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        werr(path, e)
    })
}

// ---------------------------------------------------------------- fetching

struct Fetcher<'a> {
    opts: &'a UpdateOptions,
    client: Option<Client<HttpsConnector<HttpConnector>, Empty<Bytes>>>,
    total_bytes: u64,
    pages: usize,
}

impl<'a> Fetcher<'a> {
    fn new(opts: &'a UpdateOptions) -> Self {
        Self {
            opts,
            client: None,
            total_bytes: 0,
            pages: 0,
        }
    }

    fn client(
        &mut self,
    ) -> Result<Client<HttpsConnector<HttpConnector>, Empty<Bytes>>, UpdateError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let tls = crate::sinks::tls::client_config(self.opts.ca_file.as_deref(), None, None)
            .map_err(|e| UpdateError::Client(e.to_string()))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.opts.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let c = Client::builder(TokioExecutor::new()).build(https);
        self.client = Some(c.clone());
        Ok(c)
    }

    fn count_bytes(&mut self, n: usize, source: &str) -> Result<(), UpdateError> {
        self.total_bytes = self.total_bytes.saturating_add(n as u64);
        if self.total_bytes > self.opts.max_total_bytes {
            return Err(UpdateError::Bound {
                source_name: source.to_string(),
                message: format!(
                    "more than {} bytes read in all (max_total_bytes)",
                    self.opts.max_total_bytes
                ),
            });
        }
        Ok(())
    }

    fn add_entries(
        &self,
        out: &mut Vec<RegistryEntry>,
        new: Vec<RegistryEntry>,
        source: &str,
    ) -> Result<(), UpdateError> {
        if out.len().saturating_add(new.len()) > self.opts.max_entries {
            return Err(UpdateError::Bound {
                source_name: source.to_string(),
                message: format!("more than {} server versions in all", self.opts.max_entries),
            });
        }
        out.extend(new);
        Ok(())
    }

    async fn read_source(
        &mut self,
        source: &str,
        out: &mut Vec<RegistryEntry>,
    ) -> Result<(), UpdateError> {
        let is_url = source.starts_with("https://") || source.starts_with("http://");
        if !is_url {
            return self.read_file(source, out);
        }
        let mut cursor: Option<String> = None;
        let mut seen_cursors = std::collections::HashSet::new();
        loop {
            let url = page_url(source, cursor.as_deref(), self.opts.page_limit);
            let body = self.get(&url).await?;
            self.pages += 1;
            if cursor.is_none() && !registry::looks_like_json(&body) {
                // A plain list served over HTTP: one document, no pages.
                let text = std::str::from_utf8(&body).map_err(|_| UpdateError::Format {
                    source_name: source.to_string(),
                    message: "neither JSON nor UTF-8 text".into(),
                })?;
                let list = registry::parse_list(text, source).map_err(|e| UpdateError::Format {
                    source_name: source.to_string(),
                    message: e.0,
                })?;
                return self.add_entries(out, list, source);
            }
            let page = registry::parse_page(&body, source).map_err(|e| UpdateError::Format {
                source_name: url.clone(),
                message: e.0,
            })?;
            self.add_entries(out, page.entries, source)?;
            let Some(next) = page.next_cursor else {
                return Ok(());
            };
            if !seen_cursors.insert(next.clone()) {
                return Err(UpdateError::Format {
                    source_name: url,
                    message: format!("nextCursor `{next}` was already used: the pages loop"),
                });
            }
            if seen_cursors.len() >= self.opts.max_pages {
                return Err(UpdateError::Bound {
                    source_name: source.to_string(),
                    message: format!(
                        "more than {} pages (max_pages); the list is incomplete",
                        self.opts.max_pages
                    ),
                });
            }
            cursor = Some(next);
        }
    }

    fn read_file(&mut self, path: &str, out: &mut Vec<RegistryEntry>) -> Result<(), UpdateError> {
        use std::io::Read;
        let ferr = |message: String| UpdateError::Format {
            source_name: path.to_string(),
            message,
        };
        let f = std::fs::File::open(path).map_err(|e| ferr(format!("cannot open: {e}")))?;
        let cap = self.opts.max_total_bytes.saturating_sub(self.total_bytes);
        let mut buf = Vec::new();
        f.take(cap.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| ferr(format!("cannot read: {e}")))?;
        self.count_bytes(buf.len(), path)?;
        let entries = if registry::looks_like_json(&buf) {
            registry::parse_saved(&buf, path).map_err(|e| ferr(e.0))?
        } else {
            let text = std::str::from_utf8(&buf)
                .map_err(|e| ferr(format!("not valid UTF-8 (byte {})", e.valid_up_to())))?;
            registry::parse_list(text, path).map_err(|e| ferr(e.0))?
        };
        self.pages += 1;
        self.add_entries(out, entries, path)
    }

    /// GET with the per-request timeout and the page size bound.
    async fn get(&mut self, url: &str) -> Result<Bytes, UpdateError> {
        let fetch_err = |message: String| UpdateError::Fetch {
            url: url.to_string(),
            message,
        };
        let uri: Uri = url
            .parse()
            .map_err(|e| fetch_err(format!("bad URL: {e}")))?;
        let client = self.client()?;
        let req = hyper::Request::get(uri)
            .header(ACCEPT, "application/json, text/plain;q=0.5, text/csv;q=0.5")
            .header(USER_AGENT, concat!("shadowmcp/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(|e| fetch_err(format!("request: {e}")))?;
        let max = self.opts.max_page_bytes;
        let timeout = self.opts.timeout;
        let work = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| fetch_err(error_chain(&e)))?;
            let status = resp.status();
            let declared = resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max as u64) {
                return Err(UpdateError::Bound {
                    source_name: url.to_string(),
                    message: format!("page larger than {max} bytes"),
                });
            }
            let body = Limited::new(resp.into_body(), max)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        UpdateError::Bound {
                            source_name: url.to_string(),
                            message: format!("page larger than {max} bytes"),
                        }
                    } else {
                        fetch_err(format!("reading the body: {}", error_chain(e.as_ref())))
                    }
                })?
                .to_bytes();
            if !status.is_success() {
                let text: String = String::from_utf8_lossy(&body)
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect();
                return Err(UpdateError::Status {
                    url: url.to_string(),
                    status: status.as_u16(),
                    body: if text.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", text.trim())
                    },
                });
            }
            Ok(body)
        };
        let body = tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| fetch_err(format!("no complete answer within {timeout:?}")))??;
        self.count_bytes(body.len(), url)?;
        Ok(body)
    }
}

/// The page URL: the source with `limit` (unless it sets one) and `cursor`.
fn page_url(source: &str, cursor: Option<&str>, limit: u32) -> String {
    let base = source.split_once('#').map_or(source, |(b, _)| b);
    let mut url = base.to_string();
    let query = base.split_once('?').map_or("", |(_, q)| q);
    let has_limit = query.split('&').any(|p| p.starts_with("limit="));
    let mut sep = if base.contains('?') { '&' } else { '?' };
    if !has_limit && limit > 0 {
        url.push(sep);
        url.push_str(&format!("limit={limit}"));
        sep = '&';
    }
    if let Some(c) = cursor {
        url.push(sep);
        url.push_str("cursor=");
        url.push_str(&percent_encode(c));
    }
    url
}

/// Query-component encoding: everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_urls_carry_limit_and_encoded_cursor() {
        assert_eq!(
            page_url("https://r.example/v0.1/servers", None, 100),
            "https://r.example/v0.1/servers?limit=100"
        );
        assert_eq!(
            page_url(
                "https://r.example/v0.1/servers?version=latest",
                Some("a/b:1.0 x"),
                100
            ),
            "https://r.example/v0.1/servers?version=latest&limit=100&cursor=a%2Fb%3A1.0%20x"
        );
        assert_eq!(
            page_url("https://r.example/s?limit=5", Some("c"), 100),
            "https://r.example/s?limit=5&cursor=c"
        );
    }
}

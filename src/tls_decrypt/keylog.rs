//! NSS key log files (`SSLKEYLOGFILE`): parsing, a bounded key table shared
//! by worker threads, a follower for a file that grows while the sensor
//! runs, and the key-log bytes of pcapng Decryption Secrets Blocks.
//!
//! A line is `LABEL <64 hex digits of client random> <hex secret>`. The
//! labels used here are `CLIENT_RANDOM` (TLS 1.2 master secret) and the four
//! TLS 1.3 handshake and traffic secrets; other labels (`EXPORTER_SECRET`,
//! `CLIENT_EARLY_TRAFFIC_SECRET`, `RSA`, ECH lines) and `#` comments are
//! counted and ignored. A malformed line is reported with its number and
//! skipped. Secret bytes are never logged or printed.

use super::schedule::Secret;
use rustc_hash::FxHashMap as HashMap;
use std::collections::VecDeque;
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Longest line accepted: a label, 64 hex digits and a 48-byte secret fit
/// in well under this.
pub const MAX_LINE: usize = 512;
/// Malformed lines reported one by one per load; the rest are counted.
const WARN_LINES: u64 = 10;
const SHARDS: usize = 16;

/// Which secret a line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// TLS 1.2 (and earlier) master secret.
    ClientRandom,
    ClientHandshake,
    ServerHandshake,
    ClientTraffic0,
    ServerTraffic0,
}

impl Label {
    fn parse(s: &[u8]) -> Option<Label> {
        Some(match s {
            b"CLIENT_RANDOM" => Label::ClientRandom,
            b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Label::ClientHandshake,
            b"SERVER_HANDSHAKE_TRAFFIC_SECRET" => Label::ServerHandshake,
            b"CLIENT_TRAFFIC_SECRET_0" => Label::ClientTraffic0,
            b"SERVER_TRAFFIC_SECRET_0" => Label::ServerTraffic0,
            _ => return None,
        })
    }
}

/// The secrets known for one client random.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionKeys {
    pub master: Option<Secret>,
    pub client_handshake: Option<Secret>,
    pub server_handshake: Option<Secret>,
    pub client_traffic: Option<Secret>,
    pub server_traffic: Option<Secret>,
}

impl SessionKeys {
    fn slot(&mut self, label: Label) -> &mut Option<Secret> {
        match label {
            Label::ClientRandom => &mut self.master,
            Label::ClientHandshake => &mut self.client_handshake,
            Label::ServerHandshake => &mut self.server_handshake,
            Label::ClientTraffic0 => &mut self.client_traffic,
            Label::ServerTraffic0 => &mut self.server_traffic,
        }
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Which secrets are present, never their bytes.
        f.debug_struct("SessionKeys")
            .field("master", &self.master.is_some())
            .field("client_handshake", &self.client_handshake.is_some())
            .field("server_handshake", &self.server_handshake.is_some())
            .field("client_traffic", &self.client_traffic.is_some())
            .field("server_traffic", &self.server_traffic.is_some())
            .finish()
    }
}

/// Why a line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("expected three space-separated fields")]
    Fields,
    #[error("client random is not 64 hex digits")]
    ClientRandom,
    #[error("secret is not hex of 1 to 48 bytes")]
    Secret,
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
}

/// One line's meaning.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Key(Label, [u8; 32], Secret),
    /// A comment, a blank line or a label not used here.
    Ignored,
}

/// Value of each hex digit; 0xff for other bytes.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Decode hex into `out`; `None` unless `s` is exactly `2 * out.len()` digits.
fn unhex(s: &[u8], out: &mut [u8]) -> Option<()> {
    if s.len() != out.len() * 2 {
        return None;
    }
    // A plain loop: a key log may have millions of lines, and this runs
    // unoptimised in debug builds too.
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        if let [h, l] = *pair {
            let (h, l) = (HEX_VALUE[h as usize], HEX_VALUE[l as usize]);
            bad |= (h | l) & 0xf0;
            *o = h << 4 | (l & 0x0f);
        }
    }
    (bad == 0).then_some(())
}

/// Space- or tab-separated fields.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.0.is_empty() {
                return None;
            }
            let end = memchr::memchr2(b' ', b'\t', self.0).unwrap_or(self.0.len());
            let (field, tail) = self.0.split_at(end);
            self.0 = tail.get(1..).unwrap_or_default();
            if !field.is_empty() {
                return Some(field);
            }
        }
    }
}

/// Parse one line (without its end of line; a trailing `\r` is allowed).
pub fn parse_line(line: &[u8]) -> Result<Line, LineError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong);
    }
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() || trimmed.starts_with(b"#") {
        return Ok(Line::Ignored);
    }
    let mut fields = Fields(trimmed);
    let label = fields.next().ok_or(LineError::Fields)?;
    let Some(label) = Label::parse(label) else {
        // Only the labels used here are checked further.
        return Ok(Line::Ignored);
    };
    let (Some(random), Some(secret), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(LineError::Fields);
    };
    let mut r = [0u8; 32];
    unhex(random, &mut r).ok_or(LineError::ClientRandom)?;
    if secret.len() % 2 != 0 || secret.is_empty() || secret.len() > 2 * super::schedule::MAX_SECRET
    {
        return Err(LineError::Secret);
    }
    let mut buf = [0u8; super::schedule::MAX_SECRET];
    let n = secret.len() / 2;
    let parsed = buf
        .get_mut(..n)
        .and_then(|b| unhex(secret, b))
        .and_then(|()| Secret::new(buf.get(..n)?));
    zeroize::Zeroize::zeroize(&mut buf);
    let secret = parsed.ok_or(LineError::Secret)?;
    if label == Label::ClientRandom && secret.len() != 48 {
        return Err(LineError::Secret);
    }
    Ok(Line::Key(label, r, secret))
}

/// What one load or poll brought in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Lines that set a secret.
    pub keys: u64,
    /// Comments, blank lines and labels not used here.
    pub ignored: u64,
    pub malformed: u64,
    /// Line number (1-based, counted from the start of the source) of the
    /// first malformed line, and its error.
    pub first_error: Option<(u64, LineError)>,
}

impl LoadReport {
    fn merge(&mut self, o: &LoadReport) {
        self.keys += o.keys;
        self.ignored += o.ignored;
        self.malformed += o.malformed;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
    }
}

/// Key-table size and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyTableStats {
    pub entries: u64,
    /// Entries evicted (oldest first) to stay within the bound.
    pub evicted: u64,
    /// Key lines stored (a line for a known client random updates it).
    pub inserted: u64,
    pub malformed_lines: u64,
    pub ignored_lines: u64,
}

struct Shard {
    map: HashMap<[u8; 32], SessionKeys>,
    /// Insertion order, for eviction.
    order: VecDeque<[u8; 32]>,
}

/// Secrets by ClientHello random, shared by every worker (`Arc<KeyTable>`).
/// Bounded in entries: past the bound the oldest entry of a shard goes.
pub struct KeyTable {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    generation: AtomicU64,
    evicted: AtomicU64,
    inserted: AtomicU64,
    malformed: AtomicU64,
    ignored: AtomicU64,
}

impl fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyTable({:?}, redacted)", self.stats())
    }
}

impl KeyTable {
    /// A table of at most `max_entries` client randoms (at least one per
    /// shard).
    pub fn new(max_entries: usize) -> KeyTable {
        let per_shard = max_entries.div_ceil(SHARDS).max(1);
        KeyTable {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::default(),
                        order: VecDeque::new(),
                    })
                })
                .collect(),
            per_shard,
            generation: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            inserted: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
        }
    }

    fn shard(&self, random: &[u8; 32]) -> MutexGuard<'_, Shard> {
        // Client randoms are random: their first byte spreads them.
        let i = random[0] as usize % SHARDS;
        let m = self.shards.get(i).or(self.shards.first());
        match m {
            Some(m) => m.lock().unwrap_or_else(|p| p.into_inner()),
            // `new` always makes SHARDS shards.
            None => unreachable!("key table without shards"),
        }
    }

    /// Changes with every stored secret: a flow waiting for keys looks the
    /// table up again only when this moved.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Store one secret.
    pub fn insert(&self, label: Label, random: [u8; 32], secret: Secret) {
        {
            let mut s = self.shard(&random);
            let Shard { map, order } = &mut *s;
            if !map.contains_key(&random) {
                while map.len() >= self.per_shard {
                    let Some(old) = order.pop_front() else { break };
                    map.remove(&old);
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
                order.push_back(random);
            }
            *map.entry(random).or_default().slot(label) = Some(secret);
        }
        self.inserted.fetch_add(1, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The secrets known for `random` (a copy).
    pub fn get(&self, random: &[u8; 32]) -> Option<SessionKeys> {
        self.shard(random).map.get(random).cloned()
    }

    pub fn stats(&self) -> KeyTableStats {
        KeyTableStats {
            entries: self
                .shards
                .iter()
                .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).map.len() as u64)
                .sum(),
            evicted: self.evicted.load(Ordering::Relaxed),
            inserted: self.inserted.load(Ordering::Relaxed),
            malformed_lines: self.malformed.load(Ordering::Relaxed),
            ignored_lines: self.ignored.load(Ordering::Relaxed),
        }
    }

    /// Load whole key-log text (a file's contents, a Decryption Secrets
    /// Block). `source` names it in warnings.
    pub fn load_bytes(&self, bytes: &[u8], source: &str) -> LoadReport {
        let mut p = LineParser::new(source);
        p.push(bytes, self);
        p.finish(self);
        p.report
    }

    /// The key-log bytes of a pcapng Decryption Secrets Block of type TLSK
    /// (see `capture::FileSource::take_secrets`).
    pub fn load_decryption_secrets_block(&self, bytes: &[u8]) -> LoadReport {
        self.load_bytes(bytes, "pcapng decryption secrets block")
    }

    /// Load a key log file (up to `max_bytes` of it). Warns when the file
    /// can be read by group or others: it holds session secrets.
    pub fn load_file(&self, path: &Path, max_bytes: u64) -> Result<LoadReport, KeyLogError> {
        let err = |e: std::io::Error| KeyLogError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let f = std::fs::File::open(path).map_err(err)?;
        warn_if_readable(path, &f);
        let mut bytes = Vec::new();
        f.take(max_bytes).read_to_end(&mut bytes).map_err(err)?;
        let report = self.load_bytes(&bytes, &path.display().to_string());
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(report)
    }
}

/// A key log that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyLogError {
    #[error("key log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[cfg(unix)]
fn warn_if_readable(path: &Path, f: &std::fs::File) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = f.metadata()
        && m.is_file()
        && m.permissions().mode() & 0o044 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", m.permissions().mode() & 0o777),
            "key log is readable by group or others; it holds TLS session secrets (chmod 600)"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable(_: &Path, _: &std::fs::File) {}

/// Splits a byte stream into lines, keeping a partial last line (bounded)
/// until it completes, and counts line numbers for warnings.
pub struct LineParser {
    source: String,
    partial: Vec<u8>,
    /// The partial line went past [`MAX_LINE`]: the rest of it is dropped.
    overlong: bool,
    line: u64,
    pub report: LoadReport,
}

impl LineParser {
    pub fn new(source: &str) -> LineParser {
        LineParser {
            source: source.to_string(),
            partial: Vec::new(),
            overlong: false,
            line: 0,
            report: LoadReport::default(),
        }
    }

    /// Forget the partial line and start counting lines again (a file that
    /// was truncated or replaced).
    pub fn restart(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.partial);
        self.partial.clear();
        self.overlong = false;
        self.line = 0;
    }

    /// Parse every complete line of `bytes` (after what was kept from the
    /// previous push) into `table`.
    pub fn push(&mut self, mut bytes: &[u8], table: &KeyTable) {
        while let Some(nl) = memchr::memchr(b'\n', bytes) {
            let (line, rest) = bytes.split_at(nl);
            bytes = rest.get(1..).unwrap_or_default();
            if self.partial.is_empty() && !self.overlong {
                self.one(Some(line), table);
            } else {
                let fits = self.partial.len() + line.len() <= MAX_LINE + 1;
                if fits && !self.overlong {
                    self.partial.extend_from_slice(line);
                    let whole = std::mem::take(&mut self.partial);
                    self.one(Some(&whole), table);
                    let mut whole = whole;
                    zeroize::Zeroize::zeroize(&mut whole);
                    // Keep the allocation for the next partial line.
                    whole.clear();
                    self.partial = whole;
                } else {
                    self.one(None, table);
                }
                self.partial.clear();
                self.overlong = false;
            }
        }
        if !bytes.is_empty() && !self.overlong {
            if self.partial.len() + bytes.len() > MAX_LINE + 1 {
                self.overlong = true;
                zeroize::Zeroize::zeroize(&mut self.partial);
                self.partial.clear();
            } else {
                self.partial.extend_from_slice(bytes);
            }
        }
    }

    /// The end of the input: a last line without a newline counts.
    pub fn finish(&mut self, table: &KeyTable) {
        if self.overlong {
            self.one(None, table);
        } else if !self.partial.is_empty() {
            let whole = std::mem::take(&mut self.partial);
            self.one(Some(&whole), table);
            let mut whole = whole;
            zeroize::Zeroize::zeroize(&mut whole);
        }
        self.overlong = false;
    }

    /// One line; `None` for a line that was too long to keep.
    fn one(&mut self, line: Option<&[u8]>, table: &KeyTable) {
        self.line += 1;
        let parsed = match line {
            Some(l) => parse_line(l),
            None => Err(LineError::TooLong),
        };
        match parsed {
            Ok(Line::Key(label, random, secret)) => {
                table.insert(label, random, secret);
                self.report.keys += 1;
            }
            Ok(Line::Ignored) => {
                self.report.ignored += 1;
                table.ignored.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.report.malformed += 1;
                table.malformed.fetch_add(1, Ordering::Relaxed);
                if self.report.malformed <= WARN_LINES {
                    // The line itself is never logged: it may hold a secret.
                    tracing::warn!(source = %self.source, line = self.line, error = %e, "malformed key log line skipped");
                } else if self.report.malformed == WARN_LINES + 1 {
                    tracing::warn!(source = %self.source, "more malformed key log lines; only counted from here on");
                }
                if self.report.first_error.is_none() {
                    self.report.first_error = Some((self.line, e));
                }
            }
        }
    }
}

/// Follows a key log file that grows while the sensor runs, as `tail -F`
/// does: appended lines are read, a truncated file is read again from its
/// start, a replaced file (new inode, as after rotation) from the start of
/// the new one, and a file that does not exist yet is waited for. Call
/// [`KeyLogFollower::poll`] periodically, or [`KeyLogFollower::spawn`] a
/// thread that does.
pub struct KeyLogFollower {
    path: PathBuf,
    table: Arc<KeyTable>,
    file: Option<std::fs::File>,
    /// (device, inode) of the open file.
    id: Option<(u64, u64)>,
    offset: u64,
    parser: LineParser,
    max_per_poll: usize,
    buf: Vec<u8>,
    warned_missing: bool,
    /// Total of every poll.
    pub total: LoadReport,
}

impl fmt::Debug for KeyLogFollower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLogFollower")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

impl KeyLogFollower {
    /// Follow `path` into `table`, reading at most `max_per_poll` bytes per
    /// poll (at least 4 KiB).
    pub fn new(path: &Path, table: Arc<KeyTable>, max_per_poll: usize) -> KeyLogFollower {
        KeyLogFollower {
            path: path.to_path_buf(),
            table,
            file: None,
            id: None,
            offset: 0,
            parser: LineParser::new(&path.display().to_string()),
            max_per_poll: max_per_poll.max(4096),
            buf: Vec::new(),
            warned_missing: false,
            total: LoadReport::default(),
        }
    }

    /// Read what was added since the last poll; returns what it brought in.
    /// A file that is missing is not an error (it may appear later).
    pub fn poll(&mut self) -> Result<LoadReport, KeyLogError> {
        let before = self.parser.report.clone();
        self.poll_inner()?;
        let now = &self.parser.report;
        let report = LoadReport {
            keys: now.keys - before.keys,
            ignored: now.ignored - before.ignored,
            malformed: now.malformed - before.malformed,
            first_error: if before.first_error.is_none() {
                now.first_error.clone()
            } else {
                None
            },
        };
        self.total.merge(&report);
        Ok(report)
    }

    fn poll_inner(&mut self) -> Result<(), KeyLogError> {
        let path = self.path.clone();
        let err = |e: std::io::Error| KeyLogError::Io {
            path: path.clone(),
            source: e,
        };
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !self.warned_missing {
                    tracing::info!(path = %self.path.display(), "key log does not exist yet; waiting for it");
                    self.warned_missing = true;
                }
                // Whatever the old file still had was read on earlier polls.
                return Ok(());
            }
            Err(e) => return Err(err(e)),
        };
        let id = file_id(&meta);
        if self.id != Some(id) {
            // First open, or the path now names another file: finish the
            // old one's last line, then read the new one from its start.
            if self.file.is_some() {
                self.read_some()?;
                self.parser.finish(&self.table);
                tracing::info!(path = %self.path.display(), "key log replaced; reading the new file");
            }
            let f = match std::fs::File::open(&self.path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(err(e)),
            };
            warn_if_readable(&self.path, &f);
            self.file = Some(f);
            self.id = Some(id);
            self.offset = 0;
            self.parser.restart();
            self.warned_missing = false;
        } else if meta.len() < self.offset {
            tracing::info!(path = %self.path.display(), "key log truncated; reading it again from the start");
            self.offset = 0;
            self.parser.restart();
            if let Some(f) = &mut self.file {
                f.seek(SeekFrom::Start(0)).map_err(err)?;
            }
        }
        self.read_some()
    }

    /// Read up to `max_per_poll` bytes from the open file.
    fn read_some(&mut self) -> Result<(), KeyLogError> {
        let Some(f) = &mut self.file else {
            return Ok(());
        };
        self.buf.resize(self.max_per_poll, 0);
        let mut got = 0;
        while got < self.buf.len() {
            let Some(space) = self.buf.get_mut(got..) else {
                break;
            };
            match f.read(space) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(KeyLogError::Io {
                        path: self.path.clone(),
                        source: e,
                    });
                }
            }
        }
        self.offset += got as u64;
        if let Some(b) = self.buf.get(..got) {
            self.parser.push(b, &self.table);
        }
        zeroize::Zeroize::zeroize(&mut self.buf);
        Ok(())
    }

    /// Poll every `interval` on a thread of its own until the handle is
    /// dropped or stopped.
    pub fn spawn(mut self, interval: Duration) -> std::io::Result<FollowerHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("keylog-follow".into())
            .spawn(move || {
                let mut failing = false;
                while !flag.load(Ordering::Acquire) {
                    match self.poll() {
                        Ok(_) => failing = false,
                        Err(e) if !failing => {
                            tracing::warn!(error = %e, "key log follower cannot read; retrying");
                            failing = true;
                        }
                        Err(_) => {}
                    }
                    std::thread::park_timeout(interval);
                }
            })?;
        Ok(FollowerHandle {
            stop,
            thread: Some(thread),
        })
    }
}

/// A running follower thread; stopped and joined when dropped.
#[derive(Debug)]
pub struct FollowerHandle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FollowerHandle {
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for FollowerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(label: &str, r: u8, secret_len: usize, s: u8) -> String {
        format!(
            "{label} {} {}\n",
            format!("{r:02x}").repeat(32),
            format!("{s:02x}").repeat(secret_len)
        )
    }

    #[test]
    fn parses_every_used_label_and_ignores_others() {
        let mut text = String::from("# SSL/TLS secrets log file, generated by NSS\n\n");
        text += &line("CLIENT_RANDOM", 1, 48, 0xaa);
        text += &line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", 2, 32, 0xbb);
        text += &line("SERVER_HANDSHAKE_TRAFFIC_SECRET", 2, 32, 0xcc);
        text += &line("CLIENT_TRAFFIC_SECRET_0", 2, 48, 0xdd);
        text += &line("SERVER_TRAFFIC_SECRET_0", 2, 32, 0xee);
        text += &line("EXPORTER_SECRET", 2, 32, 0xff);
        text += &line("CLIENT_EARLY_TRAFFIC_SECRET", 2, 32, 0xff);
        let t = KeyTable::new(100);
        let r = t.load_bytes(text.as_bytes(), "test");
        assert_eq!((r.keys, r.ignored, r.malformed), (5, 4, 0));
        let k = t.get(&[1; 32]).unwrap();
        assert_eq!(k.master.as_ref().unwrap().as_bytes(), &[0xaa; 48]);
        assert!(k.client_handshake.is_none());
        let k = t.get(&[2; 32]).unwrap();
        assert_eq!(k.client_handshake.unwrap().as_bytes(), &[0xbb; 32]);
        assert_eq!(k.server_handshake.unwrap().as_bytes(), &[0xcc; 32]);
        assert_eq!(k.client_traffic.unwrap().as_bytes(), &[0xdd; 48]);
        assert_eq!(k.server_traffic.unwrap().as_bytes(), &[0xee; 32]);
        assert!(t.get(&[3; 32]).is_none());
        assert_eq!(t.stats().entries, 2);
    }

    #[test]
    fn malformed_lines_are_numbered_and_the_rest_is_used() {
        let mut text = line("CLIENT_RANDOM", 1, 48, 1);
        text += "CLIENT_RANDOM zz\n"; // 2
        text += &format!("CLIENT_RANDOM {} abc\n", "11".repeat(32)); // 3: odd hex
        text += &line("CLIENT_RANDOM", 4, 32, 1); // 4: master secret not 48 bytes
        text += &format!("CLIENT_RANDOM {} {}\n", "1".repeat(63), "22".repeat(48)); // 5
        text += &"x".repeat(2000); // 6: too long
        text += "\r\n";
        text += &line("CLIENT_RANDOM", 7, 48, 7).replace('\n', "\r\n");
        text += line("SERVER_TRAFFIC_SECRET_0", 8, 32, 8).trim_end(); // no newline
        let t = KeyTable::new(100);
        let r = t.load_bytes(text.as_bytes(), "test");
        assert_eq!((r.keys, r.malformed), (3, 5), "{r:?}");
        assert_eq!(r.first_error, Some((2, LineError::Fields)));
        assert!(t.get(&[7; 32]).is_some() && t.get(&[8; 32]).is_some());
        // Line numbers of each error, fed byte by byte through the parser.
        let t2 = KeyTable::new(100);
        let mut p = LineParser::new("bytes");
        for b in text.as_bytes() {
            p.push(std::slice::from_ref(b), &t2);
        }
        p.finish(&t2);
        assert_eq!(p.report, r);
        assert_eq!(
            parse_line(b"CLIENT_RANDOM 11 22 33"),
            Err(LineError::Fields)
        );
        assert_eq!(
            parse_line(b"CLIENT_RANDOM 11 22"),
            Err(LineError::ClientRandom)
        );
        assert_eq!(
            parse_line(format!("CLIENT_RANDOM {} {}", "11".repeat(32), "2".repeat(95)).as_bytes()),
            Err(LineError::Secret)
        );
        let l6 = text.lines().nth(5).unwrap();
        assert_eq!(parse_line(l6.as_bytes()), Err(LineError::TooLong));
    }

    #[test]
    fn table_is_bounded_and_counts_evictions() {
        let t = KeyTable::new(64);
        for i in 0..1000u32 {
            let mut r = [0u8; 32];
            r[..4].copy_from_slice(&i.to_le_bytes());
            t.insert(Label::ClientRandom, r, Secret::new(&[1; 48]).unwrap());
        }
        let s = t.stats();
        assert!(s.entries <= 64, "{s:?}");
        assert_eq!(s.entries + s.evicted, 1000);
        assert_eq!(t.generation(), 1000);
        // The newest survive.
        let mut r = [0u8; 32];
        r[..4].copy_from_slice(&999u32.to_le_bytes());
        assert!(t.get(&r).is_some());
    }

    /// A million generated lines: every one stored in a table bounded far
    /// below that, in a time that keeps the test suite fast.
    #[test]
    fn a_million_lines() {
        let mut text = Vec::with_capacity(1_000_000 * 176);
        let secret = "5a".repeat(48);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for i in 0..1_000_000u32 {
            text.extend_from_slice(b"CLIENT_RANDOM ");
            // A distinct random per line: the number's digits spread over
            // the first bytes (which pick the shard), zeros after.
            let mut r = [b'0'; 64];
            let mut v = i.wrapping_mul(2_654_435_761);
            for d in r.iter_mut().take(8) {
                *d = HEX[(v & 15) as usize];
                v >>= 4;
            }
            text.extend_from_slice(&r);
            text.push(b' ');
            text.extend_from_slice(secret.as_bytes());
            text.push(b'\n');
        }
        let t = KeyTable::new(100_000);
        let start = std::time::Instant::now();
        let r = t.load_bytes(&text, "million");
        let took = start.elapsed();
        eprintln!("a million key log lines parsed and stored in {took:?}");
        assert_eq!((r.keys, r.malformed), (1_000_000, 0));
        let s = t.stats();
        assert!(s.entries <= 100_000 + SHARDS as u64, "{s:?}");
        assert_eq!(s.entries + s.evicted, 1_000_000);
        // About 10 µs a line in an unoptimised build on a loaded 2-core
        // machine (well under 1 µs optimised); generous.
        assert!(took < Duration::from_secs(60), "{took:?}");
    }

    #[test]
    fn debug_output_is_redacted() {
        let t = KeyTable::new(10);
        t.load_bytes(line("CLIENT_RANDOM", 1, 48, 0x5c).as_bytes(), "t");
        let k = t.get(&[1; 32]).unwrap();
        for d in [
            format!("{k:?}"),
            format!("{t:?}"),
            format!("{:?}", k.master),
        ] {
            assert!(!d.contains("5c") && !d.contains("92"), "{d}");
        }
    }

    #[test]
    fn load_file_bounded_and_missing_file_is_an_error() {
        let dir = std::env::temp_dir().join(format!("shadowmcp-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.log");
        let text = line("CLIENT_RANDOM", 1, 48, 1) + &line("CLIENT_RANDOM", 2, 48, 2);
        std::fs::write(&path, &text).unwrap();
        let t = KeyTable::new(10);
        assert_eq!(t.load_file(&path, 1 << 20).unwrap().keys, 2);
        // Only the first `max_bytes` are read: the second line is cut.
        let t = KeyTable::new(10);
        let r = t.load_file(&path, text.len() as u64 - 10).unwrap();
        assert_eq!((r.keys, r.malformed), (1, 1));
        let err = t.load_file(&dir.join("absent.log"), 100).unwrap_err();
        assert!(err.to_string().contains("absent.log"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn wait_for(t: &KeyTable, r: u8) -> bool {
        t.get(&[r; 32]).is_some()
    }

    /// The follower reads appends, keeps a partial line until it completes,
    /// re-reads a truncated file, follows a rotated (replaced) file and
    /// waits for a file that does not exist yet.
    #[test]
    fn follower_appends_truncation_rotation_and_late_file() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("shadowmcp-keylog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.log");
        let t = Arc::new(KeyTable::new(100));
        let mut f = KeyLogFollower::new(&path, t.clone(), 4096);
        assert_eq!(f.poll().unwrap().keys, 0);
        let mut w = std::fs::File::create(&path).unwrap();
        let l1 = line("CLIENT_RANDOM", 1, 48, 1);
        w.write_all(l1.as_bytes()).unwrap();
        let l2 = line("CLIENT_RANDOM", 2, 48, 2);
        let (a, b) = l2.split_at(40);
        w.write_all(a.as_bytes()).unwrap();
        assert_eq!(f.poll().unwrap().keys, 1);
        assert!(wait_for(&t, 1) && !wait_for(&t, 2));
        w.write_all(b.as_bytes()).unwrap();
        assert_eq!(f.poll().unwrap().keys, 1);
        assert!(wait_for(&t, 2));
        // Truncation: the file starts again.
        w.set_len(0).unwrap();
        drop(w);
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        w.write_all(line("CLIENT_RANDOM", 3, 48, 3).as_bytes())
            .unwrap();
        assert_eq!(f.poll().unwrap().keys, 1);
        assert!(wait_for(&t, 3));
        // Rotation: a new file at the path.
        std::fs::rename(&path, dir.join("keys.log.1")).unwrap();
        let mut w = std::fs::File::create(&path).unwrap();
        w.write_all(line("CLIENT_RANDOM", 4, 48, 4).as_bytes())
            .unwrap();
        assert_eq!(f.poll().unwrap().keys, 1);
        assert!(wait_for(&t, 4));
        // Reads are bounded per poll.
        let mut big = String::new();
        for i in 10..100u8 {
            big += &line("CLIENT_RANDOM", i, 48, i);
        }
        w.write_all(big.as_bytes()).unwrap();
        let first = f.poll().unwrap().keys;
        assert!(first > 0 && first < 90, "{first}");
        let mut rest = 0;
        for _ in 0..10 {
            rest += f.poll().unwrap().keys;
        }
        assert_eq!(first + rest, 90);
        assert_eq!(f.total.keys, 94);
        // The thread version picks up a later line.
        let mut h = f.spawn(Duration::from_millis(10)).unwrap();
        w.write_all(line("CLIENT_RANDOM", 200, 48, 1).as_bytes())
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !wait_for(&t, 200) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        h.stop();
        assert!(wait_for(&t, 200));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

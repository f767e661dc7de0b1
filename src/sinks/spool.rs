//! On-disk spool: findings that could not be delivered yet, kept across
//! receiver outages and sensor restarts.
//!
//! Layout: `DIR/<20-digit sequence>.jsonl`, one finding per line, each file
//! (segment) at most `segment_lines` findings (the sink's `batch_max`) and
//! [`SEGMENT_MAX_BYTES`]. A segment is delivered as one batch and deleted
//! once the receiver acknowledged it, so a finding is delivered once per
//! acknowledgement (a crash between the acknowledgement and the delete
//! delivers that segment again). Total size is capped at `max_bytes`: when
//! full, **new** findings are dropped and counted — the oldest undelivered
//! findings (the first sighting of a shadow MCP client) are kept.
//! Files are appended with plain writes (no fsync per finding): they survive
//! a process restart; the last writes before a power loss may not.

use super::{MAX_FINDING_BYTES, SinkError, SinkStats, log_this_drop, warn};
use serde_json::Value;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

/// Largest segment written; also the most read back from one file, so a
/// damaged or foreign file cannot make the reader allocate more.
pub const SEGMENT_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Most segment files tracked (each is at least one finding); beyond this
/// new findings are dropped like when the byte cap is reached.
const MAX_SEGMENTS: usize = 1_000_000;

struct OpenSeg {
    seq: u64,
    file: File,
    lines: usize,
    bytes: u64,
}

struct Inner {
    /// Closed and open segments, oldest first: (sequence, bytes).
    segments: std::collections::VecDeque<(u64, u64)>,
    total: u64,
    next_seq: u64,
    open: Option<OpenSeg>,
    /// Segment whose unreadable lines were already counted: while the
    /// receiver is down the same oldest segment is read for every probe.
    bad_counted: Option<u64>,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_lines: usize,
    stats: Arc<SinkStats>,
    inner: Mutex<Inner>,
}

/// One segment read back for delivery.
pub struct Segment {
    pub seq: u64,
    pub items: Vec<Arc<Value>>,
}

fn seg_name(seq: u64) -> String {
    format!("{seq:020}.jsonl")
}

fn parse_seg_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".jsonl")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Spool {
    /// Opens (creating) the spool directory and takes stock of segments
    /// left by an earlier run; they are delivered first.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        segment_lines: usize,
        stats: Arc<SinkStats>,
    ) -> Result<Spool, SinkError> {
        let io = |e| SinkError::Io {
            path: dir.display().to_string(),
            source: e,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let mut found = Vec::new();
        for ent in fs::read_dir(dir).map_err(io)? {
            let ent = ent.map_err(io)?;
            let Some(seq) = ent.file_name().to_str().and_then(parse_seg_name) else {
                continue;
            };
            let len = ent.metadata().map(|m| m.len()).unwrap_or(0);
            found.push((seq, len));
            if found.len() >= MAX_SEGMENTS {
                break;
            }
        }
        found.sort_unstable();
        let total = found
            .iter()
            .map(|(_, l)| *l)
            .fold(0u64, u64::saturating_add);
        let next_seq = found.last().map_or(0, |(s, _)| s.saturating_add(1));
        stats.spool_bytes.store(total, Ordering::Relaxed);
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes,
            segment_lines: segment_lines.max(1),
            stats,
            inner: Mutex::new(Inner {
                segments: found.into(),
                total,
                next_seq,
                open: None,
                bad_counted: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent enough
        // state (worst case a segment is re-read): keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_empty(&self) -> bool {
        self.lock().segments.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.lock().total
    }

    fn dropped(&self, name: &str, n: usize, why: &str) {
        let total = self.stats.dropped.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if log_this_drop(total) || n > 1 {
            warn(
                name,
                &format!("{n} finding(s) dropped: {why} ({total} dropped so far)"),
            );
        }
    }

    /// Appends findings. Returns how many were written; the others were
    /// dropped (spool full, too large, I/O error) and counted.
    pub fn append(&self, name: &str, items: &[Arc<Value>]) -> usize {
        let mut written = 0;
        let mut g = self.lock();
        for v in items {
            let mut line = match serde_json::to_vec(v.as_ref()) {
                Ok(l) if l.len() <= MAX_FINDING_BYTES => l,
                _ => {
                    self.dropped(name, 1, "finding too large or not serialisable");
                    continue;
                }
            };
            line.push(b'\n');
            let len = line.len() as u64;
            if g.total.saturating_add(len) > self.max_bytes || g.segments.len() >= MAX_SEGMENTS {
                self.dropped(name, 1, "spool full (spool_max_bytes)");
                continue;
            }
            if let Err(e) = self.write_line(&mut g, &line) {
                self.dropped(name, 1, &format!("spool write failed: {e}"));
                continue;
            }
            written += 1;
        }
        SinkStats::add(&self.stats.spooled, written);
        self.stats.spool_bytes.store(g.total, Ordering::Relaxed);
        written
    }

    fn write_line(&self, g: &mut Inner, line: &[u8]) -> std::io::Result<()> {
        let len = line.len() as u64;
        let full = g.open.as_ref().is_some_and(|o| {
            o.lines >= self.segment_lines || o.bytes.saturating_add(len) > SEGMENT_MAX_BYTES
        });
        if full {
            g.open = None;
        }
        if g.open.is_none() {
            let seq = g.next_seq;
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(self.dir.join(seg_name(seq)))?;
            g.next_seq = seq.saturating_add(1);
            g.segments.push_back((seq, 0));
            g.open = Some(OpenSeg {
                seq,
                file,
                lines: 0,
                bytes: 0,
            });
        }
        let Some(o) = g.open.as_mut() else {
            return Err(std::io::Error::other("no open segment"));
        };
        if let Err(e) = o.file.write_all(line) {
            // A full disk accepts part of the line: cut it off, or the next
            // line would be glued to it and both read back as one torn line
            // (a finding counted as spooled, then lost). If even that fails,
            // later lines go to a new file.
            if o.file.set_len(o.bytes).is_err() {
                g.open = None;
            }
            return Err(e);
        }
        o.lines += 1;
        o.bytes = o.bytes.saturating_add(len);
        let seq = o.seq;
        g.total = g.total.saturating_add(len);
        if let Some(s) = g.segments.iter_mut().rev().find(|(s, _)| *s == seq) {
            s.1 = s.1.saturating_add(len);
        }
        Ok(())
    }

    /// Stops appending to the current segment (flushing it to disk).
    pub fn close_open_segment(&self, _name: &str) {
        if let Some(o) = self.lock().open.take() {
            let _ = o.file.sync_data();
        }
    }

    /// Reads the oldest segment. Lines that are not JSON (a torn write, a
    /// foreign file) are dropped and counted. The segment stays on disk
    /// until [`Spool::remove`].
    pub fn oldest(&self, name: &str) -> Option<Segment> {
        let mut g = self.lock();
        let &(seq, _) = g.segments.front()?;
        if g.open.as_ref().is_some_and(|o| o.seq == seq) {
            // Later findings go to a new segment while this one is in flight.
            g.open = None;
        }
        drop(g);
        let path = self.dir.join(seg_name(seq));
        let mut buf = Vec::new();
        let read = File::open(&path).and_then(|f| f.take(SEGMENT_MAX_BYTES).read_to_end(&mut buf));
        if let Err(e) = read {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn(name, &format!("spool {}: {e}", path.display()));
            }
            return Some(Segment {
                seq,
                items: Vec::new(),
            });
        }
        let mut items = Vec::new();
        let mut bad = 0usize;
        for line in buf.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Value>(line) {
                Ok(v) if line.len() <= MAX_FINDING_BYTES => items.push(Arc::new(v)),
                _ => bad += 1,
            }
        }
        let first_read = {
            let mut g = self.lock();
            let first = g.bad_counted != Some(seq);
            g.bad_counted = Some(seq);
            first
        };
        if bad > 0 && first_read {
            self.dropped(
                name,
                bad,
                &format!("unreadable lines in spool file {}", path.display()),
            );
        }
        Some(Segment { seq, items })
    }

    /// Deletes a delivered segment.
    pub fn remove(&self, name: &str, seq: u64) {
        let mut g = self.lock();
        if g.open.as_ref().is_some_and(|o| o.seq == seq) {
            g.open = None;
        }
        if let Some(pos) = g.segments.iter().position(|(s, _)| *s == seq)
            && let Some((_, len)) = g.segments.remove(pos)
        {
            g.total = g.total.saturating_sub(len);
        }
        self.stats.spool_bytes.store(g.total, Ordering::Relaxed);
        drop(g);
        let path = self.dir.join(seg_name(seq));
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn(
                name,
                &format!("cannot remove spool file {}: {e}", path.display()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "shadowmcp-spool-{tag}-{}-{}",
            std::process::id(),
            super::super::worker::tests_random()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn items(range: std::ops::Range<u64>) -> Vec<Arc<Value>> {
        range
            .map(|i| Arc::new(json!({"id": i, "verdict": "shadow"})))
            .collect()
    }

    fn ids(seg: &Segment) -> Vec<u64> {
        seg.items.iter().filter_map(|v| v["id"].as_u64()).collect()
    }

    #[test]
    fn segments_fifo_and_restart() {
        let dir = tmpdir("fifo");
        let stats = Arc::new(SinkStats::default());
        let sp = Spool::open(&dir, 1 << 20, 3, stats.clone()).unwrap();
        assert!(sp.is_empty());
        assert_eq!(sp.append("t", &items(0..7)), 7);
        assert_eq!(stats.snapshot().spooled, 7);
        assert!(stats.snapshot().spool_bytes > 0);
        let s = sp.oldest("t").unwrap();
        assert_eq!(ids(&s), vec![0, 1, 2]);
        sp.remove("t", s.seq);
        sp.close_open_segment("t");
        drop(sp);
        // A new process finds the remaining segments, in order.
        let stats2 = Arc::new(SinkStats::default());
        let sp = Spool::open(&dir, 1 << 20, 3, stats2.clone()).unwrap();
        assert_eq!(stats2.snapshot().spool_bytes, sp.bytes());
        let s = sp.oldest("t").unwrap();
        assert_eq!(ids(&s), vec![3, 4, 5]);
        sp.remove("t", s.seq);
        sp.append("t", &items(7..8));
        let s = sp.oldest("t").unwrap();
        assert_eq!(ids(&s), vec![6]);
        sp.remove("t", s.seq);
        let s = sp.oldest("t").unwrap();
        assert_eq!(ids(&s), vec![7]);
        sp.remove("t", s.seq);
        assert!(sp.is_empty());
        assert_eq!(sp.bytes(), 0);
        assert_eq!(stats2.snapshot().spool_bytes, 0);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn full_spool_drops_newest_and_counts() {
        let dir = tmpdir("full");
        let stats = Arc::new(SinkStats::default());
        let one = serde_json::to_vec(&json!({"id": 0, "verdict": "shadow"}))
            .unwrap()
            .len() as u64
            + 1;
        let sp = Spool::open(&dir, one * 4, 100, stats.clone()).unwrap();
        assert_eq!(sp.append("t", &items(0..6)), 4);
        assert_eq!(stats.snapshot().dropped, 2);
        assert!(sp.bytes() <= one * 4);
        let s = sp.oldest("t").unwrap();
        assert_eq!(ids(&s), vec![0, 1, 2, 3], "oldest kept");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn torn_and_foreign_files() {
        let dir = tmpdir("torn");
        fs::create_dir_all(&dir).unwrap();
        // A torn last line, as after a crash mid-write.
        fs::write(dir.join(seg_name(5)), b"{\"id\":1}\n{\"id\":2}\n{\"id\"").unwrap();
        fs::write(dir.join("README"), b"not a segment").unwrap();
        fs::write(dir.join("123.jsonl"), b"{}\n").unwrap();
        let stats = Arc::new(SinkStats::default());
        let sp = Spool::open(&dir, 1 << 20, 10, stats.clone()).unwrap();
        let s = sp.oldest("t").unwrap();
        assert_eq!(s.seq, 5);
        assert_eq!(ids(&s), vec![1, 2]);
        assert_eq!(stats.snapshot().dropped, 1);
        // Read again (a failed probe while the receiver is down): the torn
        // line is not counted twice.
        let s = sp.oldest("t").unwrap();
        assert_eq!(ids(&s), vec![1, 2]);
        assert_eq!(stats.snapshot().dropped, 1);
        sp.remove("t", 5);
        assert!(sp.is_empty());
        // New segments continue after the highest sequence found.
        sp.append("t", &items(0..1));
        assert!(dir.join(seg_name(6)).exists());
        assert!(dir.join("README").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn seg_names() {
        assert_eq!(parse_seg_name(&seg_name(42)), Some(42));
        assert_eq!(parse_seg_name(&seg_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_seg_name("0000000000000000004x.jsonl"), None);
        assert_eq!(parse_seg_name("99999999999999999999.jsonl"), None);
        assert_eq!(parse_seg_name("00000000000000000001.json"), None);
    }
}

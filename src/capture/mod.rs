//! Packet sources. Offline: classic pcap files read by our own buffered
//! reader (`pcapfile`), pcapng and everything else through libpcap (the
//! `pcap` crate). A pcapng file is read once, by a thread that passes its
//! bytes to libpcap through a pipe and picks out the Decryption Secrets
//! Blocks on the way (`pcapng_secrets`), which libpcap skips. The live
//! sensor's interface capture builds on the same type.

use crate::findings::Micros;
use std::fmt;
use std::path::{Path, PathBuf};

pub mod live;
pub mod pcapfile;
pub mod pcapng_secrets;
pub mod ring;

use pcapng_secrets::SecretsInbox;
use std::sync::{Arc, Mutex};

/// Bytes of TLS key-log secrets kept from one pcapng file's Decryption
/// Secrets Blocks; blocks past it are counted and dropped.
pub const MAX_FILE_SECRETS: usize = 64 << 20;

/// A capture problem, naming the file and (when reading) the packet number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    pub file: PathBuf,
    /// 1-based number of the packet that could not be read; 0 when opening failed.
    pub packet: u64,
    pub message: String,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.packet == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: packet {}: {}",
                self.file.display(),
                self.packet,
                self.message
            )
        }
    }
}

impl std::error::Error for CaptureError {}

/// Where a frame sits in a block of frames: (timestamp, offset, captured
/// length).
pub type FrameAt = (Micros, u32, u32);

/// One frame borrowed from the reader.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub ts: Micros,
    pub data: &'a [u8],
    /// Length on the wire (may exceed `data.len()` when the snap length cut it).
    pub wire_len: u32,
}

impl<'a> Frame<'a> {
    /// A libpcap packet as a frame; the timestamp in microseconds since the epoch.
    pub fn from_packet(p: &pcap::Packet<'a>) -> Frame<'a> {
        let ts = p
            .header
            .ts
            .tv_sec
            .saturating_mul(1_000_000)
            .saturating_add(p.header.ts.tv_usec);
        Frame {
            ts,
            data: p.data,
            wire_len: p.header.len,
        }
    }
}

/// A pcap or pcapng file.
pub struct FileSource {
    path: PathBuf,
    reader: Reader,
    linktype: i32,
    packets: u64,
}

enum Reader {
    Classic(Box<pcapfile::PcapReader<std::fs::File>>),
    Libpcap(pcap::Capture<pcap::Offline>),
    /// A pcapng file fed to libpcap by a thread that collects its secrets.
    Pcapng {
        cap: pcap::Capture<pcap::Offline>,
        secrets: Arc<Mutex<SecretsInbox>>,
    },
}

/// Read `file` (after the `first` bytes already read from it) into `pipe`,
/// scanning the bytes for Decryption Secrets Blocks before passing them on:
/// a block's secrets are in the inbox before libpcap can return the packets
/// after it. Ends at the end of the file, or when the reading side closes.
fn pump_pcapng(
    first: Vec<u8>,
    mut file: std::fs::File,
    mut pipe: std::io::PipeWriter,
    inbox: Arc<Mutex<SecretsInbox>>,
    path: PathBuf,
) {
    use std::io::{Read, Write};
    let mut scanner = pcapng_secrets::BlockScanner::new(MAX_FILE_SECRETS, inbox);
    scanner.push(&first);
    if pipe.write_all(&first).is_err() {
        return;
    }
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // libpcap sees the file end here and reports a truncation.
                tracing::warn!(file = %path.display(), error = %e, "cannot read capture");
                return;
            }
        };
        let chunk = buf.get(..n).unwrap_or_default();
        scanner.push(chunk);
        if pipe.write_all(chunk).is_err() {
            // The capture was closed before its end.
            return;
        }
    }
}

/// Open a pcapng file through libpcap, fed by [`pump_pcapng`].
fn open_pcapng(
    path: &Path,
    first: Vec<u8>,
    file: std::fs::File,
) -> Result<(pcap::Capture<pcap::Offline>, Arc<Mutex<SecretsInbox>>), String> {
    use std::os::fd::{IntoRawFd, OwnedFd};
    let (reader, writer) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let inbox = Arc::new(Mutex::new(SecretsInbox::default()));
    let (i, p) = (inbox.clone(), path.to_path_buf());
    std::thread::Builder::new()
        .name("pcapng-read".into())
        .spawn(move || pump_pcapng(first, file, writer, i, p))
        .map_err(|e| format!("cannot start the reader thread: {e}"))?;
    let fd = OwnedFd::from(reader).into_raw_fd();
    // SAFETY: `fd` is a pipe's read end that nothing else owns; libpcap
    // takes it over (fdopen) and closes it with the capture.
    let cap = unsafe { pcap::Capture::from_raw_fd(fd) }.map_err(|e| e.to_string())?;
    Ok((cap, inbox))
}

impl FileSource {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let err = |message: String| CaptureError {
            file: path.to_path_buf(),
            packet: 0,
            message,
        };
        if path.is_dir() {
            return Err(err("is a directory, not a capture file".into()));
        }
        let file =
            std::fs::File::open(path).map_err(|e| err(format!("cannot open capture: {e}")))?;
        let supported = crate::decode::linktype::is_supported;
        match pcapfile::PcapReader::sniff(file, supported) {
            Ok(pcapfile::Sniff::Classic(r)) => {
                return Ok(Self {
                    path: path.to_path_buf(),
                    linktype: r.linktype(),
                    reader: Reader::Classic(Box::new(r)),
                    packets: 0,
                });
            }
            Ok(pcapfile::Sniff::Pcapng(r)) => {
                let (first, file) = r.into_parts();
                let (cap, secrets) = open_pcapng(path, first, file)
                    .map_err(|e| err(format!("cannot open capture: {e}")))?;
                let linktype = cap.get_datalink().0;
                if !crate::decode::linktype::is_supported(linktype) {
                    let name = cap
                        .get_datalink()
                        .get_name()
                        .unwrap_or_else(|_| "unknown".into());
                    return Err(err(format!("unsupported link type {linktype} ({name})")));
                }
                return Ok(Self {
                    path: path.to_path_buf(),
                    reader: Reader::Pcapng { cap, secrets },
                    linktype,
                    packets: 0,
                });
            }
            // libpcap opens it, or says what is wrong with it.
            Ok(pcapfile::Sniff::Other) | Err(_) => {}
        }
        let cap =
            pcap::Capture::from_file(path).map_err(|e| err(format!("cannot open capture: {e}")))?;
        let linktype = cap.get_datalink().0;
        if !crate::decode::linktype::is_supported(linktype) {
            let name = cap
                .get_datalink()
                .get_name()
                .unwrap_or_else(|_| "unknown".into());
            return Err(err(format!("unsupported link type {linktype} ({name})")));
        }
        Ok(Self {
            path: path.to_path_buf(),
            reader: Reader::Libpcap(cap),
            linktype,
            packets: 0,
        })
    }

    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Packets read so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// The TLS key-log bytes of the pcapng Decryption Secrets Blocks read
    /// since the last call, in file order (empty for other files). Call it
    /// after each frame (or block of frames), before handling the frame:
    /// a block's secrets are here before the packets that follow it. Feed
    /// each to `tls_decrypt::KeyTable::load_decryption_secrets_block`.
    pub fn take_secrets(&mut self) -> Vec<Vec<u8>> {
        match &self.reader {
            Reader::Pcapng { secrets, .. } => {
                let mut s = secrets.lock().unwrap_or_else(|p| p.into_inner());
                std::mem::take(&mut s.blocks)
            }
            _ => Vec::new(),
        }
    }

    /// Decryption Secrets Blocks dropped for [`MAX_FILE_SECRETS`] so far:
    /// (blocks, bytes).
    pub fn secrets_dropped(&self) -> (u64, u64) {
        match &self.reader {
            Reader::Pcapng { secrets, .. } => {
                let s = secrets.lock().unwrap_or_else(|p| p.into_inner());
                (s.dropped_blocks, s.dropped_bytes)
            }
            _ => (0, 0),
        }
    }

    /// Whether the capture is pcapng (its first block a Section Header
    /// Block), which may carry session keys (see [`FileSource::take_secrets`]).
    pub fn is_pcapng(&self) -> bool {
        matches!(self.reader, Reader::Pcapng { .. })
    }

    /// Whether [`FileSource::next_frames`] can be used (a classic pcap file,
    /// read without libpcap).
    pub fn reads_blocks(&self) -> bool {
        matches!(self.reader, Reader::Classic(_))
    }

    /// Classic pcap files: up to `max` next frames without copying them,
    /// none that starts `max_bytes` or more into the block, those `keep`
    /// accepts (see [`pcapfile::PcapReader::next_frames_where`]); empty
    /// bytes at the end of the file, and for files that libpcap reads (use
    /// `next_frame`).
    pub fn next_frames(
        &mut self,
        frames: &mut Vec<FrameAt>,
        (max, max_bytes): (usize, usize),
        keep: impl FnMut(Micros, u32, &[u8]) -> bool,
    ) -> Result<&[u8], CaptureError> {
        let Reader::Classic(r) = &mut self.reader else {
            frames.clear();
            return Ok(&[]);
        };
        match r.next_frames_where(frames, max, max_bytes, keep) {
            Ok((block, walked)) => {
                self.packets += walked as u64;
                Ok(block)
            }
            Err(e) => Err(CaptureError {
                file: self.path.clone(),
                packet: self.packets + 1,
                message: e.to_string(),
            }),
        }
    }

    /// Classic pcap files: offset in the file of the next record (0 for
    /// files that libpcap reads).
    pub fn position(&self) -> u64 {
        match &self.reader {
            Reader::Classic(r) => r.position(),
            Reader::Libpcap(_) | Reader::Pcapng { .. } => 0,
        }
    }

    /// Classic pcap files: the next `len` bytes, `records` whole records
    /// that another reader of the file walked, read past; `Ok(None)` (and
    /// nothing read past) when the file does not have them, and for files
    /// that libpcap reads.
    pub fn skip_records(
        &mut self,
        len: usize,
        records: u64,
    ) -> Result<Option<&[u8]>, CaptureError> {
        let Reader::Classic(r) = &mut self.reader else {
            return Ok(None);
        };
        match r.skip(len) {
            Ok(block) => {
                if block.is_some() {
                    self.packets += records;
                }
                Ok(block)
            }
            Err(e) => Err(CaptureError {
                file: self.path.clone(),
                packet: self.packets + 1,
                message: e.to_string(),
            }),
        }
    }

    /// The next frame; `Ok(None)` at the end of the file. An error ends the
    /// file (libpcap cannot resynchronise inside a damaged file).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let next = match &mut self.reader {
            Reader::Classic(r) => r.next_frame().map_err(|e| e.to_string()),
            Reader::Libpcap(cap) | Reader::Pcapng { cap, .. } => match cap.next_packet() {
                Ok(p) => Ok(Some(Frame::from_packet(&p))),
                Err(pcap::Error::NoMorePackets) => Ok(None),
                Err(e) => Err(e.to_string()),
            },
        };
        match next {
            Ok(Some(f)) => {
                self.packets += 1;
                Ok(Some(f))
            }
            Ok(None) => Ok(None),
            Err(message) => Err(CaptureError {
                file: self.path.clone(),
                packet: self.packets + 1,
                message,
            }),
        }
    }
}

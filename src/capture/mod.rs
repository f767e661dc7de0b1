//! Packet sources. Offline: classic pcap files read by our own buffered
//! reader (`pcapfile`), pcapng and everything else through libpcap (the
//! `pcap` crate). The live sensor's interface capture builds on the same type.

use crate::findings::Micros;
use std::fmt;
use std::path::{Path, PathBuf};

pub mod live;
pub mod pcapfile;

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
            Err(message) => Err(CaptureError {
                file: self.path.clone(),
                packet: self.packets + 1,
                message,
            }),
        }
    }

    /// Classic pcap files: offset in the file of the next record (0 for
    /// files that libpcap reads).
    pub fn position(&self) -> u64 {
        match &self.reader {
            Reader::Classic(r) => r.position(),
            Reader::Libpcap(_) => 0,
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
            Err(message) => Err(CaptureError {
                file: self.path.clone(),
                packet: self.packets + 1,
                message,
            }),
        }
    }

    /// The next frame; `Ok(None)` at the end of the file. An error ends the
    /// file (libpcap cannot resynchronise inside a damaged file).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let next = match &mut self.reader {
            Reader::Classic(r) => r.next_frame(),
            Reader::Libpcap(cap) => match cap.next_packet() {
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

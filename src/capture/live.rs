//! Live capture on an interface (or `any`) through libpcap: TPACKET_V3 ring
//! blocks (handed over when full or after 10 ms), a settable kernel buffer,
//! a kernel BPF filter, and the drop counters libpcap reports.

use super::ring::RingSource;
use super::{CaptureError, Frame, FrameAt};
use std::path::PathBuf;

/// Longest a partly filled ring block waits before the kernel hands it
/// over: the delay a quiet link adds before its packets reach the sensor.
const BLOCK_TIMEOUT_MS: i32 = 10;

#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub snaplen: u32,
    pub buffer_bytes: u32,
    pub promisc: bool,
    pub bpf: String,
    /// How long a read may wait before returning nothing, so the capture
    /// thread can notice shutdown and flush partial batches.
    pub read_timeout_ms: i32,
}

/// libpcap's counters for one handle (`pcap_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub received: u64,
    /// Dropped by the kernel because the buffer was full.
    pub kernel_dropped: u64,
    /// Dropped by the interface or driver.
    pub interface_dropped: u64,
}

pub struct LiveSource {
    name: String,
    cap: pcap::Capture<pcap::Active>,
    linktype: i32,
    timeout_ms: i32,
    last_read_ok: bool,
}

impl LiveSource {
    pub fn open(interface: &str, o: &LiveOptions) -> Result<Self, CaptureError> {
        let err = |message: String| CaptureError {
            file: PathBuf::from(interface),
            packet: 0,
            message,
        };
        let snaplen = i32::try_from(o.snaplen).unwrap_or(i32::MAX);
        let buffer = i32::try_from(o.buffer_bytes).unwrap_or(i32::MAX);
        let mut cap = pcap::Capture::from_device(interface)
            .map_err(|e| err(format!("no such interface: {e}")))?
            .promisc(o.promisc)
            .snaplen(snaplen)
            .buffer_size(buffer)
            // Not immediate mode: with it Linux libpcap uses TPACKET_V2, a
            // ring of snaplen-sized frames (a 256 MiB buffer holds only
            // ~4,000 packets, 9 ms at 450 kpps, so a short delay of the
            // capture thread drops in the kernel) and a wake-up per packet.
            // TPACKET_V3 packs packets into blocks, handed over when full or
            // after the block timeout.
            .immediate_mode(false)
            .timeout(BLOCK_TIMEOUT_MS)
            .open()
            .map_err(|e| {
                let e = e.to_string();
                // Only a permission error is about capabilities; "not up"
                // and "No such device" speak for themselves.
                let hint = if e.contains("not permitted") || e.contains("ermission denied") {
                    " (needs CAP_NET_RAW, and CAP_NET_ADMIN for promiscuous mode)"
                } else {
                    ""
                };
                err(format!("cannot open for capture: {e}{hint}"))
            })?;
        if !o.bpf.is_empty() {
            cap.filter(&o.bpf, true)
                .map_err(|e| err(format!("bad BPF filter {:?}: {e}", o.bpf)))?;
        }
        let linktype = cap.get_datalink().0;
        if !crate::decode::linktype::is_supported(linktype) {
            return Err(err(format!("unsupported link type {linktype}")));
        }
        // libpcap may block past its read timeout when no packet comes;
        // non-blocking reads plus our own poll() keep the wait bounded so
        // shutdown and batch flushing are timely.
        let cap = cap
            .setnonblock()
            .map_err(|e| err(format!("cannot set non-blocking mode: {e}")))?;
        Ok(Self {
            name: interface.to_owned(),
            cap,
            linktype,
            timeout_ms: o.read_timeout_ms,
            last_read_ok: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    /// Every frame the ring holds, to `each`, in one libpcap call (not one
    /// call per packet); the number of frames, 0 when the read timeout
    /// passed with nothing. The frames' bytes are valid only inside `each`.
    /// An error means the handle is unusable (interface down or gone).
    pub fn read_frames(&mut self, mut each: impl FnMut(Frame<'_>)) -> Result<usize, CaptureError> {
        // After a read that got frames, read again at once: more blocks may
        // be ready, which poll() would not report. After an empty read, wait
        // for the descriptor.
        if !self.last_read_ok && !self.wait_readable()? {
            return Ok(0);
        }
        match self.cap.dispatch(None, |p| each(Frame::from_packet(&p))) {
            Ok(n) => {
                self.last_read_ok = n > 0;
                Ok(n)
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.last_read_ok = false;
                Ok(0)
            }
            Err(e) => Err(CaptureError {
                file: PathBuf::from(&self.name),
                packet: 0,
                message: e.to_string(),
            }),
        }
    }

    fn wait_readable(&mut self) -> Result<bool, CaptureError> {
        use std::os::fd::AsRawFd;
        wait_readable(self.cap.as_raw_fd(), self.timeout_ms, &self.name)
    }

    pub fn stats(&mut self) -> Option<LiveStats> {
        self.cap.stats().ok().map(|s| LiveStats {
            received: u64::from(s.received),
            kernel_dropped: u64::from(s.dropped),
            interface_dropped: u64::from(s.if_dropped),
        })
    }
}

/// Wait up to `timeout_ms` for the capture descriptor `fd` of `interface`
/// to become readable. An error or an invalid descriptor means the
/// interface went down or is gone.
pub(super) fn wait_readable(
    fd: std::os::fd::RawFd,
    timeout_ms: i32,
    interface: &str,
) -> Result<bool, CaptureError> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    let fail = |message: String| CaptureError {
        file: PathBuf::from(interface),
        packet: 0,
        message,
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(fail(format!("poll: {e}")))
        };
    }
    if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        return Err(fail(if interface_exists(interface) {
            "interface went down".into()
        } else {
            "interface disappeared".into()
        }));
    }
    Ok(rc > 0)
}

/// Whether a network interface of this name exists now (for the log: a
/// link taken down versus an interface deleted).
pub(super) fn interface_exists(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated string for the duration of the call.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

/// A live interface: Ethernet through our own ring ([`RingSource`], frames
/// processed where the kernel put them), anything else through libpcap.
pub enum Interface {
    Ring(RingSource),
    Pcap(LiveSource),
}

impl Interface {
    pub fn open(name: &str, o: &LiveOptions) -> Result<Interface, CaptureError> {
        Ok(match RingSource::open(name, o)? {
            Ok(ring) => Interface::Ring(ring),
            Err(_) => Interface::Pcap(LiveSource::open(name, o)?),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Interface::Ring(r) => r.name(),
            Interface::Pcap(p) => p.name(),
        }
    }

    pub fn linktype(&self) -> i32 {
        match self {
            Interface::Ring(r) => r.linktype(),
            Interface::Pcap(p) => p.linktype(),
        }
    }

    pub fn stats(&mut self) -> Option<LiveStats> {
        match self {
            Interface::Ring(r) => r.stats(),
            Interface::Pcap(p) => p.stats(),
        }
    }

    /// What the interface has, to `each` as (bytes, frames in them, whether
    /// the bytes are a whole ring block that may be processed in place);
    /// the number of frames, 0 when the read timeout passed with nothing.
    /// The bytes are valid only inside `each`.
    pub fn read(
        &mut self,
        mut each: impl FnMut(&[u8], &[FrameAt], bool),
    ) -> Result<usize, CaptureError> {
        match self {
            Interface::Ring(r) => r.read_block(|block, frames| each(block, frames, true)),
            Interface::Pcap(p) => p.read_frames(|f| {
                let len = u32::try_from(f.data.len()).unwrap_or(u32::MAX);
                each(f.data, &[(f.ts, 0, len)], false);
            }),
        }
    }
}

//! Live capture on an interface (or `any`) through libpcap: immediate mode
//! (no batching delay in the kernel), a settable kernel buffer, a kernel BPF
//! filter, and the drop counters libpcap reports.

use super::{CaptureError, Frame};
use std::path::PathBuf;

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
            .immediate_mode(true)
            .timeout(o.read_timeout_ms)
            .open()
            .map_err(|e| err(format!("cannot open for capture: {e} (needs CAP_NET_RAW, and CAP_NET_ADMIN for promiscuous mode)")))?;
        if !o.bpf.is_empty() {
            cap.filter(&o.bpf, true)
                .map_err(|e| err(format!("bad BPF filter {:?}: {e}", o.bpf)))?;
        }
        let linktype = cap.get_datalink().0;
        if !crate::decode::linktype::is_supported(linktype) {
            return Err(err(format!("unsupported link type {linktype}")));
        }
        Ok(Self {
            name: interface.to_owned(),
            cap,
            linktype,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    /// The next frame, `Ok(None)` when the read timeout passed with nothing.
    /// An error means the handle is unusable (interface down or gone).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        match self.cap.next_packet() {
            Ok(p) => {
                let ts = p
                    .header
                    .ts
                    .tv_sec
                    .saturating_mul(1_000_000)
                    .saturating_add(p.header.ts.tv_usec);
                Ok(Some(Frame {
                    ts,
                    data: p.data,
                    wire_len: p.header.len,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => Ok(None),
            Err(e) => Err(CaptureError {
                file: PathBuf::from(&self.name),
                packet: 0,
                message: e.to_string(),
            }),
        }
    }

    pub fn stats(&mut self) -> Option<LiveStats> {
        self.cap.stats().ok().map(|s| LiveStats {
            received: u64::from(s.received),
            kernel_dropped: u64::from(s.dropped),
            interface_dropped: u64::from(s.if_dropped),
        })
    }
}

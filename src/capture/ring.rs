//! Live capture on an Ethernet interface through our own TPACKET_V3 ring
//! (an `AF_PACKET` socket whose receive ring is mapped into the process):
//! each ring block the kernel hands over is processed where it lies and
//! then given back, so frames are neither copied nor handed out one by one
//! (libpcap gives them to a callback one at a time and releases a block
//! before the callback learns that it ended, which rules out processing a
//! block in place). Interfaces that are not Ethernet, and `any`, are left
//! to libpcap (`live.rs`).
//!
//! What the kernel writes into the ring is trusted no more than a capture
//! file: every offset and length is checked against the block before use.
//! The kernel copies whole frames into the ring; `snaplen` is applied as
//! they are handed on.

use super::live::{LiveOptions, LiveStats};
use super::{CaptureError, FrameAt};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

// Linux `if_packet.h`.
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_MR_PROMISC: u16 = 1;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
/// `ARPHRD_ETHER` in `/sys/class/net/IF/type`.
const ARPHRD_ETHER: &str = "1";
/// libpcap's link type for Ethernet.
const DLT_EN10MB: i32 = 1;

/// Bytes per ring block: the kernel hands a block over when it is full or
/// after [`BLOCK_TIMEOUT_MS`]; one wake-up of the capture thread per block.
const BLOCK_BYTES: u32 = 1 << 20;
/// Longest a partly filled block waits before the kernel hands it over.
const BLOCK_TIMEOUT_MS: u32 = 10;
/// Fewest blocks in the ring, whatever the buffer size asked for.
const MIN_BLOCKS: u32 = 4;
/// The frame size only sets how the kernel counts frames in a block.
const FRAME_BYTES: u32 = 2048;

#[repr(C)]
struct TpacketReq3 {
    tp_block_size: u32,
    tp_block_nr: u32,
    tp_frame_size: u32,
    tp_frame_nr: u32,
    tp_retire_blk_tov: u32,
    tp_sizeof_priv: u32,
    tp_feature_req_word: u32,
}

#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: u16,
    mr_alen: u16,
    mr_address: [u8; 8],
}

#[repr(C)]
#[derive(Default)]
struct TpacketStatsV3 {
    tp_packets: u32,
    tp_drops: u32,
    tp_freeze_q_cnt: u32,
}

// `struct tpacket_block_desc` (version, offset_to_priv, then
// `tpacket_hdr_v1`): offsets of the fields read here.
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
// `struct tpacket3_hdr`.
const PKT_NEXT: usize = 0;
const PKT_SEC: usize = 4;
const PKT_NSEC: usize = 8;
const PKT_SNAPLEN: usize = 12;
const PKT_STATUS: usize = 20;
const PKT_MAC: usize = 24;
const PKT_VLAN_TCI: usize = 32;
const PKT_VLAN_TPID: usize = 36;
const PKT_HEADER: usize = 48;
/// `tp_status`: the kernel took the frame's 802.1Q tag out (VLAN offload)
/// and left it in the header.
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// A mapped TPACKET_V3 receive ring on one interface.
pub struct RingSource {
    name: String,
    fd: OwnedFd,
    map: NonNull<u8>,
    block_bytes: usize,
    blocks: usize,
    /// The block to read next.
    next: usize,
    timeout_ms: i32,
    /// Bytes of each frame handed on (`capture.snaplen`).
    snaplen: u32,
    /// The kernel's counters are reset at each read: kept summed here.
    received: u64,
    dropped: u64,
    /// The interface's own receive drops when the ring was opened (what
    /// libpcap reports as `ps_ifdrop` is counted from there).
    if_dropped_base: u64,
    frames: Vec<FrameAt>,
    /// Per frame of `frames`: the VLAN tag the kernel took out, if any.
    tags: Vec<Option<[u8; 4]>>,
    /// A block's frames with their VLAN tags put back (as libpcap does).
    tagged: Vec<u8>,
    tagged_frames: Vec<FrameAt>,
}

// SAFETY: the mapping belongs to this value alone; it is only read and its
// block status words written through `&mut self`.
unsafe impl Send for RingSource {}

impl Drop for RingSource {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`, of this length, unmapped once.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.block_bytes * self.blocks);
        }
    }
}

/// Why the ring cannot serve this interface: libpcap is used instead.
#[derive(Debug)]
pub enum Unsuited {
    /// `any`, or a link type other than Ethernet.
    NotEthernet,
}

fn os_error(interface: &str, what: &str) -> CaptureError {
    let e = std::io::Error::last_os_error();
    let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
        " (needs CAP_NET_RAW, and CAP_NET_ADMIN for promiscuous mode)"
    } else {
        ""
    };
    CaptureError {
        file: PathBuf::from(interface),
        packet: 0,
        message: format!("cannot open for capture: {what}: {e}{hint}"),
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> bool {
    // SAFETY: `value` is a valid `T` for the duration of the call and its
    // size is passed with it.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        ) == 0
    }
}

impl RingSource {
    /// Open `interface` with a ring of about `o.buffer_bytes`; `Ok(Err(_))`
    /// when the interface is not one the ring serves.
    pub fn open(interface: &str, o: &LiveOptions) -> Result<Result<Self, Unsuited>, CaptureError> {
        let is_ether = std::fs::read_to_string(format!("/sys/class/net/{interface}/type"))
            .is_ok_and(|t| t.trim() == ARPHRD_ETHER);
        if interface == "any" || interface.contains('/') || !is_ether {
            return Ok(Err(Unsuited::NotEthernet));
        }
        let err = |message: String| CaptureError {
            file: PathBuf::from(interface),
            packet: 0,
            message,
        };
        let cname =
            std::ffi::CString::new(interface).map_err(|_| err("no such interface".into()))?;
        // SAFETY: a valid NUL-terminated string for the duration of the call.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(err("no such interface".into()));
        }
        // A socket bound to a link that is down opens, then reports the
        // link down at once: refuse it here, as libpcap does.
        let flags = std::fs::read_to_string(format!("/sys/class/net/{interface}/flags"))
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok());
        if flags.is_some_and(|f| f & libc::IFF_UP as u32 == 0) {
            return Err(err(
                "cannot open for capture: the interface is not up".into()
            ));
        }
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket creation; the descriptor is owned at once.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, libc::c_int::from(protocol)) };
        if raw < 0 {
            return Err(os_error(interface, "socket"));
        }
        // SAFETY: `raw` is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if !setsockopt(&fd, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V3) {
            return Err(os_error(interface, "TPACKET_V3"));
        }
        // The filter first, so that no frame it rejects reaches the ring.
        if !o.bpf.is_empty() {
            let compiled = pcap::Capture::dead(pcap::Linktype(DLT_EN10MB))
                .and_then(|c| c.compile(&o.bpf, true))
                .map_err(|e| err(format!("bad BPF filter {:?}: {e}", o.bpf)))?;
            let insns = compiled.get_instructions();
            let prog = libc::sock_fprog {
                len: u16::try_from(insns.len())
                    .map_err(|_| err(format!("BPF filter {:?} too long", o.bpf)))?,
                // `BpfInstruction` is `struct bpf_insn`, laid out as the
                // kernel's `struct sock_filter`.
                filter: insns.as_ptr().cast_mut().cast(),
            };
            if !setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog) {
                return Err(os_error(interface, "BPF filter"));
            }
        }
        let blocks = (o.buffer_bytes / BLOCK_BYTES).max(MIN_BLOCKS);
        let req = TpacketReq3 {
            tp_block_size: BLOCK_BYTES,
            tp_block_nr: blocks,
            tp_frame_size: FRAME_BYTES,
            tp_frame_nr: blocks * (BLOCK_BYTES / FRAME_BYTES),
            tp_retire_blk_tov: BLOCK_TIMEOUT_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        if !setsockopt(&fd, libc::SOL_PACKET, PACKET_RX_RING, &req) {
            return Err(os_error(interface, "receive ring"));
        }
        let len = BLOCK_BYTES as usize * blocks as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(os_error(interface, "mmap"));
        }
        let Some(map) = NonNull::new(map.cast::<u8>()) else {
            return Err(err("mmap returned null".into()));
        };
        let ring = RingSource {
            name: interface.to_owned(),
            fd,
            map,
            block_bytes: BLOCK_BYTES as usize,
            blocks: blocks as usize,
            next: 0,
            timeout_ms: o.read_timeout_ms,
            snaplen: o.snaplen.max(1),
            received: 0,
            dropped: 0,
            if_dropped_base: interface_rx_dropped(interface).unwrap_or(0),
            frames: Vec::new(),
            tags: Vec::new(),
            tagged: Vec::new(),
            tagged_frames: Vec::new(),
        };
        // SAFETY: an all-zero `sockaddr_ll` is valid; the fields are set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = protocol;
        sll.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: a valid `sockaddr_ll` and its size.
        let bound = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if bound != 0 {
            return Err(os_error(interface, "bind"));
        }
        if o.promisc {
            let mreq = PacketMreq {
                mr_ifindex: ifindex as libc::c_int,
                mr_type: PACKET_MR_PROMISC,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            if !setsockopt(&ring.fd, libc::SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq) {
                return Err(os_error(interface, "promiscuous mode"));
            }
        }
        Ok(Ok(ring))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn linktype(&self) -> i32 {
        DLT_EN10MB
    }

    /// The status word of block `i`.
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: `i < blocks`, the word lies inside the mapping, is 4-byte
        // aligned (blocks are page aligned) and is shared with the kernel,
        // hence atomic.
        unsafe {
            AtomicU32::from_ptr(
                self.map
                    .as_ptr()
                    .add(i * self.block_bytes + BLOCK_STATUS)
                    .cast(),
            )
        }
    }

    /// The next block the kernel handed over, its frames to `each` as one
    /// batch (the block's bytes and each frame's timestamp, offset and
    /// length in them); then the block goes back to the kernel. The number
    /// of frames; 0 when the read timeout passed with nothing. An error
    /// means the socket is unusable (interface down or gone).
    pub fn read_block(
        &mut self,
        each: impl FnOnce(&[u8], &[FrameAt]),
    ) -> Result<usize, CaptureError> {
        let i = self.next;
        if self.status(i).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            if !self.wait_readable()? {
                return Ok(0);
            }
            if self.status(i).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                return Ok(0);
            }
        }
        // SAFETY: block `i` lies inside the mapping; while its status says
        // USER the kernel does not write it, until it is given back below.
        let block = unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(i * self.block_bytes),
                self.block_bytes,
            )
        };
        self.frames.clear();
        self.tags.clear();
        walk(block, self.snaplen, &mut self.frames, &mut self.tags);
        let n = self.frames.len();
        if self.tags.iter().any(Option::is_some) {
            // Rare (VLAN offload on a trunk): this block's frames are
            // copied with their tags put back where the decoder reads them.
            retag(
                block,
                &self.frames,
                &self.tags,
                &mut self.tagged,
                &mut self.tagged_frames,
            );
            each(&self.tagged, &self.tagged_frames);
        } else if n > 0 {
            each(block, &self.frames);
        }
        self.status(i).store(TP_STATUS_KERNEL, Ordering::Release);
        self.next = (i + 1) % self.blocks;
        Ok(n)
    }

    fn wait_readable(&mut self) -> Result<bool, CaptureError> {
        super::live::wait_readable(self.fd.as_raw_fd(), self.timeout_ms, &self.name)
    }

    /// Frames the kernel delivered to the ring and dropped (ring full) so
    /// far.
    pub fn stats(&mut self) -> Option<LiveStats> {
        let mut s = TpacketStatsV3::default();
        let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: a valid out-buffer of `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                (&mut s as *mut TpacketStatsV3).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return None;
        }
        // `tp_packets` counts the dropped frames too, as libpcap's `ps_recv`.
        self.received += u64::from(s.tp_packets);
        self.dropped += u64::from(s.tp_drops);
        let if_dropped =
            interface_rx_dropped(&self.name).map_or(0, |n| n.saturating_sub(self.if_dropped_base));
        Some(LiveStats {
            received: self.received,
            kernel_dropped: self.dropped,
            interface_dropped: if_dropped,
        })
    }
}

/// Frames the interface itself dropped on receive, since it came up.
fn interface_rx_dropped(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/statistics/rx_dropped"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// The frames of `block` copied into `out` with each tag inserted after the
/// two MAC addresses; `out_frames` locates them in `out`.
fn retag(
    block: &[u8],
    frames: &[FrameAt],
    tags: &[Option<[u8; 4]>],
    out: &mut Vec<u8>,
    out_frames: &mut Vec<FrameAt>,
) {
    out.clear();
    out_frames.clear();
    for (&(ts, off, len), tag) in frames.iter().zip(tags) {
        let (o, l) = (off as usize, len as usize);
        let Some(frame) = block.get(o..o.saturating_add(l)) else {
            continue;
        };
        let start = out.len();
        match (tag, frame.get(..12), frame.get(12..)) {
            (Some(t), Some(macs), Some(rest)) => {
                out.extend_from_slice(macs);
                out.extend_from_slice(t);
                out.extend_from_slice(rest);
            }
            _ => out.extend_from_slice(frame),
        }
        let (Ok(at), Ok(n)) = (u32::try_from(start), u32::try_from(out.len() - start)) else {
            return;
        };
        out_frames.push((ts, at, n));
    }
}

/// The frames of one block, in order, each cut to `cut` bytes, and the
/// VLAN tag the kernel took out of each; a header that points outside the
/// block ends the walk.
fn walk(block: &[u8], cut: u32, frames: &mut Vec<FrameAt>, tags: &mut Vec<Option<[u8; 4]>>) {
    let (Some(n), Some(first)) = (
        u32_at(block, BLOCK_NUM_PKTS),
        u32_at(block, BLOCK_FIRST_PKT),
    ) else {
        return;
    };
    let mut at = first as usize;
    for _ in 0..n {
        let Some(hdr) = block.get(at..at.saturating_add(PKT_HEADER)) else {
            return;
        };
        let (Some(next), Some(sec), Some(nsec), Some(snaplen), Some(mac)) = (
            u32_at(hdr, PKT_NEXT),
            u32_at(hdr, PKT_SEC),
            u32_at(hdr, PKT_NSEC),
            u32_at(hdr, PKT_SNAPLEN),
            u16_at(hdr, PKT_MAC),
        ) else {
            return;
        };
        let start = at.saturating_add(usize::from(mac));
        let end = start.saturating_add(snaplen as usize);
        if end > block.len() {
            return;
        }
        let Ok(off) = u32::try_from(start) else {
            return;
        };
        let ts = i64::from(sec) * 1_000_000 + i64::from(nsec / 1000);
        frames.push((ts, off, snaplen.min(cut)));
        let status = u32_at(hdr, PKT_STATUS).unwrap_or(0);
        tags.push((status & TP_STATUS_VLAN_VALID != 0).then(|| {
            let tci = u32_at(hdr, PKT_VLAN_TCI).unwrap_or(0) as u16;
            let tpid = match u16_at(hdr, PKT_VLAN_TPID) {
                Some(t) if status & TP_STATUS_VLAN_TPID_VALID != 0 && t != 0 => t,
                _ => 0x8100,
            };
            let [a, b] = tpid.to_be_bytes();
            let [c, d] = tci.to_be_bytes();
            [a, b, c, d]
        }));
        if next == 0 {
            return;
        }
        at = at.saturating_add(next as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block as the kernel lays it out: headers, frames, next offsets.
    fn block(frames: &[(&[u8], u32, u32)]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&(frames.len() as u32).to_ne_bytes());
        b[BLOCK_FIRST_PKT..BLOCK_FIRST_PKT + 4].copy_from_slice(&48u32.to_ne_bytes());
        let mut at = 48usize;
        for (i, (data, sec, nsec)) in frames.iter().enumerate() {
            let mac = 66u16;
            let next = if i + 1 == frames.len() {
                0
            } else {
                (usize::from(mac) + data.len()).next_multiple_of(16) as u32
            };
            let h = &mut b[at..at + PKT_HEADER];
            h[PKT_NEXT..PKT_NEXT + 4].copy_from_slice(&next.to_ne_bytes());
            h[PKT_SEC..PKT_SEC + 4].copy_from_slice(&sec.to_ne_bytes());
            h[PKT_NSEC..PKT_NSEC + 4].copy_from_slice(&nsec.to_ne_bytes());
            h[PKT_SNAPLEN..PKT_SNAPLEN + 4].copy_from_slice(&(data.len() as u32).to_ne_bytes());
            h[PKT_MAC..PKT_MAC + 2].copy_from_slice(&mac.to_ne_bytes());
            let s = at + usize::from(mac);
            b[s..s + data.len()].copy_from_slice(data);
            at += next as usize;
        }
        b
    }

    #[test]
    fn frames_of_a_block_in_order() {
        let b = block(&[(b"first frame", 10, 5_000), (b"second", 11, 999_999_999)]);
        let (mut frames, mut tags) = (Vec::new(), Vec::new());
        walk(&b, u32::MAX, &mut frames, &mut tags);
        assert_eq!(tags, vec![None, None]);
        let got: Vec<(i64, &[u8])> = frames
            .iter()
            .map(|&(ts, off, len)| (ts, &b[off as usize..(off + len) as usize]))
            .collect();
        assert_eq!(
            got,
            vec![
                (10_000_005, &b"first frame"[..]),
                (11_999_999, &b"second"[..])
            ]
        );
    }

    #[test]
    fn headers_pointing_outside_the_block_end_the_walk() {
        let good = block(&[(b"abc", 1, 0), (b"def", 2, 0)]);
        // Every single byte of the block's headers changed to every value:
        // no panic, and every frame found lies inside the block.
        for at in (0..200).chain([BLOCK_NUM_PKTS, BLOCK_FIRST_PKT]) {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[at] = v;
                let (mut frames, mut tags) = (Vec::new(), Vec::new());
                walk(&b, u32::MAX, &mut frames, &mut tags);
                assert_eq!(frames.len(), tags.len());
                for &(_, off, len) in &frames {
                    assert!((off + len) as usize <= b.len());
                }
            }
        }
    }

    /// A tag the kernel took out (VLAN offload) is put back after the MAC
    /// addresses, as libpcap does, so flows keep their VLAN.
    #[test]
    fn vlan_tags_are_put_back() {
        let frame: Vec<u8> = (0u8..20).collect();
        let mut b = block(&[(&frame, 1, 0), (b"untagged frame", 2, 0)]);
        let h = &mut b[48..48 + PKT_HEADER];
        h[PKT_STATUS..PKT_STATUS + 4].copy_from_slice(&TP_STATUS_VLAN_VALID.to_ne_bytes());
        h[PKT_VLAN_TCI..PKT_VLAN_TCI + 4].copy_from_slice(&42u32.to_ne_bytes());
        let (mut frames, mut tags) = (Vec::new(), Vec::new());
        walk(&b, u32::MAX, &mut frames, &mut tags);
        assert_eq!(tags, vec![Some([0x81, 0x00, 0, 42]), None]);
        let (mut out, mut out_frames) = (Vec::new(), Vec::new());
        retag(&b, &frames, &tags, &mut out, &mut out_frames);
        let f = |i: usize| {
            let (_, o, l) = out_frames[i];
            out[o as usize..(o + l) as usize].to_vec()
        };
        let mut want = frame[..12].to_vec();
        want.extend_from_slice(&[0x81, 0x00, 0, 42]);
        want.extend_from_slice(&frame[12..]);
        assert_eq!(f(0), want);
        assert_eq!(f(1), b"untagged frame".to_vec());
    }
}

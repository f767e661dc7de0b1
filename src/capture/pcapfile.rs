//! Classic pcap files (format 2.4, microsecond or nanosecond timestamps,
//! either byte order) read without libpcap.
//!
//! libpcap reads a file with two `fread` calls per record through a 4 KiB
//! stdio buffer; on a flood of small packets that costs about a tenth of the
//! whole analysis. This reader fills a 1 MiB buffer with plain `read` calls
//! and hands out frames as slices of it. Everything else (pcapng, the old
//! 2.3 format and its quirks, link types the decoder does not know, FCS
//! annotations) is left to libpcap, and the errors for a damaged file follow
//! libpcap's wording.

use super::{Frame, FrameAt};
use std::io::{self, Read};

/// Largest captured length accepted (libpcap's `MAXIMUM_SNAPLEN`).
pub const MAX_CAPLEN: u32 = 262_144;
/// Read granularity.
const BUF_BYTES: usize = 1 << 20;
const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// Why a record could not be read; the wording is libpcap's, so a damaged
/// file reads the same whichever reader met it.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("truncated dump file; tried to read {RECORD_HEADER} header bytes, only got {0}")]
    TruncatedHeader(usize),
    #[error("truncated dump file; tried to read {caplen} captured bytes, only got {got}")]
    TruncatedData { caplen: u32, got: usize },
    #[error("invalid packet capture length {0}, bigger than maximum of {MAX_CAPLEN}")]
    CapLen(u32),
    /// A bookkeeping slip of this reader, never the file's fault.
    #[error("record outside the read buffer")]
    OutsideBuffer,
}

/// (timestamp in microseconds, captured length) of a record header; the
/// length is not checked.
#[inline(always)]
fn parse_record_header(h: &[u8; RECORD_HEADER], swapped: bool, nanos: bool) -> (i64, u32) {
    // One fixed-size header: fields read without per-field bounds checks.
    let [s0, s1, s2, s3, f0, f1, f2, f3, c0, c1, c2, c3, ..] = *h;
    let field = |b: [u8; 4]| {
        let v = u32::from_ne_bytes(b);
        if swapped { v.swap_bytes() } else { v }
    };
    // libpcap keeps both time fields as signed 32-bit numbers.
    let (sec, frac) = (
        field([s0, s1, s2, s3]) as i32,
        field([f0, f1, f2, f3]) as i32,
    );
    let micros = if nanos { frac / 1000 } else { frac };
    let caplen = field([c0, c1, c2, c3]);
    (i64::from(sec) * 1_000_000 + i64::from(micros), caplen)
}

/// What the first bytes of a file say.
pub enum Sniff<R> {
    /// A classic pcap this reader handles.
    Classic(PcapReader<R>),
    /// A pcapng file: libpcap reads its packets from the bytes of
    /// [`PcapReader::into_parts`] (the file is not opened twice).
    Pcapng(PcapReader<R>),
    /// Anything else: to be opened with libpcap.
    Other,
}

pub struct PcapReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Offset in the file of `buf[0]`.
    buf_offset: u64,
    eof: bool,
    swapped: bool,
    nanos: bool,
    linktype: i32,
}

impl<R: Read> PcapReader<R> {
    /// Read the file header. `Ok(Sniff::Other)` for anything but a classic
    /// pcap 2.4 file of a link type in `supported`.
    pub fn sniff(inner: R, supported: impl Fn(i32) -> bool) -> io::Result<Sniff<R>> {
        let mut r = PcapReader {
            inner,
            buf: vec![0; BUF_BYTES],
            start: 0,
            end: 0,
            buf_offset: 0,
            eof: false,
            swapped: false,
            nanos: false,
            linktype: 0,
        };
        if r.fill(FILE_HEADER)? < FILE_HEADER {
            return Ok(Sniff::Other);
        }
        let Some(magic) = r.buf.get(..4).and_then(|m| <[u8; 4]>::try_from(m).ok()) else {
            return Ok(Sniff::Other);
        };
        (r.swapped, r.nanos) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (cfg!(target_endian = "big"), false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (cfg!(target_endian = "little"), false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (cfg!(target_endian = "big"), true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (cfg!(target_endian = "little"), true),
            [0x0a, 0x0d, 0x0d, 0x0a] => return Ok(Sniff::Pcapng(r)),
            _ => return Ok(Sniff::Other),
        };
        let major = r.u16_at(4);
        let minor = r.u16_at(6);
        let network = r.u32_at(20);
        // Link types with FCS bits or beyond 16 bits, and unknown ones, keep
        // libpcap's handling and its error messages.
        let linktype = i32::try_from(network).unwrap_or(-1);
        if (major, minor) != (2, 4) || network > 0xffff || !supported(linktype) {
            return Ok(Sniff::Other);
        }
        r.linktype = linktype;
        r.start = FILE_HEADER;
        Ok(Sniff::Classic(r))
    }

    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    /// The bytes read and not handed out yet, and the reader for the rest.
    pub fn into_parts(self) -> (Vec<u8>, R) {
        let unread = self
            .buf
            .get(self.start..self.end)
            .unwrap_or_default()
            .to_vec();
        (unread, self.inner)
    }

    /// Offset in the file of the next record.
    pub fn position(&self) -> u64 {
        self.buf_offset + self.start as u64
    }

    /// The next `len` bytes, read past as whole records that someone else
    /// walked (see [`PcapReader::next_frames_where`]); `Ok(None)`, and
    /// nothing read past, when the file has fewer.
    pub fn skip(&mut self, len: usize) -> Result<Option<&[u8]>, RecordError> {
        if self.fill(len)? < len {
            return Ok(None);
        }
        let at = self.start;
        self.start += len;
        Ok(self.buf.get(at..at + len))
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = self
            .buf
            .get(at..at + 2)
            .and_then(|s| <[u8; 2]>::try_from(s).ok())
            .unwrap_or_default();
        let v = u16::from_ne_bytes(b);
        if self.swapped { v.swap_bytes() } else { v }
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = self
            .buf
            .get(at..at + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .unwrap_or_default();
        let v = u32::from_ne_bytes(b);
        if self.swapped { v.swap_bytes() } else { v }
    }

    /// Make at least `need` unread bytes available if the file has them;
    /// returns how many are.
    fn fill(&mut self, need: usize) -> io::Result<usize> {
        if self.end - self.start >= need || self.eof {
            return Ok(self.end - self.start);
        }
        // Move the unread tail to the front, grow for one large record.
        self.buf.copy_within(self.start..self.end, 0);
        self.buf_offset += self.start as u64;
        self.end -= self.start;
        self.start = 0;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        while self.end < need {
            let Some(space) = self.buf.get_mut(self.end..) else {
                break;
            };
            match self.inner.read(space) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    /// Header of the record at `at` if its 16 bytes are buffered: (timestamp
    /// in microseconds, captured length). The length is not checked.
    fn record_header(&self, at: usize) -> Option<(i64, u32)> {
        let end = self.end.min(self.buf.len());
        let h = self.buf.get(at..end)?.first_chunk()?;
        Some(parse_record_header(h, self.swapped, self.nanos))
    }

    /// Make the next whole record buffered: `Ok(false)` at the end of the
    /// file; an error for a truncated or damaged record (libpcap's words).
    fn ensure_record(&mut self) -> Result<bool, RecordError> {
        let got = self.fill(RECORD_HEADER)?;
        if got == 0 {
            return Ok(false);
        }
        if got < RECORD_HEADER {
            return Err(RecordError::TruncatedHeader(got));
        }
        let (_, caplen) = self
            .record_header(self.start)
            .ok_or(RecordError::OutsideBuffer)?;
        if caplen > MAX_CAPLEN {
            return Err(RecordError::CapLen(caplen));
        }
        let total = RECORD_HEADER + caplen as usize;
        let got = self.fill(total)?;
        if got < total {
            return Err(RecordError::TruncatedData {
                caplen,
                got: got - RECORD_HEADER,
            });
        }
        Ok(true)
    }

    /// The next frame; `Ok(None)` at the end of the file. An error (a
    /// truncated or damaged record) ends the file, as with libpcap.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, RecordError> {
        if !self.ensure_record()? {
            return Ok(None);
        }
        let at = self.start;
        let (ts, caplen) = self.record_header(at).ok_or(RecordError::OutsideBuffer)?;
        let wire_len = self.u32_at(at + 12);
        let total = RECORD_HEADER + caplen as usize;
        self.start += total;
        let data = self
            .buf
            .get(at + RECORD_HEADER..at + total)
            .ok_or(RecordError::OutsideBuffer)?;
        Ok(Some(Frame { ts, data, wire_len }))
    }

    /// Up to `max` next frames without copying them: the returned bytes
    /// hold them, `frames` gets (timestamp, offset, captured length) of
    /// each within those bytes. Empty at the end of the file. Frames are
    /// taken from what the buffer already holds (at least one); a damaged
    /// record is reported by the call that reaches it first, as by
    /// [`PcapReader::next_frame`].
    pub fn next_frames(
        &mut self,
        frames: &mut Vec<FrameAt>,
        max: usize,
    ) -> Result<&[u8], RecordError> {
        Ok(self
            .next_frames_where(frames, max, usize::MAX, |_, _, _| true)?
            .0)
    }

    /// [`PcapReader::next_frames`], keeping in `frames` only the frames
    /// `keep` accepts (given the timestamp, the frame's offset in the
    /// returned bytes, the frame): the records are walked and the frames
    /// filtered in one pass. The walk stops at the first record that starts
    /// `max_bytes` or more after the first.
    /// The returned bytes hold every walked record, and the number of those
    /// records; they are empty only at the end of the file, while `frames`
    /// may be empty before it.
    pub fn next_frames_where(
        &mut self,
        frames: &mut Vec<FrameAt>,
        max: usize,
        max_bytes: usize,
        keep: impl FnMut(i64, u32, &[u8]) -> bool,
    ) -> Result<(&[u8], usize), RecordError> {
        frames.clear();
        if !self.ensure_record()? {
            return Ok((&[], 0));
        }
        let base = self.start;
        let buffered = self.buf.get(..self.end).unwrap_or_default();
        // The usual layout (this machine's byte order, microseconds) has a
        // loop of its own that does not test them on every record.
        let (at, walked) = if !self.swapped && !self.nanos {
            walk(buffered, base, false, false, frames, (max, max_bytes), keep)
        } else {
            let (swapped, nanos) = (self.swapped, self.nanos);
            walk(
                buffered,
                base,
                swapped,
                nanos,
                frames,
                (max, max_bytes),
                keep,
            )
        };
        self.start = at;
        let block = self.buf.get(base..at).ok_or(RecordError::OutsideBuffer)?;
        Ok((block, walked))
    }
}

/// Up to `max` whole records of `buffered` from `base` (and none that
/// starts `max_bytes` after it or later), the frames `keep` accepts placed in
/// `frames` (offsets from `base`); returns where the walk
/// stopped and the number of records walked. A record cut by the end of the
/// buffer, or damaged, is left to the next call (which refills, or reports
/// it).
#[inline(always)]
fn walk(
    buffered: &[u8],
    base: usize,
    swapped: bool,
    nanos: bool,
    frames: &mut Vec<FrameAt>,
    (max, max_bytes): (usize, usize),
    mut keep: impl FnMut(i64, u32, &[u8]) -> bool,
) -> (usize, usize) {
    let mut at = base;
    let mut walked = 0;
    let stop = base.saturating_add(max_bytes);
    for _ in 0..max {
        if at >= stop {
            break;
        }
        let Some(h) = buffered.get(at..).and_then(|r| r.first_chunk()) else {
            break;
        };
        let (ts, caplen) = parse_record_header(h, swapped, nanos);
        let body = at + RECORD_HEADER;
        let Some(frame) = buffered.get(body..body + caplen as usize) else {
            break;
        };
        if caplen > MAX_CAPLEN {
            break;
        }
        walked += 1;
        // Offsets within one buffer (a few MiB at most) fit.
        let offset = (body - base) as u32;
        if keep(ts, offset, frame) {
            frames.push((ts, offset, caplen));
        }
        at = body + caplen as usize;
    }
    (at, walked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(magic: [u8; 4], big: bool, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = magic.to_vec();
        f.extend(w16(2));
        f.extend(w16(4));
        f.extend([0; 8]);
        f.extend(w32(65535));
        f.extend(w32(1));
        for (sec, frac, data) in records {
            f.extend(w32(*sec));
            f.extend(w32(*frac));
            f.extend(w32(data.len() as u32));
            f.extend(w32(data.len() as u32 + 4));
            f.extend_from_slice(data);
        }
        f
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(i64, Vec<u8>, u32)>, String> {
        let Sniff::Classic(mut r) =
            PcapReader::sniff(bytes, |_| true).map_err(|e| e.to_string())?
        else {
            return Err("not classic".into());
        };
        let mut out = Vec::new();
        while let Some(f) = r.next_frame().map_err(|e| e.to_string())? {
            out.push((f.ts, f.data.to_vec(), f.wire_len));
        }
        Ok(out)
    }

    /// The same through `next_frames`, `max` at a time: (timestamp, bytes)
    /// of the frames delivered before the end or the error.
    fn read_blocks(bytes: &[u8], max: usize) -> (Vec<(i64, Vec<u8>)>, Option<String>) {
        let Ok(Sniff::Classic(mut r)) = PcapReader::sniff(bytes, |_| true) else {
            return (Vec::new(), Some("not classic".into()));
        };
        let mut out = Vec::new();
        let mut frames = Vec::new();
        loop {
            match r.next_frames(&mut frames, max) {
                Ok([]) => return (out, None),
                Ok(block) => {
                    assert!(!frames.is_empty() && frames.len() <= max);
                    for &(ts, off, len) in &frames {
                        let (o, l) = (off as usize, len as usize);
                        out.push((ts, block[o..o + l].to_vec()));
                    }
                }
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    /// (timestamp, bytes) of frames.
    type Frames = Vec<(i64, Vec<u8>)>;

    /// Block by block with a filter: the kept frames, the number of bytes
    /// walked, and the error.
    fn read_blocks_where(
        bytes: &[u8],
        max: usize,
        keep: impl Fn(i64, &[u8]) -> bool,
    ) -> (Frames, usize, Option<String>) {
        let Ok(Sniff::Classic(mut r)) = PcapReader::sniff(bytes, |_| true) else {
            return (Vec::new(), 0, Some("not classic".into()));
        };
        let (mut out, mut walked, mut frames) = (Vec::new(), 0, Vec::new());
        loop {
            match r.next_frames_where(&mut frames, max, usize::MAX, |t, _, d: &[u8]| keep(t, d)) {
                Ok(([], _)) => return (out, walked, None),
                Ok((block, _)) => {
                    walked += block.len();
                    for &(ts, off, len) in &frames {
                        let (o, l) = (off as usize, len as usize);
                        out.push((ts, block[o..o + l].to_vec()));
                    }
                }
                Err(e) => return (out, walked, Some(e.to_string())),
            }
        }
    }

    /// A walk limited in bytes stops at the first record on or past the
    /// limit; another reader that skips the same bytes is at the same
    /// record, and a skip past the end reads nothing.
    #[test]
    fn limited_walks_and_skips_meet_at_the_same_record() {
        let data = [7u8; 100];
        let recs: Vec<(u32, u32, &[u8])> = (0..50).map(|i| (i, 0, &data[..])).collect();
        let f = file([0xd4, 0xc3, 0xb2, 0xa1], false, &recs);
        let open = || match PcapReader::sniff(&f[..], |_| true) {
            Ok(Sniff::Classic(r)) => r,
            _ => panic!("not classic"),
        };
        let (mut a, mut b) = (open(), open());
        assert_eq!(a.position(), FILE_HEADER as u64);
        let mut frames = Vec::new();
        // Records of 116 bytes start at 0, 116 and 232 of the walk.
        let (block, walked) = a
            .next_frames_where(&mut frames, usize::MAX, 250, |_, _, _| true)
            .unwrap();
        assert_eq!((block.len(), walked, frames.len()), (348, 3, 3));
        let block = block.to_vec();
        assert_eq!(a.position(), FILE_HEADER as u64 + 348);
        assert_eq!(b.skip(348).unwrap(), Some(&block[..]));
        assert_eq!(b.position(), a.position());
        let rest = 47 * 116;
        assert_eq!(b.skip(rest + 1).unwrap(), None);
        assert_eq!(b.position(), a.position());
        assert_eq!(
            b.next_frame().unwrap().map(|f| f.ts),
            a.next_frame().unwrap().map(|f| f.ts)
        );
        assert!(b.skip(rest - 116).unwrap().is_some());
        assert!(b.next_frame().unwrap().is_none());
    }

    /// Frame by frame and block by block read the same frames and fail the
    /// same way.
    fn assert_blocks_agree(bytes: &[u8]) {
        let by_frame = read_all(bytes);
        for max in [1, 3, 256] {
            let (frames, err) = read_blocks(bytes, max);
            match &by_frame {
                Ok(want) => {
                    assert_eq!(err, None);
                    let want: Vec<_> = want.iter().map(|(t, d, _)| (*t, d.clone())).collect();
                    assert_eq!(frames, want);
                }
                Err(e) => assert_eq!(err.as_ref(), Some(e)),
            }
        }
    }

    /// A filtered walk hands on exactly the frames the filter keeps, walks
    /// every record (blocks that keep nothing are not mistaken for the end),
    /// and fails where the unfiltered read fails.
    #[test]
    fn filtered_blocks_hold_the_kept_frames() {
        let small = vec![1u8; 100];
        let other = vec![2u8; 60];
        let mut recs: Vec<(u32, u32, &[u8])> = Vec::new();
        for i in 0..5000 {
            recs.push((i, 0, if i % 7 == 3 { &other } else { &small }));
        }
        let f = file([0xd4, 0xc3, 0xb2, 0xa1], false, &recs);
        let keep = |_: i64, d: &[u8]| d.first() == Some(&2);
        let want: Vec<_> = read_all(&f)
            .unwrap()
            .into_iter()
            .filter(|(ts, d, _)| keep(*ts, d))
            .map(|(ts, d, _)| (ts, d))
            .collect();
        assert_eq!(want.len(), 714);
        for max in [1, 3, 256, 100_000] {
            let (got, walked, err) = read_blocks_where(&f, max, keep);
            assert_eq!((got.len(), err), (want.len(), None), "max {max}");
            assert_eq!(got, want, "max {max}");
            assert_eq!(walked, f.len() - FILE_HEADER, "max {max}");
        }
        // Nothing kept: every record still walked, then the end.
        let (got, walked, err) = read_blocks_where(&f, 256, |_, _| false);
        assert!(got.is_empty() && err.is_none());
        assert_eq!(walked, f.len() - FILE_HEADER);
        let cut = &f[..f.len() - 30];
        let (_, _, err) = read_blocks_where(cut, 256, |_, _| false);
        assert_eq!(err, read_all(cut).err());
    }

    #[test]
    fn both_byte_orders_and_both_precisions() {
        let recs: &[(u32, u32, &[u8])] = &[(10, 500, b"abc"), (11, 999_999, b"")];
        let le_us = file([0xd4, 0xc3, 0xb2, 0xa1], false, recs);
        let be_us = file([0xa1, 0xb2, 0xc3, 0xd4], true, recs);
        let want = vec![
            (10_000_500, b"abc".to_vec(), 7),
            (11_999_999, Vec::new(), 4),
        ];
        assert_eq!(read_all(&le_us).unwrap(), want);
        assert_eq!(read_all(&be_us).unwrap(), want);
        let ns: &[(u32, u32, &[u8])] = &[(10, 500_999, b"abc")];
        let le_ns = file([0x4d, 0x3c, 0xb2, 0xa1], false, ns);
        assert_eq!(read_all(&le_ns).unwrap()[0].0, 10_000_500);
        for f in [le_us, be_us, le_ns] {
            assert_blocks_agree(&f);
        }
    }

    #[test]
    fn records_larger_than_the_buffer_and_across_refills() {
        let big = vec![7u8; MAX_CAPLEN as usize];
        let small = vec![1u8; 1000];
        let mut recs: Vec<(u32, u32, &[u8])> = Vec::new();
        for i in 0..3000 {
            recs.push((i, 0, &small));
        }
        recs.push((5000, 0, &big));
        recs.push((5001, 0, &small));
        let f = file([0xd4, 0xc3, 0xb2, 0xa1], false, &recs);
        let got = read_all(&f).unwrap();
        assert_eq!(got.len(), 3002);
        assert_eq!(got[3000].1.len(), MAX_CAPLEN as usize);
        assert_eq!(got[3001].0, 5_001_000_000);
        assert_blocks_agree(&f);
    }

    #[test]
    fn damage_is_reported_like_libpcap() {
        let f = file([0xd4, 0xc3, 0xb2, 0xa1], false, &[(1, 0, b"abcdef")]);
        let cut = &f[..f.len() - 2];
        let err = read_all(cut).unwrap_err();
        assert!(
            err.contains("tried to read 6 captured bytes, only got 4"),
            "{err}"
        );
        assert_blocks_agree(cut);
        // The frames before a damaged record are delivered, then the error.
        let two = file(
            [0xd4, 0xc3, 0xb2, 0xa1],
            false,
            &[(1, 0, b"ab"), (2, 0, b"cd"), (3, 0, b"ef")],
        );
        let mut bad = two.clone();
        let third = FILE_HEADER + 2 * (RECORD_HEADER + 2);
        bad[third + 8..third + 12].copy_from_slice(&(MAX_CAPLEN + 1).to_le_bytes());
        let (frames, err) = read_blocks(&bad, 256);
        assert_eq!(frames.len(), 2);
        assert!(err.is_some_and(|e| e.contains("invalid packet capture length")));
        assert_blocks_agree(&bad);
        assert_blocks_agree(&two[..two.len() - 1]);
        let err = read_all(&f[..FILE_HEADER + 5]).unwrap_err();
        assert!(err.contains("16 header bytes, only got 5"), "{err}");
        let mut huge = file([0xd4, 0xc3, 0xb2, 0xa1], false, &[(1, 0, b"x")]);
        huge[FILE_HEADER + 8..FILE_HEADER + 12].copy_from_slice(&(MAX_CAPLEN + 1).to_le_bytes());
        let err = read_all(&huge).unwrap_err();
        assert!(
            err.contains("invalid packet capture length 262145"),
            "{err}"
        );
    }

    #[test]
    fn anything_else_is_left_to_libpcap() {
        let other = |b: &[u8]| matches!(PcapReader::sniff(b, |lt| lt == 1).unwrap(), Sniff::Other);
        let good = file([0xd4, 0xc3, 0xb2, 0xa1], false, &[]);
        assert!(!other(&good));
        // pcapng section header block: every byte read is handed back.
        let shb: Vec<u8> = [0x0a, 0x0d, 0x0d, 0x0a].into_iter().chain(0..40).collect();
        match PcapReader::sniff(&shb[..], |_| true).unwrap() {
            Sniff::Pcapng(r) => assert_eq!(r.into_parts().0, shb),
            _ => panic!("pcapng not recognised"),
        }
        // Too short, version 2.3, unknown link type, FCS bits.
        assert!(other(&good[..10]));
        let mut v23 = good.clone();
        v23[6] = 3;
        assert!(other(&v23));
        let mut lt = good.clone();
        lt[20] = 2;
        assert!(other(&lt));
        let mut fcs = good.clone();
        fcs[23] = 0x10;
        assert!(other(&fcs));
    }

    /// Every committed capture reads the same through this reader as
    /// through libpcap: timestamps, bytes and wire lengths.
    #[test]
    fn committed_captures_read_as_libpcap_reads_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let mut compared = 0;
        for entry in std::fs::read_dir(&dir).expect("pcaps/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "pcap") {
                continue;
            }
            assert_blocks_agree(&std::fs::read(&path).expect("read"));
            let file = std::fs::File::open(&path).expect("open");
            let Sniff::Classic(mut ours) = PcapReader::sniff(file, |_| true).expect("sniff") else {
                continue;
            };
            let mut theirs = pcap::Capture::from_file(&path).expect("libpcap opens it");
            assert_eq!(
                ours.linktype(),
                theirs.get_datalink().0,
                "{}",
                path.display()
            );
            loop {
                let a = ours.next_frame().expect("ours reads");
                match theirs.next_packet() {
                    Ok(p) => {
                        let b = Frame::from_packet(&p);
                        let a = a.expect("ours ended early");
                        assert_eq!((a.ts, a.data, a.wire_len), (b.ts, b.data, b.wire_len));
                        compared += 1;
                    }
                    Err(pcap::Error::NoMorePackets) => {
                        assert!(a.is_none(), "ours has more: {}", path.display());
                        break;
                    }
                    Err(e) => panic!("{}: {e}", path.display()),
                }
            }
        }
        assert!(compared > 1000, "only {compared} frames compared");
    }
}

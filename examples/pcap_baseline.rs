//! Baseline reader for benchmarks: iterate every packet of capture files with
//! libpcap and fold a checksum over all their bytes, nothing else. This is the
//! floor no libpcap-based reader can beat (see docs/performance.md).
//!
//! Usage: `pcap_baseline FILE...`; prints one line per file and a total line:
//! `file=F packets=N bytes=B caplen_bytes=C elapsed_s=S checksum=X`
//! (bytes = file size, caplen_bytes = captured packet bytes).

use std::process::ExitCode;
use std::time::Instant;

/// Fold the bytes 8 at a time so the loop is memory-bound, not ALU-bound,
/// and its result is printed so the compiler cannot skip the reads.
fn fold(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        acc = acc.rotate_left(5) ^ u64::from_le_bytes(b);
    }
    for &x in words.remainder() {
        acc = acc.rotate_left(5) ^ u64::from(x);
    }
    acc
}

struct Count {
    packets: u64,
    caplen: u64,
    checksum: u64,
}

fn read(path: &str) -> Result<Count, pcap::Error> {
    let mut cap = pcap::Capture::from_file(path)?;
    let mut c = Count {
        packets: 0,
        caplen: 0,
        checksum: 0,
    };
    loop {
        match cap.next_packet() {
            Ok(p) => {
                c.packets += 1;
                c.caplen += p.data.len() as u64;
                c.checksum = fold(c.checksum ^ u64::from(p.header.caplen), p.data);
            }
            Err(pcap::Error::NoMorePackets) => return Ok(c),
            Err(e) => return Err(e),
        }
    }
}

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: pcap_baseline FILE...");
        return ExitCode::from(2);
    }
    let all = Instant::now();
    let (mut packets, mut bytes, mut checksum) = (0u64, 0u64, 0u64);
    for f in &files {
        let start = Instant::now();
        let c = match read(f) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pcap_baseline: {f}: {e}");
                return ExitCode::from(2);
            }
        };
        let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        println!(
            "file={f} packets={} bytes={size} caplen_bytes={} elapsed_s={:.3} checksum={:016x}",
            c.packets,
            c.caplen,
            start.elapsed().as_secs_f64(),
            c.checksum
        );
        packets += c.packets;
        bytes += size;
        checksum ^= c.checksum;
    }
    println!(
        "total packets={packets} bytes={bytes} elapsed_s={:.3} checksum={checksum:016x}",
        all.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn fold_depends_on_every_byte() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        let base = fold(0, &data);
        for i in [0, 7, 8, 500, 999, 1000] {
            let mut d = data.clone();
            d[i] ^= 1;
            assert_ne!(fold(0, &d), base, "byte {i} ignored");
        }
    }
}

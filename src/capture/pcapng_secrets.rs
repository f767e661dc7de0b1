//! Decryption Secrets Blocks of pcapng files (block type 0x0000000A), found
//! by walking the block stream as it goes by: libpcap, which reads the
//! packets of pcapng files here, skips these blocks. Only the TLS key log
//! type (0x544c534b, "TLSK") is kept; its bytes are NSS key-log text for
//! `tls_decrypt::KeyTable::load_decryption_secrets_block`.
//!
//! The walk needs no seeking, so the file is still read once, as a stream
//! (a pipe works): the bytes pass through [`BlockScanner::push`] on their way
//! to libpcap.

use std::sync::{Arc, Mutex};

const SHB: u32 = 0x0a0d_0d0a;
const DSB: u32 = 0x0000_000a;
/// Secrets type of a TLS key log.
pub const TLS_KEY_LOG: u32 = 0x544c_534b;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// Block header read before a block is judged: type, length, and for a
/// section header its byte-order magic (every block has at least 12 bytes).
const HEAD: usize = 12;

/// Secrets found and not yet taken, bounded in bytes over the whole file.
#[derive(Debug, Default)]
pub struct SecretsInbox {
    pub blocks: Vec<Vec<u8>>,
    /// Bytes of every block kept so far (taken or not).
    pub kept_bytes: usize,
    /// Secrets blocks (TLSK) dropped for the bound.
    pub dropped_blocks: u64,
    pub dropped_bytes: u64,
    /// Secrets blocks of other types (SSH, WireGuard...) ignored.
    pub other_types: u64,
}

/// Walks pcapng blocks across pushes of arbitrary cuts.
#[derive(Debug)]
pub struct BlockScanner {
    head: [u8; HEAD],
    head_len: usize,
    /// Bytes of the current block after its head still to come.
    remaining: usize,
    /// Collecting the current block (a Decryption Secrets Block).
    collect: Option<Vec<u8>>,
    big_endian: bool,
    /// Not a pcapng stream, or damaged: libpcap reports it; stop looking.
    broken: bool,
    max_bytes: usize,
    inbox: Arc<Mutex<SecretsInbox>>,
}

impl BlockScanner {
    /// Keep at most `max_bytes` of secrets over the file.
    pub fn new(max_bytes: usize, inbox: Arc<Mutex<SecretsInbox>>) -> BlockScanner {
        BlockScanner {
            head: [0; HEAD],
            head_len: 0,
            remaining: 0,
            collect: None,
            big_endian: false,
            broken: false,
            max_bytes,
            inbox,
        }
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let v = b
            .get(at..at + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .unwrap_or_default();
        if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    /// The next bytes of the file.
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.broken {
            if self.remaining == 0 {
                let take = (HEAD - self.head_len).min(data.len());
                let (h, rest) = data.split_at(take);
                if let Some(dst) = self.head.get_mut(self.head_len..self.head_len + take) {
                    dst.copy_from_slice(h);
                }
                self.head_len += take;
                data = rest;
                if self.head_len < HEAD {
                    return;
                }
                self.head_len = 0;
                self.start_block();
                continue;
            }
            let take = self.remaining.min(data.len());
            let (b, rest) = data.split_at(take);
            if let Some(c) = &mut self.collect {
                c.extend_from_slice(b);
            }
            self.remaining -= take;
            data = rest;
            if self.remaining == 0 {
                self.end_block();
            }
        }
    }

    fn start_block(&mut self) {
        let head = self.head;
        if self.u32_at(&head, 0) == SHB {
            let bom = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
            self.big_endian = match bom {
                BYTE_ORDER_MAGIC => false,
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                _ => {
                    self.broken = true;
                    return;
                }
            };
        }
        let ty = self.u32_at(&head, 0);
        let len = self.u32_at(&head, 4) as usize;
        if len < HEAD || !len.is_multiple_of(4) {
            self.broken = true;
            return;
        }
        self.remaining = len - HEAD;
        self.collect = None;
        if ty == DSB {
            let secrets_type = self.u32_at(&head, 8);
            let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
            if secrets_type != TLS_KEY_LOG {
                inbox.other_types += 1;
            } else if inbox.kept_bytes + self.remaining > self.max_bytes {
                inbox.dropped_blocks += 1;
                inbox.dropped_bytes += self.remaining as u64;
            } else {
                inbox.kept_bytes += self.remaining;
                self.collect = Some(Vec::with_capacity(self.remaining));
            }
        }
        if self.remaining == 0 {
            self.end_block();
        }
    }

    fn end_block(&mut self) {
        let Some(body) = self.collect.take() else {
            return;
        };
        // Body after the secrets type: length, data padded to 32 bits,
        // options, the block length again.
        let len = self.u32_at(&body, 0) as usize;
        if let Some(secrets) = body.get(4..4usize.saturating_add(len)) {
            let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
            inbox.blocks.push(secrets.to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(big: bool, ty: u32, body: &[u8]) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut padded = body.to_vec();
        while !padded.len().is_multiple_of(4) {
            padded.push(0);
        }
        let len = 12 + padded.len() as u32;
        let mut b = w(ty).to_vec();
        b.extend(w(len));
        b.extend(padded);
        b.extend(w(len));
        b
    }

    fn dsb(big: bool, ty: u32, secrets: &[u8]) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut body = w(ty).to_vec();
        body.extend(w(secrets.len() as u32));
        body.extend(secrets);
        block(big, DSB, &body)
    }

    fn file(big: bool) -> Vec<u8> {
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut shb_body = if big {
            BYTE_ORDER_MAGIC.to_be_bytes().to_vec()
        } else {
            BYTE_ORDER_MAGIC.to_le_bytes().to_vec()
        };
        shb_body.extend(w16(1));
        shb_body.extend(w16(0));
        shb_body.extend([0xff; 8]);
        let mut f = block(big, SHB, &shb_body);
        f.extend(dsb(big, TLS_KEY_LOG, b"CLIENT_RANDOM a b\n"));
        f.extend(block(big, 6, &[7; 100]));
        f.extend(dsb(big, 0x5353_4854, b"ssh secrets"));
        f.extend(dsb(big, TLS_KEY_LOG, b"second\n"));
        f
    }

    #[test]
    fn finds_every_tls_secrets_block_at_any_cut_and_either_byte_order() {
        for big in [false, true] {
            let f = file(big);
            for step in [1, 3, 7, 64, f.len()] {
                let inbox = Arc::new(Mutex::new(SecretsInbox::default()));
                let mut s = BlockScanner::new(1 << 20, inbox.clone());
                for c in f.chunks(step) {
                    s.push(c);
                }
                let i = inbox.lock().unwrap();
                assert_eq!(
                    i.blocks,
                    vec![b"CLIENT_RANDOM a b\n".to_vec(), b"second\n".to_vec()],
                    "big {big} step {step}"
                );
                assert_eq!(i.other_types, 1);
            }
        }
    }

    #[test]
    fn bounded_and_damage_stops_the_walk() {
        let f = file(false);
        let inbox = Arc::new(Mutex::new(SecretsInbox::default()));
        let mut s = BlockScanner::new(20, inbox.clone());
        s.push(&f);
        let i = inbox.lock().unwrap();
        assert_eq!(i.blocks.len(), 1);
        assert_eq!(i.dropped_blocks, 1);
        drop(i);
        // A block length that is not a multiple of 4: nothing after it.
        let mut bad = f.clone();
        bad[4] = 13;
        let inbox = Arc::new(Mutex::new(SecretsInbox::default()));
        let mut s = BlockScanner::new(1 << 20, inbox.clone());
        s.push(&bad);
        assert!(inbox.lock().unwrap().blocks.is_empty());
    }
}

//! The passive decryption state machine of one TCP connection.
//!
//! The caller feeds each direction's reassembled TCP bytes in order. Records
//! are framed (across segments, bounded), the hellos read in the clear, the
//! keys looked up in the shared [`KeyTable`] by the ClientHello random, and
//! the application data of both directions handed back as plaintext. Keys
//! may come after the records (a key log followed live): a direction that
//! needs keys holds its bytes, bounded per flow and by a budget shared by
//! all flows, until they come or the caller's clock passes a deadline.

use super::keylog::{KeyTable, SessionKeys};
use super::record::{self, Framed, HEADER, HandshakeReader};
use super::schedule::{CipherSuite, OpenError, RecordKeys, Secret, TlsVersion};
use crate::findings::Micros;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Direction of a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    ClientToServer,
    ServerToClient,
}

impl Dir {
    /// 0 client to server, 1 server to client (the engine's numbering).
    pub fn index(self) -> usize {
        match self {
            Dir::ClientToServer => 0,
            Dir::ServerToClient => 1,
        }
    }

    /// The direction of [`Dir::index`] `i` (anything but 0 is the server's).
    pub fn from_index(i: usize) -> Dir {
        if i == 0 {
            Dir::ClientToServer
        } else {
            Dir::ServerToClient
        }
    }
}

/// Why a connection's decryption ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneReason {
    /// The bytes are not TLS records.
    NotTls,
    /// TLS 1.0/1.1, or a suite this module does not decrypt (CBC, CCM...).
    Unsupported { version: u16, suite: u16 },
    /// A record failed authentication: wrong keys or damaged input.
    AuthFailure,
    /// The keys did not come before the deadline.
    MissingKeys,
    /// The bytes held while waiting for keys went past the flow's or the
    /// global bound.
    HoldLimit,
    /// A handshake message or decrypted record could not be read.
    Malformed,
    /// The caller said the connection no longer matters.
    Skipped,
}

/// What decryption reports to the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum TlsEvent<'a> {
    /// The ServerHello's choice. `suite` is `None` when it is not decrypted
    /// here (a `Done(Unsupported)` follows).
    Negotiated {
        version: u16,
        suite_id: u16,
        suite: Option<CipherSuite>,
    },
    /// The application protocol the server selected (ServerHello in TLS 1.2,
    /// EncryptedExtensions in TLS 1.3).
    Alpn(&'a [u8]),
    /// Application data, in order, per direction.
    Plaintext {
        dir: Dir,
        data: &'a [u8],
    },
    /// The next record of `dir` carries at most `len` bytes of application
    /// data: set `skip` if the caller would drop them unseen; the record is
    /// then passed over without being decrypted (only large records of an
    /// established connection are offered).
    Skippable {
        dir: Dir,
        len: usize,
        skip: &'a std::cell::Cell<bool>,
    },
    Done(DoneReason),
}

/// Bounds of one flow's decryption.
#[derive(Debug, Clone, Copy)]
pub struct DecryptLimits {
    /// Bytes one flow may hold while it waits for keys.
    pub max_held_per_flow: usize,
    /// How long (µs, on the caller's clock) a flow waits for keys.
    pub hold_timeout: Micros,
    /// Client records that fail under the handshake keys after a ClientHello
    /// that offered early data are taken as 0-RTT data (whose key is not
    /// used here) and skipped, up to this many.
    pub max_early_records: u32,
}

impl Default for DecryptLimits {
    fn default() -> Self {
        DecryptLimits {
            max_held_per_flow: 256 * 1024,
            hold_timeout: 10_000_000,
            max_early_records: 64,
        }
    }
}

/// Bytes held by every flow waiting for keys, against one limit; shared by
/// the flows of one worker or of all of them.
#[derive(Debug)]
pub struct HoldBudget {
    used: AtomicUsize,
    limit: usize,
}

impl HoldBudget {
    pub fn new(limit: usize) -> HoldBudget {
        HoldBudget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Take `n` bytes if they fit.
    pub fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.limit)
            })
            .is_ok()
    }

    pub fn give_back(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Decryption counters, shared by the flows that use one context.
#[derive(Debug, Default)]
pub struct DecryptCounters {
    pub flows_with_keys: AtomicU64,
    pub flows_decrypted: AtomicU64,
    pub flows_missing_keys: AtomicU64,
    pub flows_not_tls: AtomicU64,
    pub auth_failures: AtomicU64,
    pub unsupported: AtomicU64,
    pub records_decrypted: AtomicU64,
    pub records_held: AtomicU64,
    pub records_dropped: AtomicU64,
    pub early_data_skipped: AtomicU64,
    pub records_skipped: AtomicU64,
    pub plaintext_bytes: AtomicU64,
}

/// A copy of [`DecryptCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecryptStats {
    /// Flows whose keys were found in the key table.
    pub flows_with_keys: u64,
    /// Flows with at least one record decrypted.
    pub flows_decrypted: u64,
    /// Flows whose keys did not come (deadline or hold bound).
    pub flows_missing_keys: u64,
    pub flows_not_tls: u64,
    /// Records that failed authentication (each stops its flow).
    pub auth_failures: u64,
    /// Flows with a version or suite not decrypted here.
    pub unsupported: u64,
    pub records_decrypted: u64,
    /// Records that waited for keys.
    pub records_held: u64,
    /// Held records given up.
    pub records_dropped: u64,
    pub early_data_skipped: u64,
    /// Records passed over undecrypted: their plaintext would be dropped
    /// unseen (a download past the body limit).
    pub records_skipped: u64,
    pub plaintext_bytes: u64,
}

impl DecryptCounters {
    pub fn snapshot(&self) -> DecryptStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DecryptStats {
            flows_with_keys: g(&self.flows_with_keys),
            flows_decrypted: g(&self.flows_decrypted),
            flows_missing_keys: g(&self.flows_missing_keys),
            flows_not_tls: g(&self.flows_not_tls),
            auth_failures: g(&self.auth_failures),
            unsupported: g(&self.unsupported),
            records_decrypted: g(&self.records_decrypted),
            records_held: g(&self.records_held),
            records_dropped: g(&self.records_dropped),
            early_data_skipped: g(&self.early_data_skipped),
            records_skipped: g(&self.records_skipped),
            plaintext_bytes: g(&self.plaintext_bytes),
        }
    }
}

fn bump(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

/// What every flow's decryptor shares: the key table, the hold budget, the
/// limits and the counters. Build one and hand `Arc` clones to flows.
#[derive(Debug)]
pub struct DecryptContext {
    pub table: Arc<KeyTable>,
    pub budget: HoldBudget,
    pub limits: DecryptLimits,
    pub counters: DecryptCounters,
    /// New TLS connections are decrypted only while this is set: a context
    /// made in case a capture carries its keys (a pcapng read from a pipe)
    /// starts dormant, so that connections without keys cost nothing more
    /// than without it.
    enabled: AtomicBool,
}

impl DecryptContext {
    /// `hold_budget`: bytes all flows together may hold while waiting for
    /// keys. Enabled.
    pub fn new(table: Arc<KeyTable>, limits: DecryptLimits, hold_budget: usize) -> Self {
        DecryptContext {
            table,
            budget: HoldBudget::new(hold_budget),
            limits,
            counters: DecryptCounters::default(),
            enabled: AtomicBool::new(true),
        }
    }

    /// As [`DecryptContext::new`], but not enabled until [`DecryptContext::enable`].
    pub fn dormant(table: Arc<KeyTable>, limits: DecryptLimits, hold_budget: usize) -> Self {
        let c = Self::new(table, limits, hold_budget);
        c.enabled.store(false, Ordering::Release);
        c
    }

    /// Decrypt the TLS connections that start from now on.
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Release);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }
}

/// Where a TLS 1.3 direction is in the key schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Handshake,
    Application,
}

#[derive(Default)]
struct DirState {
    /// Unconsumed bytes: a partial record, or the records held for keys.
    buf: Vec<u8>,
    hs: HandshakeReader,
    /// Records of this direction are encrypted from here on.
    encrypted: bool,
    keys: Option<RecordKeys>,
    stage: Option<Stage>,
    /// Current TLS 1.3 application traffic secret (for KeyUpdate).
    app_secret: Option<Secret>,
    /// Records of `buf` already counted as held.
    held: u64,
    opened_any: bool,
    /// Set by handshake messages, applied after their record.
    finished: bool,
    key_update: bool,
}

/// What one record did.
enum Step {
    Next,
    /// Stop here and keep the bytes: keys or the ServerHello are missing.
    Wait,
    Stop(DoneReason),
}

/// Decrypts one TCP connection's TLS. See the module documentation.
pub struct TlsDecryptor {
    ctx: Arc<DecryptContext>,
    dirs: [DirState; 2],
    client_random: Option<[u8; 32]>,
    server_random: Option<[u8; 32]>,
    version: Option<TlsVersion>,
    suite: Option<CipherSuite>,
    early_data_offered: bool,
    early_skipped: u32,
    offered_alpn: Vec<u8>,
    alpn: Option<Vec<u8>>,
    keys: Option<SessionKeys>,
    /// Key-table generation of the last lookup that found nothing new.
    looked_at: Option<u64>,
    counted_keys: bool,
    counted_decrypted: bool,
    hold_since: Option<Micros>,
    budget_taken: usize,
    scratch: Vec<u8>,
    done: Option<DoneReason>,
}

impl std::fmt::Debug for TlsDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDecryptor")
            .field("version", &self.version)
            .field("suite", &self.suite.map(|s| s.name))
            .field("has_keys", &self.keys.is_some())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Most bytes of the ClientHello's ALPN list kept.
const MAX_OFFERED_ALPN: usize = 512;
/// Smallest record offered to be passed over undecrypted (see
/// `TlsDecryptor::pass_over`).
const MIN_SKIPPED_RECORD: usize = 4096;

impl TlsDecryptor {
    pub fn new(ctx: Arc<DecryptContext>) -> TlsDecryptor {
        TlsDecryptor {
            ctx,
            dirs: Default::default(),
            client_random: None,
            server_random: None,
            version: None,
            suite: None,
            early_data_offered: false,
            early_skipped: 0,
            offered_alpn: Vec::new(),
            alpn: None,
            keys: None,
            looked_at: None,
            counted_keys: false,
            counted_decrypted: false,
            hold_since: None,
            budget_taken: 0,
            scratch: Vec::new(),
            done: None,
        }
    }

    /// The negotiated version, once the ServerHello was read.
    pub fn version(&self) -> Option<TlsVersion> {
        self.version
    }

    /// The negotiated suite if it is decrypted here.
    pub fn suite(&self) -> Option<CipherSuite> {
        self.suite
    }

    /// The ClientHello random (the key-log key).
    pub fn client_random(&self) -> Option<&[u8; 32]> {
        self.client_random.as_ref()
    }

    /// ALPN protocols the ClientHello offered.
    pub fn offered_alpn(&self) -> impl Iterator<Item = &[u8]> {
        let mut c = record::Cursor(&self.offered_alpn);
        std::iter::from_fn(move || c.vec8())
    }

    /// The ALPN protocol the server selected.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// Why decryption ended, if it did.
    pub fn done(&self) -> Option<DoneReason> {
        self.done
    }

    /// Whether some bytes wait for keys (poll again when the key table's
    /// generation moves, and at the deadline).
    pub fn waiting_for_keys(&self) -> bool {
        self.hold_since.is_some() && self.done.is_none()
    }

    /// The caller no longer needs this connection's plaintext: hand back
    /// what is held and ignore every later byte.
    pub fn skip(&mut self) {
        self.finish(DoneReason::Skipped);
    }

    /// The next `data` of direction `dir`, in order. `now` is the caller's
    /// clock (capture time offline), used for the key deadline. Events go to
    /// `on_event`.
    pub fn feed(
        &mut self,
        dir: Dir,
        data: &[u8],
        now: Micros,
        on_event: &mut impl FnMut(TlsEvent<'_>),
    ) {
        if self.done.is_some() || data.is_empty() {
            return;
        }
        let d = dir.index();
        let Some(st) = self.dirs.get_mut(d) else {
            return;
        };
        if st.buf.is_empty() {
            // The common case: whole records straight from the caller's bytes.
            let used = self.run(d, data, now, on_event);
            if self.done.is_some() {
                return;
            }
            let rest = data.get(used..).unwrap_or_default();
            self.dirs[d].buf.extend_from_slice(rest);
        } else {
            st.buf.extend_from_slice(data);
        }
        // Runs what was kept (this direction's and, if these bytes brought
        // what it waited for, the other's), then counts and charges what
        // still waits.
        self.poll(now, on_event);
    }

    /// Retry held records (keys may have come) and give them up at the
    /// deadline. Cheap when nothing waits or the key table did not change.
    pub fn poll(&mut self, now: Micros, on_event: &mut impl FnMut(TlsEvent<'_>)) {
        if self.done.is_some() {
            return;
        }
        let mut progress = false;
        for d in 0..2 {
            if self.dirs[d].buf.is_empty() {
                continue;
            }
            let mut buf = std::mem::take(&mut self.dirs[d].buf);
            let used = self.run(d, &buf, now, on_event).min(buf.len());
            if self.done.is_some() {
                return;
            }
            progress |= used > 0;
            let consumed = record::count_records(buf.get(..used).unwrap_or_default());
            buf.drain(..used);
            let st = &mut self.dirs[d];
            st.buf = buf;
            // Records that wait now and were not counted as held before.
            let still_held = st.held.saturating_sub(consumed);
            let n = record::count_records(&st.buf);
            bump(
                &self.ctx.counters.records_held,
                n.saturating_sub(still_held),
            );
            st.held = n;
        }
        if !self.account() {
            bump(&self.ctx.counters.flows_missing_keys, 1);
            self.stop(DoneReason::HoldLimit, on_event);
            return;
        }
        let waiting = self.dirs.iter().any(|s| record::count_records(&s.buf) > 0);
        if !waiting || progress {
            self.hold_since = waiting.then_some(now);
            return;
        }
        let since = *self.hold_since.get_or_insert(now);
        if now.saturating_sub(since) > self.ctx.limits.hold_timeout {
            bump(&self.ctx.counters.flows_missing_keys, 1);
            self.finish(DoneReason::MissingKeys);
            on_event(TlsEvent::Done(DoneReason::MissingKeys));
        }
    }

    /// Charge the bytes held for keys to the flow's bound and the shared
    /// budget (or give back what is no longer
    /// held); `false` when they do not fit.
    fn account(&mut self) -> bool {
        // A direction holds bytes when a whole record waits in it; a lone
        // partial record is ordinary reassembly.
        let held: usize = self
            .dirs
            .iter()
            .filter(|s| record::count_records(&s.buf) > 0)
            .map(|s| s.buf.len())
            .sum();
        if held > self.ctx.limits.max_held_per_flow {
            return false;
        }
        if held > self.budget_taken {
            if !self.ctx.budget.try_take(held - self.budget_taken) {
                return false;
            }
        } else {
            self.ctx.budget.give_back(self.budget_taken - held);
        }
        self.budget_taken = held;
        true
    }

    fn release_budget(&mut self) {
        self.ctx.budget.give_back(self.budget_taken);
        self.budget_taken = 0;
    }

    /// End decryption: drop what is held (counted), give back the budget.
    fn finish(&mut self, reason: DoneReason) {
        if self.done.is_some() {
            return;
        }
        self.done = Some(reason);
        let mut dropped = 0;
        for st in &mut self.dirs {
            dropped += record::count_records(&st.buf);
            st.buf = Vec::new();
            st.keys = None;
            st.app_secret = None;
        }
        bump(&self.ctx.counters.records_dropped, dropped);
        self.keys = None;
        self.hold_since = None;
        self.release_budget();
    }

    /// Process the whole records at the start of `data` for direction `d`;
    /// returns the bytes consumed (the rest waits).
    fn run(
        &mut self,
        d: usize,
        data: &[u8],
        _now: Micros,
        on_event: &mut impl FnMut(TlsEvent<'_>),
    ) -> usize {
        let mut at = 0;
        while self.done.is_none() {
            let rest = data.get(at..).unwrap_or_default();
            let (header, len) = match record::frame(rest) {
                Framed::Record(h, len) => (h, len),
                Framed::Partial => break,
                Framed::NotTls => {
                    bump(&self.ctx.counters.flows_not_tls, 1);
                    self.stop(DoneReason::NotTls, on_event);
                    break;
                }
            };
            let body = rest.get(HEADER..HEADER + len).unwrap_or_default();
            match self.record(d, header, body, on_event) {
                Step::Next => at += HEADER + len,
                Step::Wait => break,
                Step::Stop(r) => {
                    self.stop(r, on_event);
                    break;
                }
            }
        }
        at
    }

    fn stop(&mut self, r: DoneReason, on_event: &mut impl FnMut(TlsEvent<'_>)) {
        if self.done.is_none() {
            self.finish(r);
            on_event(TlsEvent::Done(r));
        }
    }

    fn record(
        &mut self,
        d: usize,
        header: [u8; HEADER],
        body: &[u8],
        on_event: &mut impl FnMut(TlsEvent<'_>),
    ) -> Step {
        let ty = header[0];
        let encrypted = self.dirs[d].encrypted;
        match (self.version, ty, encrypted) {
            // TLS 1.3 protects every record as application data, whatever
            // the order in which the two directions were fed.
            (Some(TlsVersion::Tls13), record::APPLICATION_DATA, _) => {
                self.protected(d, header, body, on_event)
            }
            (Some(TlsVersion::Tls13), record::HANDSHAKE, _) => {
                self.clear_handshake(d, body, on_event)
            }
            // TLS 1.2: from a direction's ChangeCipherSpec on.
            (Some(TlsVersion::Tls12), record::CHANGE_CIPHER_SPEC, false) => {
                let st = &mut self.dirs[d];
                st.encrypted = true;
                st.keys = None;
                Step::Next
            }
            (Some(TlsVersion::Tls12), _, true) => self.protected(d, header, body, on_event),
            // Hellos (and the rest of TLS 1.2's first flights).
            (_, record::HANDSHAKE, false) => self.clear_handshake(d, body, on_event),
            // A server's CCS before its (real) ServerHello follows a
            // HelloRetryRequest in TLS 1.3 compatibility mode: nothing to do.
            (None, record::CHANGE_CIPHER_SPEC, _) if d == 1 => Step::Next,
            // The client's meaning is not known before the ServerHello is
            // (it may only have been fed later).
            (None, record::APPLICATION_DATA | record::CHANGE_CIPHER_SPEC, _) => Step::Wait,
            // TLS 1.3 middlebox-compatibility CCS, alerts and heartbeats in
            // the clear, application data before a TLS 1.2 CCS: nothing to
            // decrypt.
            _ => Step::Next,
        }
    }

    fn clear_handshake(
        &mut self,
        d: usize,
        body: &[u8],
        on_event: &mut impl FnMut(TlsEvent<'_>),
    ) -> Step {
        let mut hs = std::mem::take(&mut self.dirs[d].hs);
        let mut step = Step::Next;
        let pushed = hs.push(body, |ty, msg| {
            if !matches!(step, Step::Next) {
                return;
            }
            step = match (d, ty) {
                (0, record::HS_CLIENT_HELLO) => {
                    self.on_client_hello(msg);
                    Step::Next
                }
                (1, record::HS_SERVER_HELLO) => self.on_server_hello(msg, on_event),
                _ => Step::Next,
            };
        });
        self.dirs[d].hs = hs;
        if pushed.is_err() {
            return Step::Stop(DoneReason::Malformed);
        }
        step
    }

    fn on_client_hello(&mut self, msg: &[u8]) {
        let Some(ch) = record::client_hello(msg) else {
            return;
        };
        // A second ClientHello (after a HelloRetryRequest) keeps the random.
        if self.client_random.is_none() {
            self.client_random = Some(ch.random);
            if let Some(a) = ch.alpn.filter(|a| a.len() <= MAX_OFFERED_ALPN) {
                self.offered_alpn = a.to_vec();
            }
        }
        self.early_data_offered |= ch.early_data;
    }

    fn on_server_hello(&mut self, msg: &[u8], on_event: &mut impl FnMut(TlsEvent<'_>)) -> Step {
        let Some(sh) = record::server_hello(msg) else {
            return Step::Stop(DoneReason::Malformed);
        };
        if sh.is_retry_request() || self.version.is_some() {
            // The real ServerHello follows a HelloRetryRequest; a second
            // one after it is a renegotiation, not followed.
            return Step::Next;
        }
        let version = match sh.version {
            0x0304 => Some(TlsVersion::Tls13),
            0x0303 => Some(TlsVersion::Tls12),
            _ => None,
        };
        let suite = version.and_then(|v| CipherSuite::find(sh.suite, v));
        on_event(TlsEvent::Negotiated {
            version: sh.version,
            suite_id: sh.suite,
            suite,
        });
        let (Some(version), Some(suite)) = (version, suite) else {
            bump(&self.ctx.counters.unsupported, 1);
            return Step::Stop(DoneReason::Unsupported {
                version: sh.version,
                suite: sh.suite,
            });
        };
        self.version = Some(version);
        self.suite = Some(suite);
        self.server_random = Some(sh.random);
        if version == TlsVersion::Tls13 {
            for st in &mut self.dirs {
                st.stage = Some(Stage::Handshake);
                st.keys = None;
            }
        } else if let Some(a) = sh.alpn {
            self.alpn = Some(a.to_vec());
            on_event(TlsEvent::Alpn(a));
        }
        Step::Next
    }

    /// Look the keys up again if the key table changed since the last try.
    fn refresh_keys(&mut self) {
        let Some(random) = self.client_random else {
            return;
        };
        let generation = self.ctx.table.generation();
        if self.looked_at == Some(generation) {
            return;
        }
        self.looked_at = Some(generation);
        if let Some(k) = self.ctx.table.get(&random) {
            if !self.counted_keys {
                self.counted_keys = true;
                bump(&self.ctx.counters.flows_with_keys, 1);
            }
            self.keys = Some(k);
        }
    }

    /// Record keys for direction `d` at its current point, if the secrets
    /// are known.
    fn install_keys(&mut self, d: usize) -> bool {
        if self.dirs[d].keys.is_some() {
            return true;
        }
        let (Some(version), Some(suite)) = (self.version, self.suite) else {
            return false;
        };
        let try_make = |this: &Self| -> Option<(RecordKeys, Option<Secret>)> {
            let k = this.keys.as_ref()?;
            match version {
                TlsVersion::Tls12 => {
                    let (c, s) = RecordKeys::tls12(
                        &suite,
                        k.master.as_ref()?,
                        this.client_random.as_ref()?,
                        this.server_random.as_ref()?,
                    )?;
                    Some((if d == 0 { c } else { s }, None))
                }
                TlsVersion::Tls13 => {
                    let secret = match (this.dirs[d].stage?, d) {
                        (Stage::Handshake, 0) => k.client_handshake.as_ref()?,
                        (Stage::Handshake, _) => k.server_handshake.as_ref()?,
                        (Stage::Application, 0) => k.client_traffic.as_ref()?,
                        (Stage::Application, _) => k.server_traffic.as_ref()?,
                    };
                    let keys = RecordKeys::tls13(&suite, secret)?;
                    let app =
                        (this.dirs[d].stage == Some(Stage::Application)).then(|| secret.clone());
                    Some((keys, app))
                }
            }
        };
        let mut made = try_make(self);
        if made.is_none() {
            self.refresh_keys();
            made = try_make(self);
        }
        match made {
            Some((keys, app)) => {
                self.dirs[d].keys = Some(keys);
                if app.is_some() {
                    self.dirs[d].app_secret = app;
                }
                true
            }
            None => false,
        }
    }

    fn protected(
        &mut self,
        d: usize,
        header: [u8; HEADER],
        body: &[u8],
        on_event: &mut impl FnMut(TlsEvent<'_>),
    ) -> Step {
        if !self.install_keys(d) {
            return Step::Wait;
        }
        let Some(suite) = self.suite else {
            return Step::Wait;
        };
        if self.pass_over(d, body.len(), on_event) {
            return Step::Next;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(body);
        let Some(keys) = self.dirs[d].keys.as_mut() else {
            self.scratch = scratch;
            return Step::Wait;
        };
        let opened = keys.open(&header, &mut scratch);
        let step = match opened {
            Ok(range) => {
                self.dirs[d].opened_any = true;
                bump(&self.ctx.counters.records_decrypted, 1);
                if !self.counted_decrypted {
                    self.counted_decrypted = true;
                    bump(&self.ctx.counters.flows_decrypted, 1);
                }
                let plain = scratch.get(range).unwrap_or_default();
                self.plaintext(d, header[0], suite.version, plain, on_event)
            }
            Err(OpenError::Authentication | OpenError::TooShort)
                if d == 0
                    && self.version == Some(TlsVersion::Tls13)
                    && self.dirs[0].stage == Some(Stage::Handshake)
                    && self.early_data_offered
                    && !self.dirs[0].opened_any
                    && self.early_skipped < self.ctx.limits.max_early_records =>
            {
                // 0-RTT data under the early traffic secret, not used here.
                self.early_skipped += 1;
                bump(&self.ctx.counters.early_data_skipped, 1);
                Step::Next
            }
            Err(_) => {
                bump(&self.ctx.counters.auth_failures, 1);
                Step::Stop(DoneReason::AuthFailure)
            }
        };
        // The plaintext goes to the caller anyway: not wiped.
        scratch.clear();
        self.scratch = scratch;
        if !matches!(step, Step::Next) {
            return step;
        }
        self.after_record(d)
    }

    /// Offer the next record of direction `d` to be passed over (see
    /// [`TlsEvent::Skippable`]); `true` when it was. Only records of at
    /// least [`MIN_SKIPPED_RECORD`] bytes once application data flows: the
    /// handshake messages that change keys (KeyUpdate) are far smaller, and
    /// they are always read.
    fn pass_over(
        &mut self,
        d: usize,
        body_len: usize,
        on_event: &mut impl FnMut(TlsEvent<'_>),
    ) -> bool {
        if body_len < MIN_SKIPPED_RECORD {
            return false;
        }
        let st = &self.dirs[d];
        let established = match self.version {
            Some(TlsVersion::Tls13) => st.stage == Some(Stage::Application),
            Some(TlsVersion::Tls12) => st.opened_any,
            None => false,
        };
        let Some(len) = st.keys.as_ref().and_then(|k| k.plaintext_bound(body_len)) else {
            return false;
        };
        if !established {
            return false;
        }
        let dir = Dir::from_index(d);
        let skip = std::cell::Cell::new(false);
        on_event(TlsEvent::Skippable {
            dir,
            len,
            skip: &skip,
        });
        if !skip.get() {
            return false;
        }
        if let Some(k) = self.dirs[d].keys.as_mut() {
            k.skip_record();
        }
        bump(&self.ctx.counters.records_skipped, 1);
        true
    }

    /// Key changes that handshake messages of the last record asked for.
    fn after_record(&mut self, d: usize) -> Step {
        let Some(suite) = self.suite else {
            return Step::Next;
        };
        let st = &mut self.dirs[d];
        if std::mem::take(&mut st.finished) && st.stage == Some(Stage::Handshake) {
            st.stage = Some(Stage::Application);
            st.keys = None;
        }
        if std::mem::take(&mut st.key_update) && st.stage == Some(Stage::Application) {
            let next = st
                .app_secret
                .as_ref()
                .and_then(|s| super::schedule::next_traffic_secret(&suite, s));
            let Some(next) = next else {
                return Step::Stop(DoneReason::Malformed);
            };
            st.keys = RecordKeys::tls13(&suite, &next);
            st.app_secret = Some(next);
            if st.keys.is_none() {
                return Step::Stop(DoneReason::Malformed);
            }
        }
        Step::Next
    }

    fn plaintext(
        &mut self,
        d: usize,
        outer: u8,
        version: TlsVersion,
        plain: &[u8],
        on_event: &mut impl FnMut(TlsEvent<'_>),
    ) -> Step {
        let (ty, content) = match version {
            TlsVersion::Tls12 => (outer, plain),
            TlsVersion::Tls13 => {
                // TLSInnerPlaintext: content, type, zero padding.
                let Some(end) = plain.iter().rposition(|b| *b != 0) else {
                    return Step::Stop(DoneReason::Malformed);
                };
                (plain[end], plain.get(..end).unwrap_or_default())
            }
        };
        match ty {
            record::APPLICATION_DATA => {
                if !content.is_empty() {
                    bump(&self.ctx.counters.plaintext_bytes, content.len() as u64);
                    let dir = Dir::from_index(d);
                    on_event(TlsEvent::Plaintext { dir, data: content });
                }
                Step::Next
            }
            record::HANDSHAKE => {
                let mut hs = std::mem::take(&mut self.dirs[d].hs);
                let mut alpn: Option<Vec<u8>> = None;
                let (mut finished, mut key_update) = (false, false);
                let pushed = hs.push(content, |t, msg| match t {
                    record::HS_ENCRYPTED_EXTENSIONS if version == TlsVersion::Tls13 => {
                        alpn = record::encrypted_extensions_alpn(msg).map(<[u8]>::to_vec);
                    }
                    record::HS_FINISHED => finished = true,
                    record::HS_KEY_UPDATE => key_update = true,
                    _ => {}
                });
                self.dirs[d].hs = hs;
                if pushed.is_err() {
                    return Step::Stop(DoneReason::Malformed);
                }
                if let Some(a) = alpn
                    && self.alpn.is_none()
                {
                    on_event(TlsEvent::Alpn(&a));
                    self.alpn = Some(a);
                }
                let st = &mut self.dirs[d];
                st.finished |= finished && version == TlsVersion::Tls13;
                st.key_update |= key_update && version == TlsVersion::Tls13;
                Step::Next
            }
            _ => Step::Next,
        }
    }
}

impl Drop for TlsDecryptor {
    /// A connection that ends (or is evicted) while records wait for keys
    /// counts as one with missing keys; what it held is dropped and the
    /// budget given back.
    fn drop(&mut self) {
        if self.done.is_none() && self.dirs.iter().any(|s| record::count_records(&s.buf) > 0) {
            bump(&self.ctx.counters.flows_missing_keys, 1);
        }
        self.finish(DoneReason::MissingKeys);
    }
}

//! Findings in a running sensor: emitted the moment the evidence makes them,
//! then suppressed per (client, server, rule) for a window, with the number
//! of suppressed repeats carried into the next emission (a periodic "still
//! active" roll-up). A stronger rule for the same pair (a DNS lookup, then a
//! TLS connection, then a cleartext session) is emitted at once. When a
//! reported pair reveals more MCP inventory (the `tools/call` after the
//! `initialize` that made the finding), an update is emitted once
//! `update_delay` has passed since the last emission.
//!
//! A new (pair, rule) is held for `settle` before its first emission: the
//! connections of one MCP session are spread over several workers and can
//! reach this layer out of order (the `tools/call` before the `initialize`),
//! so a short hold makes the first alert carry the whole session, and a DNS
//! lookup followed at once by the TLS connection makes one alert, not two.

use super::aggregate::{Assessment, Finding, Key, Rule, Verdict, assess};
use super::output::FindingRecord;
use super::{Micros, Observation, Observer};
use crate::detect::hosts::Detector;
use crate::findings::aggregate::Confidence;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// What the live layer decided for one observation or tick.
#[derive(Debug)]
pub enum Outcome {
    /// Send to the sinks.
    Emit {
        record: Box<FindingRecord>,
        assessment: Assessment,
    },
    /// A repeat within the window, counted.
    Suppressed { rule: Rule },
}

#[derive(Debug)]
struct Emission {
    rule: Rule,
    at: Micros,
    suppressed: u64,
    /// The inventory grew since this rule was last emitted.
    dirty: bool,
    /// Held for the settle time; not emitted yet.
    pending: bool,
}

impl Emission {
    fn restart(&mut self, at: Micros) {
        self.at = at;
        self.suppressed = 0;
        self.dirty = false;
        self.pending = false;
    }
}

#[derive(Debug)]
struct Entry {
    finding: Finding,
    emissions: Vec<Emission>,
}

#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub window: Micros,
    /// Minimum time between an emission and an update that carries new
    /// inventory; 0 disables updates.
    pub update_delay: Micros,
    pub max_entries: usize,
    pub min_confidence: Confidence,
    pub report_sanctioned: bool,
    /// Hold before a new (pair, rule) is first emitted; 0 emits at once.
    pub settle: Micros,
}

pub struct LiveFindings {
    detector: Arc<Detector>,
    settings: LiveSettings,
    entries: FxHashMap<Key, Entry>,
    /// Pairs with a held first emission, oldest first: (due, pair).
    pending: VecDeque<(Micros, Key)>,
    /// Entries dropped to stay within `max_entries`.
    pub evicted: u64,
    /// Named in every emitted record when set.
    observer: Option<Arc<Observer>>,
}

impl LiveFindings {
    pub fn new(detector: Arc<Detector>, settings: LiveSettings) -> Self {
        Self {
            detector,
            settings,
            entries: FxHashMap::default(),
            pending: VecDeque::new(),
            evicted: 0,
            observer: None,
        }
    }

    /// Every record emitted from now on names this sensor.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    pub fn set_detector(&mut self, detector: Arc<Detector>) {
        self.detector = detector;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn observe(&mut self, o: &Observation, out: &mut Vec<Outcome>) {
        let Some(key) = Key::of(o) else { return };
        if !self.entries.contains_key(&key) {
            if self.entries.len() >= self.settings.max_entries {
                self.make_room(o.ts);
            }
            self.entries.insert(
                key.clone(),
                Entry {
                    finding: Finding::new(o),
                    emissions: Vec::new(),
                },
            );
        }
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        let flows_before = entry.finding.count;
        let inventory_before = inventory_size(&entry.finding);
        entry.finding.add(o);
        if !entry.finding.proven {
            return;
        }
        let new_flow = entry.finding.count > flows_before;
        if inventory_size(&entry.finding) != inventory_before {
            entry.emissions.iter_mut().for_each(|e| e.dirty = true);
        }
        let a = assess(&entry.finding, &self.detector);
        if a.confidence < self.settings.min_confidence
            || (a.verdict == Verdict::Sanctioned && !self.settings.report_sanctioned)
        {
            return;
        }
        let (window, delay, settle) = (
            self.settings.window,
            self.settings.update_delay,
            self.settings.settle,
        );
        match entry.emissions.iter_mut().find(|e| e.rule == a.rule) {
            None => {
                // The queue is bounded like the entries: past that, no hold.
                let pending = settle > 0 && self.pending.len() < self.settings.max_entries;
                entry.emissions.push(Emission {
                    rule: a.rule,
                    at: o.ts,
                    suppressed: 0,
                    dirty: false,
                    pending,
                });
                if pending {
                    // One queue entry per pair: a stronger rule arriving
                    // while held is emitted with the first.
                    if !entry.emissions.iter().rev().skip(1).any(|e| e.pending) {
                        self.pending.push_back((o.ts.saturating_add(settle), key));
                    }
                } else {
                    out.push(emit(&entry.finding, a, o.ts, 0, self.observer.as_deref()));
                }
            }
            // Held: everything until the emission travels with it.
            Some(e) if e.pending => {}
            // The window is over: a new flow emits with the repeats carried.
            Some(e) if new_flow && o.ts.saturating_sub(e.at) >= window => {
                let repeats = e.suppressed + 1;
                e.restart(o.ts);
                out.push(emit(
                    &entry.finding,
                    a,
                    o.ts,
                    repeats,
                    self.observer.as_deref(),
                ));
            }
            // More inventory than was reported, and the update delay passed.
            Some(e) if e.dirty && delay > 0 && o.ts.saturating_sub(e.at) >= delay => {
                let repeats = e.suppressed + u64::from(new_flow);
                e.restart(o.ts);
                out.push(emit(
                    &entry.finding,
                    a,
                    o.ts,
                    repeats,
                    self.observer.as_deref(),
                ));
            }
            Some(e) if new_flow => {
                e.suppressed += 1;
                out.push(Outcome::Suppressed { rule: a.rule });
            }
            // More evidence from a flow already reported: it travels with
            // the next emission (an update once the delay has passed).
            Some(_) => {}
        }
    }

    /// When the next held emission is due, if any.
    pub fn next_due(&self) -> Option<Micros> {
        self.pending.front().map(|(due, _)| *due)
    }

    /// Emit the held first emissions that have settled by `now` (all of
    /// them with `flush`, at shutdown): one record per pair, with the
    /// strongest rule the pair reached while held.
    pub fn settle(&mut self, now: Micros, flush: bool, out: &mut Vec<Outcome>) {
        loop {
            match self.pending.front() {
                // A due far ahead of `now` means the packet clock and the
                // wall clock disagree: do not hold on to it.
                Some((due, _))
                    if flush || *due <= now || due.saturating_sub(now) > self.settings.settle => {}
                _ => break,
            }
            let Some((due, key)) = self.pending.pop_front() else {
                break;
            };
            // Gone (evicted) or already emitted: nothing to do.
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            if !entry.emissions.iter().any(|e| e.pending) {
                continue;
            }
            let a = assess(&entry.finding, &self.detector);
            let at = if flush { now.min(due) } else { due };
            for e in entry.emissions.iter_mut().filter(|e| e.pending) {
                e.restart(at);
            }
            out.push(emit(&entry.finding, a, at, 0, self.observer.as_deref()));
        }
    }

    /// Roll-ups whose window has passed with repeats pending, updates whose
    /// delay has passed with new inventory; forget pairs idle for two windows.
    pub fn tick(&mut self, now: Micros, out: &mut Vec<Outcome>) {
        self.settle(now, false, out);
        let (window, delay) = (self.settings.window, self.settings.update_delay);
        let detector = &self.detector;
        let observer = self.observer.as_deref();
        self.entries.retain(|_, entry| {
            for e in entry.emissions.iter_mut().filter(|e| !e.pending) {
                let elapsed = now.saturating_sub(e.at);
                let roll_up = e.suppressed > 0 && elapsed >= window;
                let update = e.dirty && delay > 0 && elapsed >= delay;
                if roll_up || update {
                    let a = assess(&entry.finding, detector);
                    let repeats = e.suppressed;
                    e.restart(now);
                    out.push(emit(&entry.finding, a, now, repeats, observer));
                }
            }
            now.saturating_sub(entry.finding.last_seen) < window.saturating_mul(2).max(60_000_000)
        });
    }

    /// At the cap: drop pairs idle for a window, then the least recently seen
    /// tenth. Amortised: a sweep frees many slots at once.
    fn make_room(&mut self, now: Micros) {
        let window = self.settings.window;
        let before = self.entries.len();
        self.entries
            .retain(|_, e| now.saturating_sub(e.finding.last_seen) < window);
        if self.entries.len() >= self.settings.max_entries {
            let mut seen: Vec<Micros> =
                self.entries.values().map(|e| e.finding.last_seen).collect();
            seen.sort_unstable();
            let cut = seen.get(seen.len() / 10).copied().unwrap_or(Micros::MIN);
            self.entries.retain(|_, e| e.finding.last_seen > cut);
        }
        self.evicted += (before - self.entries.len()) as u64;
    }
}

/// A cheap measure of how much MCP inventory a finding holds.
fn inventory_size(f: &Finding) -> (usize, usize, usize, usize, bool, bool, bool) {
    let m = &f.mcp;
    (
        m.methods.len(),
        m.remotes.len(),
        m.tools_listed.len(),
        m.tools_called.len(),
        m.server.is_some(),
        m.client.is_some(),
        m.protocol_version.is_some(),
    )
}

fn emit(
    f: &Finding,
    a: Assessment,
    ts: Micros,
    repeats: u64,
    observer: Option<&Observer>,
) -> Outcome {
    let mut record = FindingRecord::new(f, &a, ts);
    record.repeats = Some(repeats);
    record.observer = observer.cloned();
    Outcome::Emit {
        record: Box::new(record),
        assessment: a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{Evidence, Signal, Transport};
    use crate::signatures::SignatureSet;
    use crate::signatures::allowlist::Allowlist;

    const S: Micros = 1_000_000;

    fn live(allow: &str, report_sanctioned: bool) -> LiveFindings {
        live_settling(allow, report_sanctioned, 0)
    }

    fn live_settling(allow: &str, report_sanctioned: bool, settle: Micros) -> LiveFindings {
        let det = Detector::new(
            SignatureSet::builtin().expect("signatures"),
            Allowlist::parse(allow, "test").expect("allowlist"),
        );
        LiveFindings::new(
            Arc::new(det),
            LiveSettings {
                window: 3600 * S,
                update_delay: 30 * S,
                max_entries: 100,
                min_confidence: Confidence::Low,
                report_sanctioned,
                settle,
            },
        )
    }

    fn obs(
        ts: Micros,
        flow: u64,
        client: &str,
        name: &str,
        transport: Transport,
        signal: Signal,
    ) -> Observation {
        Observation {
            ts,
            flow_id: flow,
            client_ip: client.parse().expect("ip"),
            client_port: Some(40000),
            server_ip: Some("198.51.100.7".parse().expect("ip")),
            server_port: Some(443),
            server_name: Some(name.into()),
            path: None,
            transport,
            community_id: None,
            evidence: vec![
                Evidence::new(signal, name),
                Evidence::new(Signal::KnownServer, "Notion"),
            ],
            mcp: None,
            tls: None,
            joins_endpoint: None,
        }
    }

    fn tls(ts: Micros, flow: u64) -> Observation {
        obs(
            ts,
            flow,
            "10.1.4.7",
            "mcp.notion.com",
            Transport::Tls,
            Signal::TlsSni,
        )
    }

    fn emitted(out: &[Outcome]) -> Vec<(String, u64)> {
        out.iter()
            .filter_map(|o| match o {
                Outcome::Emit { record, .. } => {
                    Some((record.rule.id.to_owned(), record.repeats.unwrap_or(99)))
                }
                Outcome::Suppressed { .. } => None,
            })
            .collect()
    }

    #[test]
    fn first_emits_repeats_are_suppressed_then_rolled_up() {
        let mut l = live("", false);
        let mut out = Vec::new();
        l.observe(&tls(0, 1), &mut out);
        assert_eq!(emitted(&out), [("SMCP-010".to_owned(), 0)]);
        out.clear();
        // Same flow again: folded in silently. New flows: suppressed.
        l.observe(&tls(S, 1), &mut out);
        assert!(out.is_empty());
        l.observe(&tls(2 * S, 2), &mut out);
        l.observe(&tls(3 * S, 3), &mut out);
        assert_eq!(
            out.iter()
                .filter(|o| matches!(o, Outcome::Suppressed { .. }))
                .count(),
            2
        );
        assert!(emitted(&out).is_empty());
        out.clear();
        // After the window, the next new flow emits with the repeats carried.
        l.observe(&tls(3601 * S, 4), &mut out);
        assert_eq!(emitted(&out), [("SMCP-010".to_owned(), 3)]);
    }

    #[test]
    fn records_name_the_observer_when_given() {
        let mut out = Vec::new();
        live("", false).observe(&tls(0, 1), &mut out);
        assert!(records(&out)[0].observer.is_none());
        out.clear();
        let o = Observer::new(Some("tap-1")).with_interfaces(&["eth1"]);
        let mut l = live("", false).with_observer(o.clone());
        l.observe(&tls(0, 1), &mut out);
        l.observe(&tls(3601 * S, 2), &mut out);
        let r = records(&out);
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|r| r.observer.as_ref() == Some(&o)));
    }

    #[test]
    fn tick_rolls_up_pending_repeats() {
        let mut l = live("", false);
        let mut out = Vec::new();
        l.observe(&tls(0, 1), &mut out);
        l.observe(&tls(10 * S, 2), &mut out);
        out.clear();
        l.tick(100 * S, &mut out);
        assert!(out.is_empty(), "window not over");
        l.tick(3600 * S, &mut out);
        assert_eq!(emitted(&out), [("SMCP-010".to_owned(), 1)]);
        out.clear();
        l.tick(7300 * S, &mut out);
        assert!(out.is_empty(), "nothing pending");
        assert!(l.is_empty(), "idle for two windows: forgotten");
    }

    #[test]
    fn stronger_rule_emits_at_once() {
        let mut l = live("", false);
        let mut out = Vec::new();
        l.observe(
            &obs(
                0,
                1,
                "10.1.4.7",
                "mcp.notion.com",
                Transport::Dns,
                Signal::DnsQuery,
            ),
            &mut out,
        );
        l.observe(&tls(S, 2), &mut out);
        assert_eq!(
            emitted(&out),
            [("SMCP-020".to_owned(), 0), ("SMCP-010".to_owned(), 0)]
        );
    }

    #[test]
    fn sanctioned_only_when_asked() {
        let mut out = Vec::new();
        live("mcp.notion.com", false).observe(&tls(0, 1), &mut out);
        assert!(out.is_empty());
        live("*.notion.com", true).observe(&tls(0, 1), &mut out);
        assert!(
            matches!(&out[..], [Outcome::Emit { record, .. }] if record.sanctioned_by.as_deref() == Some("*.notion.com"))
        );
    }

    #[test]
    fn bounded_entries() {
        let mut l = live("", false);
        let mut out = Vec::new();
        for i in 0..10_000u32 {
            let client = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            l.observe(
                &obs(
                    i64::from(i) * S,
                    u64::from(i),
                    &client,
                    "mcp.notion.com",
                    Transport::Tls,
                    Signal::TlsSni,
                ),
                &mut out,
            );
            assert!(l.len() <= 100);
        }
        assert!(l.evicted > 0);
        assert_eq!(emitted(&out).len(), 10_000, "every new pair is reported");
    }

    fn with_methods(mut o: Observation, methods: &[&str], called: &[&str]) -> Observation {
        o.mcp = Some(crate::findings::McpInventory {
            methods: methods.iter().map(|m| m.to_string()).collect(),
            tools_called: called.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        });
        o.evidence = vec![Evidence::new(Signal::HttpJsonrpc, methods.join(","))];
        o
    }

    #[test]
    fn inventory_growth_is_sent_as_an_update_after_the_delay() {
        let mut l = live("", false);
        let mut out = Vec::new();
        let base = || {
            obs(
                0,
                1,
                "10.1.4.7",
                "mcp.example-vendor.com",
                Transport::StreamableHttp,
                Signal::HttpJsonrpc,
            )
        };
        l.observe(&with_methods(base(), &["initialize"], &[]), &mut out);
        assert_eq!(emitted(&out).len(), 1);
        out.clear();
        // Same session, more inventory, 10 s later: held (delay 30 s).
        let mut later = with_methods(base(), &["initialize", "tools/call"], &["search"]);
        later.ts = 10 * S;
        l.observe(&later, &mut out);
        assert!(out.is_empty());
        // The tick after the delay sends the update with the new inventory.
        l.tick(31 * S, &mut out);
        let records: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Outcome::Emit { record, .. } => Some(record),
                Outcome::Suppressed { .. } => None,
            })
            .collect();
        assert_eq!(records.len(), 1, "{out:?}");
        assert_eq!(records[0].mcp.tools_called, ["search"]);
        out.clear();
        // Nothing new: no further updates.
        l.tick(100 * S, &mut out);
        assert!(out.is_empty());
    }

    fn records(out: &[Outcome]) -> Vec<&FindingRecord> {
        out.iter()
            .filter_map(|o| match o {
                Outcome::Emit { record, .. } => Some(record.as_ref()),
                Outcome::Suppressed { .. } => None,
            })
            .collect()
    }

    fn session(ts: Micros, flow: u64, methods: &[&str], called: &[&str]) -> Observation {
        let mut o = with_methods(
            obs(
                ts,
                flow,
                "10.1.4.7",
                "mcp.example-vendor.com",
                Transport::StreamableHttp,
                Signal::HttpJsonrpc,
            ),
            methods,
            called,
        );
        if let Some(m) = o.mcp.as_mut()
            && methods.contains(&"initialize")
        {
            m.client = Some("cursor 1.2".into());
        }
        o
    }

    #[test]
    fn held_first_emission_carries_a_session_that_arrived_out_of_order() {
        let mut l = live_settling("", false, S);
        let mut out = Vec::new();
        // The tools/call connection is classified first, by another worker.
        l.observe(&session(0, 2, &["tools/call"], &["search"]), &mut out);
        l.observe(&session(S / 10, 1, &["initialize"], &[]), &mut out);
        assert!(out.is_empty(), "held for the settle time");
        assert_eq!(l.next_due(), Some(S));
        l.settle(S - 1, false, &mut out);
        assert!(out.is_empty(), "not due yet");
        l.settle(S, false, &mut out);
        let r = records(&out);
        assert_eq!(r.len(), 1, "{out:?}");
        assert_eq!(r[0].repeats, Some(0));
        assert_eq!(r[0].mcp.tools_called, ["search"]);
        assert!(r[0].mcp.methods.iter().any(|m| m == "initialize"));
        assert_eq!(r[0].mcp.client.as_deref(), Some("cursor 1.2"));
        assert_eq!(l.next_due(), None);
        out.clear();
        // Emitted: a new flow now is a repeat, counted as before.
        l.observe(&session(2 * S, 3, &["tools/call"], &["search"]), &mut out);
        assert!(matches!(&out[..], [Outcome::Suppressed { .. }]), "{out:?}");
    }

    #[test]
    fn a_stronger_rule_while_held_makes_one_alert() {
        let mut l = live_settling("", false, S);
        let mut out = Vec::new();
        let dns = obs(
            0,
            1,
            "10.1.4.7",
            "mcp.notion.com",
            Transport::Dns,
            Signal::DnsQuery,
        );
        l.observe(&dns, &mut out);
        l.observe(&tls(S / 2, 2), &mut out);
        l.tick(2 * S, &mut out);
        assert_eq!(emitted(&out), [("SMCP-010".to_owned(), 0)]);
        out.clear();
        // Both rules count as emitted: later repeats of either are suppressed.
        l.observe(&tls(3 * S, 3), &mut out);
        assert!(emitted(&out).is_empty());
    }

    #[test]
    fn held_findings_are_flushed_at_shutdown_and_clock_skew_does_not_hold_them() {
        let mut l = live_settling("", false, S);
        let mut out = Vec::new();
        l.observe(&tls(0, 1), &mut out);
        l.settle(0, true, &mut out);
        assert_eq!(emitted(&out), [("SMCP-010".to_owned(), 0)]);
        out.clear();
        // A packet stamped an hour ahead of the wall clock.
        let mut l = live_settling("", false, S);
        l.observe(&tls(3600 * S, 1), &mut out);
        l.settle(0, false, &mut out);
        assert_eq!(emitted(&out).len(), 1);
    }

    /// A POST that joins a legacy-SSE session makes no alert of its own; it
    /// travels with the session's held first emission.
    #[test]
    fn a_joining_request_travels_with_its_session() {
        let mut l = live_settling("", false, S);
        let mut out = Vec::new();
        let mut part = session(0, 2, &["tools/call"], &["search"]);
        part.path = Some("/messages/?session_id=<redacted>".into());
        part.joins_endpoint = part.path.clone();
        l.observe(&part, &mut out);
        l.settle(2 * S, false, &mut out);
        assert!(out.is_empty(), "a request alone is no finding");
        let mut stream = session(3 * S, 1, &["initialize"], &[]);
        stream.transport = Transport::Sse;
        stream.evidence.push(Evidence::new(
            Signal::SseEndpoint,
            "event: endpoint /messages/?session_id=<redacted>",
        ));
        l.observe(&stream, &mut out);
        l.settle(5 * S, false, &mut out);
        let r = records(&out);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].rule.id, "SMCP-002");
        assert_eq!(r[0].mcp.tools_called, ["search"]);
        assert_eq!(r[0].count, 2);
    }
}

//! Findings in a running sensor: emitted the moment the evidence makes them,
//! then suppressed per (client, server, rule) for a window, with the number
//! of suppressed repeats carried into the next emission (a periodic "still
//! active" roll-up). A stronger rule for the same pair (a DNS lookup, then a
//! TLS connection, then a cleartext session) is emitted at once.

use super::aggregate::{Assessment, Finding, Key, Rule, Verdict, assess};
use super::output::FindingRecord;
use super::{Micros, Observation};
use crate::detect::hosts::Detector;
use crate::findings::aggregate::Confidence;
use rustc_hash::FxHashMap;
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
}

#[derive(Debug)]
struct Entry {
    finding: Finding,
    emissions: Vec<Emission>,
}

#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub window: Micros,
    pub max_entries: usize,
    pub min_confidence: Confidence,
    pub report_sanctioned: bool,
}

pub struct LiveFindings {
    detector: Arc<Detector>,
    settings: LiveSettings,
    entries: FxHashMap<Key, Entry>,
    /// Entries dropped to stay within `max_entries`.
    pub evicted: u64,
}

impl LiveFindings {
    pub fn new(detector: Arc<Detector>, settings: LiveSettings) -> Self {
        Self {
            detector,
            settings,
            entries: FxHashMap::default(),
            evicted: 0,
        }
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
        if !self.entries.contains_key(&key) && self.entries.len() >= self.settings.max_entries {
            self.make_room(o.ts);
        }
        let entry = self.entries.entry(key).or_insert_with(|| Entry {
            finding: Finding::new(o),
            emissions: Vec::new(),
        });
        let flows_before = entry.finding.count;
        entry.finding.add(o);
        let new_flow = entry.finding.count > flows_before;
        let a = assess(&entry.finding, &self.detector);
        if a.confidence < self.settings.min_confidence
            || (a.verdict == Verdict::Sanctioned && !self.settings.report_sanctioned)
        {
            return;
        }
        let window = self.settings.window;
        match entry.emissions.iter_mut().find(|e| e.rule == a.rule) {
            None => {
                entry.emissions.push(Emission {
                    rule: a.rule,
                    at: o.ts,
                    suppressed: 0,
                });
                out.push(emit(&entry.finding, a, o.ts, 0));
            }
            Some(e) if new_flow && o.ts.saturating_sub(e.at) >= window => {
                let repeats = e.suppressed + 1;
                e.at = o.ts;
                e.suppressed = 0;
                out.push(emit(&entry.finding, a, o.ts, repeats));
            }
            Some(e) if new_flow => {
                e.suppressed += 1;
                out.push(Outcome::Suppressed { rule: a.rule });
            }
            // More evidence from a flow already reported: folded in silently,
            // it travels with the next emission.
            Some(_) => {}
        }
    }

    /// Roll-ups whose window has passed with repeats pending; forget pairs
    /// idle for two windows.
    pub fn tick(&mut self, now: Micros, out: &mut Vec<Outcome>) {
        let window = self.settings.window;
        let detector = &self.detector;
        self.entries.retain(|_, entry| {
            for e in entry.emissions.iter_mut() {
                if e.suppressed > 0 && now.saturating_sub(e.at) >= window {
                    let a = assess(&entry.finding, detector);
                    let repeats = e.suppressed;
                    e.at = now;
                    e.suppressed = 0;
                    out.push(emit(&entry.finding, a, now, repeats));
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

fn emit(f: &Finding, a: Assessment, ts: Micros, repeats: u64) -> Outcome {
    let mut record = FindingRecord::new(f, &a, ts);
    record.repeats = Some(repeats);
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
        let det = Detector::new(
            SignatureSet::builtin().expect("signatures"),
            Allowlist::parse(allow, "test").expect("allowlist"),
        );
        LiveFindings::new(
            Arc::new(det),
            LiveSettings {
                window: 3600 * S,
                max_entries: 100,
                min_confidence: Confidence::Low,
                report_sanctioned,
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
}

//! `shadowmcp analyze`: capture files in, findings out.

use crate::capture::{CaptureError, FileSource};
use crate::detect::hosts::Detector;
use crate::engine::{Engine, EngineConfig};
use crate::findings::aggregate::{Aggregator, Confidence, Verdict, assess};
use crate::findings::output::FindingRecord;
use crate::stats::Stats;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// Distinct (client, server) pairs kept per run.
pub const MAX_FINDINGS: usize = 100_000;

pub struct AnalyzeOptions {
    pub files: Vec<PathBuf>,
    pub engine: EngineConfig,
    pub report_sanctioned: bool,
    pub min_confidence: Confidence,
    pub progress: bool,
}

pub struct AnalyzeResult {
    pub records: Vec<FindingRecord>,
    pub stats: Stats,
    /// Files that could not be opened at all.
    pub unusable: Vec<CaptureError>,
    /// Files that ended in a read error (what came before still counts).
    pub damaged: Vec<CaptureError>,
    pub shadow: usize,
    pub sanctioned: usize,
    pub by_confidence: [usize; 3],
    pub suppressed_below_confidence: usize,
    pub findings_dropped: u64,
}

pub fn analyze(opts: &AnalyzeOptions, detector: Arc<Detector>) -> AnalyzeResult {
    let mut engine = Engine::new(opts.engine.clone(), detector.clone());
    let mut agg = Aggregator::new(MAX_FINDINGS);
    let mut unusable = Vec::new();
    let mut damaged = Vec::new();
    let total: u64 = opts
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar =
        (opts.progress && std::io::stderr().is_terminal() && total > 64 * 1024 * 1024).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
    for path in &opts.files {
        let mut src = match FileSource::open(path) {
            Ok(s) => s,
            Err(e) => {
                unusable.push(e);
                continue;
            }
        };
        let linktype = src.linktype();
        loop {
            match src.next_frame() {
                Ok(Some(frame)) => {
                    if let Some(b) = &bar {
                        // pcap record header + captured bytes.
                        b.inc(16 + frame.data.len() as u64);
                    }
                    engine.process_frame(frame.ts, linktype, frame.data);
                    for o in engine.drain_observations() {
                        agg.add(&o);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    damaged.push(e);
                    break;
                }
            }
        }
    }
    engine.finish();
    for o in engine.drain_observations() {
        agg.add(&o);
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let findings_dropped = agg.dropped;
    let mut records = Vec::new();
    let (mut shadow, mut sanctioned, mut by_confidence, mut suppressed) = (0, 0, [0usize; 3], 0);
    for f in agg.into_sorted() {
        let a = assess(&f, &detector);
        if a.confidence < opts.min_confidence {
            suppressed += 1;
            continue;
        }
        match a.verdict {
            Verdict::Shadow => shadow += 1,
            Verdict::Sanctioned => {
                sanctioned += 1;
                if !opts.report_sanctioned {
                    continue;
                }
            }
        }
        if let Some(c) = by_confidence.get_mut(a.confidence as usize) {
            *c += 1;
        }
        records.push(FindingRecord::new(&f, &a, f.first_seen));
    }
    AnalyzeResult {
        records,
        stats: engine.stats().clone(),
        unusable,
        damaged,
        shadow,
        sanctioned,
        by_confidence,
        suppressed_below_confidence: suppressed,
        findings_dropped,
    }
}

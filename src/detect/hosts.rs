//! The detector: signatures, allowlist and the MCP classifier built from them,
//! plus the question the engine asks for every name it sees — "is this host
//! worth reporting, and why?".

use super::mcp::McpClassifier;
use crate::config::DetectionConfig;
use crate::signatures::allowlist::Allowlist;
use crate::signatures::{HostMatch, OverlayDirs, SignatureSet};

/// Why signatures or the allowlist could not be loaded: every problem, each
/// naming its file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct LoadErrors(pub Vec<String>);

impl LoadErrors {
    fn of<E: std::fmt::Display>(errors: &[E]) -> Self {
        LoadErrors(errors.iter().map(ToString::to_string).collect())
    }
}

#[derive(Debug)]
pub struct Detector {
    pub signatures: SignatureSet,
    pub allowlist: Allowlist,
    pub classifier: McpClassifier,
}

/// Why a host name is interesting.
#[derive(Debug, Clone, Copy)]
pub struct HostClass<'a> {
    pub known: Option<HostMatch<'a>>,
    pub heuristic: bool,
}

impl HostClass<'_> {
    /// Whether the name alone is worth a finding (context-only platform
    /// matches are not).
    pub fn reportable(&self) -> bool {
        self.heuristic || self.known.is_some_and(|m| !m.server.context_only)
    }
}

impl Detector {
    pub fn new(signatures: SignatureSet, allowlist: Allowlist) -> Self {
        let classifier = McpClassifier::new(&signatures);
        Self {
            signatures,
            allowlist,
            classifier,
        }
    }

    /// The detector a configuration names: its signature directory (or the
    /// built-in set) with its overlays, and allowlist (or none). Used by `analyze`, by `run` at
    /// start and on every reload.
    pub fn load(cfg: &DetectionConfig) -> Result<Self, LoadErrors> {
        let overlays = OverlayDirs::from_flags(cfg.overlays.clone(), !cfg.default_overlays);
        let sigs = SignatureSet::load_with_overlays(cfg.signatures.as_deref(), &overlays)
            .map_err(|e| LoadErrors::of(&e))?;
        let allow = match &cfg.allowlist {
            Some(p) => Allowlist::load(p).map_err(|e| LoadErrors::of(&e))?,
            None => Allowlist::empty(),
        };
        Ok(Detector::new(sigs, allow))
    }

    /// Classify a host name; `None` when nothing about the name is notable.
    pub fn classify_host(&self, name: &str) -> Option<HostClass<'_>> {
        let known = self.signatures.match_host(name);
        let heuristic = self.signatures.heuristic_match(name);
        (known.is_some() || heuristic).then_some(HostClass { known, heuristic })
    }

    /// Classify and keep only names that are reportable on their own.
    pub fn reportable_host(&self, name: &str) -> Option<HostClass<'_>> {
        self.classify_host(name).filter(HostClass::reportable)
    }
}

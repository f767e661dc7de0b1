//! The detector: signatures, allowlist and the MCP classifier built from them,
//! plus the question the engine asks for every name it sees — "is this host
//! worth reporting, and why?".

use super::mcp::McpClassifier;
use crate::signatures::allowlist::Allowlist;
use crate::signatures::{HostMatch, SignatureSet};

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

//! MCP classification of JSON-RPC messages and HTTP heads, for every published
//! protocol revision (legacy handshake 2024-11-05 … 2025-11-25, and 2026-07-28).
//!
//! STUB: the public API below is the contract; the implementation is pending.

use crate::findings::{Evidence, McpInventory};
use crate::proto::http1::Head;
use crate::proto::sse::SseEvent;
use crate::signatures::SignatureSet;

/// Bound on each inventory set (methods, tools) per session.
pub const MAX_INVENTORY_ITEMS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

/// What carried a payload; selects the evidence signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    HttpBody,
    SseData,
    WebSocket,
}

/// Per-flow classification state.
#[derive(Debug, Default)]
pub struct McpSession {
    pub inventory: McpInventory,
    confirmed: bool,
    rejected_as: Option<&'static str>,
    pending: Vec<Evidence>,
    inventory_changed: bool,
}

impl McpSession {
    pub fn new() -> Self {
        Self::default()
    }

    /// MCP is proven for this flow.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// The flow was recognised as another JSON-RPC protocol (`LSP`, `ACP`, ...).
    pub fn rejected_as(&self) -> Option<&'static str> {
        self.rejected_as
    }

    /// Evidence gathered since the last call. Before confirmation nothing is
    /// returned; the call after confirmation returns everything gathered so far.
    pub fn take_new_evidence(&mut self) -> Vec<Evidence> {
        if self.confirmed {
            std::mem::take(&mut self.pending)
        } else {
            Vec::new()
        }
    }

    /// Whether the inventory changed since the last call.
    pub fn take_inventory_changed(&mut self) -> bool {
        std::mem::take(&mut self.inventory_changed)
    }
}

/// Built once per signature set; shared by all flows.
#[derive(Debug)]
pub struct McpClassifier {}

impl McpClassifier {
    pub fn new(_sigs: &SignatureSet) -> Self {
        Self {}
    }

    /// An HTTP request head (method, path, MCP headers, WebSocket subprotocol).
    pub fn inspect_request_head(&self, _head: &Head, _session: &mut McpSession) {}

    /// An HTTP response head (Mcp-Session-Id, WWW-Authenticate resource_metadata, ...).
    pub fn inspect_response_head(&self, _head: &Head, _session: &mut McpSession) {}

    /// One payload that may carry JSON-RPC: an HTTP body, an SSE `data` field, a
    /// WebSocket text message.
    pub fn inspect_payload(
        &self,
        _payload: &[u8],
        _dir: Direction,
        _carrier: Carrier,
        _session: &mut McpSession,
    ) {
    }

    /// An SSE event (the legacy transport's `event: endpoint`; JSON-RPC in `data`).
    pub fn inspect_sse_event(&self, _event: &SseEvent, _session: &mut McpSession) {}
}

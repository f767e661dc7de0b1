//! Server-Sent Events (`text/event-stream`, WHATWG HTML §9.2): split a byte
//! stream into events (`event:`, `data:`, `id:` fields).
//!
//! STUB: the public API below is the contract; the implementation is pending.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
    pub id: Option<String>,
}

#[derive(Debug)]
pub struct SseParser {
    max_event_bytes: usize,
}

impl SseParser {
    /// `max_event_bytes` bounds one event; a longer one is dropped (counted by the caller via `dropped()`).
    pub fn new(max_event_bytes: usize) -> Self {
        Self { max_event_bytes }
    }

    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Feed decoded body bytes; completed events are appended to `out`.
    pub fn feed(&mut self, _data: &[u8], _out: &mut Vec<SseEvent>) {}

    /// Events dropped because they exceeded the bound.
    pub fn dropped(&self) -> u64 {
        0
    }
}

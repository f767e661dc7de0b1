//! WebSocket (RFC 6455) frames after an HTTP/1.1 upgrade: masking,
//! fragmentation, control frames, and permessage-deflate (RFC 7692).
//!
//! STUB: the public API below is the contract; the implementation is pending.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A complete (reassembled, unmasked, inflated) text message; bytes as received.
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    BadFrame,
    MessageTooLarge,
    Inflate,
}

/// Negotiated permessage-deflate parameters (from the 101 response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeflateParams {
    /// For the direction being parsed: each message is compressed independently.
    pub no_context_takeover: bool,
    pub max_window_bits: u8,
}

/// Parse `Sec-WebSocket-Extensions` of the 101 response; `from_client` selects
/// which direction's `*_no_context_takeover` / `*_max_window_bits` apply.
pub fn parse_deflate_extension(_header: &str, _from_client: bool) -> Option<DeflateParams> {
    None
}

#[derive(Debug)]
pub struct WsStream {
    from_client: bool,
    max_message_bytes: usize,
}

impl WsStream {
    pub fn new(
        from_client: bool,
        _deflate: Option<DeflateParams>,
        max_message_bytes: usize,
    ) -> Self {
        Self {
            from_client,
            max_message_bytes,
        }
    }

    pub fn from_client(&self) -> bool {
        self.from_client
    }

    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Feed contiguous stream bytes; returns bytes consumed (the caller keeps the rest).
    pub fn feed(&mut self, _data: &[u8], _out: &mut Vec<WsMessage>) -> Result<usize, WsError> {
        Ok(0)
    }
}

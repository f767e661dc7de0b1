//! HTTP/1.0 and HTTP/1.1 message framing (RFC 9112), one parser per direction:
//! keep-alive and pipelining, Content-Length and chunked bodies, gzip/deflate
//! Content-Encoding within a size bound, header count and size limits, and the
//! switch to another protocol after `Upgrade`/`101` or `CONNECT`.
//!
//! STUB: the public API below is the contract; the implementation is pending.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Start line plus all header lines.
    pub max_head_bytes: usize,
    pub max_headers: usize,
    /// Bytes of (de-chunked) body kept per message; the rest is skipped.
    pub max_body_bytes: usize,
    /// Bytes after Content-Encoding decompression (a bound against zip bombs).
    pub max_decoded_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            max_headers: 128,
            max_body_bytes: 256 * 1024,
            max_decoded_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    /// Request method (empty for responses).
    pub method: String,
    /// Request target as sent (empty for responses).
    pub target: String,
    /// Response status (0 for requests).
    pub status: u16,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Header fields in wire order, names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// First value of a header, name compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpEvent {
    Head(Head),
    /// The whole body of a message with a known length (or chunked), de-chunked
    /// and decoded; `truncated` when it exceeded a limit.
    Body {
        data: Vec<u8>,
        truncated: bool,
    },
    /// Part of a streamed body (`text/event-stream`, or read-until-close),
    /// de-chunked and decoded, delivered as it arrives.
    StreamData(Vec<u8>),
    MessageEnd,
    /// The connection left HTTP (Upgrade/101, CONNECT): stop feeding this parser.
    Upgraded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    HeadTooLarge,
    TooManyHeaders,
    BadStartLine,
    BadHeader,
    BadContentLength,
    BadChunk,
}

/// One direction of an HTTP/1 connection.
#[derive(Debug)]
pub struct HttpStream {
    side: Side,
    limits: HttpLimits,
}

impl HttpStream {
    pub fn new(side: Side, limits: HttpLimits) -> Self {
        Self { side, limits }
    }

    pub fn side(&self) -> Side {
        self.side
    }

    pub fn limits(&self) -> HttpLimits {
        self.limits
    }

    /// Feed contiguous stream bytes. Returns how many bytes were consumed; the
    /// caller keeps the rest and calls again with more data appended.
    pub fn feed(&mut self, _data: &[u8], _out: &mut Vec<HttpEvent>) -> Result<usize, HttpError> {
        Ok(0)
    }

    /// Response parsers only: the method of the next request in pipeline order
    /// (HEAD responses have no body; a 2xx to CONNECT is a tunnel).
    pub fn expect_response_to(&mut self, _method: &str) {}

    /// A hole in the TCP stream: drop partial state and resynchronise on the
    /// next message start.
    pub fn on_gap(&mut self) {}

    /// End of stream: finish a read-until-close body.
    pub fn on_close(&mut self, _out: &mut Vec<HttpEvent>) {}
}

/// Cheap probe on the first client bytes: an HTTP method token followed by a space.
pub fn looks_like_request(stream: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"HEAD ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"TRACE ",
    ];
    METHODS.iter().any(|m| {
        stream.len() >= m.len() && stream.starts_with(m)
            || m.starts_with(stream) && !stream.is_empty()
    })
}

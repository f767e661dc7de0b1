//! Counters of one engine: what was read, decoded, parsed and dropped.
//!
//! Every counter is declared once, in the table below: the [`Stats`] field,
//! its merge, its Prometheus series (family and label value; series of one
//! family and label are summed) and its line and label in the analyze
//! summary are all generated from it. A new counter is one line here (and
//! its family in docs/metrics.md, which a test checks).

use crate::decode::DecodeError;
use crate::metrics::names::*;
use serde::Serialize;

/// How a counter's value behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterKind {
    /// Only grows.
    Total,
    /// A current level (it falls as well as rises).
    Level,
}

/// Where a counter appears.
#[derive(Debug, Clone, Copy)]
pub struct CounterDef {
    /// The [`Stats`] field.
    pub field: &'static str,
    pub kind: CounterKind,
    /// Prometheus family and the value of its one label (`None`: the
    /// family has no label); `None`: not exported.
    pub metric: Option<(&'static str, Option<&'static str>)>,
    /// Summary line (see [`SUMMARY_LINES`]) and label; `None`: not in the
    /// summary (levels are 0 at the end of a run).
    pub summary: Option<(usize, &'static str)>,
    /// In the summary only when not 0 (a bound that was reached).
    pub only_if_set: bool,
}

/// The lines of the analyze summary, by index of [`CounterDef::summary`].
pub const SUMMARY_LINES: [&str; 5] = ["packets", "flows", "names", "content", "http2"];

macro_rules! counters {
    ($(
        $(#[$doc:meta])*
        $field:ident: $kind:ident, metric $metric:expr, summary $summary:expr $(, $only:ident)?;
    )*) => {
        #[derive(Debug, Default, Clone, Serialize)]
        pub struct Stats {
            $( $(#[$doc])* pub $field: u64, )*
            /// Frames that did not decode, indexed like `DecodeError::ALL`.
            pub decode_errors: [u64; DecodeError::ALL.len()],
        }

        /// Every counter of [`Stats`] but `decode_errors`, in table order.
        pub const COUNTERS: &[CounterDef] = &[$(
            CounterDef {
                field: stringify!($field),
                kind: CounterKind::$kind,
                metric: $metric,
                summary: $summary,
                only_if_set: counters!(@only $($only)?),
            },
        )*];

        impl Stats {
            /// The values of [`COUNTERS`], in table order.
            pub fn values(&self) -> [u64; COUNTERS.len()] {
                [$( self.$field, )*]
            }

            /// Counters with these values (in table order), no decode errors.
            pub fn from_values(v: [u64; COUNTERS.len()]) -> Stats {
                let [$( $field, )*] = v;
                Stats { $( $field, )* decode_errors: Default::default() }
            }

            /// Add another engine's counters (one engine per worker).
            pub fn merge(&mut self, o: &Stats) {
                $( self.$field = self.$field.saturating_add(o.$field); )*
                for (a, b) in self.decode_errors.iter_mut().zip(o.decode_errors.iter()) {
                    *a = a.saturating_add(*b);
                }
            }
        }
    };
    (@only only_if_set) => { true };
    (@only) => { false };
}

counters! {
    packets: Total, metric Some((PROCESSED_PACKETS, None)), summary Some((0, "packets"));
    bytes: Total, metric Some((PROCESSED_BYTES, None)), summary Some((0, "bytes"));
    ipv4: Total, metric Some((IP_PACKETS, Some("4"))), summary Some((0, "ipv4"));
    ipv6: Total, metric Some((IP_PACKETS, Some("6"))), summary Some((0, "ipv6"));
    tcp: Total, metric Some((TRANSPORT_PACKETS, Some("tcp"))), summary Some((0, "tcp"));
    udp: Total, metric Some((TRANSPORT_PACKETS, Some("udp"))), summary Some((0, "udp"));
    other_ip: Total, metric Some((TRANSPORT_PACKETS, Some("other"))), summary Some((0, "other"));
    /// IPv4 and IPv6 fragments read (see `defrag`).
    ip_fragments: Total, metric Some((IP_FRAGMENTS, None)), summary Some((0, "ip fragments")), only_if_set;
    /// Fragments that brought no byte not held already.
    ip_fragments_duplicate: Total, metric Some((IP_FRAGMENT_ANOMALIES, Some("duplicate"))), summary Some((0, "duplicate fragments")), only_if_set;
    /// Fragments that overlapped held bytes with other values (the first
    /// values are kept).
    ip_fragments_overlapping: Total, metric Some((IP_FRAGMENT_ANOMALIES, Some("overlap"))), summary Some((0, "overlapping fragments")), only_if_set;
    /// Fragments with impossible lengths or offsets (their datagram dropped).
    ip_fragments_invalid: Total, metric Some((IP_FRAGMENT_ANOMALIES, Some("invalid"))), summary Some((0, "invalid fragments")), only_if_set;
    /// Datagrams made whole from their fragments and inspected.
    ip_datagrams_reassembled: Total, metric Some((IP_DATAGRAMS, Some("reassembled"))), summary Some((0, "reassembled datagrams")), only_if_set;
    /// Datagrams dropped after waiting 30 s for a fragment.
    ip_datagrams_timed_out: Total, metric Some((IP_DATAGRAMS, Some("timeout"))), summary Some((0, "datagrams timed out")), only_if_set;
    /// Datagrams dropped to keep the reassembly table in its bounds.
    ip_datagrams_evicted: Total, metric Some((IP_DATAGRAMS, Some("evicted"))), summary Some((0, "datagrams evicted")), only_if_set;
    flows_created: Total, metric Some((FLOWS_CREATED, None)), summary Some((1, "flows"));
    flows_evicted_idle: Total, metric Some((FLOWS_EVICTED, Some("idle"))), summary Some((1, "evicted idle"));
    flows_evicted_capacity: Total, metric Some((FLOWS_EVICTED, Some("capacity"))), summary Some((1, "evicted at cap"));
    tcp_gaps: Total, metric Some((TCP_GAPS, None)), summary Some((1, "tcp gaps"));
    tcp_stream_overflow: Total, metric Some((TCP_STREAM_OVERFLOWS, None)), summary Some((1, "tcp overflows")), only_if_set;
    /// New TCP streams not inspected because `max_tcp_streams` was reached.
    tcp_streams_skipped: Total, metric Some((TCP_STREAMS_SKIPPED, None)), summary Some((1, "tcp streams not inspected at the stream cap")), only_if_set;
    /// Streams no longer inspected because the buffer budget was exceeded
    /// while they held more than their share of it.
    tcp_streams_shed: Total, metric Some((TCP_STREAMS_SHED, None)), summary Some((1, "tcp streams not inspected over the buffer budget")), only_if_set;
    /// TCP streams being reassembled and parsed now.
    tcp_streams_active: Level, metric None, summary None;
    /// Heap bytes the inspected TCP streams hold in buffers: the part of
    /// memory that depends on what the traffic sends.
    tcp_buffered_bytes: Level, metric Some((TCP_BUFFERED_BYTES, None)), summary None;
    /// Open TLS connections whose records wait for session keys, retried
    /// when the key table changes.
    tls_key_waits_open: Level, metric Some((TLS_DECRYPT_WAITING, Some("open"))), summary None;
    /// Ended TLS connections kept until their keys come or their deadline.
    tls_key_waits_parked: Level, metric Some((TLS_DECRYPT_WAITING, Some("parked"))), summary None;
    /// TLS connections that found the waiting or parked table full.
    tls_key_waits_full: Total, metric Some((TLS_DECRYPT_WAITS_FULL, None)), summary Some((2, "tls connections over the key-wait tables")), only_if_set;
    dns_messages: Total, metric Some((PARSER_MESSAGES, Some("dns"))), summary Some((2, "dns"));
    dns_errors: Total, metric Some((PARSER_ERRORS, Some("dns"))), summary Some((2, "dns errors"));
    dns_cache_evictions: Total, metric Some((DNS_CACHE_EVICTIONS, None)), summary Some((2, "dns cache evictions")), only_if_set;
    tls_client_hellos: Total, metric Some((PARSER_MESSAGES, Some("tls"))), summary Some((2, "tls hellos"));
    tls_errors: Total, metric Some((PARSER_ERRORS, Some("tls"))), summary Some((2, "tls errors"));
    tls_ech: Total, metric Some((TLS_ECH, None)), summary Some((2, "tls ech"));
    quic_client_hellos: Total, metric Some((PARSER_MESSAGES, Some("quic"))), summary Some((2, "quic hellos"));
    quic_errors: Total, metric Some((PARSER_ERRORS, Some("quic"))), summary Some((2, "quic errors"));
    http_requests: Total, metric Some((PARSER_MESSAGES, Some("http"))), summary Some((3, "http requests"));
    http_responses: Total, metric Some((PARSER_MESSAGES, Some("http"))), summary Some((3, "http responses"));
    http_errors: Total, metric Some((PARSER_ERRORS, Some("http"))), summary Some((3, "http errors"));
    sse_events: Total, metric Some((PARSER_MESSAGES, Some("sse"))), summary Some((3, "sse events"));
    /// Server-sent events dropped for exceeding the event size bound.
    sse_errors: Total, metric Some((PARSER_ERRORS, Some("sse"))), summary Some((3, "sse errors"));
    websocket_messages: Total, metric Some((PARSER_MESSAGES, Some("websocket"))), summary Some((3, "websocket messages"));
    websocket_errors: Total, metric Some((PARSER_ERRORS, Some("websocket"))), summary Some((3, "websocket errors"));
    mcp_sessions_confirmed: Total, metric Some((MCP_SESSIONS, None)), summary Some((3, "mcp sessions"));
    /// Connections parsed as HTTP/2 (prior knowledge or h2c upgrade).
    http2_connections: Total, metric Some((HTTP2_CONNECTIONS, None)), summary Some((4, "http2 connections"));
    /// HTTP/2 streams opened by clients or promised by servers.
    http2_streams: Total, metric Some((HTTP2_STREAMS, None)), summary Some((4, "http2 streams"));
    /// HTTP/2 heads (requests, responses, pushed requests).
    http2_heads: Total, metric Some((PARSER_MESSAGES, Some("http2"))), summary Some((4, "http2 heads"));
    /// HTTP/2 connections whose parsing stopped on an error.
    http2_errors: Total, metric Some((PARSER_ERRORS, Some("http2"))), summary Some((4, "http2 errors"));
    http2_frames_data: Total, metric Some((HTTP2_FRAMES, Some("data"))), summary None;
    http2_frames_headers: Total, metric Some((HTTP2_FRAMES, Some("headers"))), summary None;
    http2_frames_priority: Total, metric Some((HTTP2_FRAMES, Some("priority"))), summary None;
    http2_frames_rst_stream: Total, metric Some((HTTP2_FRAMES, Some("rst_stream"))), summary None;
    http2_frames_settings: Total, metric Some((HTTP2_FRAMES, Some("settings"))), summary None;
    http2_frames_push_promise: Total, metric Some((HTTP2_FRAMES, Some("push_promise"))), summary None;
    http2_frames_ping: Total, metric Some((HTTP2_FRAMES, Some("ping"))), summary None;
    http2_frames_goaway: Total, metric Some((HTTP2_FRAMES, Some("goaway"))), summary None;
    http2_frames_window_update: Total, metric Some((HTTP2_FRAMES, Some("window_update"))), summary None;
    http2_frames_continuation: Total, metric Some((HTTP2_FRAMES, Some("continuation"))), summary None;
    http2_frames_unknown: Total, metric Some((HTTP2_FRAMES, Some("unknown"))), summary None;
    /// New streams not followed: the connection had its maximum open.
    http2_streams_untracked: Total, metric Some((HTTP2_LIMITS, Some("concurrent_streams"))), summary Some((4, "streams over the concurrent limit")), only_if_set;
    /// Frames above the frame size bound (the connection stops).
    http2_oversized_frames: Total, metric Some((HTTP2_LIMITS, Some("frame_size"))), summary Some((4, "oversized frames")), only_if_set;
    /// Header blocks over their byte or CONTINUATION bound (CONTINUATION
    /// flood; the connection stops).
    http2_header_block_overflows: Total, metric Some((HTTP2_LIMITS, Some("header_block"))), summary Some((4, "header blocks over the bound")), only_if_set;
    /// HPACK table size updates above the table bound.
    http2_hpack_table_overflows: Total, metric Some((HTTP2_LIMITS, Some("hpack_table"))), summary Some((4, "hpack tables over the bound")), only_if_set;
    /// Connections that opened more streams than the total bound.
    http2_stream_limit_trips: Total, metric Some((HTTP2_LIMITS, Some("total_streams"))), summary Some((4, "connections over the stream bound")), only_if_set;
    /// Connections whose client reset too many streams before their
    /// response (rapid reset).
    http2_rapid_reset_trips: Total, metric Some((HTTP2_LIMITS, Some("rapid_reset"))), summary Some((4, "rapid resets")), only_if_set;
}

impl Stats {
    pub fn decode_error(&mut self, e: DecodeError) {
        let i = DecodeError::ALL.iter().position(|x| *x == e);
        if let Some(c) = i.and_then(|i| self.decode_errors.get_mut(i)) {
            *c += 1;
        }
    }

    pub fn decode_errors_total(&self) -> u64 {
        self.decode_errors.iter().sum()
    }

    /// The summary's counter lines: each line's counters as `label value`
    /// (decode errors on a line of their own, by kind).
    pub fn summary_lines(&self) -> Vec<String> {
        let values = self.values();
        let mut lines: Vec<Vec<String>> = vec![Vec::new(); SUMMARY_LINES.len()];
        for (def, v) in COUNTERS.iter().zip(values) {
            let Some((line, label)) = def.summary else {
                continue;
            };
            if def.only_if_set && v == 0 {
                continue;
            }
            if let Some(l) = lines.get_mut(line) {
                l.push(format!("{label} {v}"));
            }
        }
        let kinds: Vec<String> = DecodeError::ALL
            .iter()
            .zip(self.decode_errors.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{} {n}", k.as_str()))
            .collect();
        let mut decode = format!("decode errors {}", self.decode_errors_total());
        if !kinds.is_empty() {
            decode.push_str(&format!(" ({})", kinds.join(", ")));
        }
        let mut out: Vec<String> = lines.into_iter().map(|l| l.join("  ")).collect();
        out.insert(1, decode);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Merging adds every counter and every decode error kind, once.
    #[test]
    fn merge_adds_every_counter() {
        let one = Stats::from_values(std::array::from_fn(|i| i as u64 + 1));
        let mut one = one;
        one.decode_errors = std::array::from_fn(|i| 100 + i as u64);
        let mut a = Stats::default();
        a.merge(&one);
        a.merge(&one);
        for (i, (x, y)) in a.values().iter().zip(one.values()).enumerate() {
            assert_eq!(*x, 2 * y, "{}", COUNTERS[i].field);
        }
        for (x, y) in a.decode_errors.iter().zip(one.decode_errors) {
            assert_eq!(*x, 2 * y);
        }
        assert_eq!(Stats::from_values(a.values()).values(), a.values());
    }

    #[test]
    fn summary_shows_bounds_only_when_reached() {
        let mut s = Stats {
            packets: 5,
            ..Stats::default()
        };
        let lines = s.summary_lines();
        assert!(lines[0].starts_with("packets 5  bytes 0"), "{lines:?}");
        assert_eq!(lines[1], "decode errors 0");
        assert!(!lines.join("\n").contains("stream cap"));
        s.tcp_streams_skipped = 2;
        s.decode_error(DecodeError::ALL[0]);
        let text = s.summary_lines().join("\n");
        assert!(
            text.contains("tcp streams not inspected at the stream cap 2"),
            "{text}"
        );
        assert!(text.contains("decode errors 1 ("), "{text}");
    }
}

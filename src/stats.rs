//! Counters of one engine: what was read, decoded, parsed and dropped. Printed
//! in the run summary; the live sensor exports them as Prometheus metrics.

use crate::decode::DecodeError;
use serde::Serialize;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub other_ip: u64,
    /// Indexed like `DecodeError::ALL`.
    pub decode_errors: [u64; 5],
    pub flows_created: u64,
    pub flows_evicted_idle: u64,
    pub flows_evicted_capacity: u64,
    pub tcp_gaps: u64,
    /// TCP streams being reassembled and parsed now (a gauge).
    pub tcp_streams_active: u64,
    /// New TCP streams not inspected because `max_tcp_streams` was reached.
    pub tcp_streams_skipped: u64,
    /// Heap bytes the inspected TCP streams hold in buffers (a gauge): the
    /// part of memory that depends on what the traffic sends.
    pub tcp_buffered_bytes: u64,
    /// Streams no longer inspected because the buffer budget was exceeded
    /// while they held more than their share of it.
    pub tcp_streams_shed: u64,
    pub tcp_stream_overflow: u64,
    pub dns_messages: u64,
    pub dns_errors: u64,
    pub tls_client_hellos: u64,
    pub tls_errors: u64,
    pub tls_ech: u64,
    pub quic_client_hellos: u64,
    pub quic_errors: u64,
    pub http_requests: u64,
    pub http_responses: u64,
    pub http_errors: u64,
    pub sse_events: u64,
    pub websocket_messages: u64,
    pub websocket_errors: u64,
    pub mcp_sessions_confirmed: u64,
    pub dns_cache_evictions: u64,
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

    /// Add another engine's counters (one engine per worker). The
    /// destructuring names every field, so a new counter cannot be left out.
    pub fn merge(&mut self, o: &Stats) {
        macro_rules! add_all {
            ($($f:ident),*) => {
                let Stats { $($f,)* decode_errors } = o;
                $( self.$f += $f; )*
                for (a, b) in self.decode_errors.iter_mut().zip(decode_errors.iter()) {
                    *a += b;
                }
            };
        }
        add_all!(
            packets,
            bytes,
            ipv4,
            ipv6,
            tcp,
            udp,
            other_ip,
            flows_created,
            flows_evicted_idle,
            flows_evicted_capacity,
            tcp_gaps,
            tcp_streams_active,
            tcp_streams_skipped,
            tcp_buffered_bytes,
            tcp_streams_shed,
            tcp_stream_overflow,
            dns_messages,
            dns_errors,
            tls_client_hellos,
            tls_errors,
            tls_ech,
            quic_client_hellos,
            quic_errors,
            http_requests,
            http_responses,
            http_errors,
            sse_events,
            websocket_messages,
            websocket_errors,
            mcp_sessions_confirmed,
            dns_cache_evictions
        );
    }
}

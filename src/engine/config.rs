//! Bounds and timeouts of one engine.

use crate::config::Config;
use crate::findings::Micros;
use crate::proto::http1::HttpLimits;

/// Bounds and timeouts of one engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub max_flows: usize,
    pub flow_idle_timeout: Micros,
    /// How long a TCP flow is kept after FIN both ways or RST (for its late
    /// packets), instead of the idle timeout.
    pub flow_closed_timeout: Micros,
    pub dns_cache_size: usize,
    pub http: HttpLimits,
    pub sse_max_event_bytes: usize,
    pub websocket_max_message_bytes: usize,
    /// Seed of the Community ID hash.
    pub community_id_seed: u16,
    /// TCP streams reassembled and parsed at once by this engine (a memory
    /// cap: each costs about 1 KiB). Beyond it new streams are counted and
    /// not inspected. With N workers each engine gets 1/N of the sensor's
    /// cap (`limits.max_tcp_streams`), so the bound does not grow with them.
    pub max_tcp_streams: usize,
    /// Heap bytes all inspected streams may hold in buffers (out-of-order
    /// segments, partial messages, bodies kept for classification): the
    /// budget that bounds what the traffic can make the engine allocate.
    /// Over it, a stream that holds more than its share
    /// (`max_buffered_bytes / max_tcp_streams`) when it grows is no longer
    /// inspected (`tcp_streams_shed`). Split among workers like the stream cap.
    pub max_buffered_bytes: usize,
    /// First flow id of this engine: workers of one sensor get disjoint
    /// ranges so flow ids stay unique across them.
    pub flow_id_base: u64,
    /// This engine's worker index and the number of workers: an IP
    /// datagram reassembled from fragments (which every worker is shown)
    /// is processed by the worker its flow is sharded to.
    pub worker: usize,
    pub workers: usize,
    /// TLS connections waiting for session keys that this engine retries
    /// when the key table changes, and ended ones it keeps for their keys
    /// (see `keywait`). Split among workers.
    pub max_key_waits_open: usize,
    pub max_key_waits_parked: usize,
}

impl EngineConfig {
    /// The configuration of engine `id` of `n` for a whole sensor (or
    /// analyzer) configured as `self`: disjoint flow ids, and an equal share
    /// of the memory bounds, so they do not grow with the workers.
    pub fn for_worker(&self, id: usize, n: usize) -> EngineConfig {
        let n = n.max(1);
        EngineConfig {
            flow_id_base: (id as u64) << 48,
            worker: id,
            workers: n,
            max_key_waits_open: (self.max_key_waits_open / n).max(1),
            max_key_waits_parked: (self.max_key_waits_parked / n).max(1),
            max_flows: (self.max_flows / n).max(1),
            max_tcp_streams: (self.max_tcp_streams / n).max(1),
            max_buffered_bytes: (self.max_buffered_bytes / n).max(1),
            ..self.clone()
        }
    }
}

/// The defaults are the configuration's ([`Config`] holds every default).
impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig::from(&Config::default())
    }
}

/// The engine bounds of a whole sensor (or analysis) configured as `cfg`;
/// [`EngineConfig::for_worker`] gives each worker its share.
impl From<&Config> for EngineConfig {
    fn from(cfg: &Config) -> Self {
        let l = &cfg.limits;
        let micros = |secs: u64| i64::try_from(secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
        EngineConfig {
            max_flows: l.max_flows,
            flow_idle_timeout: micros(l.flow_timeout_secs),
            flow_closed_timeout: micros(l.closed_flow_timeout_secs),
            dns_cache_size: l.dns_cache_entries.max(1),
            http: HttpLimits::default(),
            sse_max_event_bytes: 256 * 1024,
            websocket_max_message_bytes: 256 * 1024,
            community_id_seed: 0,
            max_tcp_streams: l.max_tcp_streams,
            max_buffered_bytes: l.tcp_buffer_mib.saturating_mul(1 << 20),
            flow_id_base: 0,
            worker: 0,
            workers: 1,
            max_key_waits_open: cfg.decryption.max_waiting_connections,
            max_key_waits_parked: cfg.decryption.max_parked_connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_split_the_sensor_wide_bounds() {
        let mut cfg = Config::default();
        cfg.limits.max_flows = 1_000;
        cfg.limits.max_tcp_streams = 400;
        cfg.limits.tcp_buffer_mib = 8;
        let e = EngineConfig::from(&cfg).for_worker(3, 4);
        assert_eq!(e.flow_id_base, 3 << 48);
        assert_eq!((e.max_flows, e.max_tcp_streams), (250, 100));
        assert_eq!(e.max_buffered_bytes, 2 << 20);
    }

    #[test]
    fn defaults_come_from_the_configuration() {
        let e = EngineConfig::default();
        let l = Config::default().limits;
        assert_eq!(e.max_flows, l.max_flows);
        assert_eq!(e.flow_idle_timeout, 300 * 1_000_000);
        assert_eq!(e.max_buffered_bytes, l.tcp_buffer_mib << 20);
    }
}

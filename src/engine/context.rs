//! What every flow and application handler is given: the packet's flow,
//! oriented client → server, and the parts of the engine it reads and
//! writes (detector, shared DNS name cache, counters, observations).

use super::EngineConfig;
use super::keywait::Parked;
use crate::detect::discovery::DiscoveredHosts;
use crate::detect::dns_cache::DnsCache;
use crate::detect::host_misses::HostMisses;
use crate::detect::hosts::Detector;
use crate::findings::{Micros, Observation};
use crate::proto::http1::HttpEvent;
use crate::stats::Stats;
use crate::tls_decrypt::DecryptContext;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Addresses of the packet's flow, oriented.
#[derive(Debug, Clone, Copy)]
pub(super) struct FlowMeta {
    pub(super) id: u64,
    pub(super) client: IpAddr,
    pub(super) client_port: u16,
    pub(super) server: IpAddr,
    pub(super) server_port: u16,
    pub(super) proto: u8,
    pub(super) ts: Micros,
}

impl FlowMeta {
    /// The metadata of flow `id` for a packet from `src` to `dst`.
    #[inline]
    pub(super) fn oriented(
        id: u64,
        from_client: bool,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        proto: u8,
        ts: Micros,
    ) -> Self {
        let ((client, client_port), (server, server_port)) =
            if from_client { (src, dst) } else { (dst, src) };
        FlowMeta {
            id,
            client,
            client_port,
            server,
            server_port,
            proto,
            ts,
        }
    }
}

/// Everything the flow handlers need besides the flow itself.
pub(super) struct Ctx<'a> {
    pub(super) detector: &'a Detector,
    pub(super) dns_cache: &'a Mutex<DnsCache>,
    pub(super) stats: &'a mut Stats,
    pub(super) out: &'a mut Vec<Observation>,
    pub(super) cfg: &'a EngineConfig,
    /// Scratch list for HTTP parser events, reused by every connection.
    pub(super) events: &'a mut Vec<HttpEvent>,
    pub(super) host_misses: &'a mut HostMisses,
    /// Hosts named by MCP discovery answers this engine saw.
    pub(super) discovered: &'a Mutex<DiscoveredHosts>,
    /// Session keys for TLS, when a key log was given.
    pub(super) decrypt: Option<&'a Arc<DecryptContext>>,
    /// Set by a TLS connection whose records start waiting for keys: the
    /// caller lists the flow for retries (see `keywait`).
    pub(super) key_wait: bool,
    /// Ended connections waiting for their keys.
    pub(super) parked: &'a mut Vec<Parked>,
}

/// A poisoned lock only means another worker panicked mid-update; the cache
/// is still usable.
pub(super) fn lock(m: &Mutex<DnsCache>) -> std::sync::MutexGuard<'_, DnsCache> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

//! TLS over TCP: the client's first records until the ClientHello is
//! complete; its SNI, ALPN and JA4 (or the DNS answer that named the server)
//! judged against the known servers. The ClientHello of a QUIC Initial ends
//! here too.

use super::super::buffer::Next;
use super::super::context::{Ctx, FlowMeta, lock};
use super::super::observe::{name_evidence, push_observation};
use crate::findings::{Evidence, Signal, TlsInfo, Transport};
use crate::proto::ja4::{Ja4Transport, ja4};
use crate::proto::tls::{self, ClientHello, HelloProgress};

/// Client bytes of a TLS connection, up to a complete ClientHello.
pub(super) fn data(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    dir: usize,
    data: &[u8],
    pending: &mut [Vec<u8>; 2],
) -> Next {
    if dir != 0 {
        return Next::Stay;
    }
    let Some(buf) = pending.get_mut(0) else {
        return Next::Stay;
    };
    let progress = if buf.is_empty() {
        tls::parse_client_hello_records(data)
    } else {
        buf.extend_from_slice(data);
        tls::parse_client_hello_records(buf)
    };
    match progress {
        HelloProgress::NeedMore => {
            if buf.is_empty() {
                buf.extend_from_slice(data);
            }
            if buf.len() > tls::MAX_HELLO_BYTES {
                ctx.stats.tls_errors += 1;
                return Next::Done;
            }
            return Next::Stay;
        }
        HelloProgress::Complete(hello) => {
            ctx.stats.tls_client_hellos += 1;
            on_client_hello(ctx, meta, &hello, Transport::Tls);
        }
        HelloProgress::NotTls | HelloProgress::Invalid(_) => ctx.stats.tls_errors += 1,
    }
    Next::Done
}

/// `, ALPN h2,http/1.1`: at most 4 values of at most 24 characters, so a
/// hostile hello cannot bloat the evidence.
fn alpn_summary(alpn: &[String]) -> String {
    if alpn.is_empty() {
        return String::new();
    }
    let mut shown: Vec<String> = alpn
        .iter()
        .take(4)
        .map(|a| a.chars().take(24).collect())
        .collect();
    if alpn.len() > 4 {
        shown.push(format!("+{} more", alpn.len() - 4));
    }
    format!(", ALPN {}", shown.join(","))
}

pub(super) fn on_client_hello(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    hello: &ClientHello,
    transport: Transport,
) {
    let ja4 = ja4(
        hello,
        if transport == Transport::Quic {
            Ja4Transport::Quic
        } else {
            Ja4Transport::Tcp
        },
    );
    let sni_signal = if transport == Transport::Quic {
        Signal::QuicSni
    } else {
        Signal::TlsSni
    };
    let ech_front = hello
        .sni
        .as_deref()
        .filter(|s| ctx.detector.signatures.is_ech_public_name(s));
    if hello.ech.is_some() {
        ctx.stats.tls_ech += 1;
    }
    let mut evidence = Vec::new();
    let alpn = alpn_summary(&hello.alpn);
    let name = match (&hello.sni, ech_front) {
        (Some(sni), None) => {
            evidence.push(Evidence::new(
                sni_signal,
                format!("{sni} (JA4 {ja4}{alpn})"),
            ));
            if hello.ech.is_some() {
                evidence.push(Evidence::new(
                    Signal::Ech,
                    "ECH offered with a plain SNI (GREASE or unknown config)",
                ));
            }
            sni.clone()
        }
        _ => {
            // No usable SNI: an IP-literal connection or an ECH front. The DNS
            // answer that led here names the server.
            let Some(name) = lock(ctx.dns_cache)
                .lookup(meta.server, meta.ts)
                .map(str::to_owned)
            else {
                return;
            };
            evidence.push(Evidence::new(
                Signal::DnsAnswerIp,
                format!("{} was resolved from {name}", meta.server),
            ));
            match ech_front {
                Some(front) => evidence.push(Evidence::new(
                    Signal::Ech,
                    format!("server name hidden by ECH (front {front}); JA4 {ja4}"),
                )),
                None => evidence.push(Evidence::new(
                    sni_signal,
                    format!("no SNI (JA4 {ja4}{alpn})"),
                )),
            }
            name
        }
    };
    let class = ctx.detector.reportable_host(&name);
    let discovered = ctx
        .discovered
        .lock()
        .ok()
        .and_then(|t| t.get(&name).map(str::to_owned));
    if class.is_none() && discovered.is_none() {
        return;
    }
    if let Some(origin) = discovered {
        evidence.push(Evidence::new(
            Signal::DiscoveredHost,
            format!("{name} was named by {origin}"),
        ));
    }
    if let Some(class) = class {
        name_evidence(&class, &name, &mut evidence);
    }
    if let Some(o) = push_observation(ctx, meta, Some(name), None, transport, evidence, None) {
        o.tls = Some(TlsInfo::from_client_hello(hello, ja4));
    }
}

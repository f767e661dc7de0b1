//! QUIC: the client's Initial packets, decrypted until the ClientHello
//! they carry is complete, which is then judged as a TLS one.

use super::super::buffer::Next;
use super::super::context::{Ctx, FlowMeta};
use super::tls::on_client_hello;
use crate::findings::Transport;
use crate::proto::{quic, tls};

/// One datagram from the client of a flow that began with a QUIC Initial.
pub(in crate::engine) fn client_datagram(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    tracker: &mut quic::InitialTracker,
    payload: &[u8],
) -> Next {
    match tracker.on_client_datagram(payload) {
        quic::QuicProgress::NeedMore => Next::Stay,
        quic::QuicProgress::Hello { message, .. } => {
            match tls::parse_client_hello_message(&message) {
                Ok(hello) => {
                    ctx.stats.quic_client_hellos += 1;
                    on_client_hello(ctx, meta, &hello, Transport::Quic);
                }
                Err(_) => ctx.stats.quic_errors += 1,
            }
            Next::Done
        }
        quic::QuicProgress::Failed(_) => {
            ctx.stats.quic_errors += 1;
            Next::Done
        }
        quic::QuicProgress::NotInitial => Next::Done,
    }
}

//! DNS message parsing (UDP payloads) and TCP framing.
use shadowmcp::proto::dns;

pub fn run(data: &[u8]) {
    if let Ok(msg) = dns::parse_message(data) {
        assert!(msg.questions.len() <= dns::MAX_QUESTIONS);
        let resolved = msg.resolved_addresses();
        assert!(resolved.len() <= dns::MAX_RESOLVED);
    }
    // The same bytes as a DNS-over-TCP stream.
    let (messages, consumed) = dns::split_tcp_messages(data);
    assert!(consumed <= data.len());
    assert!(messages.len() <= data.len() / 3);
    for m in messages {
        let _ = dns::parse_message(m);
    }
}

//! Redaction of secrets that MCP platforms put in URLs (Zapier `/s/<secret>/`,
//! Smithery `api_key=`, mcp.run `sig=`, Make `/u/<token>/`, ...), applied before
//! anything is stored or written.

/// Replace every query value with `<redacted>` and every path segment that
/// looks like a credential (long, high-entropy, or following a marker such as
/// `s`, `u`, `t`, `key`, `token`) with `<redacted>`. Bounded output length.
pub fn redact_target(target: &str) -> String {
    const MAX: usize = 256;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut out = String::with_capacity(target.len().min(MAX));
    let mut prev_marker = false;
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if prev_marker || looks_secret(seg) {
            if !seg.is_empty() {
                out.push_str("<redacted>");
            }
        } else {
            out.extend(seg.chars().filter(|c| !c.is_control()));
        }
        prev_marker = matches!(
            seg.to_ascii_lowercase().as_str(),
            "s" | "u" | "t" | "key" | "token" | "apikey" | "api_key" | "secret"
        );
    }
    if let Some(q) = query {
        out.push('?');
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((k, _)) => {
                    out.extend(k.chars().filter(|c| !c.is_control()));
                    out.push_str("=<redacted>");
                }
                // A bare value (`?tok3n`) is as secret as a named one.
                None if pair.is_empty() => {}
                None => out.push_str("<redacted>"),
            }
        }
    }
    if out.len() > MAX {
        let mut cut = MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// A path segment that is probably a key: 20+ characters with letters and
/// digits mixed (API keys, UUIDs, hex tokens), or any `sk-`/`pk_`-style key.
fn looks_secret(seg: &str) -> bool {
    let lower = seg.to_ascii_lowercase();
    if ["sk-", "sk_", "pk_", "key-", "ghp_", "xox"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return true;
    }
    if seg.len() < 20 {
        return false;
    }
    let digits = seg.bytes().filter(u8::is_ascii_digit).count();
    let alpha = seg.bytes().filter(u8::is_ascii_alphabetic).count();
    digits >= 4 && alpha >= 4
}

#[cfg(test)]
mod tests {
    use super::redact_target;

    #[test]
    fn query_values_and_key_segments() {
        assert_eq!(redact_target("/mcp"), "/mcp");
        assert_eq!(
            redact_target("/mcp?api_key=abc&profile=x"),
            "/mcp?api_key=<redacted>&profile=<redacted>"
        );
        assert_eq!(
            redact_target("/api/mcp/s/Zx9secret/mcp"),
            "/api/mcp/s/<redacted>/mcp"
        );
        assert_eq!(
            redact_target("/mcp/api/v1/u/abc/sse"),
            "/mcp/api/v1/u/<redacted>/sse"
        );
        assert_eq!(
            redact_target("/3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718/sse"),
            "/<redacted>/sse"
        );
        assert_eq!(redact_target("/v1/sk-live-abc/mcp"), "/v1/<redacted>/mcp");
        assert_eq!(redact_target("/sse?abcdef"), "/sse?<redacted>");
        assert!(redact_target(&"a".repeat(10_000)).len() < 300);
    }
}

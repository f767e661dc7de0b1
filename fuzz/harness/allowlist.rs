//! The allowlist file: hosts, wildcards, IPs and CIDRs, one per line.
use shadowmcp::signatures::allowlist::Allowlist;
use std::net::IpAddr;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Allowlist::parse(text, "fuzz-allowlist") {
        Ok(a) => {
            let ips: [IpAddr; 3] = [
                [10, 1, 2, 3].into(),
                [192, 0, 2, 10].into(),
                "2001:db8::1".parse().expect("literal"),
            ];
            for name in [
                None,
                Some("mcp.example.com"),
                Some("x.example.com."),
                Some(""),
            ] {
                for ip in ips.iter().copied().map(Some).chain([None]) {
                    let _ = a.matches(name, ip);
                }
            }
            // Every line of the input queried as a host name.
            for line in text.lines().take(64) {
                let _ = a.matches(Some(line.trim()), None);
            }
            let _ = (a.len(), a.is_empty());
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                let _ = e.to_string();
            }
        }
    }
}

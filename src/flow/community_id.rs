//! Community ID v1 (github.com/corelight/community-id-spec): a SHA-1 over the
//! seed and the direction-normalised 5-tuple, base64-encoded, prefixed `1:`.

use base64::Engine as _;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// `1:` + base64(sha1(seed ‖ saddr ‖ daddr ‖ proto ‖ 0 ‖ sport ‖ dport)),
/// with the endpoints ordered so that both directions give the same id.
pub fn community_id_v1(
    seed: u16,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    proto: u8,
) -> String {
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    let (s, d) = (addr_octets(src), addr_octets(dst));
    let swap = !(s.as_slice() < d.as_slice() || (s == d && sport < dport));
    let (s, d, sp, dp) = if swap {
        (d, s, dport, sport)
    } else {
        (s, d, sport, dport)
    };
    h.update(&s);
    h.update(&d);
    h.update([proto, 0]);
    h.update(sp.to_be_bytes());
    h.update(dp.to_be_bytes());
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    )
}

fn addr_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn spec_vectors() {
        // community-id-spec baseline/README.md.
        let (a, b) = (ip("1.2.3.4"), ip("5.6.7.8"));
        assert_eq!(
            community_id_v1(0, a, 1122, b, 3344, 6),
            "1:wCb3OG7yAFWelaUydu0D+125CLM="
        );
        assert_eq!(
            community_id_v1(0, b, 3344, a, 1122, 6),
            "1:wCb3OG7yAFWelaUydu0D+125CLM="
        );
        assert_eq!(
            community_id_v1(0, a, 1122, b, 3344, 17),
            "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="
        );
        assert_eq!(
            community_id_v1(1, a, 1122, b, 3344, 6),
            "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="
        );
        assert_eq!(
            community_id_v1(1, a, 1122, b, 3344, 17),
            "1:OShq+iKDAMVouh/4bMxB9Sz4amw="
        );
    }

    /// Every TCP/UDP row of the spec's JSON baselines (when the shared test data is present).
    #[test]
    fn spec_baselines() {
        let dir =
            std::env::var("SHADOWMCP_TESTDATA").unwrap_or_else(|_| "../shared/testdata".into());
        for (file, seed) in [("baseline_deflt.json", 0u16), ("baseline_seed1.json", 1)] {
            let path = std::path::Path::new(&dir).join("community-id").join(file);
            let Ok(text) = std::fs::read_to_string(&path) else {
                eprintln!("skipping: {} not present", path.display());
                return;
            };
            let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
            let mut checked = 0;
            for r in rows {
                let proto = r["proto"].as_u64().unwrap_or(0) as u8;
                if proto != 6 && proto != 17 {
                    continue;
                }
                let got = community_id_v1(
                    seed,
                    ip(r["saddr"].as_str().unwrap()),
                    r["sport"].as_u64().unwrap() as u16,
                    ip(r["daddr"].as_str().unwrap()),
                    r["dport"].as_u64().unwrap() as u16,
                    proto,
                );
                assert_eq!(got, r["communityid"].as_str().unwrap(), "{r}");
                checked += 1;
            }
            assert!(checked >= 4, "{file}: only {checked} rows checked");
        }
    }
}

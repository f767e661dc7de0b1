//! Registry catalogues as `signatures update` reads them: byte 0 picks the
//! reader (even: saved registry pages, JSON; odd: a plain list / CSV), the
//! rest is the file. Whatever parses must turn into host entries whose
//! overlay loads back with the same number of entries: one hostile registry
//! entry must never make every update fail.
use shadowmcp::signatures::SignatureSet;
use shadowmcp::signatures::overlay::check_overlay_text;
use shadowmcp::signatures::registry::{build_entries, parse_list, parse_saved, render_overlay};
use std::sync::OnceLock;

fn base() -> &'static SignatureSet {
    static B: OnceLock<SignatureSet> = OnceLock::new();
    B.get_or_init(|| SignatureSet::load_curated(None).expect("curated set"))
}

pub fn run(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let entries = if sel % 2 == 0 {
        match parse_saved(body, "fuzz") {
            Ok(e) => e,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                return;
            }
        }
    } else {
        let Ok(text) = std::str::from_utf8(body) else {
            return;
        };
        match parse_list(text, "fuzz") {
            Ok(e) => e,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                return;
            }
        }
    };
    let (out, _skipped) = build_entries(&entries, base());
    let text = render_overlay(&out, "2026-01-01T00:00:00Z", &["fuzz".to_string()], "fuzz")
        .expect("render");
    match check_overlay_text("fuzz.toml", &text) {
        Ok(n) => assert_eq!(n, out.len()),
        Err(errors) => panic!("generated overlay does not load: {errors:?}\n{text}"),
    }
}

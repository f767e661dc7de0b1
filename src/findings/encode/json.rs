//! The documented findings JSON (docs/findings.md), unchanged.

use crate::findings::output::{FindingRecord, write_json_lines};
use serde_json::Value;
use std::io::{self, Write};

pub fn encode(r: &FindingRecord) -> Result<Value, serde_json::Error> {
    serde_json::to_value(r)
}

pub fn write(w: &mut dyn Write, records: &[FindingRecord]) -> io::Result<()> {
    write_json_lines(w, records)
}

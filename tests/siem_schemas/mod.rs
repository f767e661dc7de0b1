//! Validators of encoded findings against the third-party schema
//! definitions in `../shared/reference/schemas/` (relative to the repository
//! root): OCSF 1.7.0 JSON definitions and ECS 9.4.0 `ecs_flat.yml`. Each
//! returns the list of violations found (empty = valid).

#![allow(dead_code)]

pub mod ecs;
pub mod ocsf;

use std::path::PathBuf;

/// The schema folder, or `None` (with a message) when it is absent.
pub fn schemas_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/schemas");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: schema definitions not found at {} (CI provides them)",
            dir.display()
        );
        None
    }
}

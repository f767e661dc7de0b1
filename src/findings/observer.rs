//! The sensor's identity in findings: its name and where it looked (the
//! capture interfaces of `run`, the capture files of `analyze`).

use serde::{Deserialize, Serialize};

/// Interfaces or files named per finding; a long `analyze` file list is cut
/// to this many (the finding's flows may come from any of them).
pub const MAX_SOURCES: usize = 16;
/// Longest name or path kept, in characters.
const MAX_NAME_CHARS: usize = 255;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observer {
    /// Sensor name: from the configuration, by default the host name.
    pub name: String,
    /// Host name of the machine the sensor runs on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Live capture: the interfaces captured on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    /// Offline analysis: the capture files read, as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

fn clip(s: &str) -> String {
    s.chars().take(MAX_NAME_CHARS).collect()
}

impl Observer {
    /// `name`, or the host name when `None`; `-` when neither is known.
    pub fn new(name: Option<&str>) -> Observer {
        let hostname = local_hostname();
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(clip)
            .or_else(|| hostname.clone())
            .unwrap_or_else(|| "-".into());
        Observer {
            name,
            hostname,
            interfaces: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn with_interfaces<S: AsRef<str>>(mut self, names: &[S]) -> Observer {
        self.interfaces = names
            .iter()
            .take(MAX_SOURCES)
            .map(|n| clip(n.as_ref()))
            .collect();
        self
    }

    pub fn with_files<P: AsRef<std::path::Path>>(mut self, paths: &[P]) -> Observer {
        self.files = paths
            .iter()
            .take(MAX_SOURCES)
            .map(|p| clip(&p.as_ref().to_string_lossy()))
            .collect();
        self
    }
}

/// The kernel's host name (`/proc/sys/kernel/hostname`, else `/etc/hostname`).
pub fn local_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| clip(s.trim()))
        .find(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_defaults_to_host_name_and_sources_are_bounded() {
        let o = Observer::new(None);
        assert_eq!(Some(o.name.clone()), o.hostname.or(Some("-".into())));
        let o = Observer::new(Some("  dc1-tap ")).with_files(&vec!["a.pcap"; 40]);
        assert_eq!(o.name, "dc1-tap");
        assert_eq!(o.files.len(), MAX_SOURCES);
        let j = serde_json::to_value(Observer::new(Some("s")).with_interfaces(&["eth0"]))
            .expect("json");
        assert_eq!(j["interfaces"], serde_json::json!(["eth0"]));
        assert!(j.get("files").is_none());
    }
}

//! JSON Lines sink: standard output, or a file rotated by size
//! (`file` → `file.1` → … → `file.N`, the oldest deleted).

use super::config::JsonlConfig;
use super::worker::{Backend, Outcome};
use super::{MAX_FINDING_BYTES, SinkError, encoded};
use crate::findings::encode::Format;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;

/// Most rotated files kept, whatever the configuration says.
const MAX_KEEP: u32 = 1000;

enum Out {
    Stdout(tokio::io::Stdout),
    File {
        path: PathBuf,
        file: Option<File>,
        size: u64,
        max_bytes: u64,
        keep: u32,
    },
}

pub(crate) struct JsonlBackend {
    out: Out,
    format: Format,
}

fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

async fn ignore_missing(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Shifts `path.i` to `path.i+1` (dropping `path.keep`) and `path` to `path.1`.
pub(crate) async fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    if keep == 0 {
        return ignore_missing(tokio::fs::remove_file(path).await).await;
    }
    ignore_missing(tokio::fs::remove_file(rotated(path, keep)).await).await?;
    for i in (1..keep).rev() {
        ignore_missing(tokio::fs::rename(rotated(path, i), rotated(path, i + 1)).await).await?;
    }
    ignore_missing(tokio::fs::rename(path, rotated(path, 1)).await).await
}

async fn open_append(path: &Path) -> std::io::Result<(File, u64)> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    let size = f.metadata().await?.len();
    Ok((f, size))
}

impl JsonlBackend {
    pub(crate) fn new(c: &JsonlConfig) -> Result<Self, SinkError> {
        let out = if c.path == "-" {
            Out::Stdout(tokio::io::stdout())
        } else {
            let path = PathBuf::from(&c.path);
            // Fail at start-up if the file cannot be written.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| SinkError::Io {
                    path: c.path.clone(),
                    source: e,
                })?;
            Out::File {
                path,
                file: None,
                size: 0,
                max_bytes: c.max_bytes,
                keep: c.keep.min(MAX_KEEP),
            }
        };
        Ok(JsonlBackend {
            out,
            format: c.format,
        })
    }
}

fn line(v: &Value, format: Format) -> Option<Vec<u8>> {
    let mut l = serde_json::to_vec(encoded(format, v)?.as_ref()).ok()?;
    if l.len() > MAX_FINDING_BYTES {
        return None;
    }
    l.push(b'\n');
    Some(l)
}

impl Backend for JsonlBackend {
    async fn deliver(&mut self, batch: &[Arc<Value>]) -> Outcome {
        let format = self.format;
        match &mut self.out {
            Out::Stdout(out) => {
                let mut buf = Vec::new();
                for v in batch {
                    if let Some(l) = line(v, format) {
                        buf.extend_from_slice(&l);
                    }
                }
                let r = async {
                    out.write_all(&buf).await?;
                    out.flush().await
                }
                .await;
                match r {
                    Ok(()) => Outcome::Delivered,
                    Err(e) => Outcome::Retry {
                        done: 0,
                        reason: format!("stdout: {e}"),
                        after: None,
                    },
                }
            }
            Out::File {
                path,
                file,
                size,
                max_bytes,
                keep,
            } => {
                for (done, v) in batch.iter().enumerate() {
                    let Some(l) = line(v, format) else { continue };
                    let r: std::io::Result<()> = async {
                        if file.is_none() {
                            let (f, s) = open_append(path).await?;
                            *file = Some(f);
                            *size = s;
                        }
                        let len = l.len() as u64;
                        if *max_bytes > 0 && *size > 0 && size.saturating_add(len) > *max_bytes {
                            if let Some(mut f) = file.take() {
                                f.flush().await?;
                            }
                            rotate(path, *keep).await?;
                            let (f, s) = open_append(path).await?;
                            *file = Some(f);
                            *size = s;
                        }
                        if let Some(f) = file.as_mut() {
                            f.write_all(&l).await?;
                            *size = size.saturating_add(len);
                        }
                        Ok(())
                    }
                    .await;
                    if let Err(e) = r {
                        // Reopen on the next try (the file may have been removed).
                        *file = None;
                        return Outcome::Retry {
                            done,
                            reason: format!("{}: {e}", path.display()),
                            after: None,
                        };
                    }
                }
                if let Some(f) = file.as_mut()
                    && let Err(e) = f.flush().await
                {
                    *file = None;
                    return Outcome::Retry {
                        done: batch.len(),
                        reason: format!("{}: {e}", path.display()),
                        after: None,
                    };
                }
                Outcome::Delivered
            }
        }
    }
}

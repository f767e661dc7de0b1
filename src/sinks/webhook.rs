//! Webhook sink: each batch is POSTed as one JSON array of findings.

use super::config::WebhookConfig;
use super::http::{HttpPoster, TlsFiles};
use super::worker::{Backend, Outcome};
use super::{SinkError, encoded};
use crate::findings::encode::Format;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct WebhookBackend {
    http: HttpPoster,
    format: Format,
}

impl WebhookBackend {
    pub(crate) fn new(c: &WebhookConfig) -> Result<Self, SinkError> {
        let http = HttpPoster::new(
            &c.url,
            TlsFiles {
                ca_file: c.ca_file.as_deref(),
                client_cert: c.client_cert.as_deref(),
                client_key: c.client_key.as_deref(),
            },
            &c.headers,
            Duration::from_millis(c.timeout_ms.max(1)),
        )?;
        Ok(WebhookBackend {
            http,
            format: c.format,
        })
    }
}

/// `[finding, finding, …]`, each finding in `format`.
pub(crate) fn batch_body(batch: &[Arc<Value>], format: Format) -> Vec<u8> {
    let refs: Vec<_> = batch.iter().filter_map(|v| encoded(format, v)).collect();
    serde_json::to_vec(&refs).unwrap_or_else(|_| b"[]".to_vec())
}

impl Backend for WebhookBackend {
    async fn deliver(&mut self, batch: &[Arc<Value>]) -> Outcome {
        self.http.post_json(batch_body(batch, self.format)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_array_of_findings() {
        let b = batch_body(
            &[
                Arc::new(serde_json::json!({"a": 1})),
                Arc::new(serde_json::json!({"b": "x\n"})),
            ],
            Format::Json,
        );
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v, serde_json::json!([{"a": 1}, {"b": "x\n"}]));
        assert_eq!(batch_body(&[], Format::Json), b"[]");
    }
}

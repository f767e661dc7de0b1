//! HTTP(S) POST of JSON bodies for the webhook and Alertmanager sinks:
//! hyper 1 over hyper-rustls, with status codes mapped to delivery outcomes.

use super::SinkError;
use super::worker::Outcome;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Uri;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Most of a response body read (for the log line of a rejection).
const MAX_RESPONSE_BODY: usize = 16 * 1024;
/// Longest `Retry-After` honoured; the backoff cap applies too.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

pub(crate) struct HttpPoster {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

pub(crate) struct TlsFiles<'a> {
    pub ca_file: Option<&'a Path>,
    pub client_cert: Option<&'a Path>,
    pub client_key: Option<&'a Path>,
}

/// Header values of the form `env:NAME` are read from the environment.
fn header_value(name: &str, raw: &str) -> Result<HeaderValue, SinkError> {
    let owned;
    let v = match raw.strip_prefix("env:") {
        Some(var) => {
            owned = std::env::var(var).map_err(|_| {
                SinkError::Config(format!("header {name}: environment variable {var} not set"))
            })?;
            owned.as_str()
        }
        None => raw,
    };
    let mut hv = HeaderValue::from_str(v)
        .map_err(|_| SinkError::Config(format!("header {name}: invalid value")))?;
    let lower = name.to_ascii_lowercase();
    if lower == "authorization" || lower.contains("token") || lower.contains("key") {
        hv.set_sensitive(true);
    }
    Ok(hv)
}

impl HttpPoster {
    pub(crate) fn new(
        url: &str,
        tls: TlsFiles<'_>,
        headers: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<HttpPoster, SinkError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| SinkError::Config(format!("bad URL: {e}")))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => return Err(SinkError::Config("URL scheme must be http or https".into())),
        }
        let tls = super::tls::client_config(tls.ca_file, tls.client_cert, tls.client_key)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        let mut hs = Vec::with_capacity(headers.len());
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| SinkError::Config(format!("invalid header name {k:?}")))?;
            hs.push((name, header_value(k, v)?));
        }
        Ok(HttpPoster {
            client,
            uri,
            headers: hs,
            timeout,
        })
    }

    pub(crate) async fn post_json(&self, body: Vec<u8>) -> Outcome {
        let mut req = hyper::Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("shadowmcp/", env!("CARGO_PKG_VERSION")));
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let req = match req.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Reject {
                    done: 0,
                    reason: format!("request: {e}"),
                };
            }
        };
        let resp = match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Err(_) => {
                return Outcome::Retry {
                    done: 0,
                    reason: format!("timeout after {:?}", self.timeout),
                    after: None,
                };
            }
            Ok(Err(e)) => {
                return Outcome::Retry {
                    done: 0,
                    reason: error_chain(&e),
                    after: None,
                };
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        // Read (a bounded part of) the body so the connection can be reused
        // and a rejection can be explained in the log.
        let body = tokio::time::timeout(
            self.timeout,
            Limited::new(resp.into_body(), MAX_RESPONSE_BODY).collect(),
        )
        .await;
        let text = match body {
            Ok(Ok(b)) => String::from_utf8_lossy(&b.to_bytes()).trim().to_string(),
            _ => String::new(),
        };
        let reason = if text.is_empty() {
            format!("HTTP {status}")
        } else {
            let mut t: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
            if text.chars().count() > 200 {
                t.push('…');
            }
            format!("HTTP {status}: {t}")
        };
        classify(status.as_u16(), reason, retry_after)
    }
}

/// 2xx delivered; 408, 429 and 5xx are worth retrying; other codes mean the
/// receiver will never take this request (bad auth, bad payload).
pub(crate) fn classify(status: u16, reason: String, after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry {
            done: 0,
            reason,
            after,
        },
        _ => Outcome::Reject { done: 0, reason },
    }
}

/// An error and its causes, `: `-separated (at most 8 deep).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    let mut depth = 0;
    while let Some(c) = cur {
        if depth >= 8 {
            break;
        }
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
        depth += 1;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        for s in [200u16, 201, 202, 204, 299] {
            assert!(
                matches!(classify(s, String::new(), None), Outcome::Delivered),
                "{s}"
            );
        }
        for s in [408u16, 429, 500, 502, 503, 504, 599] {
            assert!(
                matches!(classify(s, String::new(), None), Outcome::Retry { .. }),
                "{s}"
            );
        }
        for s in [100u16, 301, 400, 401, 403, 404, 413, 422] {
            assert!(
                matches!(classify(s, String::new(), None), Outcome::Reject { .. }),
                "{s}"
            );
        }
    }

    #[test]
    fn header_values() {
        assert!(
            header_value("Authorization", "Bearer abc")
                .unwrap()
                .is_sensitive()
        );
        assert!(!header_value("X-Team", "sec").unwrap().is_sensitive());
        assert!(header_value("X", "bad\nvalue").is_err());
        assert!(header_value("X", "env:SHADOWMCP_TEST_SURELY_UNSET_VAR").is_err());
    }
}

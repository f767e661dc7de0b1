//! rustls client configuration for HTTPS and syslog over TLS: ring as the
//! crypto provider, certificate verification always on, web PKI roots by
//! default or a PEM CA bundle, optional client certificate.

use super::SinkError;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Most certificates read from one PEM bundle (Debian's full bundle has ~150).
const MAX_PEM_CERTS: usize = 4096;

fn tls_err(path: &Path, e: impl std::fmt::Display) -> SinkError {
    SinkError::Tls(format!("{}: {e}", path.display()))
}

pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, SinkError> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| tls_err(path, e))?;
    let mut out = Vec::new();
    for c in iter.take(MAX_PEM_CERTS) {
        out.push(c.map_err(|e| tls_err(path, e))?);
    }
    if out.is_empty() {
        return Err(tls_err(path, "no PEM certificate found"));
    }
    Ok(out)
}

pub(crate) fn client_config(
    ca_file: Option<&Path>,
    client_cert: Option<&Path>,
    client_key: Option<&Path>,
) -> Result<ClientConfig, SinkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(p) => {
            for c in load_certs(p)? {
                roots.add(c).map_err(|e| tls_err(p, e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let cfg = match (client_cert, client_key) {
        (Some(c), Some(k)) => {
            let chain = load_certs(c)?;
            let key = PrivateKeyDer::from_pem_file(k).map_err(|e| tls_err(k, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_err(c, e))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(SinkError::Config(
                "client_cert and client_key must be given together".into(),
            ));
        }
    };
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files() {
        let dir = std::env::temp_dir().join(format!("shadowmcp-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        assert!(client_config(Some(&empty), None, None).is_err());
        assert!(client_config(Some(&dir.join("absent.pem")), None, None).is_err());
        assert!(client_config(None, Some(&empty), None).is_err());
        assert!(client_config(None, None, None).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

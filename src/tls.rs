//! Optional TLS on a listener: a PEM certificate chain and private key, read at start and read again
//! on `SIGHUP` (certificate renewal without a restart). A reload that fails keeps the certificate in
//! use and logs why; a start with unreadable files is a configuration error.
//!
//! rustls with the aws-lc-rs provider, the same crypto the Graph client already links.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A listener's certificate, reloadable.
#[derive(Debug)]
pub struct ReloadableTls {
    /// The configuration keys (for messages), e.g. `api.tls_cert_file`.
    what: String,
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl ReloadableTls {
    /// Reads the certificate chain and key; the error names the file and the fix.
    pub fn load(what: &str, cert: &Path, key: &Path) -> Result<Self, String> {
        let config = server_config(what, cert, key)?;
        Ok(Self {
            what: what.to_owned(),
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// Reads the files again; on failure the certificate in use stays.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.what, &self.cert, &self.key)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        Ok(())
    }

    /// An acceptor with the certificate in use now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ))
    }
}

fn server_config(what: &str, cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| {
            format!(
                "{what}: cannot read the certificate chain {}: {e}; it must be PEM \
                 (-----BEGIN CERTIFICATE-----), readable by the pullprintd user",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "{what}: {} holds no PEM certificate",
            cert.display()
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "{what}: cannot read the private key {}: {e}; it must be a PEM private key \
             (PKCS#8, PKCS#1 or SEC1), readable by the pullprintd user",
            key.display()
        )
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("{what}: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            format!(
                "{what}: the certificate {} and the key {} do not make a usable pair: {e}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

//! The hub's TLS for the link: its certificate chain and key, TLS 1.3, ALPN `herald-link/1`.

use std::sync::Arc;

use herald_shared::link::ALPN;
use quinn::crypto::rustls::QuicServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The hub's link certificate.
#[derive(Debug)]
pub struct HubTls {
    /// The certificate chain, leaf first.
    pub certificate_chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub private_key: PrivateKeyDer<'static>,
}

impl Clone for HubTls {
    fn clone(&self) -> Self {
        Self {
            certificate_chain: self.certificate_chain.clone(),
            private_key: self.private_key.clone_key(),
        }
    }
}

/// Why the TLS server configuration cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("hub TLS certificate or key unusable: {0}")]
pub struct TlsConfigError(String);

/// Builds the QUIC server crypto configuration.
pub fn server_config(tls: &HubTls) -> Result<QuicServerConfig, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsConfigError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(tls.certificate_chain.clone(), tls.private_key.clone_key())
        .map_err(|e| TlsConfigError(e.to_string()))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    QuicServerConfig::try_from(Arc::new(config)).map_err(|e| TlsConfigError(e.to_string()))
}

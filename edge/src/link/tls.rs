//! TLS for the link: the edge either pins the hub certificate's SHA-256 or verifies it against
//! a CA. Always TLS 1.3 (QUIC requires it), ALPN `herald-link/1`.

use std::sync::Arc;

use herald_shared::link::ALPN;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// How the edge decides the hub is the hub.
#[derive(Debug, Clone)]
pub enum HubTrust {
    /// Accept only certificates whose DER SHA-256 is one of these (self-signed hubs, `herald dev`).
    Pinned(Vec<[u8; 32]>),
    /// Verify the chain against these CA certificates and the hub's name ([`server_name`]).
    CertificateAuthorities(Vec<CertificateDer<'static>>),
}

/// Why the TLS client configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A CA certificate is not usable.
    #[error("hub CA certificate rejected: {0}")]
    BadCertificateAuthority(rustls::Error),
    /// No CA certificate or pin was given.
    #[error("no hub certificate pin or CA given")]
    NoTrustAnchor,
    /// The rustls configuration is not usable for QUIC.
    #[error("TLS configuration unusable for QUIC: {0}")]
    Quic(String),
    /// The verifier could not be built.
    #[error("cannot build the hub certificate verifier: {0}")]
    Verifier(String),
}

/// The name a hub's certificate is verified for (with a CA; pins ignore it): the configured
/// name when there is one, otherwise the host of the hub's address, as every TLS client does —
/// `hub.internal` for `hub.internal:4433`, `10.0.0.5` for `10.0.0.5:4433`, `::1` for
/// `[::1]:4433`.
pub fn server_name(address: &str, configured: Option<&str>) -> String {
    if let Some(name) = configured {
        return name.to_string();
    }
    let host = address
        .rsplit_once(':')
        .map_or(address, |(host, _port)| host);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the QUIC client crypto configuration.
pub fn client_config(trust: &HubTrust) -> Result<QuicClientConfig, TlsConfigError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsConfigError::Quic(e.to_string()))?;
    let mut config = match trust {
        HubTrust::Pinned(pins) if pins.is_empty() => return Err(TlsConfigError::NoTrustAnchor),
        HubTrust::Pinned(pins) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCertificate {
                pins: pins.clone(),
                provider,
            }))
            .with_no_client_auth(),
        HubTrust::CertificateAuthorities(cas) => {
            if cas.is_empty() {
                return Err(TlsConfigError::NoTrustAnchor);
            }
            let mut roots = RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca.clone())
                    .map_err(TlsConfigError::BadCertificateAuthority)?;
            }
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| TlsConfigError::Verifier(e.to_string()))?;
            builder.with_webpki_verifier(verifier).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    QuicClientConfig::try_from(Arc::new(config)).map_err(|e| TlsConfigError::Quic(e.to_string()))
}

/// Accepts exactly the pinned certificates; still checks the handshake signatures, so the peer
/// must hold the pinned certificate's private key.
#[derive(Debug)]
struct PinnedCertificate {
    pins: Vec<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if self.pins.contains(&digest) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_the_host_of_the_address_unless_configured() {
        assert_eq!(server_name("hub.internal:4433", None), "hub.internal");
        assert_eq!(server_name("10.0.0.5:4433", None), "10.0.0.5");
        assert_eq!(server_name("[::1]:4433", None), "::1");
        assert_eq!(
            server_name("hub.internal:4433", Some("herald-hub")),
            "herald-hub"
        );
    }
}

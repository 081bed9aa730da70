//! Making a CA and the certificates it signs (`herald cert`): the link's hub certificates, and
//! certificates for the WebSocket and HTTP listeners in private deployments.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

/// A certificate and its private key, PEM.
#[derive(Debug)]
pub struct Pair {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

/// Why a certificate cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// A name is neither a DNS name nor an IP address.
    #[error("{0:?} is not a DNS name or an IP address")]
    BadName(String),
    /// The CA certificate or key cannot be used.
    #[error("the CA cannot be used: {0}")]
    Ca(rcgen::Error),
    /// Generating or signing failed.
    #[error("cannot make the certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = OffsetDateTime::now_utc();
    // A minute of slack for clocks slightly behind.
    params.not_before = now - Duration::from_secs(60);
    params.not_after = now + Duration::from_secs(u64::from(days) * 24 * 3600);
}

/// A new CA named `common_name`, valid for `days`.
pub fn new_ca(common_name: &str, days: u32) -> Result<Pair, IssueError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, days);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A server certificate for `names` (DNS names or IP addresses; the first is also its common
/// name), signed by the CA, valid for `days`.
pub fn issue(ca: &Pair, names: &[String], days: u32) -> Result<Pair, IssueError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(IssueError::Ca)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(IssueError::Ca)?;
    // What a TLS client can dial: the same syntax rustls checks the certificate against.
    if let Some(bad) = names
        .iter()
        .find(|name| rustls::pki_types::ServerName::try_from(name.as_str()).is_err())
    {
        return Err(IssueError::BadName(bad.clone()));
    }
    let mut params = CertificateParams::new(names.to_vec())?;
    if let Some(first) = names.first() {
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, first);
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    use super::*;

    fn der(pem: &str) -> CertificateDer<'static> {
        rustls_pemfile::certs(&mut pem.as_bytes())
            .next()
            .unwrap()
            .unwrap()
    }

    #[test]
    fn issued_certificates_verify_against_the_ca_for_their_names_only() {
        let ca = new_ca("Test CA", 30).unwrap();
        let hub = issue(&ca, &["hub.internal".into(), "10.0.0.5".into()], 30).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(&ca.cert_pem)).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let verify = |name: &str| {
            verifier.verify_server_cert(
                &der(&hub.cert_pem),
                &[],
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                UnixTime::now(),
            )
        };
        assert!(verify("hub.internal").is_ok());
        assert!(verify("10.0.0.5").is_ok());
        assert!(verify("herald-hub").is_err());
        assert!(matches!(
            issue(&ca, &["not a name".into()], 30),
            Err(IssueError::BadName(_))
        ));
    }
}

//! Hub link certificates: loading PEM files, or a self-signed certificate made at start.

use herald_hub::link::HubTls;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// The name hub certificates carry, and edges expect by default.
pub const HUB_SERVER_NAME: &str = "herald-hub";

/// A fresh self-signed certificate for `herald-hub` and `localhost`. Edges trust it by pinning
/// its SHA-256 ([`fingerprint`]), which changes at every start.
pub fn self_signed() -> HubTls {
    let names = vec![HUB_SERVER_NAME.to_string(), "localhost".to_string()];
    let certified = rcgen::generate_simple_self_signed(names)
        .expect("generating a key pair and a self-signed certificate for fixed names succeeds");
    HubTls {
        certificate_chain: vec![certified.cert.der().clone()],
        private_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        )),
    }
}

/// A certificate chain and key from PEM text.
pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<HubTls, String> {
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("unreadable PEM certificate: {e}"))?;
    if chain.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    let private_key = rustls_pemfile::private_key(&mut &key[..])
        .map_err(|e| format!("unreadable PEM key: {e}"))?
        .ok_or("hub.tls_key holds no PEM private key")?;
    Ok(HubTls {
        certificate_chain: chain,
        private_key,
    })
}

/// The SHA-256 of the leaf certificate, in hex: what edges pin.
pub fn fingerprint(tls: &HubTls) -> String {
    tls.certificate_chain
        .first()
        .map(leaf_fingerprint)
        .unwrap_or_default()
}

/// The SHA-256 of a certificate, in hex.
pub fn leaf_fingerprint(leaf: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(leaf.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificates_differ_and_have_a_fingerprint() {
        let a = self_signed();
        let b = self_signed();
        assert_eq!(fingerprint(&a).len(), 64);
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn pem_round_trip_and_errors() {
        let certified = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        let loaded = from_pem(
            certified.cert.pem().as_bytes(),
            certified.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        assert_eq!(loaded.certificate_chain.len(), 1);
        assert!(from_pem(b"", b"").is_err());
        assert!(from_pem(certified.cert.pem().as_bytes(), b"nothing").is_err());
    }
}

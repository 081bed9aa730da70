//! Serving certificates from PEM files, swapped in place when the files change.
//!
//! A [`CertFiles`] is the rustls certificate resolver of a listener: each new TLS handshake
//! asks it for the current certificate, which it keeps behind an [`ArcSwap`]. Replacing it
//! touches no connection — open ones keep the session they made — so a renewal (Let's
//! Encrypt's every 60 days, a Kubernetes secret update) closes nothing. The [`Reloader`]
//! re-reads the files on SIGHUP and whenever their modification time, size or inode changes
//! (checked every `tls.watch_interval_secs`; symlinks are followed, so certbot's `live/` links
//! and Kubernetes' `..data` swaps are seen). A file that does not parse, or a key that does not
//! match its certificate, is logged and the current certificate stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Why a certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("{0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    /// The key file holds no usable PEM private key.
    #[error("{0} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(PathBuf),
    /// rustls refuses the pair (an unsupported key type, a key that is not the certificate's).
    #[error("{cert} and {key} are not a usable pair: {source}")]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        source: rustls::Error,
    },
}

/// What identifies a version of a file: modification time, size, inode.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len(), metadata.ino()))
}

/// A certificate chain and key read from two PEM files; the resolver of a TLS listener.
#[derive(Debug)]
pub struct CertFiles {
    /// What the certificate serves (a key name, for logs).
    pub role: &'static str,
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
    seen: Mutex<(Stamp, Stamp)>,
}

impl CertFiles {
    /// Reads the certificate chain and key; they must be a usable pair.
    pub fn load(role: &'static str, cert: &Path, key: &Path) -> Result<Arc<Self>, CertError> {
        let seen = (stamp(cert), stamp(key));
        let certified = read_pair(cert, key)?;
        Ok(Arc::new(Self {
            role,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: ArcSwap::from_pointee(certified),
            seen: Mutex::new(seen),
        }))
    }

    /// Re-reads the files when they changed since the last look (or always, when `force`d);
    /// `Ok(true)` when a new certificate is now served. On an error the current one stays.
    pub fn reload(&self, force: bool) -> Result<bool, CertError> {
        let now = (stamp(&self.cert), stamp(&self.key));
        {
            let mut seen = self
                .seen
                .lock()
                .expect("no code panics holding the stamp lock");
            if !force && *seen == now {
                return Ok(false);
            }
            // Remember this version even if it fails: it is reported once, and the next
            // change (the rest of a file being written) is read again.
            *seen = now;
        }
        let certified = read_pair(&self.cert, &self.key)?;
        self.current.store(Arc::new(certified));
        Ok(true)
    }

    /// The leaf certificate served now.
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.current.load().cert[0].clone()
    }

    /// A rustls server configuration serving these files: TLS 1.2 and 1.3, ALPN `http/1.1`
    /// (WebSockets and the HTTP API are HTTP/1.1).
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, CertError> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(CertError::NoCertificate(cert.to_path_buf()));
    }
    let private_key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| CertError::NoKey(key.to_path_buf()))?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, private_key, &provider).map_err(|source| CertError::Unusable {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    })
}

/// Re-reads every served certificate on SIGHUP and when its files change.
pub struct Reloader {
    sources: Vec<Arc<CertFiles>>,
    interval: Duration,
}

impl Reloader {
    /// Watches these certificates every `interval` (none is fine: SIGHUP is then only
    /// acknowledged).
    pub fn new(sources: Vec<Arc<CertFiles>>, interval: Duration) -> Self {
        Self { sources, interval }
    }

    /// Runs until `shutdown`. Installing the SIGHUP handler also keeps SIGHUP from ending the
    /// process (its default action).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(error) => {
                tracing::warn!(message = "Cannot handle SIGHUP; certificates reload only when their files change.", %error);
                None
            }
        };
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => false,
                Some(()) = async { match hangups.as_mut() {
                    Some(hangups) => hangups.recv().await,
                    None => std::future::pending().await,
                } } => true,
            };
            if forced && self.sources.is_empty() {
                tracing::info!(message = "SIGHUP: no certificate files to reload.");
            }
            for source in &self.sources {
                match source.reload(forced) {
                    Ok(true) => tracing::info!(
                        message = "Certificate reloaded.",
                        key = source.role,
                        cert = %source.cert.display(),
                        cert_sha256 = %super::link::leaf_fingerprint(&source.leaf()),
                    ),
                    Ok(false) => {}
                    Err(error) => tracing::error!(
                        message = "Certificate reload failed; serving the previous one.",
                        key = source.role,
                        %error,
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("herald-certs-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_changed_pair_is_served_and_a_broken_one_is_not() {
        let dir = temp_dir();
        let (cert, key) = write_pair(&dir, "a.example");
        let files = CertFiles::load("edge.tls_cert", &cert, &key).unwrap();
        let first = files.leaf();
        assert!(!files.reload(false).unwrap(), "nothing changed");

        write_pair(&dir, "b.example");
        assert!(files.reload(true).unwrap());
        let second = files.leaf();
        assert_ne!(first, second);

        // A certificate whose key is another one's: refused, the current pair stays.
        let other = rcgen::generate_simple_self_signed(vec!["c.example".to_string()]).unwrap();
        std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
        assert!(matches!(
            files.reload(true),
            Err(CertError::Unusable { .. })
        ));
        assert_eq!(files.leaf(), second);
        std::fs::write(&cert, "not a certificate").unwrap();
        assert!(matches!(
            files.reload(true),
            Err(CertError::NoCertificate(_))
        ));
        assert_eq!(files.leaf(), second);
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! A CA made in the test (rcgen), the certificates it issues as files for `herald`, and TLS
//! clients that trust it: WebSockets over TLS and HTTPS, from Rust.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;

/// A WebSocket over TLS.
pub type WssSocket = WebSocketStream<TlsStream<TcpStream>>;

/// A test CA and the directory its files go to.
pub struct TestCa {
    dir: PathBuf,
    params: CertificateParams,
    key: KeyPair,
    cert: CertificateDer<'static>,
    /// The CA certificate, PEM file (what clients trust).
    pub ca_file: PathBuf,
}

/// A certificate and key written as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
    /// The certificate, DER (to compare with what a server presents).
    pub der: CertificateDer<'static>,
}

impl TestCa {
    /// A new CA writing into `dir` (created).
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("the certificate directory can be created");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Not rcgen's default name: OpenSSL (Node, Python) takes a leaf whose issuer is its own
        // subject for self-signed.
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "Herald test CA");
        let key = KeyPair::generate().expect("a key pair");
        let cert = params.self_signed(&key).expect("a self-signed CA");
        let ca_file = dir.join("ca.crt");
        std::fs::write(&ca_file, cert.pem()).expect("the CA file can be written");
        Self {
            dir: dir.to_path_buf(),
            params,
            key,
            cert: cert.der().clone(),
            ca_file,
        }
    }

    /// Issues a certificate for `names` and writes it to `<file>.crt` and `<file>.key`
    /// (replacing what is there, as a renewal does).
    pub fn issue(&self, file: &str, names: &[&str]) -> CertFiles {
        let names: Vec<String> = names.iter().map(ToString::to_string).collect();
        let mut params = CertificateParams::new(names.clone()).expect("valid names");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        let key = KeyPair::generate().expect("a key pair");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .expect("a signed certificate");
        let files = CertFiles {
            cert: self.dir.join(format!("{file}.crt")),
            key: self.dir.join(format!("{file}.key")),
            der: cert.der().clone(),
        };
        // Write to a temporary name and rename, as certbot and Kubernetes do: a reader never
        // sees half a file.
        for (path, text) in [(&files.key, key.serialize_pem()), (&files.cert, cert.pem())] {
            let temporary = path.with_extension("tmp");
            std::fs::write(&temporary, text).expect("the certificate can be written");
            std::fs::rename(&temporary, path).expect("the certificate can be renamed");
        }
        files
    }

    /// A rustls client configuration trusting only this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.cert.clone())
            .expect("the CA is a valid root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// Opens a TLS connection to `address` (`host:port`) verified for `name`; returns the stream
    /// and the certificate the server presented.
    pub async fn connect(
        &self,
        address: &str,
        name: &str,
    ) -> (TlsStream<TcpStream>, CertificateDer<'static>) {
        let tcp = TcpStream::connect(address)
            .await
            .unwrap_or_else(|e| panic!("connecting to {address} failed: {e}"));
        let server_name = ServerName::try_from(name.to_string()).expect("a valid server name");
        let stream = TlsConnector::from(self.client_config())
            .connect(server_name, tcp)
            .await
            .unwrap_or_else(|e| panic!("TLS to {address} as {name} failed: {e}"));
        let presented = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("the server presented a certificate")
            .clone()
            .into_owned();
        (stream, presented)
    }

    /// Opens a WebSocket over TLS to `wss://name/path` at `address`; returns the socket and the
    /// certificate the server presented.
    pub async fn websocket(
        &self,
        address: &str,
        name: &str,
        path: &str,
    ) -> (WssSocket, CertificateDer<'static>) {
        let (stream, presented) = self.connect(address, name).await;
        let url = format!("wss://{name}{path}");
        let (ws, _) = tokio_tungstenite::client_async(url.as_str(), stream)
            .await
            .unwrap_or_else(|e| panic!("the WebSocket upgrade of {url} failed: {e}"));
        (ws, presented)
    }
}

impl TestCa {
    /// One HTTPS request to `address` verified for `name` (`Connection: close`); the reply's
    /// status and body (JSON when it parses).
    pub async fn request(
        &self,
        address: &str,
        name: &str,
        method: &str,
        path_and_query: &str,
        body: &str,
    ) -> crate::api::Reply {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut stream, _) = self.connect(address, name).await;
        let request = format!(
            "{method} {path_and_query} HTTP/1.1\r\nHost: {name}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("the request can be written");
        let mut response = Vec::new();
        // A TLS peer that closes without close_notify is an error after the whole answer.
        let _ = stream.read_to_end(&mut response).await;
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP answer from {address}: {response:?}"));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line from {address}: {head:?}"));
        let body = serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.into()));
        crate::api::Reply { status, body }
    }
}

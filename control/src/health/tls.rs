//! TLS for HTTPS checks, on rustls with the ring provider, driven over a
//! tokio TCP stream by hand (the check needs a handshake, one request and
//! one response, no more).

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::error::CheckError;
use super::probe::{connect, within};

/// The TLS part of an `https` check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// Server name sent in the handshake; none by default (the backend is
    /// an address).
    pub sni: Option<String>,
    /// Verify the certificate: it must chain to one in this PEM file and
    /// name `sni` (or, without it, the backend's address).
    pub ca_file: Option<PathBuf>,
}

impl Tls {
    /// Connects to `addr` and runs the handshake within `deadline`.
    pub(crate) async fn connect(
        &self,
        addr: SocketAddr,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<TlsStream, CheckError> {
        // Read at every check, so a replaced CA file takes effect without a reload.
        let config = client_config(self.ca_file.as_deref())?;
        let name = server_name(self.sni.as_deref(), addr.ip())?;
        let tcp = connect(addr, deadline, timeout).await?;
        let stream = within(
            deadline,
            timeout,
            "in the TLS handshake",
            TlsStream::handshake(tcp, config, name),
        )
        .await??;
        Ok(stream)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("cannot read CA certificates from {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("{0} holds no PEM certificate")]
    NoCaCertificate(PathBuf),
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS setup failed: {0}")]
    Setup(rustls::Error),
    #[error("TLS handshake failed: {0}")]
    Handshake(rustls::Error),
    #[error("TLS error: {0}")]
    Protocol(rustls::Error),
    #[error("connection closed during the TLS handshake")]
    Closed,
    #[error("TLS connection failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Client settings: with `ca_file`, the chain must lead to one of its
/// certificates and name the server; without, any certificate is taken
/// (backends behind a VIP mostly have self-signed ones), though the server
/// must still prove it holds the certificate's key.
fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(ring_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?;
    let config = match ca_file {
        Some(path) => builder
            .with_root_certificates(load_roots(path)?)
            .with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// rustls deprecates ring's provider for lacking post-quantum key exchange,
/// which a health check's short-lived probe connections do not need; ring
/// builds with a C compiler alone, where aws-lc also wants cmake.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    ring::default_provider()
}

/// Reads the trust anchors of a PEM file.
pub(crate) fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let bad = |reason: String| TlsError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCaCertificate(path.to_path_buf()));
    }
    Ok(roots)
}

/// The name sent as SNI and verified: `sni` if given, else the backend's
/// address (an address is verified against the certificate's IP entries
/// and, as TLS requires, never sent as SNI).
pub(crate) fn server_name(sni: Option<&str>, ip: IpAddr) -> Result<ServerName<'static>, TlsError> {
    match sni {
        Some(name) => ServerName::try_from(name.to_string())
            .map_err(|_| TlsError::ServerName(name.to_string())),
        None => Ok(ServerName::IpAddress(ip.into())),
    }
}

/// Accepts any certificate, but checks the handshake signatures made with it.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A client TLS session over a TCP stream.
pub(crate) struct TlsStream {
    tcp: TcpStream,
    conn: ClientConnection,
    raw: Vec<u8>,
    out: Vec<u8>,
}

impl TlsStream {
    /// Runs the handshake to its end.
    pub(crate) async fn handshake(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<TlsStream, TlsError> {
        let conn = ClientConnection::new(config, name).map_err(TlsError::Setup)?;
        let mut s = TlsStream {
            tcp,
            conn,
            raw: vec![0; 16 * 1024],
            out: Vec::new(),
        };
        while s.conn.is_handshaking() {
            s.flush().await?;
            if s.conn.is_handshaking() && !s.fill().await.map_err(in_handshake)? {
                return Err(TlsError::Closed);
            }
        }
        s.flush().await?;
        Ok(s)
    }

    async fn flush(&mut self) -> Result<(), TlsError> {
        while self.conn.wants_write() {
            self.out.clear();
            self.conn.write_tls(&mut self.out)?;
            self.tcp.write_all(&self.out).await?;
        }
        Ok(())
    }

    /// Feeds the next bytes from the server to the session; false at EOF.
    async fn fill(&mut self) -> Result<bool, TlsError> {
        let n = self.tcp.read(&mut self.raw).await?;
        let mut data = self.raw.get(..n).unwrap_or_default();
        if data.is_empty() {
            // A read of nothing tells the session the stream has ended.
            self.conn.read_tls(&mut data)?;
            return Ok(false);
        }
        while !data.is_empty() {
            self.conn.read_tls(&mut data)?;
            self.conn
                .process_new_packets()
                .map_err(TlsError::Protocol)?;
        }
        Ok(true)
    }

    pub(crate) async fn send(&mut self, data: &[u8]) -> Result<(), TlsError> {
        self.conn.writer().write_all(data)?;
        self.flush().await
    }

    /// Plaintext from the server; 0 once it has closed the connection. A
    /// close without TLS's close_notify counts as a close too: the HTTP
    /// framing shows whether the response was complete.
    pub(crate) async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if !self.fill().await? {
                        return Ok(self.conn.reader().read(buf).unwrap_or(0));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// During the handshake, a protocol error is the handshake failing.
fn in_handshake(e: TlsError) -> TlsError {
    match e {
        TlsError::Protocol(e) => TlsError::Handshake(e),
        other => other,
    }
}

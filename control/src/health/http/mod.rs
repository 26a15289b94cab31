//! The HTTP check: one GET with `Connection: close`, over plain TCP or, for
//! `https`, over TLS; healthy when the status (and the body's digest, if
//! one is given) match.
//!
//! The head and body parsers are sans-IO: [`check`] feeds them whatever
//! bytes the socket produced and they say whether more are needed, what went
//! wrong, or what the body was.

mod body;
mod error;
mod head;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::error::{CheckError, StreamError};
use super::probe::{connect, within};
use super::tls::{Tls, TlsStream};
use super::BodyDigest;
use body::BodyReader;
pub(crate) use body::MAX_BODY;
pub(crate) use error::HttpError;
use head::parse_head;

/// What an `http` or `https` check asks for and expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpGet {
    /// Starts with '/'.
    pub path: String,
    /// The `Host` header; the backend's address ("10.1.1.11:8080") when unset.
    pub host: Option<String>,
    pub expect_status: u16,
    /// Compared with the body's digest when set; the status alone decides
    /// otherwise.
    pub digest: Option<BodyDigest>,
    /// Set for `https`: the GET goes over TLS.
    pub tls: Option<Tls>,
}

/// Builds the GET request, refusing values that would split or corrupt it
/// (they come from config, but a bad one must not turn into a different
/// request on the wire).
fn build_request(path: &str, host: &str) -> Result<Vec<u8>, HttpError> {
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(HttpError::Path(path.to_string()));
    }
    if host.is_empty() || host.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(HttpError::Host(host.to_string()));
    }
    Ok(format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vipd-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .into_bytes())
}

/// A byte stream an HTTP check runs over: plain TCP or TLS.
trait Transport {
    async fn send(&mut self, data: &[u8]) -> Result<(), StreamError>;
    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, StreamError>;
}

impl Transport for TcpStream {
    async fn send(&mut self, data: &[u8]) -> Result<(), StreamError> {
        Ok(self.write_all(data).await?)
    }

    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        Ok(self.read(buf).await?)
    }
}

impl Transport for TlsStream {
    async fn send(&mut self, data: &[u8]) -> Result<(), StreamError> {
        Ok(TlsStream::send(self, data).await?)
    }

    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        Ok(TlsStream::recv(self, buf).await?)
    }
}

/// Runs the check against `addr` within `deadline`.
pub(crate) async fn check(
    get: &HttpGet,
    addr: SocketAddr,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, CheckError> {
    let host = get.host.clone().unwrap_or_else(|| addr.to_string());
    // The request is checked before any connection is made.
    let request = build_request(&get.path, &host)?;
    match &get.tls {
        None => {
            let mut stream = connect(addr, deadline, timeout).await?;
            exchange(get, &mut stream, &request, deadline, timeout).await
        }
        Some(tls) => {
            let mut stream = tls.connect(addr, deadline, timeout).await?;
            exchange(get, &mut stream, &request, deadline, timeout).await
        }
    }
}

/// Sends the request and judges the response.
async fn exchange(
    get: &HttpGet,
    stream: &mut impl Transport,
    request: &[u8],
    deadline: Instant,
    timeout: Duration,
) -> Result<String, CheckError> {
    within(
        deadline,
        timeout,
        "sending HTTP request",
        stream.send(request),
    )
    .await?
    .map_err(CheckError::SendRequest)?;

    let mut buf = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    let (head, used) = loop {
        if let Some(parsed) = parse_head(&buf)? {
            break parsed;
        }
        let n = within(
            deadline,
            timeout,
            "waiting for HTTP response",
            stream.recv(&mut chunk),
        )
        .await?
        .map_err(CheckError::ReadResponse)?;
        let Some(data) = chunk.get(..n).filter(|d| !d.is_empty()) else {
            return Err(if buf.is_empty() {
                CheckError::NoResponse
            } else {
                CheckError::HeadCut(buf.len())
            });
        };
        buf.extend_from_slice(data);
    };
    if head.status != get.expect_status {
        return Err(CheckError::Status {
            got: head.status,
            expected: get.expect_status,
        });
    }
    let Some(want) = get.digest else {
        return Ok(format!("HTTP {}", head.status));
    };

    let mut body = BodyReader::new(head.framing);
    body.feed(buf.get(used..).unwrap_or_default())?;
    while !body.done() {
        let n = within(
            deadline,
            timeout,
            "reading HTTP body",
            stream.recv(&mut chunk),
        )
        .await?
        .map_err(CheckError::ReadResponse)?;
        match chunk.get(..n).filter(|d| !d.is_empty()) {
            Some(data) => body.feed(data)?,
            None => break,
        }
    }
    let body = body.finish()?;
    let got = want.of_same_kind(&body);
    if got == want {
        Ok(format!("HTTP {}, body digest ok", head.status))
    } else {
        Err(CheckError::Digest {
            got,
            len: body.len(),
            want,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_well_formed() {
        let req = build_request("/health?x=1", "example.test").expect("valid request");
        let text = String::from_utf8(req).expect("ascii");
        assert!(text.starts_with("GET /health?x=1 HTTP/1.1\r\nHost: example.test\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn request_rejects_injection() {
        for path in ["health", "/a b", "/a\r\nX: y", ""] {
            assert!(build_request(path, "h").is_err(), "path {path:?} accepted");
        }
        assert!(build_request("/", "h\r\nX: y").is_err());
        assert!(build_request("/", "").is_err());
    }
}

//! Why a check failed: each message becomes the backend's detail in logs
//! and `vipctl backends`, so it names the stage and what the server did.

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use super::dns::DnsError;
use super::http::HttpError;
use super::icmp::IcmpError;
use super::tls::TlsError;
use super::BodyDigest;

/// The check's deadline passed while it was `doing` something.
#[derive(Debug, thiserror::Error)]
#[error("timeout after {} ms {doing}", timeout.as_millis())]
pub(crate) struct Timeout {
    pub timeout: Duration,
    pub doing: &'static str,
}

/// A failed byte stream under an HTTP check: plain TCP or TLS.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    #[error(transparent)]
    Tcp(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckError {
    #[error(transparent)]
    Timeout(#[from] Timeout),
    #[error("connect refused")]
    ConnectRefused,
    #[error("connect failed: {0}")]
    Connect(std::io::Error),

    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("sending HTTP request failed: {0}")]
    SendRequest(StreamError),
    #[error("reading HTTP response failed: {0}")]
    ReadResponse(StreamError),
    #[error("connection closed without an HTTP response")]
    NoResponse,
    #[error("connection closed inside the HTTP response head after {0} bytes")]
    HeadCut(usize),
    #[error("HTTP {got} (expected {expected})")]
    Status { got: u16, expected: u16 },
    #[error("body digest mismatch: got {got} over {len} bytes, expected {want} ({})", want.algorithm())]
    Digest {
        got: BodyDigest,
        len: usize,
        want: BodyDigest,
    },

    #[error("cannot open a UDP socket: {0}")]
    UdpSocket(std::io::Error),
    #[error("cannot reach {target}: {source}")]
    Unreachable {
        target: String,
        source: std::io::Error,
    },
    #[error("port unreachable (ICMP): nothing listens there")]
    PortUnreachable,
    #[error("failed: {0}")]
    Datagram(std::io::Error),
    /// `reply` and `want` are quoted server and config bytes.
    #[error("UDP reply of {len} bytes lacks {want}: {reply}")]
    UdpReply {
        len: usize,
        want: String,
        reply: String,
    },
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error("{timeout} (skipped a datagram: {skipped})")]
    DnsTimeout { timeout: Timeout, skipped: DnsError },

    #[error("cannot open an ICMP socket: datagram: {datagram}; raw: {raw}")]
    IcmpSockets {
        datagram: std::io::Error,
        raw: std::io::Error,
    },
    #[error("cannot open an ICMP socket: {0}")]
    IcmpSocket(std::io::Error),
    #[error("cannot set up the ICMP socket: {0}")]
    IcmpSetup(std::io::Error),
    #[error("echo request failed: {0}")]
    EchoRequest(std::io::Error),
    #[error("echo failed: {0}")]
    Echo(std::io::Error),
    #[error("{timeout} (skipped: {skipped})")]
    PingTimeout {
        timeout: Timeout,
        skipped: IcmpError,
    },

    #[error("empty check script command")]
    EmptyScript,
    #[error("cannot run check script {program:?}: {source}")]
    ScriptSpawn {
        program: String,
        source: std::io::Error,
    },
    #[error("waiting for check script {program:?} failed: {source}")]
    ScriptWait {
        program: String,
        source: std::io::Error,
    },
    #[error("{0} (script killed)")]
    ScriptTimeout(Timeout),
    /// `stderr` is the script's first stderr line, made safe to log.
    #[error("{}", exit_text(*status, stderr))]
    ScriptExit { status: ExitStatus, stderr: String },
}

impl CheckError {
    /// A connect that failed: a refusal is the common case and reads short.
    pub(crate) fn connect(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused => CheckError::ConnectRefused,
            _ => CheckError::Connect(e),
        }
    }

    pub(crate) fn unreachable(target: SocketAddr, source: std::io::Error) -> Self {
        CheckError::Unreachable {
            target: target.to_string(),
            source,
        }
    }
}

fn exit_text(status: ExitStatus, stderr: &str) -> String {
    let mut text = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => format!("failed: {status}"),
    };
    if !stderr.is_empty() {
        text.push_str(": ");
        text.push_str(stderr);
    }
    text
}

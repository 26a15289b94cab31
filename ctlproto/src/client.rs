//! The blocking client, used by `vipctl`, `vipbench` and the tests.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Command, Reply, VERSION};

/// How long a reply may take unless the command says otherwise.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no result.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach vipd at {} (is it running? is --socket right?): {err}", socket.display())]
    Connect {
        socket: PathBuf,
        err: std::io::Error,
    },
    #[error("cannot encode the request: {0}")]
    Encode(serde_json::Error),
    #[error("sending the request to vipd: {0}")]
    Send(std::io::Error),
    #[error("reading the reply from vipd: {0}")]
    Receive(std::io::Error),
    #[error("vipd sent an unreadable reply: {reply:?}: {err}")]
    Unreadable {
        reply: String,
        err: serde_json::Error,
    },
    #[error("vipd refused the request: {0}")]
    Refused(String),
    #[error("vipd sent an empty reply")]
    Empty,
    #[error("vipd's reply does not have the fields this vipctl expects ({0}); is vipd of another version?")]
    Shape(serde_json::Error),
}

/// The request line: the command and the protocol version.
#[derive(Serialize)]
struct Request<'a> {
    v: u32,
    #[serde(flatten)]
    cmd: &'a Command,
}

/// Sends `cmd` and returns the reply's result as `R`, waiting at most
/// `within` for it.
pub fn call<R: DeserializeOwned>(
    socket: &Path,
    cmd: &Command,
    within: Duration,
) -> Result<R, ClientError> {
    serde_json::from_value(request_raw(socket, cmd, within)?).map_err(ClientError::Shape)
}

/// Sends `cmd` and returns the reply's result as JSON, as vipd sent it.
pub fn request_raw(
    socket: &Path,
    cmd: &Command,
    within: Duration,
) -> Result<serde_json::Value, ClientError> {
    let request =
        serde_json::to_string(&Request { v: VERSION, cmd }).map_err(ClientError::Encode)?;
    exchange(socket, &request, within)
}

/// Sends one request line and returns the reply's result.
fn exchange(
    socket: &Path,
    request: &str,
    within: Duration,
) -> Result<serde_json::Value, ClientError> {
    let mut stream = UnixStream::connect(socket).map_err(|err| ClientError::Connect {
        socket: socket.to_path_buf(),
        err,
    })?;
    stream
        .set_read_timeout(Some(within))
        .map_err(ClientError::Receive)?;
    let mut line = request.to_string();
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(ClientError::Send)?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(ClientError::Receive)?;
    let reply: Reply =
        serde_json::from_str(&reply).map_err(|err| ClientError::Unreadable { reply, err })?;
    match (reply.ok, reply.result, reply.error) {
        (true, Some(result), _) => Ok(result),
        (_, _, Some(e)) => Err(ClientError::Refused(e)),
        _ => Err(ClientError::Empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendOp;

    #[test]
    fn requests_the_client_sends_pass_the_decoder() {
        for cmd in [
            Command::Status {},
            Command::Flows {
                client: None,
                top: Some(10),
            },
            Command::Backend {
                op: BackendOp::Drain,
                service: "web".into(),
                address: "10.0.0.1:80".into(),
                weight: None,
            },
            Command::VrrpHandover {
                instance: "vi".into(),
                back: true,
                timeout_s: Some(5.0),
            },
        ] {
            let line = serde_json::to_string(&Request {
                v: VERSION,
                cmd: &cmd,
            })
            .expect("encodes");
            let back = crate::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(format!("{back:?}"), format!("{cmd:?}"), "{line}");
        }
    }

    #[test]
    fn an_absent_node_is_named_with_its_socket() {
        let e = request_raw(
            Path::new("/nonexistent/vipd.sock"),
            &Command::Status {},
            REPLY_TIMEOUT,
        )
        .expect_err("no such socket");
        let text = e.to_string();
        assert!(
            text.contains("cannot reach vipd at /nonexistent/vipd.sock"),
            "{text}"
        );
    }
}

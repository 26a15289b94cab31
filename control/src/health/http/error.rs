//! What can be wrong with a check's request or a backend's HTTP response.
//! Each message ends up verbatim in `vipctl backends`.

use super::body::{MAX_BODY, MAX_CHUNK_LINE};
use super::head::{MAX_HEAD, MAX_HEADERS};

/// Server bytes in these variants are already quoted for display.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HttpError {
    #[error(
        "invalid check path {0:?}: must start with '/' and contain no spaces or control characters"
    )]
    Path(String),
    #[error(
        "invalid check Host header {0:?}: must be non-empty without spaces or control characters"
    )]
    Host(String),
    #[error("HTTP status line longer than {MAX_HEAD} bytes")]
    StatusLineTooLong,
    #[error("HTTP response headers larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("HTTP response headers larger than {MAX_HEAD} bytes (interim responses included)")]
    InterimTooLarge,
    #[error("HTTP response has more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    #[error("malformed HTTP status line: {0}")]
    StatusLine(String),
    #[error("unsupported HTTP version in status line: {0}")]
    Version(String),
    #[error("malformed HTTP header line: {0}")]
    HeaderLine(String),
    #[error("invalid HTTP Content-Length: {0}")]
    ContentLength(String),
    #[error("HTTP response has conflicting Content-Length headers")]
    ContentLengthHeaders,
    #[error("HTTP response has conflicting Content-Length values")]
    ContentLengthValues,
    #[error("HTTP response body larger than {} KiB; digest not computed", MAX_BODY / 1024)]
    BodyTooLarge,
    #[error("connection closed after {got} of {total} HTTP body bytes")]
    BodyCut { got: usize, total: usize },
    #[error("connection closed in the middle of a chunked HTTP body")]
    ChunkedCut,
    #[error("malformed chunked HTTP body: chunk data not followed by CRLF")]
    ChunkEnd,
    #[error("malformed chunked HTTP body: line longer than {MAX_CHUNK_LINE} bytes")]
    ChunkLine,
    #[error("malformed chunked HTTP body: bad chunk size {0}")]
    ChunkSize(String),
}

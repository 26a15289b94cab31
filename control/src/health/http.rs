//! Minimal HTTP/1.1 response handling for HTTP_GET-style checks.
//!
//! Sans-IO: the probe feeds whatever bytes the socket produced; these types
//! say whether more are needed, what went wrong, or what the body was. Every
//! error is a sentence for the operator, because it ends up verbatim in
//! `vipctl backends`.

use std::fmt::Write as _;

/// Largest response head (status line plus headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest body read for a digest check.
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest chunk-size or trailer line accepted inside a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// Builds the GET request, refusing values that would split or corrupt it
/// (they come from config, but a bad one must not turn into a different
/// request on the wire).
pub fn build_request(path: &str, host: &str) -> Result<Vec<u8>, String> {
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "invalid check path {path:?}: must start with '/' and contain no spaces or control characters"
        ));
    }
    if host.is_empty() || host.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "invalid check Host header {host:?}: must be non-empty without spaces or control characters"
        ));
    }
    Ok(format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vipd-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .into_bytes())
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (204, 304).
    Empty,
    Length(usize),
    Chunked,
    /// Body runs until the server closes the connection.
    UntilEof,
}

/// The parts of a response head a check cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
}

/// Parses a response head from the start of `buf`.
///
/// Returns `Ok(None)` while more bytes are needed, or the head and the number
/// of bytes it used. Interim 1xx responses are skipped. The status line is
/// validated as soon as it is complete, so a non-HTTP server that sends one
/// line and then waits fails at once instead of running into the timeout.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let mut start = 0;
    loop {
        let rest = buf.get(start..).unwrap_or_default();
        match parse_one_head(rest)? {
            None => return Ok(None),
            Some((head, used)) => {
                start += used;
                if (100..200).contains(&head.status) && head.status != 101 {
                    // Interim responses count towards the head limit, so an
                    // endless stream of them cannot grow the buffer.
                    if start > MAX_HEAD {
                        return Err(format!(
                            "HTTP response headers larger than {MAX_HEAD} bytes (interim responses included)"
                        ));
                    }
                    continue;
                }
                return Ok(Some((head, start)));
            }
        }
    }
}

fn parse_one_head(buf: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let Some((status_line, mut pos)) = next_line(buf, 0) else {
        if buf.len() > MAX_HEAD {
            return Err(format!("HTTP status line longer than {MAX_HEAD} bytes"));
        }
        if !buf.is_empty() && !b"HTTP/".starts_with(&buf[..buf.len().min(5)]) {
            return Err(format!("malformed HTTP status line: {}", quote(buf)));
        }
        return Ok(None);
    };
    let status = parse_status_line(status_line)?;
    let mut content_length: Option<usize> = None;
    let mut transfer_encoding: Option<Vec<u8>> = None;
    loop {
        let Some((line, next)) = next_line(buf, pos) else {
            if buf.len() > MAX_HEAD {
                return Err(format!(
                    "HTTP response headers larger than {MAX_HEAD} bytes"
                ));
            }
            return Ok(None);
        };
        pos = next;
        if pos > MAX_HEAD {
            return Err(format!(
                "HTTP response headers larger than {MAX_HEAD} bytes"
            ));
        }
        if line.is_empty() {
            break;
        }
        // Folded continuation lines only ever extend a header's value; none of
        // the headers read here are legitimately folded, so they are skipped.
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return Err(format!("malformed HTTP header line: {}", quote(line)));
        };
        let (name, value) = line.split_at(colon);
        let value = trim(value.get(1..).unwrap_or_default());
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(value)?;
            if content_length.is_some_and(|old| old != n) {
                return Err("HTTP response has conflicting Content-Length headers".to_string());
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let te = transfer_encoding.get_or_insert_with(Vec::new);
            if !te.is_empty() {
                te.push(b',');
            }
            te.extend_from_slice(value);
        }
    }
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Empty
    } else if let Some(te) = transfer_encoding {
        // Transfer-Encoding wins over Content-Length; only a final "chunked"
        // coding delimits the body, anything else runs to EOF.
        let last = te
            .rsplit(|b| *b == b',')
            .next()
            .map(trim)
            .unwrap_or_default();
        if last.eq_ignore_ascii_case(b"chunked") {
            Framing::Chunked
        } else {
            Framing::UntilEof
        }
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        Framing::UntilEof
    };
    Ok(Some((Head { status, framing }, pos)))
}

fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let bad = || format!("malformed HTTP status line: {}", quote(line));
    let rest = line.strip_prefix(b"HTTP/").ok_or_else(bad)?;
    let (version, rest) = match rest {
        [major, b'.', minor, b' ', rest @ ..]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            ((*major, *minor), rest)
        }
        _ => return Err(bad()),
    };
    if version.0 != b'1' {
        return Err(format!(
            "unsupported HTTP version in status line: {}",
            quote(line)
        ));
    }
    match rest {
        [a, b, c] | [a, b, c, b' ', ..]
            if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() =>
        {
            let status = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            if status < 100 {
                return Err(bad());
            }
            Ok(status)
        }
        _ => Err(bad()),
    }
}

fn parse_content_length(value: &[u8]) -> Result<usize, String> {
    // A repeated value in one header ("5, 5") is allowed when all agree.
    let mut result: Option<usize> = None;
    for part in value.split(|b| *b == b',') {
        let part = trim(part);
        let n = std::str::from_utf8(part)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| format!("invalid HTTP Content-Length: {}", quote(value)))?;
        if result.is_some_and(|old| old != n) {
            return Err("HTTP response has conflicting Content-Length values".to_string());
        }
        result = Some(n);
    }
    result.ok_or_else(|| format!("invalid HTTP Content-Length: {}", quote(value)))
}

/// Finds the line starting at `from`, ending in CRLF or a bare LF. Returns it
/// without the terminator, and where the next line starts.
fn next_line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(from..)?;
    let nl = rest.iter().position(|b| *b == b'\n')?;
    let line = rest.get(..nl)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, from + nl + 1))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

/// Shows up to 64 bytes of server output safely in a log line or detail.
pub fn quote(bytes: &[u8]) -> String {
    const SHOWN: usize = 64;
    let mut out = String::from("\"");
    for b in bytes.iter().take(SHOWN) {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(*b)),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if bytes.len() > SHOWN {
        out.push_str("...");
    }
    out
}

/// Collects a response body according to its framing, up to [`MAX_BODY`].
#[derive(Debug)]
pub struct BodyReader {
    state: BodyState,
    body: Vec<u8>,
}

#[derive(Debug)]
enum BodyState {
    Length { remaining: usize, total: usize },
    UntilEof,
    Chunk(ChunkState),
    Done,
}

#[derive(Debug)]
enum ChunkState {
    /// Reading a chunk-size line.
    Size(Vec<u8>),
    Data(usize),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd {
        seen_cr: bool,
    },
    /// Reading trailer lines after the last chunk, until an empty one.
    Trailer(Vec<u8>),
}

impl BodyReader {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length {
                remaining: n,
                total: n,
            },
            Framing::Chunked => BodyState::Chunk(ChunkState::Size(Vec::new())),
            Framing::UntilEof => BodyState::UntilEof,
        };
        BodyReader {
            state,
            body: Vec::new(),
        }
    }

    /// True once the whole body has been read.
    pub fn done(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    /// Consumes bytes read from the socket. Bytes after the end of the body
    /// are ignored (the request said `Connection: close`).
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), String> {
        while !input.is_empty() {
            match &mut self.state {
                BodyState::Done => return Ok(()),
                BodyState::Length { remaining, total } => {
                    if *total > MAX_BODY {
                        return Err(too_big());
                    }
                    let take = input.len().min(*remaining);
                    let (data, rest) = input.split_at(take);
                    self.body.extend_from_slice(data);
                    *remaining -= take;
                    input = rest;
                    if *remaining == 0 {
                        self.state = BodyState::Done;
                    }
                }
                BodyState::UntilEof => {
                    push_capped(&mut self.body, input)?;
                    input = &[];
                }
                BodyState::Chunk(chunk) => {
                    let (used, next) = step_chunked(chunk, input, &mut self.body)?;
                    input = input.get(used..).unwrap_or_default();
                    if let Some(next) = next {
                        self.state = next;
                    }
                }
            }
        }
        Ok(())
    }

    /// The server closed the connection: returns the body if it was complete.
    pub fn finish(self) -> Result<Vec<u8>, String> {
        match self.state {
            // A server that closes right after the last chunk, without the
            // final empty line, still sent the whole body.
            BodyState::Done | BodyState::UntilEof | BodyState::Chunk(ChunkState::Trailer(_)) => {
                Ok(self.body)
            }
            BodyState::Length { remaining, total } => Err(format!(
                "connection closed after {} of {total} HTTP body bytes",
                total - remaining
            )),
            BodyState::Chunk(_) => {
                Err("connection closed in the middle of a chunked HTTP body".to_string())
            }
        }
    }
}

fn too_big() -> String {
    format!(
        "HTTP response body larger than {} KiB; digest not computed",
        MAX_BODY / 1024
    )
}

fn push_capped(body: &mut Vec<u8>, data: &[u8]) -> Result<(), String> {
    if body.len() + data.len() > MAX_BODY {
        return Err(too_big());
    }
    body.extend_from_slice(data);
    Ok(())
}

/// Advances the chunked decoder over a prefix of `input`. Returns how many
/// bytes were used and, when the body ended, the state to move to.
fn step_chunked(
    chunk: &mut ChunkState,
    input: &[u8],
    body: &mut Vec<u8>,
) -> Result<(usize, Option<BodyState>), String> {
    match chunk {
        ChunkState::Size(line) => {
            let Some(nl) = input.iter().position(|b| *b == b'\n') else {
                push_line(line, input)?;
                return Ok((input.len(), None));
            };
            push_line(line, input.get(..nl).unwrap_or_default())?;
            let size = parse_chunk_size(line)?;
            *chunk = if size == 0 {
                ChunkState::Trailer(Vec::new())
            } else {
                if body.len().saturating_add(size) > MAX_BODY {
                    return Err(too_big());
                }
                ChunkState::Data(size)
            };
            Ok((nl + 1, None))
        }
        ChunkState::Data(remaining) => {
            let take = input.len().min(*remaining);
            push_capped(body, input.get(..take).unwrap_or_default())?;
            *remaining -= take;
            if *remaining == 0 {
                *chunk = ChunkState::DataEnd { seen_cr: false };
            }
            Ok((take, None))
        }
        ChunkState::DataEnd { seen_cr } => match input.first() {
            Some(b'\r') if !*seen_cr => {
                *seen_cr = true;
                Ok((1, None))
            }
            Some(b'\n') => {
                *chunk = ChunkState::Size(Vec::new());
                Ok((1, None))
            }
            _ => Err("malformed chunked HTTP body: chunk data not followed by CRLF".to_string()),
        },
        ChunkState::Trailer(line) => {
            let Some(nl) = input.iter().position(|b| *b == b'\n') else {
                push_line(line, input)?;
                return Ok((input.len(), None));
            };
            push_line(line, input.get(..nl).unwrap_or_default())?;
            let ended = line.is_empty() || line.as_slice() == b"\r";
            line.clear();
            Ok((nl + 1, ended.then_some(BodyState::Done)))
        }
    }
}

fn push_line(line: &mut Vec<u8>, data: &[u8]) -> Result<(), String> {
    if line.len() + data.len() > MAX_CHUNK_LINE {
        return Err(format!(
            "malformed chunked HTTP body: line longer than {MAX_CHUNK_LINE} bytes"
        ));
    }
    line.extend_from_slice(data);
    Ok(())
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Chunk extensions (";name=value") carry nothing a check needs.
    let size = line
        .split(|b| *b == b';')
        .next()
        .map(trim)
        .unwrap_or_default();
    let bad = || {
        format!(
            "malformed chunked HTTP body: bad chunk size {}",
            quote(line)
        )
    };
    if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let text = std::str::from_utf8(size).map_err(|_| bad())?;
    usize::from_str_radix(text, 16).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Option<(Head, usize)>, String> {
        parse_head(raw.as_bytes())
    }

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

    #[test]
    fn heads_and_framing() {
        let cases: &[(&str, u16, Framing)] = &[
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                200,
                Framing::Length(5),
            ),
            (
                "HTTP/1.0 503 Service Unavailable\r\n\r\n",
                503,
                Framing::UntilEof,
            ),
            ("HTTP/1.1 200\r\n\r\n", 200, Framing::UntilEof),
            (
                "HTTP/1.1 200 OK\nContent-Length:  7 \n\n",
                200,
                Framing::Length(7),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n",
                200,
                Framing::Length(3),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
                200,
                Framing::Chunked,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                200,
                Framing::UntilEof,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
                200,
                Framing::Chunked,
            ),
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                204,
                Framing::Empty,
            ),
            (
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                404,
                Framing::Length(0),
            ),
        ];
        for (raw, status, framing) in cases {
            let (h, used) = head(raw)
                .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
                .unwrap_or_else(|| panic!("{raw:?}: incomplete"));
            assert_eq!(h.status, *status, "{raw:?}");
            assert_eq!(h.framing, *framing, "{raw:?}");
            assert_eq!(used, raw.len(), "{raw:?}");
        }
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        let full = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(head(&full[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn garbage_fails_with_detail() {
        let cases = [
            ("SSH-2.0-OpenSSH_9.6\r\n", "malformed HTTP status line"),
            ("SSH-2", "malformed HTTP status line"),
            ("HTTP/1.1 2x0 OK\r\n\r\n", "malformed HTTP status line"),
            ("HTTP/1.1 20\r\n\r\n", "malformed HTTP status line"),
            ("HTTP/1.1 099 Odd\r\n\r\n", "malformed HTTP status line"),
            ("HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version"),
            (
                "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                "malformed HTTP header line",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "invalid HTTP Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                "invalid HTTP Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "conflicting Content-Length",
            ),
        ];
        for (raw, want) in cases {
            let err = head(raw).expect_err(raw);
            assert!(err.contains(want), "{raw:?}: {err}");
        }
        let huge = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert!(head(&huge).expect_err("huge head").contains("larger than"));
        let interim = "HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_HEAD / 10);
        let err = head(&interim).expect_err("endless interim responses");
        assert!(err.contains("interim responses"), "{err}");
        let binary = [0xffu8, 0x00, 0x1b, b'\n'];
        let err = parse_head(&binary).expect_err("binary");
        assert!(err.contains("\\xff\\x00\\x1b"), "{err}");
    }

    fn read_body(framing: Framing, pieces: &[&[u8]]) -> Result<Vec<u8>, String> {
        let mut r = BodyReader::new(framing);
        for p in pieces {
            r.feed(p)?;
        }
        r.finish()
    }

    #[test]
    fn bodies_by_framing() {
        assert_eq!(
            read_body(Framing::Length(5), &[b"he", b"llo world"]),
            Ok(b"hello".to_vec())
        );
        assert_eq!(
            read_body(Framing::UntilEof, &[b"a", b"bc"]),
            Ok(b"abc".to_vec())
        );
        assert_eq!(read_body(Framing::Empty, &[b"ignored"]), Ok(Vec::new()));
        let err = read_body(Framing::Length(10), &[b"abc"]).expect_err("short");
        assert!(err.contains("3 of 10"), "{err}");
    }

    #[test]
    fn chunked_bodies_in_any_split() {
        let raw: &[u8] = b"4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let want = b"Wikipedia in \r\n\r\nchunks.".to_vec();
        for split in 0..raw.len() {
            let (a, b) = raw.split_at(split);
            let mut r = BodyReader::new(Framing::Chunked);
            r.feed(a).expect("first part");
            r.feed(b).expect("second part");
            assert!(r.done(), "split {split}");
            assert_eq!(r.finish(), Ok(want.clone()), "split {split}");
        }
        let mut r = BodyReader::new(Framing::Chunked);
        for b in raw {
            r.feed(std::slice::from_ref(b)).expect("byte at a time");
        }
        assert_eq!(r.finish(), Ok(want));
    }

    #[test]
    fn chunked_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"zz\r\n", "bad chunk size"),
            (b"\r\n", "bad chunk size"),
            (b"3\r\nabcX", "not followed by CRLF"),
            (b"fffffffffffffffff\r\n", "bad chunk size"),
            (b"200000\r\n", "larger than"),
        ];
        for (raw, want) in cases {
            let mut r = BodyReader::new(Framing::Chunked);
            let err = r.feed(raw).expect_err("must fail");
            assert!(err.contains(want), "{:?}: {err}", quote(raw));
        }
        let err = read_body(Framing::Chunked, &[b"3\r\nab"]).expect_err("truncated");
        assert!(err.contains("middle of a chunked"), "{err}");
    }

    #[test]
    fn body_cap() {
        let err = read_body(Framing::Length(MAX_BODY + 1), &[b"x"]).expect_err("too long");
        assert!(err.contains("larger than"), "{err}");
        let big = vec![b'x'; MAX_BODY];
        assert_eq!(
            read_body(Framing::UntilEof, &[&big]).map(|b| b.len()),
            Ok(MAX_BODY)
        );
        let err = read_body(Framing::UntilEof, &[&big, b"y"]).expect_err("over cap");
        assert!(err.contains("larger than"), "{err}");
    }
}

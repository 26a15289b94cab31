//! The response head: status line and headers, parsed by `httparse`, and
//! what they say about the body's framing.

use super::HttpError;
use crate::health::quote::quote;

/// Largest response head (status line plus headers) accepted.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Most header lines accepted in one response head.
pub(crate) const MAX_HEADERS: usize = 256;

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all (204, 304).
    Empty,
    Length(usize),
    Chunked,
    /// Body runs until the server closes the connection.
    UntilEof,
}

/// The parts of a response head a check cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub status: u16,
    pub framing: Framing,
}

/// Parses a response head from the start of `buf`.
///
/// Returns `Ok(None)` while more bytes are needed, or the head and the number
/// of bytes it used. Interim 1xx responses are skipped. The status line is
/// judged byte by byte as it arrives, so a non-HTTP server that sends one
/// line and then waits fails at once instead of running into the timeout.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let mut start = 0;
    loop {
        let rest = buf.get(start..).unwrap_or_default();
        let Some((head, used)) = parse_one_head(rest)? else {
            return Ok(None);
        };
        start += used;
        if (100..200).contains(&head.status) && head.status != 101 {
            // Interim responses count towards the head limit, so an endless
            // stream of them cannot grow the buffer.
            if start > MAX_HEAD {
                return Err(HttpError::InterimTooLarge);
            }
            continue;
        }
        return Ok(Some((head, start)));
    }
}

fn parse_one_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let parsed = httparse::ParserConfig::default()
        // Folded lines only ever extend a header's value, and none of the
        // headers read here is legitimately folded.
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_spaces_after_header_name_in_responses(true)
        .parse_response(&mut response, buf);
    // A status line is judged as soon as it is complete.
    if response.code.is_some_and(|c| c < 100) {
        return Err(HttpError::StatusLine(quote(first_line(buf))));
    }
    let used = match parsed {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => {
            if buf.len() <= MAX_HEAD {
                return Ok(None);
            }
            return Err(if buf.contains(&b'\n') {
                HttpError::HeadTooLarge
            } else {
                HttpError::StatusLineTooLong
            });
        }
        Err(httparse::Error::Version) => {
            let line = first_line(buf);
            return Err(if other_version(line) {
                HttpError::Version(quote(line))
            } else {
                HttpError::StatusLine(quote(line))
            });
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(httparse::Error::Status) => return Err(HttpError::StatusLine(quote(first_line(buf)))),
        Err(_) if !status_line_ok(buf) => {
            return Err(HttpError::StatusLine(quote(first_line(buf))))
        }
        Err(_) => return Err(HttpError::HeaderLine(quote(bad_header_line(buf)))),
    };
    if used > MAX_HEAD {
        return Err(HttpError::HeadTooLarge);
    }
    let status = response.code.unwrap_or(0);
    let mut content_length: Option<usize> = None;
    let mut transfer_encoding: Option<Vec<u8>> = None;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_content_length(h.value)?;
            if content_length.is_some_and(|old| old != n) {
                return Err(HttpError::ContentLengthHeaders);
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let te = transfer_encoding.get_or_insert_with(Vec::new);
            if !te.is_empty() {
                te.push(b',');
            }
            te.extend_from_slice(h.value.trim_ascii());
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
            .map(<[u8]>::trim_ascii)
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
    Ok(Some((Head { status, framing }, used)))
}

/// The status line as far as it has arrived, without its line end.
fn first_line(buf: &[u8]) -> &[u8] {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `HTTP/2.0 …` and the like: HTTP, but not the HTTP/1.0 or 1.1 a check
/// speaks.
fn other_version(line: &[u8]) -> bool {
    match line.strip_prefix(b"HTTP/") {
        Some([major, b'.', minor, rest @ ..]) => {
            major.is_ascii_digit()
                && minor.is_ascii_digit()
                && !(*major == b'1' && b"01".contains(minor))
                && rest.first().is_none_or(|b| *b == b' ')
        }
        _ => false,
    }
}

/// Whether the head's first line, alone, is a status line `httparse` takes:
/// otherwise an error it reports is in that line, not in a header.
fn status_line_ok(buf: &[u8]) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut alone = line.to_vec();
    alone.push(b'\n');
    let mut no_headers = [httparse::EMPTY_HEADER; 0];
    httparse::Response::new(&mut no_headers)
        .parse(&alone)
        .is_ok()
}

/// The first header line `httparse` refuses, for the operator to see.
fn bad_header_line(buf: &[u8]) -> &[u8] {
    let mut lines = buf.split(|b| *b == b'\n').skip(1);
    let bad = lines.find(|line| {
        let mut one = [httparse::EMPTY_HEADER; 1];
        let mut probe = line.to_vec();
        probe.push(b'\n');
        httparse::parse_headers(&probe, &mut one).is_err()
    });
    let line = bad.unwrap_or_default();
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_content_length(value: &[u8]) -> Result<usize, HttpError> {
    let invalid = || HttpError::ContentLength(quote(value.trim_ascii()));
    // A repeated value in one header ("5, 5") is allowed when all agree.
    let mut result: Option<usize> = None;
    for part in value.split(|b| *b == b',') {
        let n = std::str::from_utf8(part.trim_ascii())
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(invalid)?;
        if result.is_some_and(|old| old != n) {
            return Err(HttpError::ContentLengthValues);
        }
        result = Some(n);
    }
    result.ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head, or the error's text as the operator reads it.
    fn head(raw: &str) -> Result<Option<(Head, usize)>, String> {
        parse_head(raw.as_bytes()).map_err(|e| e.to_string())
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
        let err = parse_head(&binary).expect_err("binary").to_string();
        assert!(err.contains("\\xff\\x00\\x1b"), "{err}");
    }

    #[test]
    fn header_limits_and_folding() {
        let folded = "HTTP/1.1 200 OK\r\nX-Long: a\r\n b\r\nContent-Length: 2\r\n\r\n";
        let (h, _) = head(folded).expect("folded").expect("complete");
        assert_eq!(h.framing, Framing::Length(2));
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "X: 1\r\n".repeat(MAX_HEADERS + 1)
        );
        let err = head(&many).expect_err("too many headers");
        assert!(err.contains("more than 256 headers"), "{err}");
        let err = head("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n").expect_err("bad line");
        assert!(err.ends_with("\"no colon here\""), "{err}");
    }

    #[test]
    fn status_line_is_judged_once_complete() {
        // The head is not complete, but its first line already says enough.
        for (raw, want) in [
            (
                "HTTP/1.1 099 Odd\r\nServer: x",
                "malformed HTTP status line",
            ),
            ("HTTP/1.1x 200 OK\r\n", "malformed HTTP status line"),
            ("HTTP/3.0 200 OK\r\n", "unsupported HTTP version"),
            ("\r\r", "malformed HTTP status line"),
        ] {
            let err = head(raw).expect_err(raw);
            assert!(err.starts_with(want), "{raw:?}: {err}");
        }
        // A blank line before the status line is tolerated.
        let (h, _) = head("\r\nHTTP/1.1 200 OK\r\n\r\n")
            .expect("leading blank line")
            .expect("complete");
        assert_eq!(h.status, 200);
    }
}

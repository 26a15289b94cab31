//! The response body a digest check reads, by its framing: a length,
//! chunks, or everything until the server closes.

use super::head::Framing;
use super::HttpError;
use crate::health::quote::quote;

/// Largest body read for a digest check.
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// Longest chunk-size or trailer line accepted inside a chunked body.
pub(crate) const MAX_CHUNK_LINE: usize = 1024;

/// Collects a response body according to its framing, up to [`MAX_BODY`].
#[derive(Debug)]
pub(crate) struct BodyReader {
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
    pub(crate) fn new(framing: Framing) -> Self {
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
    pub(crate) fn done(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    /// Consumes bytes read from the socket. Bytes after the end of the body
    /// are ignored (the request said `Connection: close`).
    pub(crate) fn feed(&mut self, mut input: &[u8]) -> Result<(), HttpError> {
        while !input.is_empty() {
            match &mut self.state {
                BodyState::Done => return Ok(()),
                BodyState::Length { remaining, total } => {
                    if *total > MAX_BODY {
                        return Err(HttpError::BodyTooLarge);
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
    pub(crate) fn finish(self) -> Result<Vec<u8>, HttpError> {
        match self.state {
            // A server that closes right after the last chunk, without the
            // final empty line, still sent the whole body.
            BodyState::Done | BodyState::UntilEof | BodyState::Chunk(ChunkState::Trailer(_)) => {
                Ok(self.body)
            }
            BodyState::Length { remaining, total } => Err(HttpError::BodyCut {
                got: total - remaining,
                total,
            }),
            BodyState::Chunk(_) => Err(HttpError::ChunkedCut),
        }
    }
}

fn push_capped(body: &mut Vec<u8>, data: &[u8]) -> Result<(), HttpError> {
    if body.len() + data.len() > MAX_BODY {
        return Err(HttpError::BodyTooLarge);
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
) -> Result<(usize, Option<BodyState>), HttpError> {
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
                    return Err(HttpError::BodyTooLarge);
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
            _ => Err(HttpError::ChunkEnd),
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

fn push_line(line: &mut Vec<u8>, data: &[u8]) -> Result<(), HttpError> {
    if line.len() + data.len() > MAX_CHUNK_LINE {
        return Err(HttpError::ChunkLine);
    }
    line.extend_from_slice(data);
    Ok(())
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Chunk extensions (";name=value") carry nothing a check needs.
    let size = line
        .split(|b| *b == b';')
        .next()
        .map(<[u8]>::trim_ascii)
        .unwrap_or_default();
    let bad = || HttpError::ChunkSize(quote(line));
    if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let text = std::str::from_utf8(size).map_err(|_| bad())?;
    usize::from_str_radix(text, 16).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body, or the error's text as the operator reads it.
    fn read_body(framing: Framing, pieces: &[&[u8]]) -> Result<Vec<u8>, String> {
        let mut r = BodyReader::new(framing);
        for p in pieces {
            r.feed(p).map_err(|e| e.to_string())?;
        }
        r.finish().map_err(|e| e.to_string())
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
            let err = r.feed(raw).expect_err("must fail").to_string();
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

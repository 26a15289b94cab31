//! Just enough DNS (RFC 1035) for a health check: one query out, one reply
//! judged. Every length and count in a reply is checked against the bytes
//! that arrived, so a hostile or broken server can only fail the check.

use std::fmt;
use std::str::FromStr;

/// Longest name in presentation form, without the final dot.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;
/// Compression pointers followed while reading one name; more means a loop.
const MAX_POINTERS: usize = 16;
const HEADER: usize = 12;
const CLASS_IN: u16 = 1;

/// The record types a check can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QType {
    A,
    Aaaa,
}

impl QType {
    pub(crate) fn code(self) -> u16 {
        match self {
            QType::A => 1,
            QType::Aaaa => 28,
        }
    }
}

impl fmt::Display for QType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QType::A => "A",
            QType::Aaaa => "AAAA",
        })
    }
}

impl FromStr for QType {
    type Err = DnsError;

    fn from_str(s: &str) -> Result<Self, DnsError> {
        match s.to_ascii_uppercase().as_str() {
            "A" => Ok(QType::A),
            "AAAA" => Ok(QType::Aaaa),
            _ => Err(DnsError::UnknownType(s.to_string())),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("`{0}` is not a query type vipd checks: use \"A\" or \"AAAA\"")]
    UnknownType(String),
    #[error("the name is empty; give one such as \"www.example.com\"")]
    EmptyName,
    #[error("the name is {0} characters long; DNS allows at most 253")]
    NameTooLong(usize),
    #[error("label `{0}` is empty or longer than 63 characters")]
    BadLabel(String),
    #[error("the name holds a character that is not printable ASCII")]
    NameNotAscii,
    #[error("DNS reply of {0} bytes is shorter than a DNS header")]
    Truncated(usize),
    #[error("DNS reply runs past its end ({len} bytes) in {part}")]
    PastEnd { len: usize, part: &'static str },
    #[error("DNS reply has the id {got:#06x}, the query had {want:#06x}")]
    WrongId { got: u16, want: u16 },
    #[error("DNS message is a query, not a reply")]
    NotAReply,
    #[error("DNS reply answers {0} questions, the query asked one")]
    QuestionCount(u16),
    #[error("DNS reply is for a different question ({0})")]
    OtherQuestion(String),
    #[error("DNS reply has a name compression loop")]
    PointerLoop,
    #[error("DNS reply has a malformed name")]
    BadName,
    #[error("DNS {0}")]
    Rcode(Rcode),
    #[error("DNS NOERROR without answers for {0}")]
    NoAnswer(QType),
}

/// A reply's response code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rcode(pub u8);

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            n => return write!(f, "RCODE {n}"),
        };
        f.write_str(name)
    }
}

/// Checks a name the way [`encode_query`] will need it.
pub(crate) fn check_name(name: &str) -> Result<(), DnsError> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err(DnsError::EmptyName);
    }
    if !bare.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DnsError::NameNotAscii);
    }
    if bare.len() > MAX_NAME {
        return Err(DnsError::NameTooLong(bare.len()));
    }
    match bare
        .split('.')
        .find(|l| l.is_empty() || l.len() > MAX_LABEL)
    {
        Some(label) => Err(DnsError::BadLabel(label.to_string())),
        None => Ok(()),
    }
}

/// A recursion-desired query for `name` (`IN`, `qtype`) with id `id`.
pub(crate) fn encode_query(id: u16, name: &str, qtype: QType) -> Result<Vec<u8>, DnsError> {
    check_name(name)?;
    let bare = name.strip_suffix('.').unwrap_or(name);
    let mut out = Vec::with_capacity(HEADER + bare.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    // Flags: standard query, recursion desired; one question.
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in bare.split('.') {
        // check_name bounded every label to 63 bytes.
        out.push(u8::try_from(label.len()).map_err(|_| DnsError::BadLabel(label.into()))?);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// The id of a message, if it has a header at all.
pub fn reply_id(msg: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.first()?, *msg.get(1)?]))
}

/// What a good reply held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Answer records in total (CNAMEs included).
    pub records: u16,
    /// Those of the type asked for.
    pub of_type: u16,
}

/// Judges `msg` as the reply to the query ([`encode_query`]) with `id` for
/// `name`/`qtype`: Ok when it is that reply, NOERROR, with at least one
/// answer record of the type asked for (after any CNAMEs).
pub fn decode_reply(msg: &[u8], id: u16, name: &str, qtype: QType) -> Result<Answer, DnsError> {
    let header = msg.get(..HEADER).ok_or(DnsError::Truncated(msg.len()))?;
    let field = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    let got = field(0);
    if got != id {
        return Err(DnsError::WrongId { got, want: id });
    }
    let flags = field(2);
    if flags & 0x8000 == 0 {
        return Err(DnsError::NotAReply);
    }
    let (qdcount, ancount) = (field(4), field(6));
    if qdcount != 1 {
        return Err(DnsError::QuestionCount(qdcount));
    }
    let mut r = Reader { msg, pos: HEADER };
    let qname = r.name("the question")?;
    let (qt, qc) = (r.u16("the question")?, r.u16("the question")?);
    let want = name.strip_suffix('.').unwrap_or(name);
    if !qname.eq_ignore_ascii_case(want) || qt != qtype.code() || qc != CLASS_IN {
        return Err(DnsError::OtherQuestion(format!(
            "{qname} type {qt} class {qc}"
        )));
    }
    let rcode = Rcode((flags & 0x000f) as u8);
    if rcode.0 != 0 {
        return Err(DnsError::Rcode(rcode));
    }
    let mut of_type = 0u16;
    for _ in 0..ancount {
        r.skip_name("an answer")?;
        let rtype = r.u16("an answer")?;
        let class = r.u16("an answer")?;
        r.take(4, "an answer")?;
        let rdlen = r.u16("an answer")?;
        r.take(usize::from(rdlen), "an answer's data")?;
        if rtype == qtype.code() && class == CLASS_IN {
            of_type += 1;
        }
    }
    if of_type == 0 {
        return Err(DnsError::NoAnswer(qtype));
    }
    Ok(Answer {
        records: ancount,
        of_type,
    })
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, part: &'static str) -> Result<&[u8], DnsError> {
        let end = self.pos.checked_add(n);
        let bytes = end
            .and_then(|e| self.msg.get(self.pos..e))
            .ok_or(DnsError::PastEnd {
                len: self.msg.len(),
                part,
            })?;
        self.pos += n;
        Ok(bytes)
    }

    fn u16(&mut self, part: &'static str) -> Result<u16, DnsError> {
        let b = self.take(2, part)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Moves past a name; a compression pointer ends it where it stands.
    fn skip_name(&mut self, part: &'static str) -> Result<(), DnsError> {
        loop {
            let len = *self.take(1, part)?.first().ok_or(DnsError::BadName)?;
            match len {
                0 => return Ok(()),
                1..=63 => {
                    self.take(usize::from(len), part)?;
                }
                0xc0..=0xff => {
                    self.take(1, part)?;
                    return Ok(());
                }
                _ => return Err(DnsError::BadName),
            }
        }
    }

    /// Reads a name in dotted form, following compression pointers.
    fn name(&mut self, part: &'static str) -> Result<String, DnsError> {
        let mut out = String::new();
        let mut at = self.pos;
        let mut resume = None;
        let mut hops = 0;
        loop {
            let past = || DnsError::PastEnd {
                len: self.msg.len(),
                part,
            };
            let len = *self.msg.get(at).ok_or_else(past)?;
            match len {
                0 => {
                    at += 1;
                    break;
                }
                1..=63 => {
                    let label = self
                        .msg
                        .get(at + 1..at + 1 + usize::from(len))
                        .ok_or_else(past)?;
                    if !out.is_empty() {
                        out.push('.');
                    }
                    // Shown in details and logs: nothing unprintable gets through.
                    out.extend(label.iter().map(|b| {
                        if b.is_ascii_graphic() {
                            char::from(*b)
                        } else {
                            '?'
                        }
                    }));
                    if out.len() > MAX_NAME {
                        return Err(DnsError::BadName);
                    }
                    at += 1 + usize::from(len);
                }
                0xc0..=0xff => {
                    let low = *self.msg.get(at + 1).ok_or_else(past)?;
                    hops += 1;
                    if hops > MAX_POINTERS {
                        return Err(DnsError::PointerLoop);
                    }
                    resume.get_or_insert(at + 2);
                    at = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                }
                _ => return Err(DnsError::BadName),
            }
        }
        self.pos = resume.unwrap_or(at);
        Ok(out)
    }
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;

//! Messages: a fixed header, a type-dependent body and the HMAC tag.
//!
//! ```text
//!  0      2   3    4        6     8       16     24           32     34     36
//!  | "VS" | v | ty | sender | to  | epoch | seq  | sent_unix_us | count| flags|
//!  body: count records (Batch, Dump: IPv4, 40 bytes each; Batch6, Dump6:
//!  IPv6, 88 bytes each), or the u32 total (DumpEnd)
//!  tag: HMAC-SHA256 over everything before it, 32 bytes
//! ```
//!
//! `to` names the requester of a dump in Dump, Dump6 and DumpEnd messages
//! (zero otherwise): a dump stream captured on its way to one node cannot
//! be replayed into another. `flags` are zero in version 1 and ignored.
//!
//! The family of a message's records is in its type, so every record of
//! a message has one size and the length check stays exact. The IPv6
//! types came after the first nodes shipped: a node that does not know
//! them refuses those messages as an unknown type (counted), and still
//! takes the IPv4 ones from the same peer.

use crate::auth::{Key, TAG_LEN};
use crate::{AddrFamily, ConnRecord, ConnRecord6, Record, SyncError, WireAddr};

mod field {
    pub(crate) type Field = std::ops::Range<usize>;

    pub(crate) const MAGIC: Field = 0..2;
    pub(crate) const VERSION: usize = 2;
    pub(crate) const TYPE: usize = 3;
    pub(crate) const SENDER: Field = 4..6;
    pub(crate) const TO: Field = 6..8;
    pub(crate) const EPOCH: Field = 8..16;
    pub(crate) const SEQ: Field = 16..24;
    pub(crate) const SENT_UNIX_US: Field = 24..32;
    pub(crate) const COUNT: Field = 32..34;
    pub(crate) const FLAGS: Field = 34..36;
    /// The DumpEnd body.
    pub(crate) const DUMP_TOTAL: Field = 36..40;
}

pub const MAGIC: [u8; 2] = *b"VS";
pub const VERSION: u8 = 1;
/// Bytes before the body.
pub const HEADER_LEN: usize = field::FLAGS.end;
/// The shortest message: a header and a tag, no body.
pub const MIN_MESSAGE_LEN: usize = HEADER_LEN + TAG_LEN;
/// Largest UDP payload over IPv4.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// What a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Live changes of the sender's IPv4 connections.
    Batch,
    /// Live changes of the sender's IPv6 connections.
    Batch6,
    /// The sender just started and asks for everyone's table.
    DumpRequest,
    /// Part of a table (IPv4) sent to the requester named in `to`.
    Dump,
    /// Part of a table (IPv6) sent to the requester named in `to`.
    Dump6,
    /// The end of a dump, with the number of records it held.
    DumpEnd,
    /// Nothing to say; the sender is alive.
    Heartbeat,
}

impl MessageType {
    pub fn code(self) -> u8 {
        match self {
            MessageType::Batch => 1,
            MessageType::DumpRequest => 2,
            MessageType::Dump => 3,
            MessageType::DumpEnd => 4,
            MessageType::Heartbeat => 5,
            MessageType::Batch6 => 6,
            MessageType::Dump6 => 7,
        }
    }

    pub fn from_code(c: u8) -> Option<MessageType> {
        Some(match c {
            1 => MessageType::Batch,
            2 => MessageType::DumpRequest,
            3 => MessageType::Dump,
            4 => MessageType::DumpEnd,
            5 => MessageType::Heartbeat,
            6 => MessageType::Batch6,
            7 => MessageType::Dump6,
            _ => return None,
        })
    }

    /// The family of the records this type carries, `None` if it carries
    /// none.
    pub fn family(self) -> Option<AddrFamily> {
        match self {
            MessageType::Batch | MessageType::Dump => Some(AddrFamily::V4),
            MessageType::Batch6 | MessageType::Dump6 => Some(AddrFamily::V6),
            MessageType::DumpRequest | MessageType::DumpEnd | MessageType::Heartbeat => None,
        }
    }

    /// Part of a dump, addressed to its requester.
    pub fn is_dump(self) -> bool {
        matches!(
            self,
            MessageType::Dump | MessageType::Dump6 | MessageType::DumpEnd
        )
    }

    /// Body length for `count` records, `None` if this type takes no
    /// records but `count` is not zero.
    fn body_len(self, count: u16) -> Option<usize> {
        match self.family() {
            Some(f) => Some(usize::from(count) * f.record_len()),
            None if count != 0 => None,
            None if self == MessageType::DumpEnd => Some(field::DUMP_TOTAL.len()),
            None => Some(0),
        }
    }
}

/// Records of `family` that fit a message of at most `max_datagram` bytes.
pub fn records_per_message(max_datagram: usize, family: AddrFamily) -> usize {
    (max_datagram.saturating_sub(MIN_MESSAGE_LEN) / family.record_len()).min(usize::from(u16::MAX))
}

/// A structurally checked message: magic, version, type and the length
/// its record count implies. The tag is not verified here; that needs the
/// key ([`crate::Session`] does it).
#[derive(Clone, Copy, Debug)]
pub struct MessageView<'a> {
    bytes: &'a [u8],
    msg_type: MessageType,
}

impl<'a> MessageView<'a> {
    pub fn new_checked(bytes: &'a [u8]) -> Result<MessageView<'a>, SyncError> {
        let header = bytes.get(..HEADER_LEN).ok_or(SyncError::Truncated {
            got: bytes.len(),
            need: MIN_MESSAGE_LEN,
        })?;
        let magic = array(header, field::MAGIC);
        if magic != MAGIC {
            return Err(SyncError::Magic(magic));
        }
        if header[field::VERSION] != VERSION {
            return Err(SyncError::Version(header[field::VERSION]));
        }
        let msg_type = MessageType::from_code(header[field::TYPE])
            .ok_or(SyncError::MessageType(header[field::TYPE]))?;
        let count = u16::from_be_bytes(array(header, field::COUNT));
        let length = SyncError::Length {
            count,
            len: bytes.len(),
        };
        let body = msg_type.body_len(count).ok_or(length)?;
        if bytes.len() != HEADER_LEN + body + TAG_LEN {
            return Err(length);
        }
        Ok(MessageView { bytes, msg_type })
    }

    pub fn msg_type(&self) -> MessageType {
        self.msg_type
    }

    pub fn sender(&self) -> u16 {
        u16::from_be_bytes(self.array(field::SENDER))
    }

    /// The requester a Dump or DumpEnd is for.
    pub fn to(&self) -> u16 {
        u16::from_be_bytes(self.array(field::TO))
    }

    pub fn flags(&self) -> u16 {
        u16::from_be_bytes(self.array(field::FLAGS))
    }

    pub fn epoch(&self) -> u64 {
        u64::from_be_bytes(self.array(field::EPOCH))
    }

    pub fn seq(&self) -> u64 {
        u64::from_be_bytes(self.array(field::SEQ))
    }

    pub fn sent_unix_us(&self) -> u64 {
        u64::from_be_bytes(self.array(field::SENT_UNIX_US))
    }

    pub fn record_count(&self) -> u16 {
        u16::from_be_bytes(self.array(field::COUNT))
    }

    /// The family of the records, `None` for a type without records.
    pub fn family(&self) -> Option<AddrFamily> {
        self.msg_type.family()
    }

    /// The raw records, of their family's size each; none for a type
    /// without records.
    pub fn records(&self) -> impl Iterator<Item = &'a [u8]> {
        let len = self.family().map_or(usize::MAX, AddrFamily::record_len);
        self.body().chunks_exact(len)
    }

    /// The record count a DumpEnd announces.
    pub fn dump_total(&self) -> Option<u32> {
        (self.msg_type == MessageType::DumpEnd)
            .then(|| u32::from_be_bytes(self.array(field::DUMP_TOTAL)))
    }

    /// The bytes the tag covers.
    pub fn signed(&self) -> &'a [u8] {
        &self.bytes[..self.tag_start()]
    }

    pub fn tag(&self) -> &'a [u8] {
        &self.bytes[self.tag_start()..]
    }

    fn body(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..self.tag_start()]
    }

    // new_checked made sure the header and tag are there.
    fn tag_start(&self) -> usize {
        self.bytes.len() - TAG_LEN
    }

    fn array<const N: usize>(&self, f: field::Field) -> [u8; N] {
        array(self.bytes, f)
    }
}

// Only called with header fields on a slice of at least HEADER_LEN bytes,
// or the DumpEnd total on a checked DumpEnd.
fn array<const N: usize>(b: &[u8], f: field::Field) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(&b[f]);
    a
}

/// What goes into a message besides its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub msg_type: MessageType,
    pub sender: u16,
    pub to: u16,
    pub epoch: u64,
    pub seq: u64,
    pub sent_unix_us: u64,
}

/// The body of a message being built.
pub(crate) enum Body<'r> {
    Empty,
    Records(&'r [ConnRecord]),
    Records6(&'r [ConnRecord6]),
    DumpTotal(u32),
}

impl Body<'_> {
    /// Records it holds.
    pub(crate) fn records(&self) -> usize {
        match self {
            Body::Records(r) => r.len(),
            Body::Records6(r) => r.len(),
            Body::Empty | Body::DumpTotal(_) => 0,
        }
    }
}

/// Encodes and signs a message. The caller keeps the records within
/// [`records_per_message`] of its datagram size.
pub(crate) fn encode(header: &Header, body: Body<'_>, key: &Key) -> Vec<u8> {
    let count = body.records();
    let body_len = match body {
        Body::Empty => 0,
        Body::Records(r) => r.len() * ConnRecord::LEN,
        Body::Records6(r) => r.len() * ConnRecord6::LEN,
        Body::DumpTotal(_) => field::DUMP_TOTAL.len(),
    };
    let tag_start = HEADER_LEN + body_len;
    let mut b = vec![0; tag_start + TAG_LEN];
    b[field::MAGIC].copy_from_slice(&MAGIC);
    b[field::VERSION] = VERSION;
    b[field::TYPE] = header.msg_type.code();
    b[field::SENDER].copy_from_slice(&header.sender.to_be_bytes());
    b[field::TO].copy_from_slice(&header.to.to_be_bytes());
    b[field::EPOCH].copy_from_slice(&header.epoch.to_be_bytes());
    b[field::SEQ].copy_from_slice(&header.seq.to_be_bytes());
    b[field::SENT_UNIX_US].copy_from_slice(&header.sent_unix_us.to_be_bytes());
    let count = u16::try_from(count).unwrap_or(u16::MAX);
    b[field::COUNT].copy_from_slice(&count.to_be_bytes());
    match body {
        Body::Records(records) => write_records(records, &mut b[HEADER_LEN..tag_start]),
        Body::Records6(records) => write_records(records, &mut b[HEADER_LEN..tag_start]),
        Body::DumpTotal(total) => b[field::DUMP_TOTAL].copy_from_slice(&total.to_be_bytes()),
        Body::Empty => {}
    }
    let tag = key.tag(&b[..tag_start]);
    b[tag_start..].copy_from_slice(&tag);
    b
}

fn write_records<A: WireAddr>(records: &[Record<A>], body: &mut [u8]) {
    for (r, chunk) in records.iter().zip(body.chunks_exact_mut(Record::<A>::LEN)) {
        r.write(chunk);
    }
}

//! The connection record: what a node must know to forward the packets of
//! a connection another node opened. Plain and fixed-size per address
//! family; every field is node-independent (addresses, ports, MACs of the
//! shared segment), so the receiver rebuilds the rewrites from its own
//! service table.

use std::fmt::Debug;

use crate::SyncError;

/// What a record asks the receiver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RecordOp {
    /// Create or update the connection.
    #[default]
    Upsert,
    /// Forget it.
    Delete,
}

/// The address family of a record. A message carries records of one
/// family; its type says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrFamily {
    V4,
    V6,
}

impl AddrFamily {
    /// Size of a record of this family on the wire.
    pub const fn record_len(self) -> usize {
        self.layout().len
    }

    const fn layout(self) -> &'static Layout {
        match self {
            AddrFamily::V4 => &field::V4,
            AddrFamily::V6 => &field::V6,
        }
    }
}

mod sealed {
    /// How an address goes on the wire: big-endian, in its layout's field.
    pub trait Codec: Sized {
        fn put(self, b: &mut [u8]);
        /// `b` is exactly the field, of the address's size.
        fn get(b: &[u8]) -> Self;
    }
}

/// An address type records carry: `u32` for IPv4 (host order,
/// `Ipv4Addr::to_bits`), `[u8; 16]` for IPv6 (`Ipv6Addr::octets`).
pub trait WireAddr: sealed::Codec + Copy + Default + Eq + Debug + Send + Sync + 'static {
    const FAMILY: AddrFamily;
    /// The record as the family-tagged form sessions and queues carry.
    fn wrap(record: Record<Self>) -> AnyRecord;
}

impl sealed::Codec for u32 {
    fn put(self, b: &mut [u8]) {
        b.copy_from_slice(&self.to_be_bytes());
    }
    fn get(b: &[u8]) -> u32 {
        u32::from_be_bytes(array(b))
    }
}

impl WireAddr for u32 {
    const FAMILY: AddrFamily = AddrFamily::V4;
    fn wrap(record: ConnRecord) -> AnyRecord {
        AnyRecord::V4(record)
    }
}

impl sealed::Codec for [u8; 16] {
    fn put(self, b: &mut [u8]) {
        b.copy_from_slice(&self);
    }
    fn get(b: &[u8]) -> [u8; 16] {
        array(b)
    }
}

impl WireAddr for [u8; 16] {
    const FAMILY: AddrFamily = AddrFamily::V6;
    fn wrap(record: ConnRecord6) -> AnyRecord {
        AnyRecord::V6(record)
    }
}

/// One connection, its addresses of type `A`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Record<A> {
    pub op: RecordOp,
    /// IP protocol (6 TCP, 17 UDP).
    pub proto: u8,
    /// Connection state as the dataplane numbers it.
    pub state: u8,
    pub client_ip: A,
    pub client_port: u16,
    pub vip: A,
    pub vip_port: u16,
    pub backend_ip: A,
    pub backend_port: u16,
    /// Full-NAT source address and port; zero in the other modes.
    pub snat_ip: A,
    pub snat_port: u16,
    /// Where replies to the client go on the client's segment.
    pub client_mac: [u8; 6],
    /// The node that opened the connection (split-brain tie-break).
    pub origin: u16,
    /// Idle time left before the connection expires, ms.
    pub timeout_ms: u32,
}

/// An IPv4 connection: 40 bytes on the wire.
pub type ConnRecord = Record<u32>;
/// An IPv6 connection: 88 bytes on the wire.
pub type ConnRecord6 = Record<[u8; 16]>;

/// A record of either family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnyRecord {
    V4(ConnRecord),
    V6(ConnRecord6),
}

impl<A: WireAddr> From<Record<A>> for AnyRecord {
    fn from(r: Record<A>) -> AnyRecord {
        A::wrap(r)
    }
}

impl AnyRecord {
    pub fn family(&self) -> AddrFamily {
        match self {
            AnyRecord::V4(_) => AddrFamily::V4,
            AnyRecord::V6(_) => AddrFamily::V6,
        }
    }

    pub fn op(&self) -> RecordOp {
        match self {
            AnyRecord::V4(r) => r.op,
            AnyRecord::V6(r) => r.op,
        }
    }

    /// Reads a record of `family` from the first bytes of `buf`.
    pub fn decode(family: AddrFamily, buf: &[u8]) -> Result<AnyRecord, SyncError> {
        Ok(match family {
            AddrFamily::V4 => AnyRecord::V4(ConnRecord::decode(buf)?),
            AddrFamily::V6 => AnyRecord::V6(ConnRecord6::decode(buf)?),
        })
    }
}

/// Where a family's fields sit in its record. The first four bytes (op,
/// proto, state, reserved) are common to both families.
pub(crate) struct Layout {
    client_ip: field::Field,
    client_port: field::Field,
    vip: field::Field,
    vip_port: field::Field,
    backend_ip: field::Field,
    backend_port: field::Field,
    snat_ip: field::Field,
    snat_port: field::Field,
    client_mac: field::Field,
    origin: field::Field,
    timeout_ms: field::Field,
    len: usize,
}

/// Wire layouts of the records: big-endian, no padding left implicit.
/// Every offset is written here once; the codec only names them.
mod field {
    use super::Layout;

    pub(crate) type Field = std::ops::Range<usize>;

    pub(crate) const OP: usize = 0;
    pub(crate) const PROTO: usize = 1;
    /// Opaque to this crate: the dataplane's numbering.
    pub(crate) const STATE: usize = 2;
    /// Zero; a non-zero byte means a sender this version does not know.
    pub(crate) const RESERVED: usize = 3;

    /// IPv4: 40 bytes, the addresses among the ports.
    pub(crate) const V4: Layout = Layout {
        client_ip: 4..8,
        client_port: 8..10,
        vip_port: 10..12,
        vip: 12..16,
        backend_ip: 16..20,
        backend_port: 20..22,
        snat_port: 22..24,
        snat_ip: 24..28,
        client_mac: 28..34,
        origin: 34..36,
        timeout_ms: 36..40,
        len: 40,
    };

    /// IPv6: 88 bytes, the short fields first and the four addresses
    /// after them, each on a 16-byte boundary of the record.
    pub(crate) const V6: Layout = Layout {
        client_port: 4..6,
        vip_port: 6..8,
        backend_port: 8..10,
        snat_port: 10..12,
        client_mac: 12..18,
        origin: 18..20,
        timeout_ms: 20..24,
        client_ip: 24..40,
        vip: 40..56,
        backend_ip: 56..72,
        snat_ip: 72..88,
        len: 88,
    };
}

const OP_UPSERT: u8 = 0;
const OP_DELETE: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

impl RecordOp {
    fn code(self) -> u8 {
        match self {
            RecordOp::Upsert => OP_UPSERT,
            RecordOp::Delete => OP_DELETE,
        }
    }

    fn from_code(c: u8) -> Result<RecordOp, SyncError> {
        match c {
            OP_UPSERT => Ok(RecordOp::Upsert),
            OP_DELETE => Ok(RecordOp::Delete),
            value => Err(SyncError::RecordField { field: "op", value }),
        }
    }
}

impl<A: WireAddr> Record<A> {
    /// Size of the wire form.
    pub const LEN: usize = A::FAMILY.record_len();

    /// Writes the wire form into the first [`Record::LEN`] bytes of `buf`;
    /// a shorter `buf` is left untouched and reported.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<(), SyncError> {
        let got = buf.len();
        let b = buf.get_mut(..Self::LEN).ok_or(SyncError::Truncated {
            got,
            need: Self::LEN,
        })?;
        self.write(b);
        Ok(())
    }

    /// Writes into a slice the caller made exactly [`Record::LEN`] bytes
    /// long.
    pub(crate) fn write(&self, b: &mut [u8]) {
        let l = A::FAMILY.layout();
        b[field::OP] = self.op.code();
        b[field::PROTO] = self.proto;
        b[field::STATE] = self.state;
        b[field::RESERVED] = 0;
        self.client_ip.put(&mut b[l.client_ip.clone()]);
        b[l.client_port.clone()].copy_from_slice(&self.client_port.to_be_bytes());
        self.vip.put(&mut b[l.vip.clone()]);
        b[l.vip_port.clone()].copy_from_slice(&self.vip_port.to_be_bytes());
        self.backend_ip.put(&mut b[l.backend_ip.clone()]);
        b[l.backend_port.clone()].copy_from_slice(&self.backend_port.to_be_bytes());
        self.snat_ip.put(&mut b[l.snat_ip.clone()]);
        b[l.snat_port.clone()].copy_from_slice(&self.snat_port.to_be_bytes());
        b[l.client_mac.clone()].copy_from_slice(&self.client_mac);
        b[l.origin.clone()].copy_from_slice(&self.origin.to_be_bytes());
        b[l.timeout_ms.clone()].copy_from_slice(&self.timeout_ms.to_be_bytes());
    }

    /// Reads a record from the first [`Record::LEN`] bytes of `buf`. The
    /// op, the protocol and the reserved byte are checked; the state byte
    /// is the dataplane's business.
    pub fn decode(buf: &[u8]) -> Result<Record<A>, SyncError> {
        let b = buf.get(..Self::LEN).ok_or(SyncError::Truncated {
            got: buf.len(),
            need: Self::LEN,
        })?;
        let l = A::FAMILY.layout();
        let op = RecordOp::from_code(b[field::OP])?;
        let proto = b[field::PROTO];
        if proto != PROTO_TCP && proto != PROTO_UDP {
            return Err(SyncError::RecordField {
                field: "proto",
                value: proto,
            });
        }
        if b[field::RESERVED] != 0 {
            return Err(SyncError::RecordField {
                field: "reserved",
                value: b[field::RESERVED],
            });
        }
        let be16 = |f: &field::Field| u16::from_be_bytes(array(&b[f.clone()]));
        let be32 = |f: &field::Field| u32::from_be_bytes(array(&b[f.clone()]));
        Ok(Record {
            op,
            proto,
            state: b[field::STATE],
            client_ip: A::get(&b[l.client_ip.clone()]),
            client_port: be16(&l.client_port),
            vip: A::get(&b[l.vip.clone()]),
            vip_port: be16(&l.vip_port),
            backend_ip: A::get(&b[l.backend_ip.clone()]),
            backend_port: be16(&l.backend_port),
            snat_ip: A::get(&b[l.snat_ip.clone()]),
            snat_port: be16(&l.snat_port),
            client_mac: array(&b[l.client_mac.clone()]),
            origin: be16(&l.origin),
            timeout_ms: be32(&l.timeout_ms),
        })
    }
}

// Only called with a layout's field of a record of the layout's length,
// whose size is the array's (the codec tests cover every field).
fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(b);
    a
}

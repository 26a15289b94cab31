//! The connection record: what a node must know to forward the packets of
//! a connection another node opened. Plain and fixed-size; every field is
//! node-independent (addresses, ports, MACs of the shared segment), so the
//! receiver rebuilds the rewrites from its own service table.

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

/// One connection. IPv4 addresses are host-order `u32`
/// (`Ipv4Addr::to_bits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConnRecord {
    pub op: RecordOp,
    /// IP protocol (6 TCP, 17 UDP).
    pub proto: u8,
    /// Connection state as the dataplane numbers it.
    pub state: u8,
    pub client_ip: u32,
    pub client_port: u16,
    pub vip: u32,
    pub vip_port: u16,
    pub backend_ip: u32,
    pub backend_port: u16,
    /// Full-NAT source address and port; 0 in the other modes.
    pub snat_ip: u32,
    pub snat_port: u16,
    /// Where replies to the client go on the client's segment.
    pub client_mac: [u8; 6],
    /// The node that opened the connection (split-brain tie-break).
    pub origin: u16,
    /// Idle time left before the connection expires, ms.
    pub timeout_ms: u32,
}

/// Wire layout of a record: 40 bytes, big-endian, no padding left
/// implicit. Every offset is written here once; the codec only names them.
mod field {
    pub(crate) type Field = std::ops::Range<usize>;

    pub(crate) const OP: usize = 0;
    pub(crate) const PROTO: usize = 1;
    /// Opaque to this crate: the dataplane's numbering.
    pub(crate) const STATE: usize = 2;
    /// Zero; a non-zero byte means a sender this version does not know.
    pub(crate) const RESERVED: usize = 3;
    pub(crate) const CLIENT_IP: Field = 4..8;
    pub(crate) const CLIENT_PORT: Field = 8..10;
    pub(crate) const VIP_PORT: Field = 10..12;
    pub(crate) const VIP: Field = 12..16;
    pub(crate) const BACKEND_IP: Field = 16..20;
    pub(crate) const BACKEND_PORT: Field = 20..22;
    pub(crate) const SNAT_PORT: Field = 22..24;
    pub(crate) const SNAT_IP: Field = 24..28;
    pub(crate) const CLIENT_MAC: Field = 28..34;
    pub(crate) const ORIGIN: Field = 34..36;
    pub(crate) const TIMEOUT_MS: Field = 36..40;
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

impl ConnRecord {
    /// Size of the wire form.
    pub const LEN: usize = field::TIMEOUT_MS.end;

    /// Writes the wire form into the first [`ConnRecord::LEN`] bytes of
    /// `buf`; a shorter `buf` is left untouched and reported.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<(), SyncError> {
        let got = buf.len();
        let b = buf.get_mut(..Self::LEN).ok_or(SyncError::Truncated {
            got,
            need: Self::LEN,
        })?;
        self.write(b);
        Ok(())
    }

    /// Writes into a slice the caller made exactly [`ConnRecord::LEN`]
    /// bytes long.
    pub(crate) fn write(&self, b: &mut [u8]) {
        b[field::OP] = self.op.code();
        b[field::PROTO] = self.proto;
        b[field::STATE] = self.state;
        b[field::RESERVED] = 0;
        b[field::CLIENT_IP].copy_from_slice(&self.client_ip.to_be_bytes());
        b[field::CLIENT_PORT].copy_from_slice(&self.client_port.to_be_bytes());
        b[field::VIP_PORT].copy_from_slice(&self.vip_port.to_be_bytes());
        b[field::VIP].copy_from_slice(&self.vip.to_be_bytes());
        b[field::BACKEND_IP].copy_from_slice(&self.backend_ip.to_be_bytes());
        b[field::BACKEND_PORT].copy_from_slice(&self.backend_port.to_be_bytes());
        b[field::SNAT_PORT].copy_from_slice(&self.snat_port.to_be_bytes());
        b[field::SNAT_IP].copy_from_slice(&self.snat_ip.to_be_bytes());
        b[field::CLIENT_MAC].copy_from_slice(&self.client_mac);
        b[field::ORIGIN].copy_from_slice(&self.origin.to_be_bytes());
        b[field::TIMEOUT_MS].copy_from_slice(&self.timeout_ms.to_be_bytes());
    }

    /// Reads a record from the first [`ConnRecord::LEN`] bytes of `buf`.
    /// The op, the protocol and the reserved byte are checked; the state
    /// byte is the dataplane's business.
    pub fn decode(buf: &[u8]) -> Result<ConnRecord, SyncError> {
        let b: &[u8; Self::LEN] =
            buf.get(..Self::LEN)
                .and_then(|b| b.try_into().ok())
                .ok_or(SyncError::Truncated {
                    got: buf.len(),
                    need: Self::LEN,
                })?;
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
        Ok(ConnRecord {
            op,
            proto,
            state: b[field::STATE],
            client_ip: be32(b, field::CLIENT_IP),
            client_port: be16(b, field::CLIENT_PORT),
            vip: be32(b, field::VIP),
            vip_port: be16(b, field::VIP_PORT),
            backend_ip: be32(b, field::BACKEND_IP),
            backend_port: be16(b, field::BACKEND_PORT),
            snat_ip: be32(b, field::SNAT_IP),
            snat_port: be16(b, field::SNAT_PORT),
            client_mac: bytes(b, field::CLIENT_MAC),
            origin: be16(b, field::ORIGIN),
            timeout_ms: be32(b, field::TIMEOUT_MS),
        })
    }
}

// The field ranges are constants inside the 40-byte array, so the slices
// below are always in bounds and of the right length.
fn bytes<const N: usize>(b: &[u8; ConnRecord::LEN], f: field::Field) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(&b[f]);
    a
}

fn be16(b: &[u8; ConnRecord::LEN], f: field::Field) -> u16 {
    u16::from_be_bytes(bytes(b, f))
}

fn be32(b: &[u8; ConnRecord::LEN], f: field::Field) -> u32 {
    u32::from_be_bytes(bytes(b, f))
}

//! The connection record: what a node must know to forward the packets of
//! a connection another node opened. Plain and fixed-size; every field is
//! node-independent (addresses, ports, MACs of the shared segment), so the
//! receiver rebuilds the rewrites from its own service table.

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

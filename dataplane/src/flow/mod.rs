//! The per-worker connection table.
//!
//! A worker owns one [`FlowTable`]; nothing in it is shared or locked. Each
//! connection is reachable by two keys (the packet as the client sends it and
//! the packet as the backend answers it), and packets from either direction
//! drive one TCP state, whose timeout decides when the entry may be reclaimed.

mod addr;
mod table;

pub use addr::{Addr, Ip6};
pub use table::{ConnId, FlowTable, InsertError, Offload};

/// TCP header flag bits, as in the flags byte on the wire.
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

const PROTO_TCP: u8 = 6;

/// One direction of a connection as received. IPv4 addresses are host-order
/// `u32` (`Ipv4Addr::to_bits`), IPv6 ones [`Ip6`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct FlowKey<A = u32> {
    pub src_ip: A,
    pub dst_ip: A,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
}

impl<A: Copy> FlowKey<A> {
    /// The key of packets travelling the other way.
    pub fn reversed(&self) -> FlowKey<A> {
        FlowKey {
            src_ip: self.dst_ip,
            dst_ip: self.src_ip,
            src_port: self.dst_port,
            dst_port: self.src_port,
            proto: self.proto,
        }
    }
}

// The XDP program's maps and the sync records mirror the IPv4 layouts: the
// generic address must not grow them.
const _: () = assert!(std::mem::size_of::<FlowKey>() == 16);
const _: () = assert!(std::mem::size_of::<Rewrite>() == 28);

/// A change to the XDP program's map of connection keys. NAT replies come
/// from the backends' own addresses, whose other traffic the kernel routes:
/// the program hands a packet to the workers only while its key belongs to
/// a live connection. Packets of an offloaded connection it forwards itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SteerChange<A = u32> {
    /// The port the key's packets arrive on.
    pub port: u8,
    pub key: FlowKey<A>,
    pub action: SteerAction<A>,
}

/// What the XDP program does with the packets of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SteerAction<A = u32> {
    /// Hand them to the workers.
    ToWorker,
    /// Rewrite them by this and send them on from the XDP program,
    /// counting them for `backend`.
    Forward { rewrite: Rewrite<A>, backend: u32 },
    /// Forget the key: its packets are treated like any other traffic.
    Remove,
}

/// What the XDP program saw of offloaded connections: the one window the
/// flow table has on packets that never reach its worker.
pub trait FastSeen<A = u32> {
    /// When (engine clock, ms) the program last forwarded a packet of `key`
    /// arriving on `port`; `None` if it has not, or cannot tell.
    fn last_seen_ms(&mut self, port: u8, key: &FlowKey<A>) -> Option<u64>;
}

/// [`FastSeen`] for both families, as a worker's housekeeping reads it:
/// the IPv4 and the IPv6 table each see through their own view.
pub trait FastSeenAll {
    fn v4(&mut self) -> &mut dyn FastSeen;
    fn v6(&mut self) -> &mut dyn FastSeen<Ip6>;
}

impl<T: FastSeen + FastSeen<Ip6>> FastSeenAll for T {
    fn v4(&mut self) -> &mut dyn FastSeen {
        self
    }
    fn v6(&mut self) -> &mut dyn FastSeen<Ip6> {
        self
    }
}

/// A [`FastSeen`] for tables that offload nothing.
pub struct NothingSeen;

impl<A> FastSeen<A> for NothingSeen {
    fn last_seen_ms(&mut self, _port: u8, _key: &FlowKey<A>) -> Option<u64> {
        None
    }
}

/// What to write into packets matching one direction of a connection. Plain
/// and fixed-size on purpose: it will later be mirrored into a BPF map and
/// sent to peer nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Rewrite<A = u32> {
    pub src_ip: A,
    pub dst_ip: A,
    pub src_port: u16,
    pub dst_port: u16,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub egress: u8,
}

impl<A: Copy> Rewrite<A> {
    /// The same rewrite with source and destination swapped: the packet it
    /// produces, as the other side saw it.
    pub fn reversed(&self) -> Rewrite<A> {
        Rewrite {
            src_ip: self.dst_ip,
            dst_ip: self.src_ip,
            src_port: self.dst_port,
            dst_port: self.src_port,
            ..*self
        }
    }
}

/// Which side sent a packet. `Forward` is client → backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reply,
}

/// Connection state, named and timed as LVS does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnState {
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    Udp,
}

impl ConnState {
    /// Half-open: the first to go when the table is under pressure.
    pub fn is_embryonic(self) -> bool {
        matches!(self, ConnState::SynSent | ConnState::SynRecv)
    }

    /// Whether packets in this state may bypass the worker: nothing in them
    /// can change the state (SYN, FIN and RST always reach the worker).
    pub fn is_offloadable(self) -> bool {
        matches!(self, ConnState::Established | ConnState::Udp)
    }

    /// Counted as ActiveConn (as LVS does); every other live state is InActConn.
    pub fn is_active(self) -> bool {
        matches!(self, ConnState::Established | ConnState::Udp)
    }

    pub fn name(self) -> &'static str {
        match self {
            ConnState::SynSent => "SYN_SENT",
            ConnState::SynRecv => "SYN_RECV",
            ConnState::Established => "ESTABLISHED",
            ConnState::FinWait => "FIN_WAIT",
            ConnState::CloseWait => "CLOSE_WAIT",
            ConnState::LastAck => "LAST_ACK",
            ConnState::TimeWait => "TIME_WAIT",
            ConnState::Close => "CLOSE",
            ConnState::Udp => "UDP",
        }
    }

    /// The state's number in connection sync records.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Every state, in the order of their codes.
    pub const ALL: [ConnState; 9] = [
        ConnState::SynSent,
        ConnState::SynRecv,
        ConnState::Established,
        ConnState::FinWait,
        ConnState::CloseWait,
        ConnState::LastAck,
        ConnState::TimeWait,
        ConnState::Close,
        ConnState::Udp,
    ];

    /// The state numbered `code` by [`ConnState::code`].
    pub fn from_code(code: u8) -> Option<ConnState> {
        Self::ALL.get(usize::from(code)).copied()
    }

    pub(crate) fn timeout_ms(self, t: &Timeouts) -> u64 {
        match self {
            ConnState::SynSent | ConnState::SynRecv => t.embryonic_ms,
            ConnState::Established => t.established_ms,
            ConnState::FinWait | ConnState::CloseWait | ConnState::LastAck => t.closing_ms,
            ConnState::TimeWait => t.time_wait_ms,
            ConnState::Close => t.close_ms,
            ConnState::Udp => t.udp_ms,
        }
    }
}

/// How long an idle connection survives in each state.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub embryonic_ms: u64,
    pub established_ms: u64,
    pub closing_ms: u64,
    pub time_wait_ms: u64,
    pub close_ms: u64,
    pub udp_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            embryonic_ms: 5_000,
            established_ms: 900_000,
            closing_ms: 60_000,
            time_wait_ms: 10_000,
            close_ms: 2_000,
            udp_ms: 300_000,
        }
    }
}

/// FIN bookkeeping kept in [`Conn::fins`].
const FIN_FORWARD: u8 = 1;
const FIN_REPLY: u8 = 2;
/// Set when the most recent FIN came from the reply side.
const FIN_LAST_REPLY: u8 = 4;

/// One connection: the rewrite for each direction and where it is going.
#[derive(Clone, Copy, Debug)]
pub struct Conn<A = u32> {
    pub forward: Rewrite<A>,
    pub reply: Rewrite<A>,
    pub service: u16,
    pub backend_id: u32,
    pub client_ip: A,
    pub state: ConnState,
    pub created_ms: u64,
    /// Opened from a mid-connection segment: the connection began on another
    /// node (or before a restart) and was picked up here.
    pub picked_up: bool,
    /// Learned from a peer node by connection sync and not yet forwarded
    /// here: the peer owns it; this node holds it for a takeover.
    pub learned: bool,
    /// The node that opened it (connection sync's split-brain tie-break).
    pub origin: u16,
    fins: u8,
}

impl<A: Copy> Conn<A> {
    /// The rewrite of packets travelling in `dir`.
    pub fn rewrite(&self, dir: Direction) -> Rewrite<A> {
        match dir {
            Direction::Forward => self.forward,
            Direction::Reply => self.reply,
        }
    }
}

impl<A> Conn<A> {
    /// A new connection. TCP (`proto` 6) starts in `SynRecv`, so it counts as
    /// embryonic until the client's handshake ACK; any other protocol is
    /// tracked as a datagram flow (`Udp`).
    pub fn new(
        forward: Rewrite<A>,
        reply: Rewrite<A>,
        service: u16,
        backend_id: u32,
        client_ip: A,
        proto: u8,
        now_ms: u64,
    ) -> Conn<A> {
        Conn {
            forward,
            reply,
            service,
            backend_id,
            client_ip,
            state: if proto == PROTO_TCP {
                ConnState::SynRecv
            } else {
                ConnState::Udp
            },
            created_ms: now_ms,
            picked_up: false,
            learned: false,
            origin: 0,
            fins: 0,
        }
    }

    /// Advances the state for one packet. Works whether both directions are
    /// seen (NAT, full NAT) or only `Forward` (direct routing): every step
    /// needed to reach `Established` and `Close` is driven by the client side.
    fn advance(&mut self, dir: Direction, flags: u8) {
        use ConnState::*;
        if self.state == Udp {
            return;
        }
        let syn = flags & TCP_SYN != 0;
        let ack = flags & TCP_ACK != 0;
        let fin = flags & TCP_FIN != 0;
        if flags & TCP_RST != 0 {
            self.state = Close;
            return;
        }
        let finished = matches!(self.state, Close | TimeWait);
        if syn && !ack {
            // A bare SYN on a finished tuple opens a new incarnation; on a
            // live connection it is a retransmission and changes nothing.
            if finished {
                self.fins = 0;
                self.state = match dir {
                    Direction::Forward => SynRecv,
                    Direction::Reply => SynSent,
                };
            }
            return;
        }
        if syn {
            // SYN-ACK: the handshake is progressing but not complete until
            // the final ACK, which is what proves the client is real.
            return;
        }
        if fin {
            if finished {
                return;
            }
            self.fins |= match dir {
                Direction::Forward => FIN_FORWARD,
                Direction::Reply => FIN_REPLY | FIN_LAST_REPLY,
            };
            if dir == Direction::Forward {
                self.fins &= !FIN_LAST_REPLY;
            }
            self.state = if self.fins & (FIN_FORWARD | FIN_REPLY) == FIN_FORWARD | FIN_REPLY {
                LastAck
            } else if dir == Direction::Forward {
                FinWait
            } else {
                CloseWait
            };
            return;
        }
        if ack {
            self.state = match (self.state, dir) {
                (SynRecv, Direction::Forward) | (SynSent, Direction::Reply) => Established,
                (LastAck, d) => {
                    // Only the side that did not send the last FIN can ACK it.
                    let last_from_reply = self.fins & FIN_LAST_REPLY != 0;
                    if last_from_reply == (d == Direction::Forward) {
                        TimeWait
                    } else {
                        LastAck
                    }
                }
                (s, _) => s,
            };
        }
    }
}

#[cfg(test)]
mod table_tests;

#[cfg(test)]
mod state_tests {
    use super::*;
    use ConnState::*;
    use Direction::{Forward as F, Reply as R};

    fn tcp() -> Conn {
        Conn::new(Rewrite::default(), Rewrite::default(), 1, 7, 9, 6, 0)
    }

    fn run(steps: &[(Direction, u8, ConnState)]) {
        let mut c = tcp();
        for (i, &(d, flags, want)) in steps.iter().enumerate() {
            c.advance(d, flags);
            assert_eq!(c.state, want, "step {i}: {d:?} flags {flags:#x}");
        }
    }

    #[test]
    fn open_and_client_close_both_directions() {
        run(&[
            (F, TCP_SYN, SynRecv),
            (R, TCP_SYN | TCP_ACK, SynRecv),
            (F, TCP_ACK, Established),
            (R, TCP_ACK, Established),
            (F, TCP_FIN | TCP_ACK, FinWait),
            (R, TCP_ACK, FinWait),
            (R, TCP_FIN | TCP_ACK, LastAck),
            (R, TCP_ACK, LastAck),
            (F, TCP_ACK, TimeWait),
        ]);
    }

    #[test]
    fn server_close_both_directions() {
        run(&[
            (F, TCP_SYN, SynRecv),
            (R, TCP_SYN | TCP_ACK, SynRecv),
            (F, TCP_ACK, Established),
            (R, TCP_FIN | TCP_ACK, CloseWait),
            (F, TCP_ACK, CloseWait),
            (F, TCP_FIN | TCP_ACK, LastAck),
            (F, TCP_ACK, LastAck),
            (R, TCP_ACK, TimeWait),
        ]);
    }

    #[test]
    fn forward_only_reaches_established_and_close() {
        run(&[
            (F, TCP_SYN, SynRecv),
            (F, TCP_SYN, SynRecv),
            (F, TCP_ACK, Established),
            (F, TCP_ACK, Established),
            (F, TCP_FIN | TCP_ACK, FinWait),
            (F, TCP_ACK, FinWait),
            (F, TCP_RST, Close),
            (F, TCP_ACK, Close),
            (F, TCP_SYN, SynRecv),
            (F, TCP_ACK, Established),
        ]);
    }

    #[test]
    fn rst_and_reopen_after_time_wait() {
        run(&[
            (F, TCP_SYN, SynRecv),
            (R, TCP_RST | TCP_ACK, Close),
            (F, TCP_SYN, SynRecv),
            (F, TCP_ACK, Established),
            (F, TCP_FIN, FinWait),
            (R, TCP_FIN | TCP_ACK, LastAck),
            (F, TCP_ACK, TimeWait),
            (F, TCP_FIN, TimeWait),
            (F, TCP_SYN, SynRecv),
            (F, TCP_ACK, Established),
        ]);
    }

    #[test]
    fn backend_initiated_open() {
        run(&[
            (R, TCP_RST, Close),
            (R, TCP_SYN, SynSent),
            (F, TCP_SYN | TCP_ACK, SynSent),
            (R, TCP_ACK, Established),
        ]);
    }

    #[test]
    fn state_codes_round_trip_and_reject_unknown_numbers() {
        for (i, s) in ConnState::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(s.code()), i, "{s:?}");
            assert_eq!(ConnState::from_code(s.code()), Some(s));
        }
        assert_eq!(ConnState::from_code(9), None);
        assert_eq!(ConnState::from_code(u8::MAX), None);
    }

    #[test]
    fn udp_ignores_flags() {
        let mut c = Conn::new(Rewrite::default(), Rewrite::default(), 1, 7, 9, 17, 0);
        for flags in [TCP_SYN, TCP_FIN, TCP_RST, TCP_ACK] {
            c.advance(F, flags);
            assert_eq!(c.state, Udp);
        }
        assert!(Udp.is_active() && Established.is_active() && !SynRecv.is_active());
        assert!(SynRecv.is_embryonic() && SynSent.is_embryonic() && !Close.is_embryonic());
    }
}

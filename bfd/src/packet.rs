//! BFD control packets (RFC 5880 section 4.1): a checked view over received
//! bytes and the plain [`Control`] value that encodes them.

use std::fmt;

/// Length of a control packet without an authentication section.
pub const PACKET_LEN: usize = field::ECHO_RX.end;
const VERSION: u8 = 1;
/// Shortest authentication section (type and length octets plus one byte).
const MIN_AUTH_LEN: usize = 2;

mod field {
    pub(crate) type Field = std::ops::Range<usize>;

    /// Version (3 bits) and diagnostic (5 bits).
    pub(crate) const VERS_DIAG: usize = 0;
    /// State (2 bits) and the P, F, C, A, D, M flags.
    pub(crate) const STATE_FLAGS: usize = 1;
    pub(crate) const DETECT_MULT: usize = 2;
    pub(crate) const LENGTH: usize = 3;
    pub(crate) const MY_DISCR: Field = 4..8;
    pub(crate) const YOUR_DISCR: Field = 8..12;
    pub(crate) const DESIRED_MIN_TX: Field = 12..16;
    pub(crate) const REQUIRED_MIN_RX: Field = 16..20;
    pub(crate) const ECHO_RX: Field = 20..24;
}

mod flag {
    pub(crate) const POLL: u8 = 0x20;
    pub(crate) const FINAL: u8 = 0x10;
    pub(crate) const CPI: u8 = 0x08;
    pub(crate) const AUTH: u8 = 0x04;
    pub(crate) const DEMAND: u8 = 0x02;
    pub(crate) const MULTIPOINT: u8 = 0x01;
}

/// What makes received bytes not a BFD control packet (RFC 5880 6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("{0} bytes, shorter than the 24-byte control packet")]
    Truncated(usize),
    #[error("version {0}, only BFD version 1 exists")]
    Version(u8),
    #[error("length field {field} does not fit the {got}-byte datagram (minimum {min})")]
    Length {
        field: usize,
        got: usize,
        min: usize,
    },
    #[error("detect multiplier 0")]
    DetectMult,
    #[error("multipoint bit set")]
    Multipoint,
    #[error("my discriminator 0")]
    MyDiscriminator,
}

/// Session state as carried in packets and kept by a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

impl State {
    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// Diagnostic codes (RFC 5880 section 4.1); codes not assigned there are
/// kept as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diag {
    None,
    DetectionTimeExpired,
    EchoFailed,
    NeighborSignaledDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    Other(u8),
}

impl Diag {
    pub fn from_code(c: u8) -> Diag {
        match c {
            0 => Diag::None,
            1 => Diag::DetectionTimeExpired,
            2 => Diag::EchoFailed,
            3 => Diag::NeighborSignaledDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            c => Diag::Other(c & 0x1f),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::DetectionTimeExpired => 1,
            Diag::EchoFailed => 2,
            Diag::NeighborSignaledDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Other(c) => c & 0x1f,
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diag::None => f.write_str("no diagnostic"),
            Diag::DetectionTimeExpired => f.write_str("control detection time expired"),
            Diag::EchoFailed => f.write_str("echo function failed"),
            Diag::NeighborSignaledDown => f.write_str("neighbor signaled session down"),
            Diag::ForwardingPlaneReset => f.write_str("forwarding plane reset"),
            Diag::PathDown => f.write_str("path down"),
            Diag::ConcatenatedPathDown => f.write_str("concatenated path down"),
            Diag::AdministrativelyDown => f.write_str("administratively down"),
            Diag::ReverseConcatenatedPathDown => f.write_str("reverse concatenated path down"),
            Diag::Other(c) => write!(f, "diagnostic {c}"),
        }
    }
}

/// A checked view over a received control packet: every accessor reads
/// within the 24 mandatory bytes.
#[derive(Debug, Clone)]
pub struct ControlPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ControlPacket<T> {
    /// Checks what RFC 5880 6.8.6 requires of every packet before any
    /// session looks at it.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let b = buffer.as_ref();
        let head = b.get(..PACKET_LEN).ok_or(PacketError::Truncated(b.len()))?;
        let version = head[field::VERS_DIAG] >> 5;
        if version != VERSION {
            return Err(PacketError::Version(version));
        }
        let len = usize::from(head[field::LENGTH]);
        let auth = head[field::STATE_FLAGS] & flag::AUTH != 0;
        let min = if auth {
            PACKET_LEN + MIN_AUTH_LEN
        } else {
            PACKET_LEN
        };
        if len < min || len > b.len() {
            return Err(PacketError::Length {
                field: len,
                got: b.len(),
                min,
            });
        }
        let p = ControlPacket { buffer };
        if p.detect_mult() == 0 {
            return Err(PacketError::DetectMult);
        }
        if p.flags() & flag::MULTIPOINT != 0 {
            return Err(PacketError::Multipoint);
        }
        if p.my_discriminator() == 0 {
            return Err(PacketError::MyDiscriminator);
        }
        Ok(p)
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref()[at]
    }

    fn word(&self, f: field::Field) -> u32 {
        let b = &self.buffer.as_ref()[f];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    fn flags(&self) -> u8 {
        self.byte(field::STATE_FLAGS)
    }

    pub fn diag(&self) -> Diag {
        Diag::from_code(self.byte(field::VERS_DIAG) & 0x1f)
    }

    pub fn state(&self) -> State {
        State::from_bits(self.flags() >> 6)
    }

    pub fn poll(&self) -> bool {
        self.flags() & flag::POLL != 0
    }

    pub fn final_bit(&self) -> bool {
        self.flags() & flag::FINAL != 0
    }

    pub fn control_plane_independent(&self) -> bool {
        self.flags() & flag::CPI != 0
    }

    pub fn authenticated(&self) -> bool {
        self.flags() & flag::AUTH != 0
    }

    pub fn demand(&self) -> bool {
        self.flags() & flag::DEMAND != 0
    }

    pub fn detect_mult(&self) -> u8 {
        self.byte(field::DETECT_MULT)
    }

    /// The length field (24, or more with an authentication section).
    pub fn len(&self) -> usize {
        usize::from(self.byte(field::LENGTH))
    }

    /// Never true for a checked packet; here for the `len` convention.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn my_discriminator(&self) -> u32 {
        self.word(field::MY_DISCR)
    }

    pub fn your_discriminator(&self) -> u32 {
        self.word(field::YOUR_DISCR)
    }

    /// Microseconds.
    pub fn desired_min_tx_us(&self) -> u32 {
        self.word(field::DESIRED_MIN_TX)
    }

    /// Microseconds.
    pub fn required_min_rx_us(&self) -> u32 {
        self.word(field::REQUIRED_MIN_RX)
    }

    /// Microseconds.
    pub fn required_min_echo_rx_us(&self) -> u32 {
        self.word(field::ECHO_RX)
    }

    /// The packet's fields as a plain value.
    pub fn to_control(&self) -> Control {
        Control {
            diag: self.diag(),
            state: self.state(),
            poll: self.poll(),
            final_bit: self.final_bit(),
            detect_mult: self.detect_mult(),
            my_discriminator: self.my_discriminator(),
            your_discriminator: self.your_discriminator(),
            desired_min_tx_us: self.desired_min_tx_us(),
            required_min_rx_us: self.required_min_rx_us(),
            required_min_echo_rx_us: self.required_min_echo_rx_us(),
        }
    }
}

/// The fields of a control packet this implementation sends: no
/// authentication, no demand mode, not control-plane independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub diag: Diag,
    pub state: State,
    pub poll: bool,
    pub final_bit: bool,
    pub detect_mult: u8,
    pub my_discriminator: u32,
    pub your_discriminator: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
}

impl Control {
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[field::VERS_DIAG] = (VERSION << 5) | self.diag.code();
        let mut flags = self.state.bits() << 6;
        if self.poll {
            flags |= flag::POLL;
        }
        if self.final_bit {
            flags |= flag::FINAL;
        }
        b[field::STATE_FLAGS] = flags;
        b[field::DETECT_MULT] = self.detect_mult;
        b[field::LENGTH] = PACKET_LEN as u8;
        b[field::MY_DISCR].copy_from_slice(&self.my_discriminator.to_be_bytes());
        b[field::YOUR_DISCR].copy_from_slice(&self.your_discriminator.to_be_bytes());
        b[field::DESIRED_MIN_TX].copy_from_slice(&self.desired_min_tx_us.to_be_bytes());
        b[field::REQUIRED_MIN_RX].copy_from_slice(&self.required_min_rx_us.to_be_bytes());
        b[field::ECHO_RX].copy_from_slice(&self.required_min_echo_rx_us.to_be_bytes());
        b
    }
}

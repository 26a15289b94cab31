//! ICMP echo for ping checks (RFC 792, and RFC 4443 for IPv6): the request
//! vipd sends and the test a received datagram must pass to count as its
//! reply.

use std::net::IpAddr;

/// Bytes of the token carried in every request and expected back.
pub(crate) const TOKEN_LEN: usize = 8;
const HEADER: usize = 8;

/// ICMP for an IPv4 target, ICMPv6 for an IPv6 one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V4,
    V6,
}

impl Version {
    pub(crate) fn of(ip: IpAddr) -> Version {
        match ip {
            IpAddr::V4(_) => Version::V4,
            IpAddr::V6(_) => Version::V6,
        }
    }

    fn echo_request(self) -> u8 {
        match self {
            Version::V4 => 8,
            Version::V6 => 128,
        }
    }

    fn echo_reply(self) -> u8 {
        match self {
            Version::V4 => 0,
            Version::V6 => 129,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IcmpError {
    #[error("ICMP message of {0} bytes is too short for an echo reply")]
    Truncated(usize),
    #[error("IPv4 header length {0} does not fit the {1}-byte packet")]
    BadIpHeader(usize, usize),
    #[error("ICMP type {0} code {1} is not an echo reply")]
    NotEchoReply(u8, u8),
    #[error("echo reply for id {got_id} seq {got_seq}, expected id {id} seq {seq}")]
    OtherEcho {
        got_id: u16,
        got_seq: u16,
        id: u16,
        seq: u16,
    },
    #[error("echo reply carries other data than the request")]
    OtherData,
}

/// An echo request with its checksum (a datagram socket recomputes it and
/// replaces the id with its own; a raw socket sends it as it is). An
/// ICMPv6 checksum covers the IPv6 pseudo-header, which only the kernel
/// knows: it fills it in on every ICMPv6 socket, so it is left zero.
pub(crate) fn echo_request(v: Version, id: u16, seq: u16, token: &[u8; TOKEN_LEN]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER + TOKEN_LEN);
    m.extend_from_slice(&[v.echo_request(), 0, 0, 0]);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(token);
    if v == Version::V4 {
        let sum = checksum(&m).to_be_bytes();
        m[2..4].copy_from_slice(&sum);
    }
    m
}

/// Internet checksum (RFC 1071).
pub(crate) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Strips the IPv4 header a raw socket delivers in front of the ICMP message.
pub(crate) fn strip_ipv4(packet: &[u8]) -> Result<&[u8], IcmpError> {
    let ihl = usize::from(packet.first().copied().unwrap_or(0) & 0x0f) * 4;
    if ihl < 20 || ihl > packet.len() {
        return Err(IcmpError::BadIpHeader(ihl, packet.len()));
    }
    Ok(&packet[ihl..])
}

/// Whether `msg` (an ICMP message) is the reply to the request with `id`,
/// `seq` and `token`.
pub(crate) fn check_reply(
    msg: &[u8],
    v: Version,
    id: u16,
    seq: u16,
    token: &[u8; TOKEN_LEN],
) -> Result<(), IcmpError> {
    if msg.len() < HEADER {
        return Err(IcmpError::Truncated(msg.len()));
    }
    if msg[0] != v.echo_reply() || msg[1] != 0 {
        return Err(IcmpError::NotEchoReply(msg[0], msg[1]));
    }
    let got_id = u16::from_be_bytes([msg[4], msg[5]]);
    let got_seq = u16::from_be_bytes([msg[6], msg[7]]);
    if (got_id, got_seq) != (id, seq) {
        return Err(IcmpError::OtherEcho {
            got_id,
            got_seq,
            id,
            seq,
        });
    }
    if msg.get(HEADER..) != Some(token.as_slice()) {
        return Err(IcmpError::OtherData);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: [u8; TOKEN_LEN] = *b"vipd-ok!";

    fn reply_to(v: Version, request: &[u8]) -> Vec<u8> {
        let mut r = request.to_vec();
        r[0] = v.echo_reply();
        r
    }

    #[test]
    fn request_has_a_valid_checksum() {
        let r = echo_request(Version::V4, 0x1234, 7, &TOKEN);
        assert_eq!(&r[..8], &[8, 0, r[2], r[3], 0x12, 0x34, 0, 7]);
        assert_eq!(checksum(&r), 0, "a correct checksum sums to zero");
        // RFC 1071's example words.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn icmpv6_request_and_reply() {
        let r = echo_request(Version::V6, 0x1234, 7, &TOKEN);
        assert_eq!(&r[..8], &[128, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert_eq!(&r[8..], &TOKEN);
        let reply = reply_to(Version::V6, &r);
        assert_eq!(check_reply(&reply, Version::V6, 0x1234, 7, &TOKEN), Ok(()));
        // An ICMPv4 reply is not an ICMPv6 one, nor an ICMPv6 request.
        let v4 = reply_to(Version::V4, &r);
        assert_eq!(
            check_reply(&v4, Version::V6, 0x1234, 7, &TOKEN),
            Err(IcmpError::NotEchoReply(0, 0))
        );
        assert_eq!(
            check_reply(&r, Version::V6, 0x1234, 7, &TOKEN),
            Err(IcmpError::NotEchoReply(128, 0))
        );
    }

    #[test]
    fn matching_reply() {
        let reply = reply_to(Version::V4, &echo_request(Version::V4, 9, 3, &TOKEN));
        assert_eq!(check_reply(&reply, Version::V4, 9, 3, &TOKEN), Ok(()));
        let mut packet = vec![0x45; 1];
        packet.resize(20, 0);
        packet.extend_from_slice(&reply);
        let icmp = strip_ipv4(&packet).expect("ip header");
        assert_eq!(check_reply(icmp, Version::V4, 9, 3, &TOKEN), Ok(()));
    }

    #[test]
    fn hostile_replies() {
        let v = Version::V4;
        let reply = reply_to(v, &echo_request(v, 9, 3, &TOKEN));
        for cut in 0..reply.len() {
            assert!(
                check_reply(&reply[..cut], v, 9, 3, &TOKEN).is_err(),
                "{cut}"
            );
        }
        assert_eq!(
            check_reply(&reply, v, 9, 4, &TOKEN),
            Err(IcmpError::OtherEcho {
                got_id: 9,
                got_seq: 3,
                id: 9,
                seq: 4
            })
        );
        assert!(check_reply(&reply, v, 8, 3, &TOKEN).is_err());
        let request = echo_request(v, 9, 3, &TOKEN);
        assert_eq!(
            check_reply(&request, v, 9, 3, &TOKEN),
            Err(IcmpError::NotEchoReply(8, 0))
        );
        let mut longer = reply.clone();
        longer.push(0);
        assert_eq!(
            check_reply(&longer, v, 9, 3, &TOKEN),
            Err(IcmpError::OtherData)
        );
        assert_eq!(strip_ipv4(&[]), Err(IcmpError::BadIpHeader(0, 0)));
        assert_eq!(strip_ipv4(&[0x4f; 30]), Err(IcmpError::BadIpHeader(60, 30)));
        assert_eq!(strip_ipv4(&[0x44; 30]), Err(IcmpError::BadIpHeader(16, 30)));
    }
}

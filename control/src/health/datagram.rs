//! Datagram probes: a UDP request/reply, a DNS query, an ICMP echo. Each
//! opens its own socket, connected to the backend so the kernel drops
//! datagrams from anyone else and reports an ICMP error as a socket error.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::dns::{self, DnsError, QType};
use super::error::CheckError;
use super::icmp;
use super::probe::within;
use super::quote::quote;
// Ids and tokens: a reply must come from the host that saw the request.
use crate::random::random;

/// Large enough for any datagram, so none is cut short unnoticed.
const MAX_DATAGRAM: usize = 65_535;

fn socket_error(e: std::io::Error) -> CheckError {
    match e.kind() {
        ErrorKind::ConnectionRefused => CheckError::PortUnreachable,
        _ => CheckError::Datagram(e),
    }
}

async fn connected(addr: SocketAddr) -> Result<UdpSocket, CheckError> {
    let any: IpAddr = match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let sock = UdpSocket::bind((any, 0))
        .await
        .map_err(CheckError::UdpSocket)?;
    sock.connect(addr)
        .await
        .map_err(|e| CheckError::unreachable(addr, e))?;
    Ok(sock)
}

/// Healthy when a reply arrives (holding `expect`, if given).
pub(super) async fn udp(
    addr: SocketAddr,
    payload: &[u8],
    expect: Option<&[u8]>,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, CheckError> {
    let sock = connected(addr).await?;
    sock.send(payload).await.map_err(socket_error)?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let n = within(
        deadline,
        timeout,
        "waiting for a UDP reply",
        sock.recv(&mut buf),
    )
    .await?
    .map_err(socket_error)?;
    let reply = buf.get(..n).unwrap_or_default();
    match expect {
        Some(want) if !contains(reply, want) => Err(CheckError::UdpReply {
            len: n,
            want: quote(want),
            reply: quote(reply),
        }),
        Some(_) => Ok(format!("UDP reply of {n} bytes, as expected")),
        None => Ok(format!("UDP reply of {n} bytes")),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Healthy when the reply to a query for `name` is NOERROR with an answer.
/// Datagrams that are not the reply (another id) are skipped.
pub(super) async fn dns(
    addr: SocketAddr,
    name: &str,
    qtype: QType,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, CheckError> {
    let id = random(u64::from(addr.port())) as u16;
    let query = dns::encode_query(id, name, qtype)?;
    let sock = connected(addr).await?;
    sock.send(&query).await.map_err(socket_error)?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut skipped: Option<DnsError> = None;
    loop {
        let n = within(
            deadline,
            timeout,
            "waiting for a DNS reply",
            sock.recv(&mut buf),
        )
        .await
        .map_err(|timeout| match skipped.take() {
            Some(skipped) => CheckError::DnsTimeout { timeout, skipped },
            None => timeout.into(),
        })?
        .map_err(socket_error)?;
        match dns::decode_reply(buf.get(..n).unwrap_or_default(), id, name, qtype) {
            Ok(a) => {
                return Ok(format!(
                    "DNS NOERROR, {} {qtype} record(s) in {} answer(s)",
                    a.of_type, a.records
                ))
            }
            Err(e @ DnsError::WrongId { .. }) => skipped = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
}

/// How the echo is sent: a datagram socket needs no privilege where
/// `net.ipv4.ping_group_range` admits vipd's group; otherwise root uses a
/// raw one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IcmpSocket {
    Datagram,
    Raw,
}

fn icmp_socket(v: icmp::Version) -> Result<(UdpSocket, IcmpSocket), CheckError> {
    let (domain, icmp) = match v {
        icmp::Version::V4 => (Domain::IPV4, Some(Protocol::ICMPV4)),
        icmp::Version::V6 => (Domain::IPV6, Some(Protocol::ICMPV6)),
    };
    let (sock, kind) = match Socket::new(domain, Type::DGRAM, icmp) {
        Ok(s) => (s, IcmpSocket::Datagram),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
            let raw = Socket::new(domain, Type::RAW, icmp)
                .map_err(|raw| CheckError::IcmpSockets { datagram: e, raw })?;
            (raw, IcmpSocket::Raw)
        }
        Err(e) => return Err(CheckError::IcmpSocket(e)),
    };
    sock.set_nonblocking(true).map_err(CheckError::IcmpSetup)?;
    // Both kinds carry one ICMP message per send and receive, as UDP does.
    let sock = UdpSocket::from_std(sock.into()).map_err(CheckError::IcmpSetup)?;
    Ok((sock, kind))
}

/// Healthy when `ip` answers an echo request carrying a fresh token.
pub(super) async fn ping(
    ip: IpAddr,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, CheckError> {
    let v = icmp::Version::of(ip);
    let (sock, kind) = icmp_socket(v)?;
    sock.connect((ip, 0))
        .await
        .map_err(|source| CheckError::Unreachable {
            target: ip.to_string(),
            source,
        })?;
    let r = random(ip);
    let token = r.to_be_bytes();
    let seq = (r >> 48) as u16;
    // A datagram socket puts its own port in the id field.
    let id = match kind {
        IcmpSocket::Datagram => sock.local_addr().map_err(CheckError::IcmpSetup)?.port(),
        IcmpSocket::Raw => (r >> 32) as u16,
    };
    sock.send(&icmp::echo_request(v, id, seq, &token))
        .await
        .map_err(CheckError::EchoRequest)?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut skipped: Option<icmp::IcmpError> = None;
    loop {
        let n = within(
            deadline,
            timeout,
            "waiting for an echo reply",
            sock.recv(&mut buf),
        )
        .await
        .map_err(|timeout| match skipped.take() {
            Some(skipped) => CheckError::PingTimeout { timeout, skipped },
            None => timeout.into(),
        })?
        .map_err(CheckError::Echo)?;
        let packet = buf.get(..n).unwrap_or_default();
        let msg = match kind {
            IcmpSocket::Datagram => Ok(packet),
            // Only an IPv4 raw socket delivers the IP header.
            IcmpSocket::Raw if v == icmp::Version::V4 => icmp::strip_ipv4(packet),
            IcmpSocket::Raw => Ok(packet),
        };
        match msg.and_then(|m| icmp::check_reply(m, v, id, seq, &token)) {
            Ok(()) => {
                let how = match kind {
                    IcmpSocket::Datagram => "datagram",
                    IcmpSocket::Raw => "raw",
                };
                return Ok(format!("echo reply (ICMP {how} socket)"));
            }
            Err(e) => skipped = Some(e),
        }
    }
}

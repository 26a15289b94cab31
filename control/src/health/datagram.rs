//! Datagram probes: a UDP request/reply, a DNS query, an ICMP echo. Each
//! opens its own socket, connected to the backend so the kernel drops
//! datagrams from anyone else and reports an ICMP error as a socket error.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::dns::{self, DnsError, QType};
use super::http::quote;
use super::icmp;
use super::probe::within;

/// Large enough for any datagram, so none is cut short unnoticed.
const MAX_DATAGRAM: usize = 65_535;

/// Unpredictable bits for ids and tokens: a reply must come from the host
/// that saw the request.
fn random(salt: u64) -> u64 {
    RandomState::new().hash_one((salt, std::time::SystemTime::now()))
}

fn socket_error(e: std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused => {
            "port unreachable (ICMP): nothing listens there".to_string()
        }
        _ => format!("failed: {e}"),
    }
}

async fn connected(addr: SocketAddrV4) -> Result<UdpSocket, String> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .await
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    sock.connect(addr)
        .await
        .map_err(|e| format!("cannot reach {addr}: {e}"))?;
    Ok(sock)
}

/// Healthy when a reply arrives (holding `expect`, if given).
pub(super) async fn udp(
    addr: SocketAddrV4,
    payload: &[u8],
    expect: Option<&[u8]>,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, String> {
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
        Some(want) if !contains(reply, want) => Err(format!(
            "UDP reply of {n} bytes lacks {}: {}",
            quote(want),
            quote(reply)
        )),
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
    addr: SocketAddrV4,
    name: &str,
    qtype: QType,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, String> {
    let id = random(u64::from(addr.port())) as u16;
    let query = dns::encode_query(id, name, qtype).map_err(|e| e.to_string())?;
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
        .map_err(|t| match &skipped {
            Some(why) => format!("{t} (skipped a datagram: {why})"),
            None => t,
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
            Err(e) => return Err(e.to_string()),
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

fn icmp_socket() -> Result<(UdpSocket, IcmpSocket), String> {
    let icmp = Some(Protocol::ICMPV4);
    let (sock, kind) = match Socket::new(Domain::IPV4, Type::DGRAM, icmp) {
        Ok(s) => (s, IcmpSocket::Datagram),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
            let raw = Socket::new(Domain::IPV4, Type::RAW, icmp)
                .map_err(|r| format!("cannot open an ICMP socket: datagram: {e}; raw: {r}"))?;
            (raw, IcmpSocket::Raw)
        }
        Err(e) => return Err(format!("cannot open an ICMP socket: {e}")),
    };
    sock.set_nonblocking(true)
        .map_err(|e| format!("cannot set up the ICMP socket: {e}"))?;
    // Both kinds carry one ICMP message per send and receive, as UDP does.
    let sock = UdpSocket::from_std(sock.into())
        .map_err(|e| format!("cannot set up the ICMP socket: {e}"))?;
    Ok((sock, kind))
}

/// Healthy when `ip` answers an echo request carrying a fresh token.
pub(super) async fn ping(
    ip: Ipv4Addr,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, String> {
    let (sock, kind) = icmp_socket()?;
    sock.connect((ip, 0))
        .await
        .map_err(|e| format!("cannot reach {ip}: {e}"))?;
    let r = random(u64::from(ip.to_bits()));
    let token = r.to_be_bytes();
    let seq = (r >> 48) as u16;
    // A datagram socket puts its own port in the id field.
    let id = match kind {
        IcmpSocket::Datagram => sock
            .local_addr()
            .map_err(|e| format!("cannot set up the ICMP socket: {e}"))?
            .port(),
        IcmpSocket::Raw => (r >> 32) as u16,
    };
    sock.send(&icmp::echo_request(id, seq, &token))
        .await
        .map_err(|e| format!("echo request failed: {e}"))?;
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
        .map_err(|t| match &skipped {
            Some(why) => format!("{t} (skipped: {why})"),
            None => t,
        })?
        .map_err(|e| format!("echo failed: {e}"))?;
        let packet = buf.get(..n).unwrap_or_default();
        let msg = match kind {
            IcmpSocket::Datagram => Ok(packet),
            IcmpSocket::Raw => icmp::strip_ipv4(packet),
        };
        match msg.and_then(|m| icmp::check_reply(m, id, seq, &token)) {
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

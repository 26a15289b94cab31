//! IPv6 frames built by the wire crate's writers, decoded by tcpdump: an
//! independent decoder has to find the same fields and correct checksums.
//! tcpdump is one of the test dependencies scripts/install-deps installs.

use std::net::Ipv6Addr;
use std::process::Command;

use wire::{
    ethertype, ip_proto, multicast_mac, write_echo_reply, write_ethernet_header,
    write_icmpv6_error, write_ipv6_header, write_neighbor_advert, write_tcp_header,
    write_udp_header, EthernetHeader, Icmpv6Error, Icmpv6Packet, Ipv6Header, MacAddr,
    NeighborAdvertMessage, TcpFlags, TcpHeader, TcpSegment, UdpDatagram, UdpHeader, IPV6_MIN_MTU,
};

const ME: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x00, 0x01, 0x07]);
const PEER: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x09]);
const ETH_LEN: usize = 14;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// An Ethernet frame to `dst` around the IPv6 packet `write` writes.
fn frame(dst: MacAddr, write: impl FnOnce(&mut [u8]) -> usize) -> Vec<u8> {
    let mut f = vec![0u8; 9000];
    let eth = EthernetHeader {
        dst,
        src: ME,
        ethertype: ethertype::IPV6,
    };
    let at = write_ethernet_header(&mut f, &eth).unwrap();
    let n = write(&mut f[at..]);
    f.truncate(at + n);
    f
}

/// A hop-by-hop (router alert) then destination options (PadN) chain
/// ending in `upper`, as the payload prefix of an IPv6 packet.
fn ext_chain(upper: u8) -> [u8; 16] {
    [
        ip_proto::DEST_OPTS,
        0,
        5, // router alert, MLD
        2,
        0,
        0,
        1, // PadN
        0,
        upper,
        0,
        1, // PadN
        4,
        0,
        0,
        0,
        0,
    ]
}

fn echo_request(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let msg_len = 8 + 16;
    let mut p = vec![0u8; 40 + msg_len];
    let h = Ipv6Header {
        src,
        dst,
        next_header: ip_proto::ICMPV6,
        hop_limit: 64,
        traffic_class: 0,
        payload_len: msg_len as u16,
    };
    write_ipv6_header(&mut p, &h).unwrap();
    let msg = &mut p[40..];
    msg[0] = wire::icmpv6_type::ECHO_REQUEST;
    msg[4..8].copy_from_slice(&[0x12, 0x34, 0x00, 0x07]);
    msg[8..].copy_from_slice(b"vipd echo data!!");
    Icmpv6Packet::new_checked(msg)
        .unwrap()
        .fill_checksum(src, dst);
    p
}

/// UDP or TCP from `src` to `dst` behind the extension-header chain.
fn transport(buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, udp: bool) -> usize {
    let data = b"through a hop-by-hop and a destination options header";
    let (proto, l4_len) = if udp {
        (ip_proto::UDP, 8 + data.len())
    } else {
        (ip_proto::TCP, 20 + data.len())
    };
    let chain = ext_chain(proto);
    let h = Ipv6Header {
        src,
        dst,
        next_header: ip_proto::HOP_BY_HOP,
        hop_limit: 1,
        traffic_class: 0,
        payload_len: (chain.len() + l4_len) as u16,
    };
    let at = write_ipv6_header(buf, &h).unwrap();
    buf[at..at + chain.len()].copy_from_slice(&chain);
    let l4 = &mut buf[at + chain.len()..at + chain.len() + l4_len];
    if udp {
        let u = UdpHeader {
            src_port: 40000,
            dst_port: 53,
            len: l4_len as u16,
        };
        write_udp_header(l4, &u).unwrap();
        l4[8..].copy_from_slice(data);
        UdpDatagram::new_checked(l4)
            .unwrap()
            .fill_checksum_v6(src, dst);
    } else {
        let t = TcpHeader {
            src_port: 40000,
            dst_port: 443,
            seq: 1000,
            ack: 2000,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 512,
        };
        write_tcp_header(l4, &t).unwrap();
        l4[20..].copy_from_slice(data);
        TcpSegment::new_checked(l4)
            .unwrap()
            .fill_checksum_v6(src, dst);
    }
    at + chain.len() + l4_len
}

/// A classic pcap file (RFC draft "pcap", linktype 1: Ethernet), one
/// frame a second.
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(i as u32 + 1).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// tcpdump's verbose decoding of `frames`, one string per frame.
fn tcpdump(frames: &[Vec<u8>]) -> Vec<String> {
    let path = std::env::temp_dir().join(format!("vipd-golden-v6-{}.pcap", std::process::id()));
    std::fs::write(&path, pcap(frames)).unwrap();
    let out = Command::new("tcpdump")
        .args(["-r"])
        .arg(&path)
        .args(["-n", "-e", "-vv", "-tt"])
        .output();
    std::fs::remove_file(&path).unwrap();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run tcpdump ({e}): the golden IPv6 frames need it as their \
             independent decoder; install it with scripts/install-deps"
        ),
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tcpdump failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each frame's decoding starts with its timestamp at the line start.
    let mut per_frame: Vec<String> = Vec::new();
    for line in text.lines() {
        match per_frame.last_mut() {
            Some(cur) if line.starts_with(char::is_whitespace) => {
                cur.push('\n');
                cur.push_str(line);
            }
            _ => per_frame.push(line.to_string()),
        }
    }
    assert_eq!(per_frame.len(), frames.len(), "tcpdump output:\n{text}");
    per_frame
}

fn assert_has(decoded: &str, wants: &[&str]) {
    for w in wants {
        assert!(decoded.contains(w), "missing {w:?} in:\n{decoded}");
    }
}

#[test]
fn tcpdump_decodes_the_built_ipv6_frames() {
    let (vip, peer) = (a("2001:db8::80"), a("2001:db8::9"));
    let mut frames = Vec::new();

    // A solicited advertisement and an unsolicited one to all nodes.
    let na = NeighborAdvertMessage::reply(vip, ME, peer);
    frames.push(frame(PEER, |b| write_neighbor_advert(b, &na).unwrap()));
    let una = NeighborAdvertMessage::unsolicited(vip, ME);
    frames.push(frame(multicast_mac(una.dst), |b| {
        write_neighbor_advert(b, &una).unwrap()
    }));

    let request = echo_request(peer, vip);
    frames.push(frame(PEER, |b| write_echo_reply(b, &request, 64).unwrap()));

    // Packet Too Big about a 1500-byte UDP packet: quoted up to 1280 bytes.
    let mut big = vec![0u8; 40 + 16 + 8 + 1400];
    let chain = ext_chain(ip_proto::UDP);
    write_ipv6_header(
        &mut big,
        &Ipv6Header {
            src: peer,
            dst: vip,
            next_header: ip_proto::HOP_BY_HOP,
            hop_limit: 64,
            traffic_class: 0,
            payload_len: (16 + 8 + 1400) as u16,
        },
    )
    .unwrap();
    big[40..56].copy_from_slice(&chain);
    let ptb = Icmpv6Error::PacketTooBig { mtu: 1400 };
    let ptb_frame = frame(PEER, |b| {
        write_icmpv6_error(b, vip, 64, &ptb, &big).unwrap()
    });
    assert_eq!(ptb_frame.len(), ETH_LEN + IPV6_MIN_MTU);
    frames.push(ptb_frame);
    let mut dns = vec![0u8; 200];
    let n = transport(&mut dns, peer, vip, true);
    let unreach = Icmpv6Error::DestUnreachable { code: 4 };
    frames.push(frame(PEER, |b| {
        write_icmpv6_error(b, vip, 64, &unreach, &dns[..n]).unwrap()
    }));

    frames.push(frame(PEER, |b| transport(b, vip, peer, true)));
    frames.push(frame(PEER, |b| transport(b, vip, peer, false)));

    let d = tcpdump(&frames);
    assert_has(
        &d[0],
        &[
            "2001:db8::80 > 2001:db8::9",
            "hlim 255",
            "neighbor advertisement",
            "tgt is 2001:db8::80",
            "Flags [solicited, override]",
            "destination link-address option (2), length 8 (1): 02:00:5e:00:01:07",
            "[icmp6 sum ok]",
        ],
    );
    assert_has(
        &d[1],
        &[
            "33:33:00:00:00:01",
            "2001:db8::80 > ff02::1",
            "tgt is 2001:db8::80",
            "Flags [override]",
            "[icmp6 sum ok]",
        ],
    );
    assert_has(
        &d[2],
        &[
            "2001:db8::80 > 2001:db8::9",
            "echo reply",
            "id 4660, seq 7",
            "[icmp6 sum ok]",
        ],
    );
    assert_has(
        &d[3],
        &[
            "2001:db8::80 > 2001:db8::9",
            "length 1294",
            "payload length: 1240",
            "packet too big",
            "mtu 1400",
            "[icmp6 sum ok]",
        ],
    );
    assert_has(
        &d[4],
        &[
            "destination unreachable",
            "unreachable port",
            // Found through the quoted packet's extension headers.
            "2001:db8::80 udp port 53",
            "[icmp6 sum ok]",
        ],
    );
    for (i, port, sum_ok) in [(5, "53", "[udp sum ok]"), (6, "443", "(correct)")] {
        assert_has(
            &d[i],
            &[
                "2001:db8::80 > 2001:db8::9",
                "next-header Options (0)",
                "HBH (rtalert: 0x0000) (padn) DSTOPT (padn)",
                &format!("40000 > {port}:"),
                sum_ok,
            ],
        );
    }
}

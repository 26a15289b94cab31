//! Peers beside BIRD: GoBGP's configuration, and a scripted peer that
//! feeds vipd hand-made messages.

use std::time::Duration;

use anyhow::{bail, Result};
use viplab::{Site, TwoSiteLab};

use super::{bgp_status, HOLD_S, MD5_KEY, ROUTER_AS, SITE_A_AS};
use crate::common::Vipd;

/// GoBGP as the router for site A (listening only on site A's uplink).
pub fn gobgp_config() -> String {
    format!(
        r#"[global.config]
  as = {ROUTER_AS}
  router-id = "{ra}"
  local-address-list = ["{ra}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{na}"
    peer-as = {SITE_A_AS}
    auth-password = "{MD5_KEY}"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = {HOLD_S}
    keepalive-interval = 1
"#,
        ra = Site::A.router_ip(),
        na = Site::A.uplink_ip(),
    )
}

/// Port of the scripted peer, so it does not clash with GoBGP's 179.
pub const SCRIPTED_PORT: u16 = 1179;
pub const SCRIPTED_AS: u16 = 65000;

/// Site B talks to the test's scripted peer.
pub fn site_b_scripted() -> String {
    format!(
        r#"[bgp]
local_as = 65002
router_id = "{}"
  [[bgp.peer]]
  address = "{}"
  port = {SCRIPTED_PORT}
  remote_as = {SCRIPTED_AS}
  hold_time_s = {HOLD_S}
  keepalive_s = 1
  connect_retry_s = 1
  max_prefixes = 2
  [[bgp.announce]]
  prefix = "10.0.0.0/24"
"#,
        Site::B.uplink_ip(),
        Site::B.router_ip()
    )
}

mod wire {
    //! Hand-made BGP messages, including broken ones.
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use anyhow::{bail, Result};

    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;

    pub fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&u16::try_from(19 + body.len()).unwrap_or(0).to_be_bytes());
        m.push(kind);
        m.extend_from_slice(body);
        m
    }

    /// OPEN with capabilities multiprotocol IPv4 unicast and 4-octet AS.
    pub fn open(version: u8, asn: u16, hold: u16, id: [u8; 4]) -> Vec<u8> {
        let caps = [
            1,
            4,
            0,
            1,
            0,
            1,
            65,
            4,
            0,
            0,
            asn.to_be_bytes()[0],
            asn.to_be_bytes()[1],
        ];
        let mut b = vec![version];
        b.extend_from_slice(&asn.to_be_bytes());
        b.extend_from_slice(&hold.to_be_bytes());
        b.extend_from_slice(&id);
        b.push(u8::try_from(caps.len() + 2).unwrap_or(0));
        b.push(2);
        b.push(u8::try_from(caps.len()).unwrap_or(0));
        b.extend_from_slice(&caps);
        msg(OPEN, &b)
    }

    /// UPDATE announcing `nlri` (prefix length, octets) with the given ORIGIN
    /// value, AS_PATH [asn] (4-octet) and next hop.
    pub fn update(origin: u8, asn: u32, next_hop: [u8; 4], nlri: &[(u8, [u8; 3])]) -> Vec<u8> {
        let mut attrs = vec![0x40, 1, 1, origin];
        attrs.extend_from_slice(&[0x40, 2, 6, 2, 1]);
        attrs.extend_from_slice(&asn.to_be_bytes());
        attrs.extend_from_slice(&[0x40, 3, 4]);
        attrs.extend_from_slice(&next_hop);
        let mut b = vec![0, 0];
        b.extend_from_slice(&u16::try_from(attrs.len()).unwrap_or(0).to_be_bytes());
        b.extend_from_slice(&attrs);
        for (len, octets) in nlri {
            b.push(*len);
            b.extend_from_slice(octets);
        }
        msg(UPDATE, &b)
    }

    pub fn read(s: &mut TcpStream) -> Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 19];
        s.read_exact(&mut head)?;
        let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
        if !(19..=4096).contains(&len) {
            bail!("vipd sent a message of length {len}");
        }
        let mut body = vec![0; len - 19];
        s.read_exact(&mut body)?;
        Ok((head[18], body))
    }

    /// Reads until a NOTIFICATION; returns (code, subcode).
    pub fn notification(s: &mut TcpStream) -> Result<(u8, u8)> {
        loop {
            let (kind, body) = read(s)?;
            if kind == NOTIFICATION {
                return Ok((*body.first().unwrap_or(&0), *body.get(1).unwrap_or(&0)));
            }
        }
    }

    /// Reads until a message of `kind`.
    pub fn until(s: &mut TcpStream, kind: u8) -> Result<()> {
        loop {
            let (k, body) = read(s)?;
            if k == kind {
                return Ok(());
            }
            if k == NOTIFICATION {
                bail!("vipd sent NOTIFICATION {body:?} while we waited for type {kind}");
            }
        }
    }

    pub fn send(s: &mut TcpStream, m: &[u8]) -> Result<()> {
        s.write_all(m)?;
        Ok(())
    }
}

/// Accepts vipd's next connection and reads its OPEN.
pub fn next_session(l: &std::net::TcpListener) -> Result<std::net::TcpStream> {
    l.set_nonblocking(true)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut s = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() > deadline {
                    bail!("vipd did not connect to the scripted peer within 15 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    };
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(HOLD_S + 3)))?;
    wire::until(&mut s, wire::OPEN)?;
    Ok(s)
}

pub const PEER_ID: [u8; 4] = [172, 16, 2, 1];

/// Drives vipd (site B) through broken and silent sessions.
pub fn scripted_peer(lab: &TwoSiteLab, b: &Vipd) -> Result<()> {
    lab.enter("rt")?;
    let l = std::net::TcpListener::bind((Site::B.router_ip(), SCRIPTED_PORT))?;
    let hold = u16::try_from(HOLD_S)?;

    let mut s = next_session(&l)?;
    wire::send(&mut s, &wire::open(3, SCRIPTED_AS, hold, PEER_ID))?;
    assert_eq!(
        wire::notification(&mut s)?,
        (2, 1),
        "OPEN version 3: Unsupported Version Number"
    );

    let mut s = next_session(&l)?;
    wire::send(&mut s, &wire::open(4, 65099, hold, PEER_ID))?;
    assert_eq!(
        wire::notification(&mut s)?,
        (2, 2),
        "OPEN from the wrong AS: Bad Peer AS"
    );

    let mut s = next_session(&l)?;
    let mut bad = wire::open(4, SCRIPTED_AS, hold, PEER_ID);
    bad[3] = 0;
    wire::send(&mut s, &bad)?;
    assert_eq!(
        wire::notification(&mut s)?,
        (1, 1),
        "broken marker: Connection Not Synchronized"
    );

    let mut s = next_session(&l)?;
    wire::send(&mut s, &wire::open(4, SCRIPTED_AS, hold, PEER_ID))?;
    wire::send(&mut s, &wire::msg(wire::KEEPALIVE, &[]))?;
    wire::until(&mut s, wire::KEEPALIVE)?;
    let peer = || bgp_status(b).peers.first().cloned().unwrap_or_default();
    lab.wait_until(
        "vipd Established with the scripted peer",
        Duration::from_secs(5),
        || peer().state == "Established",
    )?;
    // ORIGIN 7 is malformed: RFC 7606 treat-as-withdraw, the session stays.
    let nh = [172, 16, 2, 1];
    let asn = u32::from(SCRIPTED_AS);
    wire::send(&mut s, &wire::update(7, asn, nh, &[(24, [198, 51, 100])]))?;
    wire::send(
        &mut s,
        &wire::update(0, asn, nh, &[(24, [198, 51, 101]), (24, [198, 51, 102])]),
    )?;
    lab.wait_until(
        "vipd counts the two valid prefixes only",
        Duration::from_secs(5),
        || peer().received == 2,
    )?;
    assert_eq!(
        peer().state,
        "Established",
        "treat-as-withdraw must not reset the session"
    );
    // Withdrawn routes length overrunning the message: Malformed Attribute List.
    wire::send(&mut s, &wire::msg(wire::UPDATE, &[0, 200, 0, 0]))?;
    assert_eq!(
        wire::notification(&mut s)?,
        (3, 1),
        "overrunning withdrawn length"
    );

    // One prefix over max_prefixes (2): Cease / Maximum Number of Prefixes Reached.
    let mut s = next_session(&l)?;
    wire::send(&mut s, &wire::open(4, SCRIPTED_AS, hold, PEER_ID))?;
    wire::send(&mut s, &wire::msg(wire::KEEPALIVE, &[]))?;
    wire::until(&mut s, wire::KEEPALIVE)?;
    let three = [
        (24, [198, 51, 100]),
        (24, [198, 51, 101]),
        (24, [198, 51, 102]),
    ];
    wire::send(&mut s, &wire::update(0, asn, nh, &three))?;
    assert_eq!(wire::notification(&mut s)?, (6, 1), "over max_prefixes");

    // A peer that goes silent after OPEN: vipd's hold timer expires, then it reconnects.
    let mut s = next_session(&l)?;
    wire::send(&mut s, &wire::open(4, SCRIPTED_AS, hold, PEER_ID))?;
    wire::send(&mut s, &wire::msg(wire::KEEPALIVE, &[]))?;
    let t0 = std::time::Instant::now();
    assert_eq!(
        wire::notification(&mut s)?,
        (4, 0),
        "silent peer: Hold Timer Expired"
    );
    let held = t0.elapsed();
    assert!(
        held >= Duration::from_secs(HOLD_S - 1) && held <= Duration::from_secs(HOLD_S + 1),
        "hold timer expired after {held:?}, expected about {HOLD_S} s"
    );
    drop(next_session(&l)?);
    Ok(())
}

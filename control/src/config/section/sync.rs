//! `[sync]`: connection sync between the load-balancer nodes of a site.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use super::IPV4;
use crate::config::reader::{Ctx, Tbl};

/// The multicast group sync uses when no unicast peers are listed.
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// The UDP port sync messages are sent to and received on.
pub const DEFAULT_PORT: u16 = 8848;

/// `[sync]`: where this node's connections go and its peers' come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sync {
    /// The interface sync messages leave and arrive by.
    pub interface: String,
    /// Unicast peers; empty: the multicast `group` on `interface`.
    pub peers: Vec<Ipv4Addr>,
    pub group: Ipv4Addr,
    pub port: u16,
    /// The shared HMAC key, at least 16 bytes, read when vipd starts.
    pub key_file: PathBuf,
    /// This node's number in the site; by default the low 16 bits of the
    /// interface's address, which differ between nodes of one subnet.
    pub node_id: Option<u16>,
    /// How long a starting node waits for its peers' connections before it
    /// may take mastership anyway.
    pub dump_deadline: Duration,
    /// How long a record may wait for others to fill its batch.
    pub flush_after: Duration,
}

pub(super) fn read(cx: &mut Ctx, t: &Tbl) -> Option<Sync> {
    t.check_keys(
        cx,
        &[
            "interface",
            "peers",
            "group",
            "port",
            "key_file",
            "node_id",
            "dump_deadline_ms",
            "flush_after_ms",
        ],
    );
    let interface = t.must("interface", t.str(cx, "interface"), cx);
    let key_file = t.must("key_file", t.str(cx, "key_file"), cx);
    if key_file.as_deref() == Some("") {
        cx.err_at(
            &t.field("key_file"),
            "give the path of a file holding the site's shared sync key",
        );
    }
    let peers: Vec<Ipv4Addr> = t.parse_list(cx, "peers", IPV4).unwrap_or_default();
    for (i, p) in peers.iter().enumerate() {
        if p.is_multicast() || p.is_unspecified() || p.is_broadcast() {
            cx.err_at(
                &format!("{}[{i}]", t.field("peers")),
                format!("{p} is not a unicast address; list the other nodes' addresses on the sync interface, or leave `peers` out to use the multicast group"),
            );
        }
    }
    let group = t.parse(cx, "group", IPV4).unwrap_or(DEFAULT_GROUP);
    if !group.is_multicast() {
        cx.err_at(
            &t.field("group"),
            format!("{group} is not a multicast address (224.0.0.0/4)"),
        );
    }
    Some(Sync {
        interface: interface?,
        peers,
        group,
        port: t.num(cx, "port", 1, 65_535).unwrap_or(DEFAULT_PORT),
        key_file: PathBuf::from(key_file?),
        node_id: t.num(cx, "node_id", 1, 65_535),
        dump_deadline: t
            .ms(cx, "dump_deadline_ms", 0, 600_000)
            .unwrap_or(Duration::from_secs(5)),
        flush_after: t
            .ms(cx, "flush_after_ms", 1, 10)
            .unwrap_or(Duration::from_millis(5)),
    })
}

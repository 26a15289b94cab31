//! What the packet path decides for one frame.

/// Index of an interface in `[dataplane] interfaces`, in config order.
pub type PortId = u8;

/// The outcome of processing one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The frame was rewritten in place; send it out of `port`.
    Tx(PortId),
    /// Dropped, counted under the reason.
    Drop(DropReason),
    /// The flow belongs to another worker's table: hand the frame over unchanged.
    Handoff(u16),
    /// The frame was dropped for `dropped`, and its first `len` bytes now
    /// hold the ICMP error the node answers its sender with: send those out
    /// of `port`.
    Answer {
        port: PortId,
        len: u16,
        dropped: DropReason,
    },
}

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal, $help:literal;)*) => {
        /// Why a frame was dropped. Every drop is counted under exactly one reason.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $($variant,)* }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons (size of a per-core counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name used in metrics, logs and `vipctl stats`.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }

            /// Whether operators should count it as a drop: a fault or a
            /// policy refusal. Other hosts' ARP announcements and duplicate
            /// address probes need no answer, so they are only ignored.
            pub fn is_drop(self) -> bool {
                !matches!(self, DropReason::ArpAnnouncement | DropReason::NdDadProbe)
            }

            /// One line for an operator: what this drop means.
            pub fn help(self) -> &'static str {
                match self { $(DropReason::$variant => $help,)* }
            }
        }
    };
}

drop_reasons! {
    TruncatedEthernet => "truncated_ethernet", "frame shorter than an Ethernet (or 802.1Q) header";
    UnknownEthertype => "unknown_ethertype", "ethertype the dataplane does not handle";
    MalformedArp => "malformed_arp", "ARP packet that is truncated or not Ethernet/IPv4";
    ArpNotOwned => "arp_not_owned", "ARP request for an address this node does not own right now";
    ArpAnnouncement => "arp_announcement", "gratuitous ARP: a host announcing its own address, which needs no answer";
    TruncatedIpv4 => "truncated_ipv4", "IPv4 header cut short";
    BadIpv4Header => "bad_ipv4_header", "IPv4 version or header length (IHL) invalid";
    BadIpv4Length => "bad_ipv4_length", "IPv4 total length disagrees with the frame";
    BadIpv4Checksum => "bad_ipv4_checksum", "IPv4 header checksum wrong";
    Ipv4Fragment => "ipv4_fragment", "IPv4 fragment (fragments are not reassembled)";
    TruncatedIpv6 => "truncated_ipv6", "IPv6 header cut short";
    BadIpv6Header => "bad_ipv6_header", "IPv6 version field is not 6";
    BadIpv6Length => "bad_ipv6_length", "IPv6 payload length beyond the frame";
    Ipv6Fragment => "ipv6_fragment", "IPv6 fragment (fragments are not reassembled)";
    BadIpv6ExtHeaders => "bad_ipv6_ext_headers", "IPv6 extension-header chain truncated, too long, out of order, or with an option or header that must not be skipped";
    MalformedNd => "malformed_nd", "Neighbor Solicitation that fails RFC 4861 validation (hop limit, code, checksum, addresses)";
    NdNotOwned => "nd_not_owned", "Neighbor Solicitation for an address this node does not own right now";
    NdDadProbe => "nd_dad_probe", "duplicate address detection probe: another host trying an address, which needs no answer";
    NdUnanswered => "nd_unanswered", "Neighbor Solicitation without a source link-layer address option: its frame has no room for the answer";
    RouterMessage => "ipv6_router_message", "IPv6 router solicitation, router advertisement, redirect or neighbor advertisement: the kernel's, not the dataplane's";
    TtlExpired => "ttl_expired", "TTL or IPv6 hop limit would reach zero on forwarding";
    MartianSource => "martian_source", "source address no client can have (0/8, loopback, multicast, broadcast, a VIP or the node's own)";
    TruncatedL4 => "truncated_l4", "TCP/UDP/ICMP header cut short";
    BadTcpFlags => "bad_tcp_flags", "TCP flag combination that no valid segment carries";
    UnsupportedProtocol => "unsupported_protocol", "IP protocol not served on this VIP";
    NoService => "no_service", "no service on this VIP, port and protocol";
    VipNotOwned => "vip_not_owned", "VIP is configured but this node is not its owner right now";
    NoBackend => "no_backend", "every backend is down or drained and no sorry server is set";
    BackendDown => "backend_down", "packet of a connection whose backend failed its health check (on_backend_down = drop)";
    NoFlow => "no_flow", "packet for a connection the table does not know (not a new connection)";
    FlowTableFull => "flow_table_full", "flow table full of live connections; new connection refused";
    SnatPortsExhausted => "snat_ports_exhausted", "no free full-NAT source port";
    NeighbourUnresolved => "neighbour_unresolved", "next-hop MAC not yet known (resolution requested)";
    TooBigDf => "too_big_df", "larger than the egress MTU, IPv4 with DF set or IPv6; answered with ICMP fragmentation-needed or ICMPv6 Packet Too Big";
    TooBigUnanswered => "too_big_df_unanswered", "larger than the egress MTU, IPv4 with DF set or IPv6; no ICMP sent (over the node's ICMP rate, or no address to send from)";
    TooBig => "too_big", "larger than the egress MTU without DF (the node does not fragment)";
    IcmpUnsupported => "icmp_unsupported", "ICMP type the dataplane does not forward";
    BadIcmpChecksum => "bad_icmp_checksum", "ICMPv6 echo request with a wrong checksum";
    HandoffFull => "handoff_full", "another worker's hand-off queue was full";
    TxRingFull => "tx_ring_full", "transmit ring full";
}

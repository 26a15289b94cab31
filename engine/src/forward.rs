//! A trivial handler: forwards every frame out of another port with fixed
//! MAC addresses, finishing checksums left to the NIC. It measures the raw
//! AF_XDP forwarding rate (no load balancing logic) and drives the engine
//! tests.

use super::{Handler, MacAddrBytes};
use dataplane::verdict::{DropReason, PortId, Verdict};
use wire::finish_partial_checksum;

/// Sends each frame received on port `p` out of `route[p]`, with the
/// destination MAC set to `dst_mac[egress]` and the source MAC to
/// `src_mac[egress]`.
#[derive(Clone, Debug)]
pub struct ForwardHandler {
    route: Vec<PortId>,
    src_mac: Vec<MacAddrBytes>,
    dst_mac: Vec<MacAddrBytes>,
}

impl ForwardHandler {
    /// `route[p]` is the egress for ingress `p`; `src_mac`/`dst_mac` are
    /// indexed by egress port.
    pub fn new(route: Vec<PortId>, src_mac: Vec<MacAddrBytes>, dst_mac: Vec<MacAddrBytes>) -> Self {
        ForwardHandler {
            route,
            src_mac,
            dst_mac,
        }
    }

    /// Two ports, each forwarding to the other.
    pub fn pair(src_mac: [MacAddrBytes; 2], dst_mac: [MacAddrBytes; 2]) -> Self {
        Self::new(vec![1, 0], src_mac.to_vec(), dst_mac.to_vec())
    }
}

impl Handler for ForwardHandler {
    fn begin_batch(&mut self, _now_ms: u64) {}

    fn handle(&mut self, frame: &mut [u8], ingress: PortId) -> Verdict {
        let Some(&egress) = self.route.get(usize::from(ingress)) else {
            return Verdict::Drop(DropReason::NoService);
        };
        let (Some(src), Some(dst)) = (
            self.src_mac.get(usize::from(egress)),
            self.dst_mac.get(usize::from(egress)),
        ) else {
            return Verdict::Drop(DropReason::NoService);
        };
        let Some(macs) = frame.get_mut(..12) else {
            return Verdict::Drop(DropReason::TruncatedEthernet);
        };
        macs[..6].copy_from_slice(dst);
        macs[6..].copy_from_slice(src);
        // Nothing after AF_XDP finishes a checksum the sender left to its NIC.
        finish_partial_checksum(frame);
        Verdict::Tx(egress)
    }

    fn housekeeping(&mut self, _now_ms: u64, _seen: &mut dyn dataplane::flow::FastSeenAll) {}
}

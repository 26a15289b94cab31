//! The XDP program on its own: loaded but not attached, its maps filled by
//! the same code the workers use, frames run through it with
//! BPF_PROG_TEST_RUN. The fast path is tested by running it, byte for byte
//! against the workers' path.

use super::steer::{Attached, FlowEntries, XdpSteering};
use super::{EgressPort, EngineError};
use dataplane::flow::{FastSeen, FlowKey, Ip6, SteerChange};
use dataplane::verdict::PortId;

/// One loaded copy of the XDP program with its own maps.
pub struct XdpSimulator {
    program: Attached,
    steering: XdpSteering,
    entries: FlowEntries,
    ports: Vec<EgressPort>,
}

/// What the program did with a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimOutcome {
    /// The XDP action (`XDP_PASS`, `XDP_TX`, `XDP_REDIRECT`, ...).
    pub action: u32,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
}

impl XdpSimulator {
    /// Loads the program with `ports` as its port table (port index =
    /// position; each `ifindex` must name an interface of the calling
    /// thread's network namespace) and room for `flow_keys` keys.
    pub fn new(ports: &[EgressPort], flow_keys: u32) -> Result<XdpSimulator, EngineError> {
        let mut programs = [Attached::detached("simulator", flow_keys)?];
        let steering = XdpSteering::new(&mut programs);
        steering.set_ports(ports)?;
        let entries = FlowEntries::new(&programs);
        let [program] = programs;
        Ok(XdpSimulator {
            program,
            steering,
            entries,
            ports: ports.to_vec(),
        })
    }

    /// The program's VIP map, SYN limit and counters.
    pub fn steering(&self) -> &XdpSteering {
        &self.steering
    }

    /// Applies changes as a worker does; returns how many the table
    /// refused. Every change goes to the one program, whatever its port:
    /// the simulator stands for the program of every interface.
    pub fn apply(&mut self, changes: &[SteerChange]) -> usize {
        self.entries.apply_all(&on_one(changes))
    }

    /// The same for IPv6 changes.
    pub fn apply6(&mut self, changes: &[SteerChange<Ip6>]) -> usize {
        self.entries.apply6(&on_one(changes))
    }

    /// Runs `frame` through the program as if it arrived on port `ingress`.
    pub fn run(&mut self, frame: &[u8], ingress: PortId) -> Result<SimOutcome, EngineError> {
        let ifindex = self
            .ports
            .get(usize::from(ingress))
            .map_or(0, |p| p.ifindex);
        let (action, frame) = self.program.run(frame, ifindex)?;
        Ok(SimOutcome { action, frame })
    }

    /// When the program last forwarded a packet of `key` (engine clock, ms).
    pub fn last_seen_ms(&mut self, key: &FlowKey) -> Option<u64> {
        self.entries.last_seen_ms(0, key)
    }

    /// The same for an IPv6 key.
    pub fn last_seen6_ms(&mut self, key: &FlowKey<Ip6>) -> Option<u64> {
        self.entries.last_seen_ms(0, key)
    }
}

/// `changes` moved to port 0, the simulator's one program.
fn on_one<A: Copy>(changes: &[SteerChange<A>]) -> Vec<SteerChange<A>> {
    changes
        .iter()
        .map(|c| SteerChange { port: 0, ..*c })
        .collect()
}

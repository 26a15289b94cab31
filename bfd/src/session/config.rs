use std::time::Duration;

/// A session's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Names the peer in drops and logs.
    pub name: String,
    /// Non-zero and unique among this system's sessions.
    pub local_discriminator: u32,
    /// How often we want to send once Up.
    pub desired_min_tx: Duration,
    /// How often we can take the peer's packets.
    pub required_min_rx: Duration,
    /// Missed packets before the peer declares us down, ≥ 1.
    pub detect_mult: u8,
}

impl SessionConfig {
    /// Sends and receives every `interval`.
    pub fn new(
        name: impl Into<String>,
        local_discriminator: u32,
        interval: Duration,
        detect_mult: u8,
    ) -> SessionConfig {
        SessionConfig {
            name: name.into(),
            local_discriminator: local_discriminator.max(1),
            desired_min_tx: interval,
            required_min_rx: interval,
            detect_mult: detect_mult.max(1),
        }
    }
}

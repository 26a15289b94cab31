use super::events::Discard;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Packets accepted.
    pub packets_in: u64,
    pub packets_out: u64,
    pub dropped_malformed: u64,
    pub dropped_ttl: u64,
    pub dropped_auth: u64,
    /// Wrong or missing Your Discriminator.
    pub dropped_discriminator: u64,
    /// Times the session came Up.
    pub up_count: u64,
    /// Times it went from Up to Down other than by the peer's AdminDown.
    pub failures: u64,
}

impl SessionStats {
    pub(crate) fn count_drop(&mut self, why: &Discard) {
        let c = match why {
            Discard::Malformed(_) => &mut self.dropped_malformed,
            Discard::Ttl(_) => &mut self.dropped_ttl,
            Discard::Authentication => &mut self.dropped_auth,
            Discard::Discriminator(_) | Discard::NoDiscriminator(_) => {
                &mut self.dropped_discriminator
            }
        };
        *c += 1;
    }

    /// Drops by [`Discard::kind`].
    pub fn dropped_by_reason(&self) -> [(&'static str, u64); 4] {
        [
            ("malformed", self.dropped_malformed),
            ("ttl", self.dropped_ttl),
            ("authentication", self.dropped_auth),
            ("discriminator", self.dropped_discriminator),
        ]
    }

    pub fn dropped(&self) -> u64 {
        self.dropped_malformed + self.dropped_ttl + self.dropped_auth + self.dropped_discriminator
    }
}

//! Prefixes the peer announced, kept only to count them: a re-announcement with
//! new attributes must not count twice. No attributes are stored.

use std::collections::HashSet;

use crate::prefix::{Family, Prefix};

#[derive(Debug, Default)]
pub(crate) struct Received {
    v4: HashSet<Prefix>,
    v6: HashSet<Prefix>,
}

impl Received {
    fn set(&mut self, family: Family) -> &mut HashSet<Prefix> {
        match family {
            Family::Ipv4Unicast => &mut self.v4,
            Family::Ipv6Unicast => &mut self.v6,
        }
    }

    pub fn insert(&mut self, p: Prefix) {
        self.set(p.family()).insert(p);
    }

    pub fn remove(&mut self, p: &Prefix) {
        self.set(p.family()).remove(p);
    }

    pub fn clear(&mut self) {
        self.v4 = HashSet::new();
        self.v6 = HashSet::new();
    }

    pub fn count(&self, family: Family) -> usize {
        match family {
            Family::Ipv4Unicast => self.v4.len(),
            Family::Ipv6Unicast => self.v6.len(),
        }
    }

    pub fn total(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The family holding most prefixes, named in the max-prefix NOTIFICATION.
    pub fn largest_family(&self) -> Family {
        if self.v6.len() > self.v4.len() {
            Family::Ipv6Unicast
        } else {
            Family::Ipv4Unicast
        }
    }
}

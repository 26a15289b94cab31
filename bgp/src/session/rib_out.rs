//! Adj-RIB-Out: the routes a session advertises, and their UPDATE encoding.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use crate::message::{
    encode, AsPath, Message, MpReach, MpUnreach, Origin, PathAttributes, SessionCtx, Update,
};
use crate::prefix::{Family, Prefix};

/// A route vipd wants the peer to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: Prefix,
    pub next_hop: IpAddr,
    pub med: Option<u32>,
    /// Sent only on iBGP sessions (default 100 there).
    pub local_pref: Option<u32>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<[u32; 3]>,
    /// Extra copies of the local AS in front of the path, to make it less preferred.
    pub prepend: u8,
}

impl Route {
    /// A route with no optional attributes.
    pub fn new(prefix: Prefix, next_hop: IpAddr) -> Route {
        Route {
            prefix,
            next_hop,
            med: None,
            local_pref: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            prepend: 0,
        }
    }

    /// The attributes for this route toward a peer. Routes with equal results
    /// share one UPDATE.
    fn attributes(&self, local_as: u32, ebgp: bool) -> Result<PathAttributes, String> {
        let mut path = AsPath::default();
        let copies = usize::from(self.prepend) + usize::from(ebgp);
        if copies > 0 {
            path.prepend(local_as, copies);
        }
        let mut a = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(path),
            med: self.med,
            local_pref: if ebgp {
                None
            } else {
                Some(self.local_pref.unwrap_or(100))
            },
            communities: self.communities.clone(),
            large_communities: self.large_communities.clone(),
            ..PathAttributes::default()
        };
        match (self.prefix.family(), self.next_hop) {
            (Family::Ipv4Unicast, IpAddr::V4(nh)) => a.next_hop = Some(nh),
            (Family::Ipv4Unicast, IpAddr::V6(nh)) => {
                return Err(format!(
                    "route {} has IPv6 next hop {nh}; IPv4 routes need an IPv4 next hop",
                    self.prefix
                ))
            }
            (Family::Ipv6Unicast, nh) => {
                // An IPv4 next hop for IPv6 routes travels IPv4-mapped.
                let v6 = match nh {
                    IpAddr::V6(v6) => v6,
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                };
                a.mp_reach = Some(MpReach {
                    family: Family::Ipv6Unicast,
                    next_hop: IpAddr::V6(v6),
                    link_local: None::<Ipv6Addr>,
                    nlri: Vec::new(),
                });
            }
        }
        Ok(a)
    }
}

#[derive(Debug, Default)]
pub(crate) struct AdjRibOut {
    routes: BTreeMap<Prefix, Route>,
}

impl AdjRibOut {
    /// Stores the route; returns false if the same route was already there.
    pub fn insert(&mut self, route: Route) -> bool {
        if self.routes.get(&route.prefix) == Some(&route) {
            return false;
        }
        self.routes.insert(route.prefix, route);
        true
    }

    pub fn remove(&mut self, prefix: &Prefix) -> bool {
        self.routes.remove(prefix).is_some()
    }

    pub fn routes(&self, family: Family) -> impl Iterator<Item = &Route> {
        self.routes
            .values()
            .filter(move |r| r.prefix.family() == family)
    }
}

/// Encodes UPDATEs announcing `routes`, packing routes with equal attributes
/// into as few messages as fit. Routes that cannot be encoded come back as errors.
pub(crate) fn announce<'r>(
    routes: impl IntoIterator<Item = &'r Route>,
    local_as: u32,
    ebgp: bool,
    ctx: &SessionCtx,
    out: &mut Vec<Vec<u8>>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut groups: Vec<(PathAttributes, Vec<Prefix>)> = Vec::new();
    for r in routes {
        match r.attributes(local_as, ebgp) {
            Ok(a) => match groups.iter_mut().find(|(g, _)| *g == a) {
                Some((_, v)) => v.push(r.prefix),
                None => groups.push((a, vec![r.prefix])),
            },
            Err(e) => errors.push(e),
        }
    }
    for (attrs, prefixes) in groups {
        let mut u = Update {
            attributes: attrs,
            ..Update::default()
        };
        pack(&mut u, &prefixes, ctx, out, |u, p| {
            match &mut u.attributes.mp_reach {
                Some(r) => r.nlri.push(p),
                None => u.nlri.push(p),
            }
        });
    }
    errors
}

/// Encodes UPDATEs withdrawing `prefixes`.
pub(crate) fn withdraw(prefixes: &[Prefix], ctx: &SessionCtx, out: &mut Vec<Vec<u8>>) {
    for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        let list: Vec<Prefix> = prefixes
            .iter()
            .filter(|p| p.family() == family)
            .copied()
            .collect();
        if list.is_empty() {
            continue;
        }
        let mut u = Update::default();
        if family == Family::Ipv6Unicast {
            u.attributes.mp_unreach = Some(MpUnreach {
                family,
                withdrawn: Vec::new(),
            });
        }
        pack(&mut u, &list, ctx, out, |u, p| {
            match &mut u.attributes.mp_unreach {
                Some(m) => m.withdrawn.push(p),
                None => u.withdrawn.push(p),
            }
        });
    }
}

pub(crate) fn end_of_rib(family: Family, ctx: &SessionCtx, out: &mut Vec<Vec<u8>>) {
    let mut buf = Vec::new();
    if encode(
        &Message::Update(Box::new(Update::end_of_rib(family))),
        ctx,
        &mut buf,
    )
    .is_ok()
    {
        out.push(buf);
    }
}

/// Fills `template` with prefixes via `add`, starting a new message whenever the
/// next prefix would push it past 4096 octets.
fn pack(
    template: &mut Update,
    prefixes: &[Prefix],
    ctx: &SessionCtx,
    out: &mut Vec<Vec<u8>>,
    add: impl Fn(&mut Update, Prefix),
) {
    let mut base = Vec::new();
    if encode(&Message::Update(Box::new(template.clone())), ctx, &mut base).is_err() {
        return;
    }
    // Two spare octets: an attribute may switch to the extended length form.
    let budget = crate::message::MAX_MESSAGE_LEN.saturating_sub(base.len() + 2);
    let mut used = 0;
    let mut current = template.clone();
    for p in prefixes {
        if used + p.encoded_len() > budget {
            flush(&current, ctx, out);
            current = template.clone();
            used = 0;
        }
        add(&mut current, *p);
        used += p.encoded_len();
    }
    if used > 0 {
        flush(&current, ctx, out);
    }
}

fn flush(u: &Update, ctx: &SessionCtx, out: &mut Vec<Vec<u8>>) {
    let mut buf = Vec::new();
    if encode(&Message::Update(Box::new(u.clone())), ctx, &mut buf).is_ok() {
        out.push(buf);
    }
}

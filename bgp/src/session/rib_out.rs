//! Adj-RIB-Out: the routes a session advertises, and their UPDATE encoding.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use super::PeerConfig;
use crate::message::{
    encode, AsPath, Message, MpReach, MpUnreach, Origin, PathAttributes, SessionCtx, Update,
};
use crate::prefix::{Family, Prefix};

/// A route vipd wants the peer to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: Prefix,
    /// For an IPv4 route its NEXT_HOP. For an IPv6 route an IPv6 address is the
    /// global next hop, and an IPv4 one (a caller's one default for all routes)
    /// stands for the peer's configured `ipv6_next_hop`.
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

    /// The attributes for this route toward the peer of `cfg`. Routes with equal
    /// results share one UPDATE; an error says why the route cannot be sent.
    pub(crate) fn attributes(&self, cfg: &PeerConfig) -> Result<PathAttributes, String> {
        let ebgp = cfg.is_ebgp();
        let mut path = AsPath::default();
        let copies = usize::from(self.prepend) + usize::from(ebgp);
        if copies > 0 {
            path.prepend(cfg.local_as, copies);
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
            // Only MP_REACH_NLRI carries IPv6 routes, and never with NEXT_HOP (RFC 4760 §3).
            (Family::Ipv6Unicast, _) => {
                let (global, link_local) = self.ipv6_next_hop(cfg)?;
                a.mp_reach = Some(MpReach {
                    family: Family::Ipv6Unicast,
                    next_hop: IpAddr::V6(global),
                    link_local,
                    nlri: Vec::new(),
                });
            }
        }
        Ok(a)
    }

    /// The global and link-local next hops of an IPv6 route. Our link-local
    /// address goes only with our own global one: a third-party next hop is not us.
    fn ipv6_next_hop(&self, cfg: &PeerConfig) -> Result<(Ipv6Addr, Option<Ipv6Addr>), String> {
        match (self.next_hop, cfg.ipv6_next_hop) {
            (IpAddr::V6(g), Some(c)) if c.global == g => Ok((g, c.link_local)),
            (IpAddr::V6(g), _) => Ok((g, None)),
            (IpAddr::V4(_), Some(c)) => Ok((c.global, c.link_local)),
            (IpAddr::V4(nh), None) => Err(format!(
                "IPv6 route {} has IPv4 next hop {nh} and no ipv6_next_hop is configured for the peer; set one",
                self.prefix
            )),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct AdjRibOut {
    /// Each route with the attributes it was accepted with (`Route::attributes`).
    routes: BTreeMap<Prefix, (Route, PathAttributes)>,
}

impl AdjRibOut {
    /// Stores the route; returns false if the same route was already there.
    pub fn insert(&mut self, route: Route, attrs: PathAttributes) -> bool {
        if self
            .routes
            .get(&route.prefix)
            .is_some_and(|(r, _)| *r == route)
        {
            return false;
        }
        self.routes.insert(route.prefix, (route, attrs));
        true
    }

    pub fn remove(&mut self, prefix: &Prefix) -> bool {
        self.routes.remove(prefix).is_some()
    }

    pub fn routes(&self, family: Family) -> impl Iterator<Item = &Route> {
        self.routes
            .values()
            .map(|(r, _)| r)
            .filter(move |r| r.prefix.family() == family)
    }

    /// The prefixes of `family` with their attributes, ready for `announce`.
    pub fn announcements(&self, family: Family) -> impl Iterator<Item = (Prefix, &PathAttributes)> {
        self.routes
            .iter()
            .filter(move |(p, _)| p.family() == family)
            .map(|(p, (_, a))| (*p, a))
    }

    pub fn announcement(&self, prefix: &Prefix) -> Option<(Prefix, &PathAttributes)> {
        self.routes.get(prefix).map(|(_, a)| (*prefix, a))
    }
}

/// Encodes UPDATEs announcing `routes`, packing prefixes with equal attributes
/// into as few messages as fit.
pub(crate) fn announce<'a>(
    routes: impl IntoIterator<Item = (Prefix, &'a PathAttributes)>,
    ctx: &SessionCtx,
    out: &mut Vec<Vec<u8>>,
) {
    let mut groups: Vec<(&PathAttributes, Vec<Prefix>)> = Vec::new();
    for (prefix, attrs) in routes {
        match groups.iter_mut().find(|(g, _)| *g == attrs) {
            Some((_, v)) => v.push(prefix),
            None => groups.push((attrs, vec![prefix])),
        }
    }
    for (attrs, prefixes) in groups {
        let mut u = Update {
            attributes: attrs.clone(),
            ..Update::default()
        };
        pack(&mut u, &prefixes, ctx, out, |u, p| {
            match &mut u.attributes.mp_reach {
                Some(r) => r.nlri.push(p),
                None => u.nlri.push(p),
            }
        });
    }
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

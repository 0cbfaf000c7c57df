//! What one peer should hold from us and what it was told (its Adj-RIB-Out), so that a
//! change costs only the UPDATEs it needs: the prefixes that changed, grouped by attribute set,
//! each group packed into as few messages as the size limit allows. A change of one Service is
//! one small UPDATE; a full table is the minimum number of bytes.
use crate::packet::{Attributes, Family, NextHop, pack_announcements, pack_withdrawals};
use crate::session::Negotiated;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The attribute set of a route: everything but its prefix. Routes that share one (the same
/// `Arc`, or equal values) travel in the same UPDATEs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub attributes: Attributes,
    /// `None`: our own address on the session (next hop self), known once connected.
    pub next_hop: Option<NextHop>,
}

/// `local` as a next hop: IPv4, or IPv6 (global).
fn next_hop_self(local: IpAddr) -> NextHop {
    match local {
        IpAddr::V4(ip) => NextHop::V4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => NextHop::V4(v4),
            None => NextHop::V6 {
                global: ip,
                link_local: None,
            },
        },
    }
}

#[derive(Debug, Default)]
pub struct Export {
    routes: HashMap<IpNet, Entry>,
    /// Prefixes whose wanted and told paths may differ (repeats allowed).
    dirty: Vec<IpNet>,
    /// Every route must go out (a new session): `dirty` is not needed.
    full: bool,
    /// Marks the routes of the latest `replace`.
    generation: u32,
    /// How many prefixes the peer holds from us (told something).
    advertised: usize,
}

/// One prefix: the path the peer should have, and what it was told (as far as we know;
/// nothing while the session is down).
#[derive(Debug, Default)]
struct Entry {
    wanted: Option<Arc<Path>>,
    told: Told,
    generation: u32,
}

/// What the peer was told about a prefix. Mostly what it should have, which then costs no
/// second reference to the path.
#[derive(Debug, Default)]
enum Told {
    #[default]
    Nothing,
    Wanted,
    Other(Arc<Path>),
}

impl Entry {
    /// The path changes (or goes, with `None`); what was told is kept apart.
    fn set(&mut self, path: Option<Arc<Path>>) {
        let old = std::mem::replace(&mut self.wanted, path);
        if matches!(self.told, Told::Wanted) {
            self.told = old.map_or(Told::Nothing, Told::Other);
        }
    }
}

/// UPDATEs for one batch of changes, and how much they carry.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Updates {
    pub messages: Vec<Vec<u8>>,
    pub announced: usize,
    pub withdrawn: usize,
}

impl Export {
    /// An export that announces `prefixes`, all with `path`.
    pub fn with_routes(path: Path, prefixes: &[IpNet]) -> Export {
        let mut export = Export::default();
        let path = Arc::new(path);
        for prefix in prefixes {
            export.announce(*prefix, path.clone());
        }
        export
    }

    pub fn announce(&mut self, prefix: IpNet, path: Arc<Path>) {
        self.routes.entry(prefix).or_default().set(Some(path));
        self.dirty.push(prefix);
    }

    pub fn withdraw(&mut self, prefix: IpNet) {
        if let Some(entry) = self.routes.get_mut(&prefix)
            && entry.wanted.is_some()
        {
            entry.set(None);
            self.dirty.push(prefix);
        }
    }

    /// Makes `routes` the whole table: what is not in it is withdrawn, what is unchanged
    /// costs nothing.
    pub fn replace(&mut self, routes: impl IntoIterator<Item = (IpNet, Arc<Path>)>) {
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        for (prefix, path) in routes {
            let entry = self.routes.entry(prefix).or_default();
            entry.generation = generation;
            if entry.wanted.as_ref() != Some(&path) {
                entry.set(Some(path));
                self.dirty.push(prefix);
            }
        }
        for (prefix, entry) in &mut self.routes {
            if entry.generation != generation && entry.wanted.is_some() {
                entry.set(None);
                self.dirty.push(*prefix);
            }
        }
    }

    /// The routes the peer should hold.
    pub fn wanted(&self) -> impl Iterator<Item = (&IpNet, &Arc<Path>)> {
        self.routes
            .iter()
            .filter_map(|(prefix, entry)| Some((prefix, entry.wanted.as_ref()?)))
    }

    /// The session went down: the peer holds nothing of ours (or, with graceful restart,
    /// stale routes it drops at our End-of-RIB unless we announce them again).
    pub fn session_down(&mut self) {
        self.routes.retain(|_, entry| {
            entry.told = Told::Nothing;
            entry.wanted.is_some()
        });
        self.dirty.clear();
        self.full = true;
        self.advertised = 0;
    }

    /// A route refresh for `family`: its routes go out again.
    pub fn resend(&mut self, family: Family) {
        for (prefix, entry) in &mut self.routes {
            // Only routes still wanted: a withdrawal owed stays owed.
            if family_of(prefix) == family && entry.wanted.is_some() {
                if !matches!(std::mem::take(&mut entry.told), Told::Nothing) {
                    self.advertised -= 1;
                }
                self.dirty.push(*prefix);
            }
        }
    }

    /// How many prefixes the peer holds from us, as far as we know.
    pub fn advertised(&self) -> usize {
        self.advertised
    }

    pub fn has_changes(&self) -> bool {
        self.full || !self.dirty.is_empty()
    }

    /// The UPDATEs that bring the peer from what it was told to what it should hold, packed
    /// for what was negotiated. The peer counts as told once they are returned. Routes it
    /// cannot take (a family not negotiated, an IPv6 next hop for IPv4 without extended next
    /// hop) are not sent, and withdrawn if they were. Only for an established session;
    /// `local` is our address on it, the next hop of paths without one.
    pub fn updates(&mut self, negotiated: &Negotiated, local: Option<IpAddr>) -> Updates {
        let own = local.map(next_hop_self);
        let next_hop = |path: &Path| path.next_hop.or(own);
        // Announcements grouped by attribute set, in the order first seen.
        let mut groups: Vec<(Arc<Path>, Vec<IpNet>)> = Vec::new();
        let mut add = |prefix: IpNet, path: &Arc<Path>| match groups
            .iter_mut()
            .find(|(p, _)| Arc::ptr_eq(p, path) || p == path)
        {
            Some((_, prefixes)) => prefixes.push(prefix),
            None => groups.push((path.clone(), vec![prefix])),
        };
        // Withdrawals, split by whether the route went out in MP_REACH (an IPv4 route with an
        // IPv6 next hop is withdrawn in MP_UNREACH).
        let mut withdrawals: [Vec<IpNet>; 2] = [Vec::new(), Vec::new()];
        if std::mem::take(&mut self.full) {
            // A new session holds nothing: one pass over the table, no lookups, no sort.
            self.dirty.clear();
            for (prefix, entry) in &mut self.routes {
                if let Some(path) = &entry.wanted
                    && sendable(prefix, next_hop(path), negotiated)
                {
                    entry.told = Told::Wanted;
                    self.advertised += 1;
                    add(*prefix, path);
                }
            }
        } else {
            let mut dirty = std::mem::take(&mut self.dirty);
            dirty.sort_unstable();
            dirty.dedup();
            for prefix in dirty {
                let Some(entry) = self.routes.get_mut(&prefix) else {
                    continue;
                };
                let wanted = entry
                    .wanted
                    .as_ref()
                    .filter(|path| sendable(&prefix, next_hop(path), negotiated));
                match (wanted, &entry.told) {
                    (Some(_), Told::Wanted) => {}
                    (Some(path), Told::Other(was)) if Arc::ptr_eq(path, was) || path == was => {
                        entry.told = Told::Wanted;
                    }
                    (Some(path), told) => {
                        if matches!(told, Told::Nothing) {
                            self.advertised += 1;
                        }
                        add(prefix, path);
                        entry.told = Told::Wanted;
                    }
                    (None, Told::Other(was)) => {
                        let over_mp = matches!(prefix, IpNet::V4(_))
                            && matches!(next_hop(was), Some(NextHop::V6 { .. }));
                        withdrawals[usize::from(over_mp)].push(prefix);
                        entry.told = Told::Nothing;
                        self.advertised -= 1;
                    }
                    // Never sendable on this session, or never told.
                    (None, _) => {}
                }
                if entry.wanted.is_none() && matches!(entry.told, Told::Nothing) {
                    self.routes.remove(&prefix);
                }
            }
        }
        let ctx = negotiated.context;
        let mut updates = Updates::default();
        for (over_mp, prefixes) in withdrawals.iter().enumerate() {
            if !prefixes.is_empty() {
                updates.withdrawn += prefixes.len();
                updates
                    .messages
                    .extend(pack_withdrawals(prefixes, over_mp == 1, &ctx));
            }
        }
        for (path, prefixes) in &groups {
            // Sendable, so it has one.
            let Some(hop) = next_hop(path) else {
                continue;
            };
            updates.announced += prefixes.len();
            updates
                .messages
                .extend(pack_announcements(&path.attributes, hop, prefixes, &ctx));
        }
        updates
    }
}

fn family_of(prefix: &IpNet) -> Family {
    match prefix {
        IpNet::V4(_) => Family::IPV4_UNICAST,
        IpNet::V6(_) => Family::IPV6_UNICAST,
    }
}

/// Whether the peer can take this route on this session, with this next hop.
fn sendable(prefix: &IpNet, next_hop: Option<NextHop>, negotiated: &Negotiated) -> bool {
    let families = &negotiated.families;
    match (prefix, next_hop) {
        (_, None) => false,
        // IPv4 routes with an IPv6 next hop need extended next hop (RFC 8950).
        (IpNet::V4(_), Some(hop)) => {
            families.contains(&Family::IPV4_UNICAST)
                && (matches!(hop, NextHop::V4(_)) || negotiated.extended_next_hop)
        }
        (IpNet::V6(_), Some(hop)) => {
            families.contains(&Family::IPV6_UNICAST) && matches!(hop, NextHop::V6 { .. })
        }
    }
}

#[cfg(test)]
mod tests;

//! What one peer should hold from us and what it was told (its Adj-RIB-Out), so that a
//! change costs only the UPDATEs it needs: the prefixes that changed, grouped by attribute set,
//! each group packed into as few messages as the size limit allows. A change of one Service is
//! one small UPDATE; a full table is the minimum number of bytes.
use crate::packet::{Attributes, Family, NextHop, pack_announcements, pack_withdrawals};
use crate::session::Negotiated;
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The attribute set of a route: everything but its prefix. Routes that share one (the same
/// `Arc`, or equal values) travel in the same UPDATEs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub attributes: Attributes,
    pub next_hop: NextHop,
}

#[derive(Debug, Default)]
pub struct Export {
    wanted: HashMap<IpNet, Arc<Path>>,
    /// What the peer was told and still holds, as far as we know (empty while down).
    told: HashMap<IpNet, Arc<Path>>,
    /// Prefixes whose wanted and told paths may differ.
    dirty: HashSet<IpNet>,
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
        self.wanted.insert(prefix, path);
        self.dirty.insert(prefix);
    }

    pub fn withdraw(&mut self, prefix: IpNet) {
        if self.wanted.remove(&prefix).is_some() {
            self.dirty.insert(prefix);
        }
    }

    /// Makes `routes` the whole table: what is not in it is withdrawn, what is unchanged
    /// costs nothing.
    pub fn replace(&mut self, routes: impl IntoIterator<Item = (IpNet, Arc<Path>)>) {
        let old = std::mem::take(&mut self.wanted);
        for (prefix, path) in routes {
            if old.get(&prefix) != Some(&path) {
                self.dirty.insert(prefix);
            }
            self.wanted.insert(prefix, path);
        }
        self.dirty
            .extend(old.into_keys().filter(|p| !self.wanted.contains_key(p)));
    }

    /// The routes the peer should hold.
    pub fn wanted(&self) -> impl Iterator<Item = (&IpNet, &Arc<Path>)> {
        self.wanted.iter()
    }

    /// The session went down: the peer holds nothing of ours (or, with graceful restart,
    /// stale routes it drops at our End-of-RIB unless we announce them again).
    pub fn session_down(&mut self) {
        self.told.clear();
        self.dirty = self.wanted.keys().copied().collect();
    }

    /// A route refresh for `family`: its routes go out again (withdrawals still pending
    /// stay so).
    pub fn resend(&mut self, family: Family) {
        for prefix in self.wanted.keys().filter(|p| family_of(p) == family) {
            self.told.remove(prefix);
            self.dirty.insert(*prefix);
        }
    }

    pub fn has_changes(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The UPDATEs that bring the peer from what it was told to what it should hold, packed
    /// for what was negotiated. The peer counts as told once they are returned. Routes it
    /// cannot take (a family not negotiated, an IPv6 next hop for IPv4 without extended next
    /// hop) are not sent, and withdrawn if they were.
    pub fn updates(&mut self, negotiated: &Negotiated) -> Updates {
        let mut dirty: Vec<IpNet> = self.dirty.drain().collect();
        dirty.sort_unstable();
        // Announcements grouped by attribute set, in the order first seen; withdrawals of
        // IPv4 routes split by whether they went out in MP_REACH (IPv6 next hop).
        let mut groups: Vec<(Arc<Path>, Vec<IpNet>)> = Vec::new();
        let mut withdrawals: [Vec<IpNet>; 2] = [Vec::new(), Vec::new()];
        for prefix in dirty {
            let wanted = self
                .wanted
                .get(&prefix)
                .filter(|path| sendable(&prefix, path, negotiated));
            let told = self.told.get(&prefix);
            match (wanted, told) {
                (Some(path), Some(was)) if Arc::ptr_eq(path, was) || path == was => {}
                (Some(path), _) => {
                    match groups
                        .iter_mut()
                        .find(|(p, _)| Arc::ptr_eq(p, path) || p == path)
                    {
                        Some((_, prefixes)) => prefixes.push(prefix),
                        None => groups.push((path.clone(), vec![prefix])),
                    }
                    self.told.insert(prefix, path.clone());
                }
                (None, Some(was)) => {
                    let over_mp = matches!(prefix, IpNet::V4(_))
                        && matches!(was.next_hop, NextHop::V6 { .. });
                    withdrawals[usize::from(over_mp)].push(prefix);
                    self.told.remove(&prefix);
                }
                (None, None) => {}
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
            updates.announced += prefixes.len();
            updates.messages.extend(pack_announcements(
                &path.attributes,
                path.next_hop,
                prefixes,
                &ctx,
            ));
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

/// Whether the peer can take this route on this session.
fn sendable(prefix: &IpNet, path: &Path, negotiated: &Negotiated) -> bool {
    let families = &negotiated.families;
    match prefix {
        // IPv4 routes with an IPv6 next hop need extended next hop (RFC 8950).
        IpNet::V4(_) => {
            families.contains(&Family::IPV4_UNICAST)
                && (matches!(path.next_hop, NextHop::V4(_)) || negotiated.extended_next_hop)
        }
        IpNet::V6(_) => {
            families.contains(&Family::IPV6_UNICAST) && matches!(path.next_hop, NextHop::V6 { .. })
        }
    }
}

#[cfg(test)]
mod tests;

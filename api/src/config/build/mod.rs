//! From objects to a [`Config`]: every validation rule, each error naming object, field and reason.
//! One file per kind; this one holds the order they are built in and what they share.
use super::*;
use crate::kind::Kind;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

mod bfd;
mod bgp_advertisement;
mod community;
mod l2_advertisement;
mod peer;
mod pool;

const POOL: Kind = Kind::IPAddressPool;
const L2_ADV: Kind = Kind::L2Advertisement;
const BGP_ADV: Kind = Kind::BGPAdvertisement;
const PEER: Kind = Kind::BGPPeer;
const BFD: Kind = Kind::BFDProfile;
const COMMUNITY: Kind = Kind::Community;

pub(super) fn build(objects: &ConfigObjects) -> Result<Config, Vec<ConfigError>> {
    let mut builder = Builder {
        objects,
        errors: Vec::new(),
    };
    let bfd_profiles = builder.bfd_profiles();
    let aliases = builder.community_aliases();
    let mut pools = builder.pools();
    builder.attach_l2_advertisements(&mut pools);
    builder.attach_bgp_advertisements(&mut pools, &aliases);
    let peers = builder.peers(&bfd_profiles);
    builder.refuse_echo_towards_ipv6(&pools, &peers, &bfd_profiles);
    if builder.errors.is_empty() {
        Ok(Config {
            pools,
            peers,
            bfd_profiles,
        })
    } else {
        let mut errors = builder.errors;
        errors.sort();
        errors.dedup();
        Err(errors)
    }
}

struct Builder<'a> {
    objects: &'a ConfigObjects,
    errors: Vec<ConfigError>,
}

/// Objects in name order, so results and errors never depend on listing order.
fn by_name<K: ResourceExt>(objects: &[K]) -> Vec<&K> {
    let mut sorted: Vec<&K> = objects.iter().collect();
    sorted.sort_by_key(|o| o.name_any());
    sorted
}

impl Builder<'_> {
    fn error(
        &mut self,
        kind: Kind,
        name: &str,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.errors
            .push(ConfigError::new(kind, name, field, reason));
    }

    /// Checks a name is present and not taken yet by another object of the kind.
    fn claim_name(&mut self, kind: Kind, name: &str, seen: &mut BTreeSet<String>) -> bool {
        if name.is_empty() {
            self.error(kind, name, "metadata.name", "missing name");
            return false;
        }
        if !seen.insert(name.to_string()) {
            self.error(
                kind,
                name,
                "metadata.name",
                format!("duplicate definition of {kind} {name:?}"),
            );
            return false;
        }
        true
    }

    /// Compiles a list of label selectors, rejecting invalid and repeated ones.
    fn selectors(
        &mut self,
        kind: Kind,
        name: &str,
        field: &str,
        list: &[LabelSelector],
    ) -> Vec<Selector> {
        let mut compiled: Vec<Selector> = Vec::new();
        for (i, raw) in list.iter().enumerate() {
            match Selector::new(raw) {
                Ok(selector) if compiled.contains(&selector) => self.error(
                    kind,
                    name,
                    format!("spec.{field}[{i}]"),
                    format!(
                        "duplicate definition of {field} {selector:?}",
                        selector = selector.to_string()
                    ),
                ),
                Ok(selector) => compiled.push(selector),
                Err(reason) => self.error(kind, name, format!("spec.{field}[{i}]"), reason),
            }
        }
        compiled
    }

    /// Reports repeated entries of a list of names.
    fn unique_names(
        &mut self,
        kind: Kind,
        name: &str,
        field: &str,
        list: &[String],
    ) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        for (i, entry) in list.iter().enumerate() {
            if entry.is_empty() {
                self.error(kind, name, format!("spec.{field}[{i}]"), "empty name");
            } else if !seen.insert(entry.clone()) {
                self.error(
                    kind,
                    name,
                    format!("spec.{field}[{i}]"),
                    format!("duplicate definition of {field} {entry:?}"),
                );
            }
        }
        seen
    }
}

/// Whether some node is selected by both lists (empty lists select every node). With the
/// nodes unknown, whether the selectors could select a common node.
fn nodes_overlap(a: &[Selector], b: &[Selector], nodes: Option<&[Node]>) -> bool {
    let selects = |list: &[Selector], labels: &BTreeMap<String, String>| {
        list.is_empty() || list.iter().any(|s| s.matches(labels))
    };
    match nodes {
        Some(nodes) => nodes
            .iter()
            .any(|node| selects(a, node.labels()) && selects(b, node.labels())),
        None => {
            let any = [Selector::default()];
            let a = if a.is_empty() { &any[..] } else { a };
            let b = if b.is_empty() { &any[..] } else { b };
            a.iter().any(|x| b.iter().any(|y| x.may_overlap(y)))
        }
    }
}

//! Who announces each Service in layer 2 mode: pure, from the cluster snapshot, the live
//! speakers and the interfaces each can use. Every speaker runs the same computation on the
//! same inputs and reaches the same answer, with no coordination; MetalLB speakers do the
//! same ordering, so a mixed cluster agrees on owners.
use super::eligibility::{Endpoints, labels_of, matches_any, node_may_announce, pool_of};
use ferrolb_api::config::{Config, L2Advertisement};
use ferrolb_api::objects::Object;
use ferrolb_api::objects::slim::Service;
use ferrolb_api::service_key::ServiceKey;
use k8s_openapi::api::core::v1::Node;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// A live speaker, as gossip knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Speaker {
    /// The interfaces it can announce on; `None` when it does not say (a MetalLB speaker),
    /// which counts as any.
    pub interfaces: Option<BTreeSet<String>>,
}

/// What the election decided for one Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub service: ServiceKey,
    pub ips: Vec<IpAddr>,
    /// The candidates, best first: the first announces, the second takes over if it fails.
    pub order: Vec<String>,
    /// The interfaces `me` announces on, if `me` is the owner.
    pub interfaces: BTreeSet<String>,
    /// Set when nobody can announce because no candidate has an interface the
    /// advertisements name.
    pub lacking_interfaces: Option<LackingInterfaces>,
}

/// Nobody announces a Service by layer 2: none of the nodes that may has an interface its
/// advertisements name up and usable (missing, down or excluded there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LackingInterfaces {
    /// The node that would own the Service otherwise: it reports the gap (MetalLB's
    /// `announceFailed`), so every speaker that sees the same members agrees on one reporter.
    pub node: String,
    /// The nodes that may announce the Service, in election order.
    pub nodes: Vec<String>,
    /// The interfaces the advertisements selecting those nodes name; empty when one of them
    /// names none (any usable interface would do).
    pub named: BTreeSet<String>,
}

impl Decision {
    pub fn owner(&self) -> Option<&str> {
        self.order.first().map(String::as_str)
    }
}

pub struct Inputs<'a> {
    pub services: Vec<&'a Service>,
    pub nodes: BTreeMap<String, &'a Node>,
    pub endpoints: Endpoints<'a>,
    pub config: &'a Config,
    /// Live speakers by node name, `me` included.
    pub speakers: &'a BTreeMap<String, Speaker>,
    pub me: &'a str,
    pub lb_class: Option<&'a str>,
    /// MetalLB's `--ignore-exclude-lb`: labelled nodes announce too.
    pub ignore_exclude_lb: bool,
}

impl<'a> Inputs<'a> {
    pub fn new(
        objects: impl IntoIterator<Item = &'a Object>,
        config: &'a Config,
        speakers: &'a BTreeMap<String, Speaker>,
        me: &'a str,
        lb_class: Option<&'a str>,
    ) -> Inputs<'a> {
        let mut slices = Vec::new();
        let mut inputs = Inputs {
            services: Vec::new(),
            nodes: BTreeMap::new(),
            endpoints: Endpoints::default(),
            config,
            speakers,
            me,
            lb_class,
            ignore_exclude_lb: false,
        };
        for object in objects {
            match object {
                Object::SlimService(s) => inputs.services.push(s),
                Object::Node(n) => {
                    inputs
                        .nodes
                        .insert(n.metadata.name.clone().unwrap_or_default(), n);
                }
                Object::SlimEndpointSlice(e) => slices.push(&**e),
                // A speaker reads with `Detail::Speaker`; full ones here would plan nothing.
                Object::Service(_) | Object::EndpointSlice(_) => {
                    debug_assert!(false, "the speaker plans from slim records");
                }
                _ => {}
            }
        }
        inputs.endpoints = Endpoints::index(slices);
        inputs
    }
}

/// The layer 2 decisions for every Service that gets announced by someone.
pub fn elect(inputs: &Inputs) -> Vec<Decision> {
    inputs
        .services
        .iter()
        .filter_map(|service| elect_one(inputs, service))
        .collect()
}

fn elect_one(inputs: &Inputs, service: &Service) -> Option<Decision> {
    if !service.is_ours(inputs.lb_class) {
        return None;
    }
    let key = service.key()?;
    let ips = service.ips.to_vec();
    let first_ip = *ips.first()?;
    let pool = pool_of(inputs.config, &ips)?;
    let advertisements: Vec<&L2Advertisement> = pool
        .l2_advertisements
        .iter()
        .filter(|a| matches_any(&a.service_selectors, &service.labels))
        .collect();
    if advertisements.is_empty() {
        return None;
    }
    // A Service without a ready endpoint is not announced at all, as in MetalLB.
    if !inputs.endpoints.any_ready(&key) {
        return None;
    }
    let serving = inputs.endpoints.serving_nodes(&key);
    let local = service.local_traffic;

    let mut candidates: Vec<(i64, [u8; 32], String)> = Vec::new();
    // Nodes that would be candidates but have none of the interfaces named, and what the
    // advertisements selecting them name (`None`: one of them takes any interface).
    let mut lacking: Vec<(i64, [u8; 32], String)> = Vec::new();
    let mut named: Option<BTreeSet<String>> = Some(BTreeSet::new());
    for (node_name, speaker) in inputs.speakers {
        let Some(node) = inputs.nodes.get(node_name) else {
            continue;
        };
        if !node_may_announce(node, inputs.ignore_exclude_lb)
            || (local && !serving.contains(node_name.as_str()))
        {
            continue;
        }
        let labels = labels_of(node);
        let selecting: Vec<&&L2Advertisement> = advertisements
            .iter()
            .filter(|a| matches_any(&a.node_selectors, &labels))
            .collect();
        let weight = |selecting: &[&&L2Advertisement]| -> i64 {
            selecting
                .iter()
                .flat_map(|a| &a.preferred_node_selectors)
                .filter(|(_, s)| s.matches(&labels))
                .map(|(w, _)| i64::from(*w))
                .sum()
        };
        let with_interfaces: Vec<&&L2Advertisement> = selecting
            .iter()
            .filter(|a| {
                !usable_interfaces(a, speaker.interfaces.as_ref()).is_some_and(|i| i.is_empty())
            })
            .copied()
            .collect();
        let rank = tie_breaker(node_name, first_ip);
        if !with_interfaces.is_empty() {
            candidates.push((weight(&with_interfaces), rank, node_name.clone()));
        } else if !selecting.is_empty() {
            lacking.push((weight(&selecting), rank, node_name.clone()));
            for advertisement in &selecting {
                if advertisement.interfaces.is_empty() {
                    named = None;
                } else if let Some(named) = &mut named {
                    named.extend(advertisement.interfaces.iter().cloned());
                }
            }
        }
    }
    let order = ranked(candidates);
    let lacking_interfaces = if order.is_empty() && !lacking.is_empty() {
        let nodes = ranked(lacking);
        Some(LackingInterfaces {
            node: nodes[0].clone(),
            nodes,
            named: named.unwrap_or_default(),
        })
    } else {
        None
    };

    let interfaces = if order.first().map(String::as_str) == Some(inputs.me) {
        my_interfaces(inputs, &advertisements)
    } else {
        BTreeSet::new()
    };
    Some(Decision {
        service: key,
        ips,
        order,
        interfaces,
        lacking_interfaces,
    })
}

/// The node names, heavier preferred-node weight first, then by the hash, ascending.
fn ranked(mut candidates: Vec<(i64, [u8; 32], String)>) -> Vec<String> {
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    candidates.into_iter().map(|(_, _, n)| n).collect()
}

/// `sha256(node + "#" + ip)`, compared as bytes: MetalLB's tie breaker, which spreads
/// Services over nodes and moves only the failed node's Services when one goes.
pub fn tie_breaker(node: &str, ip: IpAddr) -> [u8; 32] {
    // Go prints an IPv4-mapped IPv6 address as plain IPv4: so must we, to agree with MetalLB.
    Sha256::digest(format!("{node}#{}", ip.to_canonical())).into()
}

/// The interfaces of a speaker that an advertisement lets it use; `None` when the speaker
/// does not say which it has.
fn usable_interfaces(
    advertisement: &L2Advertisement,
    speaker_interfaces: Option<&BTreeSet<String>>,
) -> Option<BTreeSet<String>> {
    let have = speaker_interfaces?;
    Some(if advertisement.interfaces.is_empty() {
        have.clone()
    } else {
        advertisement
            .interfaces
            .iter()
            .filter(|i| have.contains(*i))
            .cloned()
            .collect()
    })
}

fn my_interfaces(inputs: &Inputs, advertisements: &[&L2Advertisement]) -> BTreeSet<String> {
    let Some(me) = inputs.speakers.get(inputs.me) else {
        return BTreeSet::new();
    };
    let labels = inputs
        .nodes
        .get(inputs.me)
        .map(|n| labels_of(n))
        .unwrap_or_default();
    advertisements
        .iter()
        .filter(|a| matches_any(&a.node_selectors, &labels))
        .filter_map(|a| usable_interfaces(a, me.interfaces.as_ref()))
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests;

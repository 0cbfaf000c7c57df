//! What this node should be doing, decided without I/O: `plan` turns the cluster snapshot,
//! the configuration, the live members and this node's usable interfaces into an [`Intent`],
//! which the speaker's loop carries out through its drivers (layer 2 interface tasks, gossip,
//! status writers). Every speaker computes the same elections from the same inputs.
pub mod bgp;
pub mod election;
pub mod eligibility;

#[cfg(test)]
mod tests;

use crate::membership::meta;
use election::{Inputs, Speaker};
use ferrolb_api::config::Config;
use ferrolb_api::objects::Object;
use ferrolb_api::service_key::ServiceKey;
use ferrolb_gossip::core::{Member, State};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Layer 2 announcements: by interface, the IPs to answer for, each with its Service.
pub type Layer2 = BTreeMap<String, BTreeMap<IpAddr, ServiceKey>>;

/// What this node should be doing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Intent {
    pub layer2: Layer2,
    /// BGP sessions and the routes for each.
    pub bgp: bgp::Bgp,
    /// The ServiceL2Status objects this node owns: by Service, the interfaces it lists.
    pub l2_statuses: BTreeMap<ServiceKey, crate::status::Listed>,
    /// This node's gossip metadata: the interfaces it can announce on, with their MACs.
    pub meta: Vec<u8>,
    /// The Services nobody announces by layer 2 because no node that may has an interface
    /// their advertisements name, which this node is the one to report: their IPs, and why.
    pub lacking_interfaces: BTreeMap<ServiceKey, (Vec<IpAddr>, election::LackingInterfaces)>,
}

impl Intent {
    /// The Service this node announces `ip` for by layer 2 on `interface`.
    pub fn layer2_service(&self, interface: &str, ip: &IpAddr) -> Option<&ServiceKey> {
        self.layer2.get(interface)?.get(ip)
    }
}

/// Who this node is and what it may do.
pub struct Node<'a> {
    pub name: &'a str,
    pub lb_class: Option<&'a str>,
    /// Whether nodes labelled to be excluded from load balancers announce anyway.
    pub ignore_exclude_lb: bool,
    /// The interfaces this node can announce on now, with their MACs.
    pub interfaces: &'a meta::Interfaces,
}

/// The live speakers as the election sees them: every alive or suspect member with the
/// interfaces its metadata lists, and this node with its own.
pub fn live_speakers(members: &[Member], node: &Node) -> BTreeMap<String, Speaker> {
    let mut speakers: BTreeMap<String, Speaker> = members
        .iter()
        .filter(|m| matches!(m.state, State::Alive | State::Suspect))
        .map(|m| {
            let interfaces = meta::parse(&m.meta).map(|i| meta::names(&i));
            (m.name.clone(), Speaker { interfaces })
        })
        .collect();
    speakers.insert(
        node.name.to_string(),
        Speaker {
            interfaces: Some(node.interfaces.keys().cloned().collect()),
        },
    );
    speakers
}

/// The plan for this node. Without a configuration (none valid yet), only the gossip
/// metadata is decided.
pub fn plan<'a>(
    objects: impl IntoIterator<Item = &'a Object>,
    config: Option<&Config>,
    members: &[Member],
    node: &Node,
) -> Intent {
    let mut intent = Intent {
        meta: meta::encode(node.interfaces),
        ..Intent::default()
    };
    let Some(config) = config else {
        return intent;
    };
    let objects: Vec<&Object> = objects.into_iter().collect();
    let speakers = live_speakers(members, node);
    let mut inputs = Inputs::new(
        objects.iter().map(|o| &**o),
        config,
        &speakers,
        node.name,
        node.lb_class,
    );
    inputs.ignore_exclude_lb = node.ignore_exclude_lb;
    intent.bgp = bgp::plan(&inputs);
    let decisions = election::elect(&inputs);
    // Most Services are announced on the same interfaces: one set each, shared.
    let mut interface_sets = crate::status::Sets::default();
    for d in decisions.iter().filter(|d| d.owner() == Some(node.name)) {
        for interface in &d.interfaces {
            let ips = intent.layer2.entry(interface.clone()).or_default();
            for ip in &d.ips {
                ips.insert(*ip, d.service.clone());
            }
        }
        let interfaces = d.interfaces.iter().map(String::as_str).collect();
        intent
            .l2_statuses
            .insert(d.service.clone(), interface_sets.share(interfaces));
    }
    for d in &decisions {
        if let Some(lacking) = d
            .lacking_interfaces
            .as_ref()
            .filter(|l| l.node == node.name)
        {
            intent
                .lacking_interfaces
                .insert(d.service.clone(), (d.ips.clone(), lacking.clone()));
        }
    }
    intent
}

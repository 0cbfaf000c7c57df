//! This node's side of gossip membership: where to join (the Nodes' addresses, or the speaker
//! pods' in Kubernetes) and what to tell the others about itself (metadata). Changes are
//! handed to gossip only when they change. (Which members to watch closely, gossip decides
//! itself: its ring neighbours.)
pub mod meta;

use ferrolb_cluster::{Cluster, Snapshot};
use ferrolb_gossip::driver::Gossip;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// The InternalIP of every Node, by name: where their speakers listen for gossip.
pub fn node_addresses(snapshot: &Snapshot) -> BTreeMap<String, IpAddr> {
    snapshot
        .nodes()
        .filter_map(|n| {
            let ip = n
                .status
                .as_ref()?
                .addresses
                .as_ref()?
                .iter()
                .find(|a| a.type_ == "InternalIP")?
                .address
                .parse()
                .ok()?;
            Some((n.metadata.name.clone()?, ip))
        })
        .collect()
}

pub struct Membership {
    node: String,
    namespace: String,
    ml_port: u16,
    /// The label selector of the speaker pods (Kubernetes), whose IPs gossip joins.
    ml_labels: String,
    seeds: Vec<SocketAddr>,
    /// Whether the seeds come from the speaker pods (Kubernetes) rather than the Nodes.
    seeds_from_pods: bool,
    meta: Vec<u8>,
}

impl Membership {
    pub fn new(node: &str, namespace: &str, ml_port: u16, ml_labels: &str) -> Membership {
        Membership {
            node: node.to_string(),
            namespace: namespace.to_string(),
            ml_port,
            ml_labels: ml_labels.to_string(),
            seeds: Vec::new(),
            seeds_from_pods: false,
            meta: Vec::new(),
        }
    }

    /// Whether there is anyone to join.
    pub fn has_seeds(&self) -> bool {
        !self.seeds.is_empty()
    }

    /// Joins through the other Nodes' InternalIPs, unless the speaker pods are known.
    pub async fn seeds_from_nodes(&mut self, gossip: &Gossip, snapshot: &Snapshot) {
        if self.seeds_from_pods {
            return;
        }
        let seeds: Vec<SocketAddr> = node_addresses(snapshot)
            .into_iter()
            .filter(|(name, _)| *name != self.node)
            .map(|(_, ip)| SocketAddr::new(ip, self.ml_port))
            .collect();
        self.set_seeds(gossip, seeds).await;
    }

    /// In Kubernetes, joins through the speaker pods' IPs, as MetalLB does; the file store
    /// has no pods, and its Nodes' InternalIPs are used instead.
    pub async fn seeds_from_speaker_pods(&mut self, gossip: &Gossip, cluster: &Cluster) {
        match cluster.speaker_ips(&self.namespace, &self.ml_labels).await {
            Ok(Some(ips)) => {
                self.seeds_from_pods = true;
                let seeds = ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, self.ml_port))
                    .collect();
                self.set_seeds(gossip, seeds).await;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "listing the speaker pods failed"),
        }
    }

    async fn set_seeds(&mut self, gossip: &Gossip, seeds: Vec<SocketAddr>) {
        if seeds != self.seeds {
            gossip.set_seeds(seeds.clone()).await;
            self.seeds = seeds;
        }
    }

    /// Tells the others what this node can announce on, when that changed.
    pub async fn set_meta(&mut self, gossip: &Gossip, meta: &[u8]) {
        if meta != self.meta {
            gossip.update_meta(meta.to_vec()).await;
            self.meta = meta.to_vec();
        }
    }
}

//! `ferrolbctl get`: tables, or the full objects as a Kubernetes `List` (from a cluster, without
//! managedFields, as `kubectl get` shows them).
use crate::Output;
use anyhow::Context;
use clap::ValueEnum;
use ferrolb_api::objects::Object;
use ferrolb_cluster::Snapshot;
use ferrolb_cluster::kubernetes::KubeCluster;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum What {
    Services,
    Pools,
    L2status,
    Bgpstatus,
}

/// Reads the current state from the store or the Kubernetes API.
pub async fn snapshot(
    store: Option<&Path>,
    kubeconfig: Option<&Path>,
    namespace: &str,
) -> anyhow::Result<Snapshot> {
    if let Some(dir) = store {
        anyhow::ensure!(dir.is_dir(), "store {} is not a directory", dir.display());
        return Ok(ferrolb_cluster::store::load(dir, namespace));
    }
    let cluster = KubeCluster::connect(
        kubeconfig,
        namespace,
        "ferrolbctl",
        ferrolb_api::objects::Detail::Full,
    )
    .await?;
    let mut snapshots = cluster.snapshots();
    // The backend publishes its first snapshot once every kind has been listed.
    tokio::time::timeout(Duration::from_secs(30), snapshots.changed())
        .await
        .context("the Kubernetes API did not answer within 30 s")??;
    let snapshot = snapshots.borrow().as_ref().clone();
    Ok(snapshot)
}

pub fn render(snapshot: &Snapshot, what: What, output: Option<Output>) -> anyhow::Result<String> {
    let objects: Vec<&Object> = snapshot
        .objects
        .values()
        .filter(|o| {
            matches!(
                (what, o),
                (What::Services, Object::Service(_))
                    | (What::Pools, Object::IPAddressPool(_))
                    | (What::L2status, Object::ServiceL2Status(_))
                    | (What::Bgpstatus, Object::ServiceBGPStatus(_))
            )
        })
        .collect();
    match output {
        Some(Output::Json) => Ok(serde_json::to_string_pretty(&list(&objects)?)? + "\n"),
        Some(Output::Yaml) => Ok(yaml_serde::to_string(&list(&objects)?)?),
        wide => Ok(table(&objects, what, matches!(wide, Some(Output::Wide)))),
    }
}

fn list(objects: &[&Object]) -> anyhow::Result<serde_json::Value> {
    let items = objects
        .iter()
        .map(|o| o.to_json().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}))
}

fn table(objects: &[&Object], what: What, wide: bool) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let header: &[&str] = match (what, wide) {
        (What::Services, false) => &["NAMESPACE", "NAME", "TYPE", "EXTERNAL-IP", "POOL"],
        (What::Services, true) => &[
            "NAMESPACE",
            "NAME",
            "TYPE",
            "EXTERNAL-IP",
            "POOL",
            "REQUESTED",
            "SHARING-KEY",
            "TRAFFIC-POLICY",
        ],
        (What::Pools, false) => &["NAME", "AUTO-ASSIGN", "AVOID-BUGGY-IPS", "ADDRESSES"],
        (What::Pools, true) => &[
            "NAME",
            "AUTO-ASSIGN",
            "AVOID-BUGGY-IPS",
            "ADDRESSES",
            "ASSIGNED-IPV4",
            "AVAILABLE-IPV4",
            "ASSIGNED-IPV6",
            "AVAILABLE-IPV6",
        ],
        (What::L2status, _) => &["NAME", "NODE", "SERVICE", "INTERFACES"],
        (What::Bgpstatus, _) => &["NAME", "NODE", "SERVICE", "PEERS"],
    };
    rows.push(header.iter().map(|h| h.to_string()).collect());
    for object in objects {
        rows.push(match object {
            Object::Service(s) => {
                let annotation = |key: &str| {
                    let annotations = s.metadata.annotations.as_ref();
                    annotations
                        .and_then(|a| {
                            a.get(&format!("metallb.io/{key}"))
                                .or_else(|| a.get(&format!("metallb.universe.tf/{key}")))
                        })
                        .cloned()
                        .unwrap_or_else(|| "<none>".into())
                };
                let ips: Vec<String> = s
                    .status
                    .as_ref()
                    .and_then(|st| st.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.ip.clone())
                    .collect();
                let type_ = s
                    .spec
                    .as_ref()
                    .and_then(|sp| sp.type_.clone())
                    .unwrap_or_else(|| "ClusterIP".into());
                let external = match (ips.is_empty(), type_.as_str()) {
                    (false, _) => ips.join(","),
                    (true, "LoadBalancer") => "<pending>".into(),
                    (true, _) => "<none>".into(),
                };
                let mut row = vec![
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone().unwrap_or_default(),
                    type_,
                    external,
                    annotation("ip-allocated-from-pool"),
                ];
                if wide {
                    row.push(annotation("loadBalancerIPs"));
                    row.push(annotation("allow-shared-ip"));
                    row.push(
                        s.spec
                            .as_ref()
                            .and_then(|sp| sp.external_traffic_policy.clone())
                            .unwrap_or_else(|| "Cluster".into()),
                    );
                }
                row
            }
            Object::IPAddressPool(p) => {
                let mut row = vec![
                    p.metadata.name.clone().unwrap_or_default(),
                    p.spec.auto_assign.unwrap_or(true).to_string(),
                    p.spec.avoid_buggy_ips.to_string(),
                    p.spec.addresses.join(","),
                ];
                if wide {
                    let status = p.status.clone().unwrap_or_default();
                    for n in [
                        status.assigned_ipv4,
                        status.available_ipv4,
                        status.assigned_ipv6,
                        status.available_ipv6,
                    ] {
                        row.push(n.to_string());
                    }
                }
                row
            }
            Object::ServiceL2Status(l2) => {
                let st = l2.status.clone().unwrap_or_default();
                let interfaces: Vec<String> =
                    st.interfaces.iter().map(|i| i.name.clone()).collect();
                vec![
                    l2.metadata.name.clone().unwrap_or_default(),
                    st.node,
                    format!("{}/{}", st.service_namespace, st.service_name),
                    interfaces.join(","),
                ]
            }
            Object::ServiceBGPStatus(bgp) => {
                let st = bgp.status.clone().unwrap_or_default();
                vec![
                    bgp.metadata.name.clone().unwrap_or_default(),
                    st.node,
                    format!("{}/{}", st.service_namespace, st.service_name),
                    st.peers.join(","),
                ]
            }
            _ => continue,
        });
    }
    crate::table::aligned(&rows)
}

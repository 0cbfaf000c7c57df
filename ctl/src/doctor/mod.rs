//! `ferrolbctl doctor`: finds what often goes wrong with a MetalLB-style setup and says how
//! to fix each. The checks are pure ([`diagnose`]) over what was read from a store or a
//! cluster ([`Input`]); reading is the shell's part.
use crate::migrate::Finding;
use ferrolb_api::config::Config;
use ferrolb_api::event_reason::EventReason;
use ferrolb_api::exclusions::{self, Exclusions};
use ferrolb_api::kind::Kind;
use ferrolb_api::objects::Object;
use ferrolb_api::service_key::ServiceKey;
use ferrolb_cluster::{ObjectKey, Snapshot};
use ferrolb_controller::reconcile::Controller;
use k8s_openapi::api::core::v1::ConfigMap;

#[cfg(test)]
mod tests;

/// Nodes with this label announce nothing (unless the speakers run with
/// `--ignore-exclude-lb`), as in MetalLB.
const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// MetalLB's memberlist Secret in its plain manifests (its Helm chart prefixes the release
/// name: `--ml-secret-name`).
pub const MEMBERLIST_SECRET: &str = "memberlist";

/// A ValidatingWebhookConfiguration's webhook for metallb.io objects, and the Service the
/// API server sends them to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub configuration: String,
    pub service_namespace: String,
    pub service_name: String,
}

/// What the checks read.
pub struct Input<'a> {
    pub snapshot: &'a Snapshot,
    /// MetalLB's namespace.
    pub namespace: &'a str,
    /// The controller's `--lb-class`: Services of that class (None: of none) are ours.
    pub lb_class: Option<&'a str>,
    /// kube-proxy's ConfigMap (kube-system/kube-proxy), when there is one.
    pub kube_proxy: Option<&'a ConfigMap>,
    /// Read from a Kubernetes API: the Secret and webhook checks apply (a store has neither).
    pub kubernetes: Option<Kubernetes>,
    /// The speakers' `announceFailed` Events: Services no node could announce by layer 2
    /// for want of an interface.
    pub announce_failed: Vec<AnnounceFailed>,
}

/// A speaker's `announceFailed` Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceFailed {
    pub service: ServiceKey,
    pub message: String,
}

/// What only a Kubernetes API says.
pub struct Kubernetes {
    /// The memberlist Secret's name.
    pub memberlist_secret: String,
    pub webhooks: Vec<Webhook>,
    /// Services that exist (namespace, name), all of them: webhooks point at any.
    pub services: Vec<(String, String)>,
}

/// Every problem found, with its fix.
pub fn diagnose(input: &Input) -> Vec<Finding> {
    let mut findings = Vec::new();
    kube_proxy(input, &mut findings);
    let config = configuration(input, &mut findings);
    if let Some(config) = &config {
        pools_not_advertised(config, &mut findings);
        interfaces_excluded(input, config, &mut findings);
    }
    interfaces_missing(input, &mut findings);
    nodes_all_excluded(input, &mut findings);
    if let Some(kubernetes) = &input.kubernetes {
        memberlist_secret(input, &kubernetes.memberlist_secret, &mut findings);
        webhook_leftovers(kubernetes, &mut findings);
    }
    pending_services(input, &mut findings);
    findings
}

/// kube-proxy in IPVS mode answers ARP for every Service IP on every node unless strictARP
/// is set: layer 2 mode's answers then race with those of every node.
fn kube_proxy(input: &Input, findings: &mut Vec<Finding>) {
    let Some(config) = input
        .kube_proxy
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get("config.conf"))
    else {
        return;
    };
    let Ok(config) = yaml_serde::from_str::<serde_json::Value>(config) else {
        findings.push(Finding {
            what:
                "kube-proxy's ConfigMap (kube-system/kube-proxy) has a config.conf that is not YAML"
                    .into(),
            fix: "check it with `kubectl get configmap -n kube-system kube-proxy -o yaml`".into(),
        });
        return;
    };
    let ipvs = config["mode"].as_str() == Some("ipvs");
    let strict = config["ipvs"]["strictARP"].as_bool() == Some(true);
    if ipvs && !strict {
        findings.push(Finding {
            what: "kube-proxy runs in IPVS mode without strictARP: every node answers ARP for every Service IP, so clients may reach a node that does not hold it".into(),
            fix: "set `ipvs: {strictARP: true}` in the kube-proxy ConfigMap (`kubectl edit configmap -n kube-system kube-proxy`), then restart kube-proxy".into(),
        });
    }
}

/// The configuration as the controller and speakers build it; each error is a finding.
fn configuration(input: &Input, findings: &mut Vec<Finding>) -> Option<Config> {
    match Config::build(&input.snapshot.config_objects(input.namespace)) {
        Ok(config) => Some(config),
        Err(errors) => {
            for error in errors {
                findings.push(Finding {
                    what: format!("the configuration is invalid, so the last valid one stays in force: {error}"),
                    fix: "correct the object (`ferrolbctl validate` checks files before they are applied)".into(),
                });
            }
            None
        }
    }
}

fn pools_not_advertised(config: &Config, findings: &mut Vec<Finding>) {
    for pool in config.pools.values() {
        if !pool.is_announced() {
            findings.push(Finding {
                what: format!("IPAddressPool {:?} is selected by no L2Advertisement or BGPAdvertisement: its IPs are given to Services but nobody announces them", pool.name),
                fix: format!("add an L2Advertisement or a BGPAdvertisement with `ipAddressPools: [{}]` (or an ipAddressPoolSelectors matching its labels); with none naming pools, every pool is announced", pool.name),
            });
        }
    }
}

/// An L2Advertisement whose every interface `metallb-excludel2` (or, without it, MetalLB's
/// default list) excludes announces nothing anywhere.
fn interfaces_excluded(input: &Input, config: &Config, findings: &mut Vec<Finding>) {
    let key = ObjectKey::new(
        Kind::ConfigMap,
        Some(input.namespace),
        exclusions::CONFIGMAP,
    );
    let configmap = match input.snapshot.get(&key) {
        Some(Object::ConfigMap(c)) => Some(&**c),
        _ => None,
    };
    let exclusions = match Exclusions::from_configmap(configmap) {
        Ok(exclusions) => exclusions,
        Err(error) => {
            findings.push(Finding {
                what: format!("{error}: the speakers keep the interfaces they excluded before it broke (or MetalLB's default list)"),
                fix: format!("correct `excludel2.yaml` in ConfigMap {}/{}: `announcedInterfacesToExclude` is a list of regular expressions", input.namespace, exclusions::CONFIGMAP),
            });
            return;
        }
    };
    let mut reported = std::collections::BTreeSet::new();
    for advertisement in config.pools.values().flat_map(|p| &p.l2_advertisements) {
        let named = &advertisement.interfaces;
        if named.is_empty()
            || !named.iter().all(|i| exclusions.excludes(i))
            || !reported.insert(advertisement.name.clone())
        {
            continue;
        }
        let source = match configmap {
            Some(_) => format!("ConfigMap {}/{}", input.namespace, exclusions::CONFIGMAP),
            None => format!(
                "MetalLB's default list (there is no ConfigMap {})",
                exclusions::CONFIGMAP
            ),
        };
        findings.push(Finding {
            what: format!("L2Advertisement {:?} announces only on {}, which {source} excludes: it announces nothing", advertisement.name, named.join(", ")),
            fix: format!("name an interface that is not excluded in its `interfaces`, or take the pattern out of `announcedInterfacesToExclude` in ConfigMap {}/{}", input.namespace, exclusions::CONFIGMAP),
        });
    }
}

/// Services a speaker could not announce for want of an interface up and usable on the
/// nodes that may announce them, and that nobody announces now although they hold IPs and
/// have a ready endpoint (an Event outlives its cause: one about a Service since scaled to
/// zero says nothing about it now).
fn interfaces_missing(input: &Input, findings: &mut Vec<Finding>) {
    let announced: std::collections::BTreeSet<ServiceKey> = input
        .snapshot
        .l2_statuses()
        .filter_map(|s| s.status.as_ref())
        .map(|s| ServiceKey::new(&s.service_namespace, &s.service_name))
        .collect();
    let slices: Vec<ferrolb_api::objects::slim::EndpointSlice> = input
        .snapshot
        .endpoint_slices()
        .map(ferrolb_api::objects::slim::EndpointSlice::of)
        .collect();
    let endpoints = ferrolb_api::endpoints::Endpoints::index(&slices);
    let with_ips: std::collections::BTreeSet<ServiceKey> = input
        .snapshot
        .services()
        .filter(|s| !ferrolb_api::service::status_ips(s).is_empty())
        .filter_map(ServiceKey::of)
        .collect();
    let mut reported = std::collections::BTreeSet::new();
    // The last Event read first (in Kubernetes, the newest).
    for failed in input.announce_failed.iter().rev() {
        if announced.contains(&failed.service)
            || !with_ips.contains(&failed.service)
            || !endpoints.any_ready(&failed.service)
            || !reported.insert(failed.service.clone())
        {
            continue;
        }
        findings.push(Finding {
            what: format!("Service {} is not announced by layer 2: {}", failed.service, failed.message),
            fix: "bring the interface up on a node that may announce the Service, or correct the L2Advertisement's `interfaces` (`ip link` on the nodes shows their names); `metallb-excludel2` may exclude it too".into(),
        });
    }
}

fn nodes_all_excluded(input: &Input, findings: &mut Vec<Finding>) {
    let nodes: Vec<&str> = input
        .snapshot
        .nodes()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    let excluded = input.snapshot.nodes().filter(|n| {
        n.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(EXCLUDE_LABEL))
    });
    if !nodes.is_empty() && excluded.count() == nodes.len() {
        findings.push(Finding {
            what: format!("every node is labelled {EXCLUDE_LABEL}: no speaker announces anything"),
            fix: format!("remove the label from the nodes that should announce (`kubectl label node NAME {EXCLUDE_LABEL}-`), or run the speakers with --ignore-exclude-lb"),
        });
    }
}

fn memberlist_secret(input: &Input, name: &str, findings: &mut Vec<Finding>) {
    let key = ObjectKey::new(Kind::Secret, Some(input.namespace), name);
    let has_key = match input.snapshot.get(&key) {
        Some(Object::Secret(secret)) => secret
            .data
            .as_ref()
            .is_some_and(|d| d.contains_key("secretkey")),
        _ => false,
    };
    if !has_key {
        findings.push(Finding {
            what: format!("the memberlist Secret ({}/{name}, key secretkey) is missing: speakers gossip unencrypted, and anyone who reaches port 7946 can forge membership and move IPs", input.namespace),
            fix: format!("kubectl create secret generic -n {} {name} --from-literal=secretkey=\"$(openssl rand -base64 128)\", then restart the speakers (or pass --ml-secret-name if yours has another name)", input.namespace),
        });
    }
}

fn webhook_leftovers(kubernetes: &Kubernetes, findings: &mut Vec<Finding>) {
    for webhook in &kubernetes.webhooks {
        let target = (
            webhook.service_namespace.clone(),
            webhook.service_name.clone(),
        );
        if !kubernetes.services.contains(&target) {
            findings.push(Finding {
                what: format!(
                    "ValidatingWebhookConfiguration {:?} sends metallb.io objects to Service {}/{}, which does not exist: the API server refuses every change to them (a leftover of an uninstalled MetalLB?)",
                    webhook.configuration, webhook.service_namespace, webhook.service_name
                ),
                fix: format!(
                    "kubectl delete validatingwebhookconfiguration {} (FerroLB's controller makes its own again)",
                    webhook.configuration
                ),
            });
        }
    }
}

/// LoadBalancer Services without an IP, with the allocator's reason; or, when an IP could
/// be given now, the controller is not doing its work.
fn pending_services(input: &Input, findings: &mut Vec<Finding>) {
    let mut controller = Controller::new(input.namespace, input.lb_class);
    let actions = controller.reconcile(input.snapshot, k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    // Services holding an IP now: a reallocation planned for one (its IPs no longer fit) is
    // no pending Service.
    let holding: std::collections::BTreeSet<(String, String)> = input
        .snapshot
        .services()
        .filter(|s| {
            let ingress = s.status.as_ref().and_then(|st| st.load_balancer.as_ref());
            ingress
                .and_then(|lb| lb.ingress.as_ref())
                .is_some_and(|i| !i.is_empty())
        })
        .map(|s| {
            let m = &s.metadata;
            (
                m.namespace.clone().unwrap_or_default(),
                m.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    for event in &actions.events {
        let key = (
            event.regarding.namespace.clone().unwrap_or_default(),
            event.regarding.name.clone(),
        );
        if holding.contains(&key) {
            continue;
        }
        let service = format!(
            "{}/{}",
            event.regarding.namespace.as_deref().unwrap_or(""),
            event.regarding.name
        );
        match event.reason {
            EventReason::AllocationFailed => findings.push(Finding {
                what: format!("Service {service} has no IP: {}", event.message),
                fix: "give it an IP a pool can serve (its annotations and the pools' serviceAllocation), or widen a pool".into(),
            }),
            EventReason::IpAllocated => findings.push(Finding {
                what: format!("Service {service} has no IP yet, although the controller would give it one now ({})", event.message),
                fix: "check that ferrolb-controller runs and can write Service status (its log and /readyz)".into(),
            }),
            _ => {}
        }
    }
}

/// Reads the store or the cluster, prints each finding with its fix; exit 1 when any.
/// What the doctor is told about the installation.
#[derive(clap::Args)]
pub struct Options {
    /// The memberlist Secret's name (MetalLB's Helm chart: `<release>-memberlist`).
    #[arg(long, env = "METALLB_ML_SECRET_NAME", default_value = MEMBERLIST_SECRET)]
    ml_secret_name: String,
    /// The controller's `--lb-class`: only Services of that class are checked.
    #[arg(long)]
    lb_class: Option<String>,
}

pub async fn run(
    store: Option<&std::path::Path>,
    kubeconfig: Option<&std::path::Path>,
    namespace: &str,
    options: Options,
) -> anyhow::Result<std::process::ExitCode> {
    let snapshot = crate::get::snapshot(store, kubeconfig, namespace).await?;
    let kube_proxy_key = ObjectKey::new(Kind::ConfigMap, Some("kube-system"), "kube-proxy");
    let (kube_proxy, kubernetes, announce_failed) = match store {
        Some(dir) => {
            let kube_proxy = match snapshot.get(&kube_proxy_key) {
                Some(Object::ConfigMap(c)) => Some((**c).clone()),
                _ => None,
            };
            (kube_proxy, None, stored_announce_failed(dir))
        }
        None => {
            let (kube_proxy, kubernetes, announce_failed) =
                read_kubernetes(kubeconfig, options.ml_secret_name).await?;
            (kube_proxy, Some(kubernetes), announce_failed)
        }
    };
    let findings = diagnose(&Input {
        snapshot: &snapshot,
        namespace,
        lb_class: options.lb_class.as_deref(),
        kube_proxy: kube_proxy.as_ref(),
        kubernetes,
        announce_failed,
    });
    for finding in &findings {
        println!("problem: {}\n    fix: {}", finding.what, finding.fix);
    }
    if findings.is_empty() {
        println!(
            "ok: no problem found ({} objects read)",
            snapshot.objects.len()
        );
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        Ok(std::process::ExitCode::from(1))
    }
}

/// The `announceFailed` Events the speakers of a store published (each component's log in
/// `status/<component>/events.log.json`, oldest first).
fn stored_announce_failed(dir: &std::path::Path) -> Vec<AnnounceFailed> {
    let logs = std::fs::read_dir(dir.join("status"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("events.log.json"));
    logs.filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|line| serde_json::from_str::<ferrolb_cluster::Event>(line).ok())
                .collect::<Vec<_>>()
        })
        .filter(|e| e.reason == EventReason::AnnounceFailed)
        .map(|e| AnnounceFailed {
            service: ServiceKey::new(
                e.regarding.namespace.as_deref().unwrap_or_default(),
                &e.regarding.name,
            ),
            message: e.message,
        })
        .collect()
}

/// What only the Kubernetes API has: kube-proxy's ConfigMap, the webhook configurations
/// for metallb.io objects and the Services they point at, the speakers' `announceFailed`
/// Events.
/// A part that cannot be read (RBAC refuses it, say) is said on stderr and left out: the
/// other checks still run.
async fn read_kubernetes(
    kubeconfig: Option<&std::path::Path>,
    memberlist_secret: String,
) -> anyhow::Result<(Option<ConfigMap>, Kubernetes, Vec<AnnounceFailed>)> {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Api, ListParams};
    let client = ferrolb_cluster::kubernetes::client(kubeconfig).await?;
    let skipped = |what: &str, error: kube::Error| {
        eprintln!("note: {what} not checked: {error}");
    };
    let kube_proxy = Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .get_opt("kube-proxy")
        .await
        .unwrap_or_else(|e| {
            skipped("kube-proxy's ConfigMap", e);
            None
        });
    let configurations = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_else(|e| {
            skipped("webhook configurations", e);
            Vec::new()
        });
    let mut webhooks = Vec::new();
    for configuration in &configurations {
        for webhook in configuration.webhooks.iter().flatten() {
            let for_metallb = webhook
                .rules
                .iter()
                .flatten()
                .any(|rule| rule.api_groups.iter().flatten().any(|g| g == "metallb.io"));
            if let (true, Some(service)) = (for_metallb, &webhook.client_config.service) {
                webhooks.push(Webhook {
                    configuration: configuration.metadata.name.clone().unwrap_or_default(),
                    service_namespace: service.namespace.clone(),
                    service_name: service.name.clone(),
                });
            }
        }
    }
    webhooks.dedup();
    let mut events = Api::<k8s_openapi::api::events::v1::Event>::all(client.clone())
        .list(&ListParams::default().fields("reason=announceFailed"))
        .await
        .map(|l| l.items)
        .unwrap_or_else(|e| {
            skipped("announceFailed Events", e);
            Vec::new()
        });
    events.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
    let announce_failed = events
        .into_iter()
        .filter_map(|e| {
            let regarding = e.regarding?;
            Some(AnnounceFailed {
                service: ServiceKey::new(
                    regarding.namespace.as_deref().unwrap_or_default(),
                    &regarding.name?,
                ),
                message: e.note.unwrap_or_default(),
            })
        })
        .collect();
    let services = match Api::<Service>::all(client)
        .list_metadata(&ListParams::default())
        .await
    {
        Ok(list) => list
            .items
            .into_iter()
            .map(|s| {
                let m = s.metadata;
                (m.namespace.unwrap_or_default(), m.name.unwrap_or_default())
            })
            .collect(),
        Err(error) => {
            // Without the Services, no webhook can be judged.
            skipped("webhook configurations", error);
            webhooks.clear();
            Vec::new()
        }
    };
    let kubernetes = Kubernetes {
        memberlist_secret,
        webhooks,
        services,
    };
    Ok((kube_proxy, kubernetes, announce_failed))
}

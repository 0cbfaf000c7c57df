//! The fault harness's checks: faults are injected into a running [`L2Cluster`] while the
//! client asks who has each Service IP every few milliseconds, and the answers are held to
//! the invariants (at most one MAC answers for an IP; an IP with a serving endpoint is
//! answered).
use crate::layer2::L2Cluster;
use crate::standalone::binary;
use crate::wait_until;
use std::time::Duration;

/// The longest two MACs may both answer for one IP (a takeover in flight) before it counts
/// as a violation of "one owner per IP".
pub const MAX_DOUBLE_ANSWER: Duration = Duration::from_millis(300);

/// How often the client asks.
const ROUND: Duration = Duration::from_millis(10);

/// What the client saw for one IP over a run (`labtool arp-rounds`).
#[derive(Debug)]
pub struct Answers {
    pub rounds: u64,
    pub answered: u64,
    pub double: u64,
    pub longest_double: Duration,
    pub double_macs: Vec<String>,
    /// How long the IP went unanswered, in all (rounds are timed, not counted: a client
    /// starved of CPU runs fewer, longer rounds).
    pub silent: Duration,
    /// The longest spans of silence: (start, length) in ms since the watch began.
    pub silences: Vec<(u64, u64)>,
}

impl Answers {
    /// How long the IP went unanswered, in all.
    pub fn silence(&self) -> Duration {
        self.silent
    }
}

/// A client watching who answers for an IP, for a fixed time.
pub struct AnswerWatch {
    name: String,
    span: Duration,
}

impl AnswerWatch {
    /// Starts asking who has `ip` every 10 ms, for `span`.
    pub fn start(cluster: &mut L2Cluster, ip: &str, span: Duration) -> anyhow::Result<AnswerWatch> {
        let name = format!("answers-{ip}");
        let labtool = binary("labtool");
        let from = cluster.lab.host("cli").ipv4.to_string();
        cluster.lab.spawn(
            "cli",
            &name,
            &[
                labtool.to_str().expect("a UTF-8 path"),
                "arp-rounds",
                "eth0",
                &from,
                ip,
                &ROUND.as_millis().to_string(),
                &span.as_secs().to_string(),
            ],
        )?;
        Ok(AnswerWatch { name, span })
    }

    /// Waits for the watch to end and returns what it saw.
    pub fn finish(self, cluster: &mut L2Cluster) -> anyhow::Result<Answers> {
        let daemon = cluster
            .lab
            .daemon("cli", &self.name)
            .ok_or_else(|| anyhow::anyhow!("the answer watch is gone"))?;
        let ended = wait_until(
            self.span + Duration::from_secs(5),
            Duration::from_millis(50),
            || daemon.exited().then_some(()),
        );
        anyhow::ensure!(ended.is_some(), "the answer watch did not end");
        let output = daemon.output();
        let line = output
            .lines()
            .find(|l| l.starts_with('{'))
            .ok_or_else(|| anyhow::anyhow!("the answer watch printed nothing: {output}"))?;
        let v: serde_json::Value = serde_json::from_str(line)?;
        let number = |key: &str| v[key].as_u64().unwrap_or(0);
        Ok(Answers {
            rounds: number("rounds"),
            answered: number("answered"),
            double: number("double"),
            longest_double: Duration::from_millis(number("longest_double_ms")),
            double_macs: v["double_macs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            silent: Duration::from_millis(number("silent_ms")),
            silences: v["silences"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| Some((s[0].as_u64()?, s[1].as_u64()?)))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// Drops gossip (port 7946, UDP and TCP) in and out of `node` while ARP still works: the
/// partition neither side can decide safely. `false` removes it.
pub fn gossip_partition(cluster: &L2Cluster, node: &str, on: bool) -> anyhow::Result<()> {
    nft_rules(cluster, node, on, &["input", "output"], 7946)
}

/// Drops gossip arriving at `node` only: it still sends, and hears nothing.
pub fn gossip_deaf(cluster: &L2Cluster, node: &str, on: bool) -> anyhow::Result<()> {
    nft_rules(cluster, node, on, &["input"], 7946)
}

/// Drops BFD (single hop, UDP 3784) in and out of `node` while BGP still works.
pub fn bfd_loss(cluster: &L2Cluster, node: &str, on: bool) -> anyhow::Result<()> {
    nft_rules(cluster, node, on, &["input", "output"], 3784)
}

/// Drops UDP and TCP to and from `port` on `node` at `hooks`; `false` removes the rules.
fn nft_rules(
    cluster: &L2Cluster,
    node: &str,
    on: bool,
    hooks: &[&str],
    port: u16,
) -> anyhow::Result<()> {
    if !on {
        cluster
            .lab
            .exec(node, &["nft", "delete", "table", "inet", "ferrolb_fault"])?;
        return Ok(());
    }
    let mut script = String::from("table inet ferrolb_fault {\n");
    for hook in hooks {
        script.push_str(&format!(
            "  chain {hook} {{ type filter hook {hook} priority 0; udp dport {port} drop; tcp dport {port} drop; udp sport {port} drop; tcp sport {port} drop; }}\n"
        ));
    }
    script.push_str("}\n");
    let file = cluster.lab.dir().join(format!("{node}-fault.nft"));
    std::fs::write(&file, script)?;
    cluster
        .lab
        .exec(node, &["nft", "-f", file.to_str().unwrap_or_default()])?;
    Ok(())
}

/// One fault, injected and undone by [`inject`].
#[derive(Clone, Debug)]
pub enum Fault {
    /// The node's port on the lab's bridge goes down, then up.
    LinkFlap { node: String, down: Duration },
    /// `kill -9` of the node's speaker, restarted a second later.
    Kill { node: String },
    /// SIGTERM to the node's speaker (a drain), restarted a second later.
    Terminate { node: String },
    /// Killed, restarted, back in the cluster, and killed (and restarted) again.
    DiesAgainAfterRejoining { node: String },
    /// Gossip in and out of the node dropped, ARP working: both sides announce (visible).
    GossipPartition { node: String, for_: Duration },
    /// Gossip arriving at the node dropped: it hears nobody (visible, as a partition).
    OneWayLoss { node: String, for_: Duration },
    /// The file holding the pool and the advertisement, empty for a moment.
    EmptyConfig { for_: Duration },
    /// The same file, damaged (a YAML syntax error) for a moment.
    DamagedConfig { for_: Duration },
    /// The controller's Service status file overwritten with NUL bytes.
    DamagedStatus,
    /// Twenty Services created and deleted again.
    ServiceChurn,
}

impl Fault {
    /// How long two MACs may both answer because of it: a takeover in flight, or, for a
    /// split (which cannot be decided safely, so both sides announce until it ends), the
    /// split itself and one second to heal.
    pub fn allowed_double_answer(&self) -> Duration {
        match self {
            Fault::GossipPartition { for_, .. } | Fault::OneWayLoss { for_, .. } => {
                *for_ + Duration::from_secs(1)
            }
            _ => MAX_DOUBLE_ANSWER,
        }
    }

    /// How long the client may go unanswered because of it.
    pub fn allowed_silence(&self) -> Duration {
        let margin = Duration::from_millis(600);
        match self {
            Fault::EmptyConfig { for_ } => *for_ + margin,
            Fault::DiesAgainAfterRejoining { .. } => 2 * margin,
            _ => margin,
        }
    }
}

/// The config file faults rewrite: it must hold the pool and advertisement of the run.
pub use crate::layer2::CONFIG_FILE;

/// Injects `fault` into the running cluster and undoes it; `config` is what [`CONFIG_FILE`]
/// holds. Returns once the fault is over (not once the cluster has settled).
pub fn inject(cluster: &mut L2Cluster, fault: &Fault, config: &str) -> anyhow::Result<()> {
    let restart = |cluster: &mut L2Cluster, node: &str| -> anyhow::Result<()> {
        std::thread::sleep(Duration::from_secs(1));
        cluster.start_speaker(node)
    };
    match fault {
        Fault::LinkFlap { node, down } => {
            cluster.lab.set_link(node, false)?;
            std::thread::sleep(*down);
            cluster.lab.set_link(node, true)?;
        }
        Fault::Kill { node } => {
            speaker(cluster, node)?.kill();
            restart(cluster, node)?;
        }
        Fault::Terminate { node } => {
            speaker(cluster, node)?.terminate();
            restart(cluster, node)?;
        }
        Fault::DiesAgainAfterRejoining { node } => {
            speaker(cluster, node)?.kill();
            restart(cluster, node)?;
            // Back and probed again (JOIN_GRACE is 3 s), then gone again.
            std::thread::sleep(Duration::from_secs(5));
            speaker(cluster, node)?.kill();
            restart(cluster, node)?;
        }
        Fault::GossipPartition { node, for_ } => {
            gossip_partition(cluster, node, true)?;
            std::thread::sleep(*for_);
            gossip_partition(cluster, node, false)?;
        }
        Fault::OneWayLoss { node, for_ } => {
            gossip_deaf(cluster, node, true)?;
            std::thread::sleep(*for_);
            gossip_deaf(cluster, node, false)?;
        }
        Fault::EmptyConfig { for_ } => {
            cluster.store.write(CONFIG_FILE, "");
            std::thread::sleep(*for_);
            cluster.store.write(CONFIG_FILE, config);
        }
        Fault::DamagedConfig { for_ } => {
            cluster
                .store
                .write(CONFIG_FILE, &format!("{config}\nkind: [unterminated"));
            std::thread::sleep(*for_);
            cluster.store.write(CONFIG_FILE, config);
        }
        Fault::DamagedStatus => {
            let file = cluster
                .store
                .dir()
                .join("status/ferrolb-controller/service/default.yaml");
            std::fs::write(file, [0u8; 64])?;
        }
        Fault::ServiceChurn => {
            let services: String = (0..20)
                .map(|i| {
                    crate::layer2::service(
                        &format!("churn{i}"),
                        &format!("198.51.100.{}", 100 + i),
                        "Cluster",
                        &crate::layer2::NODES,
                    )
                })
                .collect();
            cluster.store.write("churn.yaml", &services);
            std::thread::sleep(Duration::from_secs(1));
            cluster.store.remove("churn.yaml");
        }
    }
    Ok(())
}

/// A fault of BGP mode, against FRR as the router on `rtr` ([`inject_bgp`]).
#[derive(Clone, Debug)]
pub enum BgpFault {
    /// `kill -9` of the node's speaker (no Cease: the router waits for its hold timer),
    /// restarted a second later.
    SpeakerKill { node: String },
    /// SIGTERM to the node's speaker (a drain), restarted a second later.
    SpeakerTerminate { node: String },
    /// The node's link down for a while, shorter than the hold time.
    LinkFlap { node: String, down: Duration },
    /// The router resets its session with the node (`clear bgp`).
    SessionReset { node: String },
    /// The configuration file damaged for a moment: the last good one keeps running.
    DamagedConfig { for_: Duration },
    /// The router's bgpd crashes (`kill -9`) and starts again.
    RouterCrash,
    /// BFD packets to and from the node dropped for a while (longer than the detection
    /// time), BGP untouched: BFD takes the node's sessions down, and they come back.
    BfdLoss { node: String, for_: Duration },
    /// The router's bfdd crashes (`kill -9`) and starts again.
    BfdRouterCrash,
}

impl BgpFault {
    /// Whether the router may lose the route altogether while it lasts (only when the
    /// router itself fails); otherwise the nodes it does not touch keep it.
    pub fn may_lose_the_route(&self) -> bool {
        matches!(self, BgpFault::RouterCrash | BgpFault::BfdRouterCrash)
    }

    /// Whether the route must not change at all.
    pub fn changes_nothing(&self) -> bool {
        matches!(self, BgpFault::DamagedConfig { .. })
    }
}

/// Injects a BGP mode fault and undoes it; `config` is what [`CONFIG_FILE`] holds, `vty`
/// the router's vtysh folder. Returns once the fault is over.
pub fn inject_bgp(
    cluster: &mut L2Cluster,
    fault: &BgpFault,
    config: &str,
    vty: &str,
) -> anyhow::Result<()> {
    let restart = |cluster: &mut L2Cluster, node: &str| -> anyhow::Result<()> {
        std::thread::sleep(Duration::from_secs(1));
        cluster.start_speaker(node)
    };
    match fault {
        BgpFault::SpeakerKill { node } => {
            speaker(cluster, node)?.kill();
            restart(cluster, node)?;
        }
        BgpFault::SpeakerTerminate { node } => {
            speaker(cluster, node)?.terminate();
            restart(cluster, node)?;
        }
        BgpFault::LinkFlap { node, down } => {
            cluster.lab.set_link(node, false)?;
            std::thread::sleep(*down);
            cluster.lab.set_link(node, true)?;
        }
        BgpFault::SessionReset { node } => {
            let address = cluster.lab.host(node).ipv4.to_string();
            cluster
                .lab
                .vtysh("rtr", vty, &format!("clear bgp {address}"));
        }
        BgpFault::DamagedConfig { for_ } => {
            cluster
                .store
                .write(CONFIG_FILE, &format!("{config}\nkind: [unterminated"));
            std::thread::sleep(*for_);
            cluster.store.write(CONFIG_FILE, config);
        }
        BgpFault::RouterCrash => {
            cluster.lab.restart_frr_bgpd("rtr")?;
        }
        BgpFault::BfdLoss { node, for_ } => {
            bfd_loss(cluster, node, true)?;
            std::thread::sleep(*for_);
            bfd_loss(cluster, node, false)?;
        }
        BgpFault::BfdRouterCrash => {
            cluster.lab.restart_frr_bfdd("rtr")?;
        }
    }
    Ok(())
}

/// The violations of BGP mode's invariants in the router's route changes for `prefix` since
/// `since` (Unix time, s): the route gone for more than a replacement takes, or held by
/// fewer than `at_least` next hops; with `none`, any change at all.
pub fn route_violations(
    changes: &[crate::route_monitor::RouteChange],
    prefix: &str,
    since: f64,
    at_least: usize,
    none: bool,
) -> Vec<String> {
    // zebra may replace a route by deleting and adding it: a gap this short is not a loss.
    const REPLACEMENT: f64 = 0.02;
    let mine: Vec<_> = changes
        .iter()
        .filter(|c| c.prefix == prefix && c.at >= since)
        .collect();
    let mut violations = Vec::new();
    for (i, change) in mine.iter().enumerate() {
        if none {
            violations.push(format!("the route changed: {change:?}"));
            continue;
        }
        if change.deleted {
            let back = mine[i + 1..]
                .iter()
                .find(|c| !c.deleted)
                .is_some_and(|c| c.at - change.at <= REPLACEMENT);
            if !back {
                violations.push(format!("the route went: {change:?}"));
            }
        } else if change.next_hops.len() < at_least {
            violations.push(format!(
                "the route kept {} next hops: {change:?}",
                change.next_hops.len()
            ));
        }
    }
    violations
}

fn speaker<'a>(cluster: &'a mut L2Cluster, node: &str) -> anyhow::Result<&'a mut crate::Daemon> {
    cluster
        .lab
        .daemon(node, "speaker")
        .ok_or_else(|| anyhow::anyhow!("no speaker on {node}"))
}

/// The controller's invariants, from what `ferrolbctl get services` shows: every ingress IP
/// is inside a pool of the configuration (`pool_ranges`, as CIDRs), and no IP is held by two
/// Services. Returns the violations found.
pub fn allocation_violations(cluster: &L2Cluster, pool_ranges: &[ipnet::IpNet]) -> Vec<String> {
    let services = cluster.store.get("services");
    let mut holders: std::collections::BTreeMap<String, String> = Default::default();
    let mut violations = Vec::new();
    for service in services["items"].as_array().into_iter().flatten() {
        let name = format!(
            "{}/{}",
            service["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default(),
            service["metadata"]["name"].as_str().unwrap_or_default()
        );
        for ip in crate::standalone::ingress(service) {
            let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
                violations.push(format!("{name} shows {ip:?}, not an IP"));
                continue;
            };
            if !pool_ranges.iter().any(|net| net.contains(&addr)) {
                violations.push(format!("{name} holds {ip}, outside every pool"));
            }
            if let Some(other) = holders.insert(ip.clone(), name.clone()) {
                violations.push(format!("{ip} is held by {other} and {name}"));
            }
        }
    }
    violations
}

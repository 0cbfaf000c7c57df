//! A layer 2 cluster in the lab: the controller and a speaker on each of n1, n2 and n3, all
//! on one file store, and a client (`cli`) that resolves Service IPs with the real `arping`
//! and `ndisc6`, as a router or host on the segment would.
use crate::standalone::{StoreRun, binary};
use crate::{Lab, wait_until};
use std::net::IpAddr;
use std::time::Duration;

pub const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// The store file [`L2Cluster::with_one_service`] writes [`POOL`] to.
pub const CONFIG_FILE: &str = "config.yaml";

/// A pool of documentation addresses announced in layer 2 from every node. The IPv6 range is
/// inside the lab's on-link 2001:db8::/64, so the client solicits it without a route.
pub const POOL: &str = r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: metallb-system}
spec:
  addresses: [198.51.100.0/25, "2001:db8::ff00/120"]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab, namespace: metallb-system}
spec: {ipAddressPools: [lab]}
---
"#;

/// BGP mode's plainest configuration in the lab: a pool of 203.0.113.0/24 announced to FRR
/// on `rtr` ([`crate::Lab::start_frr_tor`]: BGPPeer `tor`, AS 64500, from AS 64501) with
/// this hold time.
pub fn bgp_config(hold_time: &str) -> String {
    bgp_config_with(&format!("holdTime: {hold_time}"))
}

/// [`bgp_config`] with more of BGPPeer `tor`'s spec: `peer_fields` such as
/// `holdTime: 9s, bfdProfile: fast`.
pub fn bgp_config_with(peer_fields: &str) -> String {
    format!(
        r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bgp, namespace: metallb-system}}
spec: {{addresses: [203.0.113.0/24]}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: tor, namespace: metallb-system}}
spec: {{myASN: 64501, peerASN: 64500, peerAddress: 192.0.2.1, {peer_fields}}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: bgp, namespace: metallb-system}}
spec: {{ipAddressPools: [bgp]}}
---
"#
    )
}

/// A LoadBalancer Service asking for `ips` (comma separated), with ready endpoints on
/// `endpoints` (node names; none: no EndpointSlice at all).
pub fn service(name: &str, ips: &str, policy: &str, endpoints: &[&str]) -> String {
    let dual = if ips.contains(':') && ips.contains('.') {
        "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv4, IPv6]\n"
    } else if ips.contains(':') {
        "  ipFamilies: [IPv6]\n"
    } else {
        ""
    };
    let mut yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n  annotations: {{metallb.io/loadBalancerIPs: \"{ips}\"}}\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: {policy}\n{dual}  ports: [{{port: 80, protocol: TCP}}]\n---\n"
    );
    if !endpoints.is_empty() {
        let list: Vec<String> = endpoints
            .iter()
            .map(|n| {
                let suffix = &n[1..];
                format!("- {{addresses: [192.0.2.1{suffix}], nodeName: {n}, conditions: {{ready: true}}}}")
            })
            .collect();
        yaml.push_str(&format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}\naddressType: IPv4\nendpoints:\n{}\n---\n",
            list.join("\n")
        ));
    }
    yaml
}

/// The Node objects, with their InternalIPs and `labels` (node name, `key: value`).
pub fn nodes(labels: &[(&str, &str)]) -> String {
    NODES
        .iter()
        .map(|n| {
            let l: Vec<&str> = labels
                .iter()
                .filter(|(node, _)| node == n)
                .map(|(_, l)| *l)
                .collect();
            format!(
                "apiVersion: v1\nkind: Node\nmetadata: {{name: {n}, labels: {{{}}}}}\nstatus: {{addresses: [{{type: InternalIP, address: 192.0.2.1{}}}]}}\n---\n",
                l.join(", "),
                &n[1..]
            )
        })
        .collect()
}

/// The nodes in election order for a Service whose first IP is `ip` (all weights equal).
pub fn election_order(ip: &str, candidates: &[&str]) -> Vec<String> {
    let ip: IpAddr = ip.parse().expect("an IP");
    let mut order: Vec<String> = candidates.iter().map(|c| c.to_string()).collect();
    order.sort_by_key(|n| ferrolb_speaker::plan::election::tie_breaker(n, ip));
    order
}

pub struct L2Cluster {
    pub lab: Lab,
    pub store: StoreRun,
}

impl L2Cluster {
    /// The lab, the store with `files` (name, YAML), the controller and three speakers.
    pub fn start(files: &[(&str, &str)]) -> anyhow::Result<L2Cluster> {
        L2Cluster::start_with(files, &[])
    }

    /// As [`L2Cluster::start`], with extra arguments for every speaker.
    pub fn start_with(files: &[(&str, &str)], speaker_args: &[&str]) -> anyhow::Result<L2Cluster> {
        let lab = Lab::standard()?;
        let mut store = StoreRun::new();
        for (name, yaml) in files {
            store.write(name, yaml);
        }
        store.start_controller(&[]);
        let mut cluster = L2Cluster { lab, store };
        for node in NODES {
            cluster.start_speaker_with(node, speaker_args)?;
        }
        Ok(cluster)
    }

    /// The lab with one Cluster-policy Service `web` at `ip` (served on every node), once
    /// its elected owner answers; with the election order, owner first.
    pub fn with_one_service(ip: &str) -> anyhow::Result<(L2Cluster, Vec<String>)> {
        let cluster = L2Cluster::start(&[
            (CONFIG_FILE, POOL),
            ("nodes.yaml", &nodes(&[])),
            ("web.yaml", &service("web", ip, "Cluster", &NODES)),
        ])?;
        let order = election_order(ip, &NODES);
        anyhow::ensure!(
            cluster.wait_resolves_to(ip, Some(&order[0]), Duration::from_secs(15)),
            "{ip} is not answered by {}\n{}",
            order[0],
            cluster.logs()
        );
        Ok((cluster, order))
    }

    pub fn start_speaker(&mut self, node: &str) -> anyhow::Result<()> {
        self.start_speaker_with(node, &[])
    }

    /// Starts a node's speaker with extra arguments.
    pub fn start_speaker_with(&mut self, node: &str, extra: &[&str]) -> anyhow::Result<()> {
        let speaker = binary("ferrolb-speaker");
        let store = self.store.dir().display().to_string();
        let ip = self.lab.host(node).ipv4.to_string();
        self.lab.spawn(
            node,
            "speaker",
            &[
                speaker.to_str().expect("a UTF-8 path"),
                "--node-name",
                node,
                "--store",
                &store,
                "--ml-bindaddr",
                &ip,
                "--log-level",
                "info,ferrolb_gossip=debug",
            ]
            .into_iter()
            .chain(extra.iter().copied())
            .collect::<Vec<_>>(),
        )?;
        Ok(())
    }

    /// A node's MAC address on the lab segment, lowercase.
    pub fn mac(&self, node: &str) -> String {
        node_mac(&self.lab, node)
    }

    /// Which node's MAC the client gets for `ip` (`arping` or `ndisc6`), if any answers.
    pub fn resolve(&self, ip: &str) -> Option<String> {
        resolve_mac(&self.lab, ip)
    }

    /// What `node`'s speaker says through its admin API: `ferrolbctl status [what] -o json`
    /// run on the node (the API listens on the node's loopback).
    pub fn status(&self, node: &str, what: &[&str]) -> serde_json::Value {
        let ctl = binary("ferrolbctl");
        let mut args = vec![ctl.to_str().expect("a UTF-8 path"), "status"];
        args.extend(what);
        args.extend(["-o", "json"]);
        let output = self.lab.exec_unchecked(node, &args);
        serde_json::from_slice(&output.stdout).unwrap_or_else(
            |_| serde_json::json!({"error": String::from_utf8_lossy(&output.stderr)}),
        )
    }

    /// Every MAC answering one ARP request for an IPv4 `ip` (within 300 ms), lowercase.
    pub fn arp_answers(&self, ip: &str) -> Vec<String> {
        let labtool = binary("labtool");
        let output = self.lab.exec_unchecked(
            "cli",
            &[
                labtool.to_str().expect("a UTF-8 path"),
                "arp-who",
                "eth0",
                &self.lab.host("cli").ipv4.to_string(),
                ip,
            ],
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The node whose MAC the client gets for `ip`.
    pub fn resolve_node(&self, ip: &str) -> Option<String> {
        let mac = self.resolve(ip)?;
        NODES
            .iter()
            .find(|n| self.mac(n) == mac)
            .map(|n| n.to_string())
    }

    /// Waits until the client resolves `ip` to `node` (or to nobody, with `None`).
    pub fn wait_resolves_to(&self, ip: &str, node: Option<&str>, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(100), || {
            (self.resolve_node(ip).as_deref() == node).then_some(())
        })
        .is_some()
    }

    /// Everything the speakers and the controller logged, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "{}\n--- controller ---\n{}",
            self.lab.logs(),
            self.store.controller_log()
        )
    }

    /// The Events a node's speaker published.
    pub fn speaker_events(&self, node: &str) -> Vec<serde_json::Value> {
        let path = self
            .store
            .dir()
            .join(format!("status/ferrolb-speaker-{node}/events.log.json"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Starts an ARP watcher for `ip` on the client (`labtool arp-watch`, every 5 ms); returns
/// its log, for [`first_other_mac`].
pub fn arp_watch(lab: &mut Lab, ip: &str) -> std::path::PathBuf {
    let labtool = binary("labtool");
    let log = lab
        .spawn(
            "cli",
            "arp-watch",
            &[
                labtool.to_str().expect("a UTF-8 path"),
                "arp-watch",
                "eth0",
                "192.0.2.100",
                ip,
                "5",
                "20",
            ],
        )
        .expect("starting arp-watch")
        .log
        .clone();
    // Let it see the current owner first.
    std::thread::sleep(Duration::from_millis(200));
    log
}

pub fn stop_arp_watch(lab: &mut Lab) {
    if let Some(w) = lab.daemon("cli", "arp-watch") {
        w.kill();
    }
}

/// Seconds since the Unix epoch: the clock `labtool arp-watch` stamps its lines with.
pub fn wall_clock() -> f64 {
    #[allow(clippy::disallowed_methods)] // compared with other processes' timestamps
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// The first line of an arp-watch log showing a MAC other than `old`: (when, MAC).
pub fn first_other_mac(log: &std::path::Path, old: &str) -> Option<(f64, String)> {
    use std::io::BufRead;
    let file = std::fs::File::open(log).ok()?;
    std::io::BufReader::new(file).lines().find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(&line.ok()?).ok()?;
        let mac = value["mac"].as_str()?.to_string();
        (mac != old).then(|| Some((value["at"].as_f64()?, mac)))?
    })
}

/// The time of a tracing log line (`2026-11-21T23:52:57.350483Z ...`), in seconds since the
/// Unix epoch.
pub fn log_time(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) as f64 + sec)
}

/// A node's MAC address on the lab segment (`eth0`), lowercase.
pub fn node_mac(lab: &Lab, node: &str) -> String {
    lab.exec(node, &["cat", "/sys/class/net/eth0/address"])
        .expect("reading a MAC address")
        .trim()
        .to_lowercase()
}

/// Which MAC the lab's client (`cli`) gets for `ip` (`arping` or `ndisc6`), if any answers.
pub fn resolve_mac(lab: &Lab, ip: &str) -> Option<String> {
    let output = if ip.contains(':') {
        lab.exec_unchecked("cli", &["ndisc6", "-1", "-r", "2", "-w", "300", ip, "eth0"])
    } else {
        lab.exec_unchecked("cli", &["arping", "-c1", "-w1", "-I", "eth0", ip])
    };
    let text = String::from_utf8_lossy(&output.stdout).to_lowercase();
    if ip.contains(':') {
        let mac = text
            .lines()
            .find_map(|l| l.strip_prefix("target link-layer address: "))?;
        Some(mac.trim().to_string())
    } else {
        let start = text.find('[')? + 1;
        let end = text[start..].find(']')? + start;
        Some(text[start..end].to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_times_are_read_as_unix_seconds() {
        // date -d 2026-11-21T23:52:57Z +%s
        let t = super::log_time("2026-11-21T23:52:57.250000Z  INFO x").expect("parses");
        assert!((t - 1_795_305_177.25).abs() < 1e-6, "{t}");
    }
}

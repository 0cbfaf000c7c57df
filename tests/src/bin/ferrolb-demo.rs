//! The lab demo (`sudo ./scripts/demo`): FerroLB in layer 2 mode on three nodes, a client
//! reaching a web server behind a Service IP, the owner's link cut, and the IP moving.
//!
//! Everything runs in network namespaces this program creates and removes (LAB.md); the
//! controller and the speakers run on a file store, so no Kubernetes is needed. The demo
//! plays kube-proxy's part with an nftables DNAT rule on each node.
use ferrolb_e2e::layer2::{L2Cluster, NODES, first_other_mac, wall_clock};
use ferrolb_e2e::standalone::binary;
use ferrolb_e2e::{lab_available, wait_until};
use std::time::Duration;

const CONFIG: &str = r#"# A pool of documentation addresses, announced in layer 2 from every node.
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: demo, namespace: metallb-system}
spec:
  addresses: [198.51.100.10-198.51.100.20]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: demo, namespace: metallb-system}
spec: {ipAddressPools: [demo]}
"#;

const SERVICE: &str = r#"# A Service asking for an IP, with a ready endpoint on every node.
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- {addresses: [192.0.2.11], nodeName: n1, conditions: {ready: true}}
- {addresses: [192.0.2.12], nodeName: n2, conditions: {ready: true}}
- {addresses: [192.0.2.13], nodeName: n3, conditions: {ready: true}}
"#;

fn step(text: &str) {
    println!("\n==> {text}");
}

fn main() -> anyhow::Result<()> {
    if !lab_available(&["ip", "nft", "arping"]) {
        anyhow::bail!(
            "the demo needs root and the lab's packages: run it as `sudo ./scripts/demo`"
        );
    }
    step(
        "Building the lab: a bridge, three nodes (n1 n2 n3) and a client, each in its own network namespace",
    );
    let nodes_yaml = ferrolb_e2e::layer2::nodes(&[]);
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", CONFIG),
        ("nodes.yaml", &nodes_yaml),
        ("web.yaml", SERVICE),
    ])?;
    println!("    store: {}", cluster.store.dir().display());
    println!("    started ferrolb-controller and ferrolb-speaker on n1, n2 and n3");

    step("Waiting for the controller to give web an IP");
    let ip = wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
        let service = cluster.store.service("default", "web")?;
        ferrolb_e2e::standalone::ingress(&service)
            .into_iter()
            .next()
    })
    .ok_or_else(|| anyhow::anyhow!("web got no IP:\n{}", cluster.logs()))?;
    println!("{}", ctl(&cluster, &["get", "services", "-o", "wide"])?);

    step("Each node runs a web server on :8080; nftables DNAT plays kube-proxy for the Service IP");
    let labtool = binary("labtool");
    let labtool = labtool.to_str().expect("a UTF-8 path");
    for node in NODES {
        cluster.lab.spawn(
            node,
            "web",
            &[labtool, "http-serve", "8080", &format!("hello from {node}")],
        )?;
        let node_ip = cluster.lab.host(node).ipv4;
        let dnat = format!("{node_ip}:8080");
        cluster
            .lab
            .exec(node, &["nft", "add", "table", "ip", "demo"])?;
        cluster.lab.exec(
            node,
            &[
                "nft",
                "add chain ip demo prerouting { type nat hook prerouting priority dstnat; }",
            ],
        )?;
        cluster.lab.exec(
            node,
            &[
                "nft",
                "add",
                "rule",
                "ip",
                "demo",
                "prerouting",
                "ip",
                "daddr",
                &ip,
                "tcp",
                "dport",
                "80",
                "dnat",
                "to",
                &dnat,
            ],
        )?;
    }
    // The client reaches the pool's range on its segment, as a router on it would.
    cluster.lab.exec(
        "cli",
        &["ip", "route", "add", "198.51.100.0/24", "dev", "eth0"],
    )?;

    step(&format!(
        "The client asks who has {ip}: exactly one node answers"
    ));
    let owner = wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
        cluster.resolve_node(&ip)
    })
    .ok_or_else(|| anyhow::anyhow!("nobody answers for {ip}:\n{}", cluster.logs()))?;
    println!("    {ip} is at {} ({owner})", cluster.mac(&owner));
    println!("{}", ctl(&cluster, &["get", "l2status", "-o", "wide"])?);
    let answer = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        http_get(&cluster, &ip).ok()
    })
    .ok_or_else(|| anyhow::anyhow!("the client cannot reach {ip}:\n{}", cluster.logs()))?;
    println!("    client: GET http://{ip}/ -> {answer:?}");

    step(&format!(
        "Cutting {owner}'s link (its port on the bridge goes down)"
    ));
    let old_mac = cluster.mac(&owner);
    let watch_log = cluster
        .lab
        .spawn(
            "cli",
            "arp-watch",
            &[labtool, "arp-watch", "eth0", "192.0.2.100", &ip, "5", "10"],
        )?
        .log
        .clone();
    std::thread::sleep(Duration::from_millis(300));
    let cut_at = wall_clock();
    cluster.lab.set_link(&owner, false)?;
    let moved = wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
        first_other_mac(&watch_log, &old_mac)
    });
    if let Some(watch) = cluster.lab.daemon("cli", "arp-watch") {
        watch.kill();
    }
    let (moved_at, new_mac) = moved
        .ok_or_else(|| anyhow::anyhow!("the IP did not move within 5 s:\n{}", cluster.logs()))?;
    let new_owner = NODES
        .iter()
        .find(|n| cluster.mac(n) == new_mac)
        .map_or("another node".to_string(), |n| n.to_string());
    let took = (moved_at - cut_at) * 1000.0;
    println!(
        "    {ip} moved to {new_owner} ({new_mac}): first ARP from it {took:.0} ms after the cut"
    );
    let answer = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        http_get(&cluster, &ip).ok()
    })
    .ok_or_else(|| anyhow::anyhow!("the client cannot reach {ip} any more"))?;
    println!("    client: GET http://{ip}/ -> {answer:?}");
    println!("{}", ctl(&cluster, &["get", "l2status", "-o", "wide"])?);

    step(&format!(
        "Restoring {owner}'s link: the IP goes back to the node the election names"
    ));
    cluster.lab.set_link(&owner, true)?;
    let back = cluster.wait_resolves_to(&ip, Some(&owner), Duration::from_secs(10));
    if back {
        println!("    {ip} is at {owner} again");
    } else {
        println!("    {ip} has not returned to {owner} within 10 s");
    }

    step("Summary");
    println!("    Service web got {ip} from pool demo and was announced by {owner}.");
    println!(
        "    {owner} lost its link; {new_owner} took {ip} over in {took:.0} ms (MetalLB: seconds; keepalived at advert_int 1: about 3.2 s)."
    );
    println!(
        "    The client reached the web server before and after; when {owner} came back, {ip} {}.",
        if back {
            "returned to it"
        } else {
            "had not returned yet"
        }
    );
    step("Cleaning up: stopping every process and removing the namespaces");
    drop(cluster);
    println!("    done");
    Ok(())
}

fn ctl(cluster: &L2Cluster, args: &[&str]) -> anyhow::Result<String> {
    let output = std::process::Command::new(binary("ferrolbctl"))
        .arg("--store")
        .arg(cluster.store.dir())
        .args(args)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn http_get(cluster: &L2Cluster, ip: &str) -> anyhow::Result<String> {
    let labtool = binary("labtool");
    let output = cluster.lab.exec_unchecked(
        "cli",
        &[
            labtool.to_str().expect("a UTF-8 path"),
            "http-get",
            &format!("{ip}:80"),
        ],
    );
    anyhow::ensure!(
        output.status.success(),
        "GET failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

//! The lab demo (`sudo ./scripts/demo`): FerroLB in layer 2 mode on three nodes, a client
//! reaching a web server behind a Service IP, the owner's link cut, and the IP moving; then
//! BGP mode, with FRR as the top-of-rack router spreading a Service over the three nodes and
//! dropping a lost node's next hop.
//!
//! Everything runs in network namespaces this program creates and removes (LAB.md); the
//! controller and the speakers run on a file store, so no Kubernetes is needed. The demo
//! plays kube-proxy's part with an nftables DNAT rule on each node.
use ferrolb_e2e::layer2::{L2Cluster, NODES, first_other_mac, wall_clock};
use ferrolb_e2e::standalone::binary;
use ferrolb_e2e::{FRR_BFD_FAST, lab_available, wait_until};
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

const BGP_CONFIG: &str = r#"# BGP mode: a second pool, announced to the top-of-rack router (FRR on rtr, AS 64500).
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: routed, namespace: metallb-system}
spec:
  addresses: [203.0.113.10-203.0.113.20]
  autoAssign: false
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec: {myASN: 64501, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 3s, bfdProfile: fast}
---
# BFD under the session: a lost node is noticed in 150 ms, not at the hold timer.
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 50, transmitInterval: 50, detectMultiplier: 3}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: routed, namespace: metallb-system}
spec: {ipAddressPools: [routed]}
"#;

const BGP_SERVICE: &str = r#"# A Service from the routed pool, with a ready endpoint on every node.
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: default
  annotations: {metallb.io/address-pool: routed}
spec:
  type: LoadBalancer
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-1, namespace: default, labels: {kubernetes.io/service-name: api}}
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
    if !lab_available(&["ip", "nft", "arping", "zebra", "bfdd", "bgpd", "vtysh"]) {
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
        forward_to_web(&cluster, node, &ip)?;
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

    let bgp = bgp_act(&mut cluster, &owner)?;

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
    println!("    {bgp}");
    step("Cleaning up: stopping every process and removing the namespaces");
    drop(cluster);
    println!("    done");
    Ok(())
}

/// kube-proxy's part on `node`: TCP to `ip`:80 goes to the node's web server on :8080.
fn forward_to_web(cluster: &L2Cluster, node: &str, ip: &str) -> anyhow::Result<()> {
    let dnat = format!("{}:8080", cluster.lab.host(node).ipv4);
    let rule = [
        "nft",
        "add",
        "rule",
        "ip",
        "demo",
        "prerouting",
        "ip",
        "daddr",
        ip,
        "tcp",
        "dport",
        "80",
        "dnat",
        "to",
        &dnat,
    ];
    cluster.lab.exec(node, &rule)?;
    Ok(())
}

/// BGP mode: FRR on `rtr` as the top-of-rack router (zebra, bfdd and bgpd, routes in its
/// kernel table), a Service announced by all three nodes (ECMP), the client reaching it
/// through the router, and a node lost, noticed by BFD. Returns the act's summary line.
fn bgp_act(cluster: &mut L2Cluster, avoid: &str) -> anyhow::Result<String> {
    step("BGP mode: FRR on rtr plays the top-of-rack router (zebra, bfdd and bgpd), AS 64500");
    let vty = cluster
        .lab
        .start_frr_tor_with_bfd(" neighbor nodes bfd profile fast", FRR_BFD_FAST)?;
    // The router forwards, spreading flows over equal next hops by their ports too; the
    // client sends the routed range to it.
    cluster
        .lab
        .exec("rtr", &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    cluster.lab.exec(
        "rtr",
        &["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"],
    )?;
    // The client shares the nodes' segment, where a real one would sit behind the router:
    // without this, the router would redirect it to one node, and a flow the router had sent
    // to another would be reset halfway.
    for sysctl in [
        "net.ipv4.conf.all.send_redirects=0",
        "net.ipv4.conf.eth0.send_redirects=0",
    ] {
        cluster.lab.exec("rtr", &["sysctl", "-qw", sysctl])?;
    }
    cluster.lab.exec(
        "cli",
        &["ip", "route", "add", "203.0.113.0/24", "via", "192.0.2.1"],
    )?;
    cluster.store.write("bgp.yaml", BGP_CONFIG);
    cluster.store.write("api.yaml", BGP_SERVICE);
    println!(
        "    added a pool (routed: 203.0.113.10-20), a BGPPeer (tor) with a BFDProfile (50 ms x 3) and a BGPAdvertisement"
    );
    let ip = wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
        let service = cluster.store.service("default", "api")?;
        ferrolb_e2e::standalone::ingress(&service)
            .into_iter()
            .next()
    })
    .ok_or_else(|| {
        anyhow::anyhow!(
            "api got no IP:
{}",
            cluster.logs()
        )
    })?;
    for node in NODES {
        forward_to_web(cluster, node, &ip)?;
    }
    let all: Vec<String> = NODES
        .iter()
        .map(|n| cluster.lab.host(n).ipv4.to_string())
        .collect();
    let announced = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        (cluster.lab.next_hops(&ip) == all).then_some(())
    });
    anyhow::ensure!(
        announced.is_some(),
        "the router never got {ip} from all three nodes:
{}",
        cluster.logs()
    );
    println!(
        "    Service api got {ip}; every node announces it, and the router holds three next hops:"
    );
    println!(
        "{}",
        indent(&cluster.lab.exec("rtr", &["ip", "route", "show", &ip])?)
    );
    println!("{}", ctl(cluster, &["get", "bgpstatus", "-o", "wide"])?);
    let spread = requests(cluster, &ip, 12);
    println!("    client: 12 GETs through the router -> {spread}");
    // BFD comes up after BGP (its handshake runs at one packet a second until it is up).
    let bfd_up = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let peers = cluster.lab.vtysh("rtr", &vty, "show bfd peers brief");
        (peers.lines().filter(|l| l.contains(" up")).count() == NODES.len()).then_some(peers)
    });
    match bfd_up {
        Some(peers) => println!(
            "    the router's BFD sessions:\n{}",
            indent(peers.trim_end())
        ),
        None => println!("    BFD is not up with every node yet: the hold timer will notice"),
    }

    // Another node than the one the layer 2 act cut.
    let lost = NODES.iter().find(|n| **n != avoid).copied().unwrap_or("n3");
    let lost_ip = cluster.lab.host(lost).ipv4.to_string();
    step(&format!(
        "Cutting {lost}'s link: BFD tells the router within 150 ms (the hold timer alone: 3 s)"
    ));
    let cut_at = wall_clock();
    cluster.lab.set_link(lost, false)?;
    let remaining: Vec<String> = all.iter().filter(|a| **a != lost_ip).cloned().collect();
    let gone = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        (cluster.lab.next_hops(&ip) == remaining).then(wall_clock)
    });
    let took = gone.map(|at| (at - cut_at) * 1000.0);
    match took {
        Some(ms) => {
            println!("    {lost}'s next hop left the router's table {ms:.0} ms after the cut")
        }
        None => println!("    {lost}'s next hop is still in the router's table after 10 s"),
    }
    println!(
        "{}",
        indent(&cluster.lab.exec("rtr", &["ip", "route", "show", &ip])?)
    );
    let spread = requests(cluster, &ip, 12);
    println!("    client: 12 GETs through the router -> {spread}");
    cluster.lab.set_link(lost, true)?;
    let served = if spread.contains("failed") {
        "but some of the client's requests failed"
    } else {
        "and the two others served every request"
    };
    Ok(match took {
        Some(ms) => format!(
            "BGP: the router spread {ip} over three nodes; when {lost} was lost BFD took its next hop away in {ms:.0} ms (the hold timer alone: about 3 s), {served}."
        ),
        None => {
            format!("BGP: the router spread {ip} over three nodes; {lost}'s next hop did not go.")
        }
    })
}

/// `count` GETs from the client to `ip`, as "n1 x4, n2 x5, ..." by the node that answered.
fn requests(cluster: &L2Cluster, ip: &str, count: usize) -> String {
    let mut answers: std::collections::BTreeMap<String, usize> = Default::default();
    for _ in 0..count {
        let answer = http_get(cluster, ip).unwrap_or_else(|_| "failed".into());
        let who = answer.trim_start_matches("hello from ").to_string();
        *answers.entry(who).or_default() += 1;
    }
    answers
        .iter()
        .map(|(who, n)| format!("{who} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
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

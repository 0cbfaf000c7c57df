use crate::process::Daemon;
use anyhow::{Context, bail};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A host of the lab: a network namespace with `eth0` on the lab's bridge.
#[derive(Clone, Debug)]
pub struct Host {
    /// The short name used in tests: `rtr`, `n1`, `cli`...
    pub name: String,
    /// The network namespace's name, unique to this lab.
    pub netns: String,
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
}

/// LAB.md's topology: a bridge in a `lan` namespace and one namespace per host, each with
/// `eth0` in 192.0.2.0/24 and 2001:db8::/64. No namespace gets a route anywhere else.
pub struct Lab {
    pub prefix: String,
    lan: String,
    hosts: Vec<Host>,
    dir: PathBuf,
    daemons: Vec<Daemon>,
}

/// The hosts of LAB.md with their address suffixes.
pub const STANDARD_HOSTS: [(&str, u8); 5] =
    [("rtr", 1), ("n1", 11), ("n2", 12), ("n3", 13), ("cli", 100)];

impl Lab {
    /// Builds the standard topology: router, three nodes, a client.
    pub fn standard() -> anyhow::Result<Lab> {
        Lab::with_hosts(&STANDARD_HOSTS)
    }

    /// Builds a lab with the given hosts (name, last byte of their addresses).
    pub fn with_hosts(hosts: &[(&str, u8)]) -> anyhow::Result<Lab> {
        static LABS: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "flb{}x{}",
            std::process::id(),
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("ferrolb-lab-{prefix}"));
        std::fs::create_dir_all(&dir)?;
        let mut lab = Lab {
            lan: format!("{prefix}-lan"),
            prefix,
            hosts: Vec::new(),
            dir,
            daemons: Vec::new(),
        };
        // From here on, Drop cleans up whatever was created, even if a step below fails.
        run(&["ip", "netns", "add", &lab.lan])?;
        lab.ip_in(
            &lab.lan.clone(),
            &[
                "link",
                "add",
                "br0",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ],
        )?;
        lab.ip_in(&lab.lan.clone(), &["link", "set", "br0", "up"])?;
        // A switch, not a firewall: where br_netfilter is loaded, each new namespace passes
        // bridged frames through iptables, and that cost lands on whichever process sent
        // the frame (the speaker or router measured). Not there: nothing to turn off.
        let _ = run(&[
            "ip",
            "netns",
            "exec",
            &lab.lan,
            "sysctl",
            "-qw",
            "net.bridge.bridge-nf-call-iptables=0",
            "net.bridge.bridge-nf-call-ip6tables=0",
            "net.bridge.bridge-nf-call-arptables=0",
        ]);
        for (name, suffix) in hosts {
            lab.add_host(name, *suffix)?;
        }
        Ok(lab)
    }

    fn add_host(&mut self, name: &str, suffix: u8) -> anyhow::Result<()> {
        anyhow::ensure!(
            name.len() <= 15,
            "interface names are at most 15 characters"
        );
        let netns = format!("{}-{name}", self.prefix);
        run(&["ip", "netns", "add", &netns])?;
        let host = Host {
            name: name.to_string(),
            netns: netns.clone(),
            ipv4: Ipv4Addr::new(192, 0, 2, suffix),
            // LAB.md writes the same digits in both families: 192.0.2.11 and 2001:db8::11.
            ipv6: format!("2001:db8::{suffix}")
                .parse()
                .expect("a valid IPv6 address"),
        };
        self.hosts.push(host.clone());
        // Without duplicate address detection, link-local and global IPv6 addresses are usable
        // at once (a tentative link-local address drops the first neighbour solicitations).
        run(&[
            "ip",
            "netns",
            "exec",
            &netns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ])?;
        run(&[
            "ip", "link", "add", "eth0", "netns", &netns, "type", "veth", "peer", "name", name,
            "netns", &self.lan,
        ])?;
        self.ip_in(
            &self.lan.clone(),
            &["link", "set", "dev", name, "master", "br0", "up"],
        )?;
        self.ip_in(&netns, &["link", "set", "lo", "up"])?;
        self.ip_in(&netns, &["link", "set", "eth0", "up"])?;
        self.ip_in(
            &netns,
            &["addr", "add", &format!("{}/24", host.ipv4), "dev", "eth0"],
        )?;
        self.ip_in(
            &netns,
            &[
                "addr",
                "add",
                &format!("{}/64", host.ipv6),
                "dev",
                "eth0",
                "nodad",
            ],
        )?;
        Ok(())
    }

    fn ip_in(&self, netns: &str, args: &[&str]) -> anyhow::Result<Output> {
        let mut full = vec!["ip", "-n", netns];
        full.extend_from_slice(args);
        run(&full)
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name} in the lab"))
    }

    /// A folder for this lab's files, removed with the lab.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs a command on a host and waits for it; fails on a non-zero exit.
    pub fn exec(&self, host: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut full = vec!["ip", "netns", "exec", self.host(host).netns.as_str()];
        full.extend_from_slice(args);
        let output = run(&full)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs a command on a host and returns its output whatever its exit status.
    pub fn exec_unchecked(&self, host: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", self.host(host).netns.as_str()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
    }

    /// Starts a long-running program on a host; it is killed when the lab is dropped.
    pub fn spawn(&mut self, host: &str, name: &str, args: &[&str]) -> anyhow::Result<&mut Daemon> {
        let log = self.dir.join(format!("{host}-{name}.log"));
        let file = std::fs::File::create(&log)?;
        let child = Command::new("ip")
            .args(["netns", "exec", self.host(host).netns.as_str()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {args:?}"))?;
        self.daemons
            .push(Daemon::new(format!("{host}/{name}"), log, child));
        Ok(self.daemons.last_mut().expect("just pushed"))
    }

    /// The program started under `name` on `host` most recently.
    pub fn daemon(&mut self, host: &str, name: &str) -> Option<&mut Daemon> {
        let full = format!("{host}/{name}");
        self.daemons.iter_mut().rev().find(|d| d.name == full)
    }

    /// Brings a host's port on the lab's bridge down (a cut cable, a dead node) or up.
    pub fn set_link(&self, host: &str, up: bool) -> anyhow::Result<()> {
        let port = self.host(host).name.clone();
        self.ip_in(
            &self.lan,
            &["link", "set", &port, if up { "up" } else { "down" }],
        )?;
        Ok(())
    }

    /// A point-to-point link between two hosts (a veth pair named `a_if` on `a`, `b_if` on
    /// `b`), up, with only the IPv6 link-local addresses the kernel gives it: the kind of
    /// link BGP unnumbered runs on.
    pub fn add_link(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> anyhow::Result<()> {
        let (a_ns, b_ns) = (self.host(a).netns.clone(), self.host(b).netns.clone());
        run(&[
            "ip", "link", "add", a_if, "netns", &a_ns, "type", "veth", "peer", "name", b_if,
            "netns", &b_ns,
        ])?;
        for (host, netns, name) in [(a, &a_ns, a_if), (b, &b_ns, b_if)] {
            // No duplicate address detection: the link-local address is usable at once.
            self.exec(
                host,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{name}.accept_dad=0"),
                ],
            )?;
            self.ip_in(netns, &["link", "set", name, "up"])?;
        }
        Ok(())
    }

    /// Network namespaces this lab made that still exist.
    pub fn namespaces(&self) -> Vec<String> {
        let listed = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        String::from_utf8_lossy(&listed)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|ns| ns.starts_with(&format!("{}-", self.prefix)))
            .map(str::to_string)
            .collect()
    }

    /// Logs of every program the lab started, for failure messages.
    pub fn logs(&self) -> String {
        self.daemons
            .iter()
            .map(|d| format!("--- {} ---\n{}\n", d.name, d.output()))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.daemons.clear();
        // Programs that daemonised themselves are not our children: kill whatever still runs
        // inside the lab's namespaces before deleting them.
        let namespaces: Vec<String> = self
            .hosts
            .iter()
            .map(|h| h.netns.clone())
            .chain([self.lan.clone()])
            .collect();
        for netns in &namespaces {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", netns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
        }
        for netns in &namespaces {
            let _ = Command::new("ip")
                .args(["netns", "del", netns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(args: &[&str]) -> anyhow::Result<Output> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if !output.status.success() {
        bail!(
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
    }
    Ok(output)
}

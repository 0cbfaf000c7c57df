//! Real BGP routers started on lab hosts: GoBGP, BIRD 2 and FRR's bgpd, as LAB.md runs them.
use crate::Lab;
use std::net::Ipv4Addr;

/// A BGP neighbour in a router's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Neighbor {
    pub address: Ipv4Addr,
    pub asn: u32,
}

/// FRR's bfdd configuration with one profile, `fast`: 50 ms both ways, multiplier 3 (what
/// the BFD lab tests and benchmarks run; BGPPeers name it with [`BFD_PROFILE_FAST`]).
pub const FRR_BFD_FAST: &str = "bfd\n profile fast\n  receive-interval 50\n  transmit-interval 50\n  detect-multiplier 3\n !\n!\n";

/// The BFDProfile `fast` as a store file's document: the same timers as [`FRR_BFD_FAST`].
pub const BFD_PROFILE_FAST: &str = "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: fast, namespace: metallb-system}\nspec: {receiveInterval: 50, transmitInterval: 50, detectMultiplier: 3}\n---\n";

/// The router's AS in the BGP lab tests (`rtr`, 192.0.2.1).
pub const ROUTER_AS: u32 = 64500;
/// The AS `ferrolbctl bgp announce` speaks for from `n1` (192.0.2.11).
pub const NODE_AS: u32 = 64501;

impl Lab {
    /// BIRD on `rtr` taking every IPv4 route n1 sends from AS `node_as`: `global` goes before
    /// the protocol (e.g. `timeformat ...;`), `options` inside it (e.g. `password "x";`).
    /// Returns the control socket for `birdc`.
    pub fn start_bird_receiver(
        &mut self,
        node_as: u32,
        global: &str,
        options: &str,
    ) -> anyhow::Result<String> {
        self.start_bird(
            "rtr",
            &format!(
                "{global}\nprotocol bgp n1 {{ local 192.0.2.1 as {ROUTER_AS}; neighbor 192.0.2.11 as {node_as}; \
                 connect retry time 1; {options} ipv4 {{ import all; export none; }}; }}"
            ),
        )
    }

    /// Waits up to `timeout` for the BIRD on `rtr` (control socket `socket`) to hold exactly
    /// `count` routes; whether it did.
    pub fn bird_holds(&self, socket: &str, count: usize, timeout: std::time::Duration) -> bool {
        let wanted = format!("{count} of {count} routes");
        crate::wait_until(timeout, std::time::Duration::from_millis(100), || {
            self.birdc("rtr", socket, "show route count")
                .contains(&wanted)
                .then_some(())
        })
        .is_some()
    }

    /// `ferrolbctl bgp announce` on n1 (as `name`), speaking for AS 64501 from 192.0.2.11
    /// (unless `args` say otherwise) to a peer in `peer_as` at `peer`, with `args` added.
    pub fn start_announce(
        &mut self,
        name: &str,
        peer: &str,
        peer_as: u32,
        args: &[&str],
    ) -> anyhow::Result<&mut crate::Daemon> {
        let ctl = crate::standalone::binary("ferrolbctl");
        let (peer_as, local_as) = (peer_as.to_string(), NODE_AS.to_string());
        let mut full = vec![
            ctl.to_str().unwrap_or("ferrolbctl"),
            "bgp",
            "announce",
            "--peer",
            peer,
            "--peer-as",
            &peer_as,
        ];
        if !args.contains(&"--local-as") {
            full.extend_from_slice(&["--local-as", &local_as]);
        }
        if !args.contains(&"--local-address") {
            full.extend_from_slice(&["--local-address", "192.0.2.11"]);
        }
        full.extend_from_slice(args);
        self.spawn("n1", name, &full)
    }

    /// Starts gobgpd on `host` with the given AS and neighbours; its gRPC API stays on the
    /// host's loopback.
    pub fn start_gobgp(
        &mut self,
        host: &str,
        asn: u32,
        neighbors: &[Neighbor],
    ) -> anyhow::Result<()> {
        let router_id = self.host(host).ipv4;
        let mut toml =
            format!("[global.config]\n  as = {asn}\n  router-id = \"{router_id}\"\n  port = 179\n");
        for n in neighbors {
            toml.push_str(&format!(
                "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}\n",
                n.address, n.asn
            ));
        }
        let path = self.dir().join(format!("{host}-gobgpd.toml"));
        std::fs::write(&path, toml)?;
        let path = path.display().to_string();
        self.spawn(
            host,
            "gobgpd",
            &[
                "gobgpd",
                "-f",
                &path,
                "--api-hosts",
                "127.0.0.1:50051",
                "-p",
            ],
        )?;
        Ok(())
    }

    /// `gobgp` CLI output on `host` (e.g. `["neighbor"]`, `["global", "rib"]`).
    pub fn gobgp(&self, host: &str, args: &[&str]) -> String {
        let mut full = vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"];
        full.extend_from_slice(args);
        String::from_utf8_lossy(&self.exec_unchecked(host, &full).stdout).into_owned()
    }

    /// Starts BIRD 2 in the foreground on `host` with a router id, the `device` protocol and
    /// `protocols` (BIRD configuration text). Returns the control socket's path for `birdc`.
    pub fn start_bird(&mut self, host: &str, protocols: &str) -> anyhow::Result<String> {
        let router_id = self.host(host).ipv4;
        let config = format!("router id {router_id};\nprotocol device {{}}\n{protocols}\n");
        let conf = self.dir().join(format!("{host}-bird.conf"));
        std::fs::write(&conf, config)?;
        let socket = self
            .dir()
            .join(format!("{host}-bird.ctl"))
            .display()
            .to_string();
        let pid = self
            .dir()
            .join(format!("{host}-bird.pid"))
            .display()
            .to_string();
        let conf = conf.display().to_string();
        self.spawn(
            host,
            "bird",
            &["bird", "-f", "-c", &conf, "-s", &socket, "-P", &pid],
        )?;
        Ok(socket)
    }

    /// `birdc` output on `host`.
    pub fn birdc(&self, host: &str, socket: &str, command: &str) -> String {
        let mut args = vec!["birdc", "-s", socket];
        args.extend(command.split_whitespace());
        String::from_utf8_lossy(&self.exec_unchecked(host, &args).stdout).into_owned()
    }

    /// Starts FRR's bgpd without zebra on `host` (LAB.md's way, in the foreground) with the
    /// given configuration. Returns the vty socket folder for `vtysh`.
    pub fn start_frr_bgpd(&mut self, host: &str, config: &str) -> anyhow::Result<String> {
        self.start_frr(host, config, false, None)
    }

    /// Kills FRR's bgpd on `host` (kill -9: no Cease, as in a crash) and starts it again with
    /// the same configuration; zebra, if it runs, stays.
    pub fn restart_frr_bgpd(&mut self, host: &str) -> anyhow::Result<()> {
        let folder = self.dir().join(format!("{host}-frr"));
        let config = std::fs::read_to_string(folder.join("bgpd.conf"))?;
        let zebra = self.daemon(host, "zebra").is_some();
        if let Some(bgpd) = self.daemon(host, "bgpd") {
            bgpd.kill();
        }
        let without_zebra: &[&str] = if zebra { &[] } else { &["-Z"] };
        self.start_frr_daemon(host, "bgpd", &config, without_zebra)
    }

    /// FRR as the top-of-rack router on `rtr`: zebra, so routes land in the namespace's
    /// kernel table and packets follow them, and bgpd accepting every node of the lab
    /// (192.0.2.0/24 and 2001:db8::/64, AS `NODE_AS`) with up to 8 equal paths per prefix.
    /// `extra` is added to the `router bgp` block. Returns the vty socket folder.
    pub fn start_frr_tor(&mut self, extra: &str) -> anyhow::Result<String> {
        self.start_frr_tor_with(extra, None)
    }

    /// [`Lab::start_frr_tor`] with FRR's bfdd too, its configuration `bfdd` (profiles, as
    /// `bfd` / ` profile NAME` / `  receive-interval 50` ...); `extra` names them for the
    /// peers (` neighbor nodes bfd profile NAME`).
    pub fn start_frr_tor_with_bfd(&mut self, extra: &str, bfdd: &str) -> anyhow::Result<String> {
        self.start_frr_tor_with(extra, Some(bfdd))
    }

    fn start_frr_tor_with(&mut self, extra: &str, bfdd: Option<&str>) -> anyhow::Result<String> {
        let config = format!(
            "frr defaults traditional\nhostname rtr\nrouter bgp {ROUTER_AS}\n bgp router-id 192.0.2.1\n \
             no bgp ebgp-requires-policy\n neighbor nodes peer-group\n neighbor nodes remote-as {NODE_AS}\n \
             neighbor nodes timers connect 1\n bgp listen range 192.0.2.0/24 peer-group nodes\n \
             neighbor nodes6 peer-group\n neighbor nodes6 remote-as {NODE_AS}\n \
             bgp listen range 2001:db8::/64 peer-group nodes6\n{extra}\n \
             address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n \
             address-family ipv6 unicast\n  neighbor nodes6 activate\n  maximum-paths 8\n exit-address-family\n"
        );
        self.start_frr("rtr", &config, true, bfdd)
    }

    /// Kills FRR's bfdd on `host` (kill -9) and starts it again with the same configuration.
    pub fn restart_frr_bfdd(&mut self, host: &str) -> anyhow::Result<()> {
        let folder = self.dir().join(format!("{host}-frr"));
        let config = std::fs::read_to_string(folder.join("bfdd.conf"))?;
        if let Some(bfdd) = self.daemon(host, "bfdd") {
            bfdd.kill();
        }
        self.start_bfdd(host, &config)
    }

    fn start_bfdd(&mut self, host: &str, config: &str) -> anyhow::Result<()> {
        let d = self.dir().join(format!("{host}-frr")).display().to_string();
        let control = format!("{d}/bfdd.sock");
        // A killed bfdd leaves its control socket behind, and a new one would not start.
        let _ = std::fs::remove_file(&control);
        self.start_frr_daemon(host, "bfdd", config, &["--bfdctl", &control])?;
        // bgpd asks bfdd for its sessions through zebra: bfdd must be up first.
        let up = crate::wait_until(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis(20),
            || std::path::Path::new(&control).exists().then_some(()),
        );
        anyhow::ensure!(up.is_some(), "bfdd did not start\n{}", self.logs());
        Ok(())
    }

    fn start_frr(
        &mut self,
        host: &str,
        config: &str,
        zebra: bool,
        bfdd: Option<&str>,
    ) -> anyhow::Result<String> {
        let dir = self.dir().join(format!("{host}-frr"));
        std::fs::create_dir_all(&dir)?;
        // The daemons drop to the frr user: their folder must be writable by it.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
        std::fs::set_permissions(
            self.dir(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let d = dir.display().to_string();
        let zserv = format!("{d}/zserv.api");
        if zebra {
            self.start_frr_daemon(host, "zebra", &format!("hostname {host}\n"), &[])?;
            // bgpd connects to zebra at start: wait for its socket.
            let up = crate::wait_until(
                std::time::Duration::from_secs(10),
                std::time::Duration::from_millis(20),
                || std::path::Path::new(&zserv).exists().then_some(()),
            );
            anyhow::ensure!(up.is_some(), "zebra did not start\n{}", self.logs());
        }
        if let Some(bfdd) = bfdd {
            self.start_bfdd(host, bfdd)?;
        }
        let without_zebra: &[&str] = if zebra { &[] } else { &["-Z"] };
        self.start_frr_daemon(host, "bgpd", config, without_zebra)?;
        Ok(d)
    }

    /// One FRR daemon (`zebra`, `bgpd`) on `host`, in the foreground, with its configuration
    /// and sockets in the host's FRR folder.
    fn start_frr_daemon(
        &mut self,
        host: &str,
        daemon: &str,
        config: &str,
        extra: &[&str],
    ) -> anyhow::Result<()> {
        let d = self.dir().join(format!("{host}-frr")).display().to_string();
        let conf = format!("{d}/{daemon}.conf");
        std::fs::write(&conf, config)?;
        std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        let binary = crate::which(daemon)
            .ok_or_else(|| anyhow::anyhow!("FRR's {daemon} is not installed"))?
            .display()
            .to_string();
        let (pid, zserv) = (format!("{d}/{daemon}.pid"), format!("{d}/zserv.api"));
        let mut args = vec![
            binary.as_str(),
            "-f",
            &conf,
            "-i",
            &pid,
            "-z",
            &zserv,
            "--vty_socket",
            &d,
        ];
        args.extend_from_slice(extra);
        self.spawn(host, daemon, &args)?;
        Ok(())
    }

    /// The next hops `rtr`'s kernel uses for `ip` (routes FRR installed through zebra),
    /// sorted.
    pub fn next_hops(&self, ip: &str) -> Vec<String> {
        let family = if ip.contains(':') { "-6" } else { "-4" };
        let routes = self
            .exec("rtr", &["ip", family, "route", "show", ip])
            .unwrap_or_default();
        // "via 192.0.2.11", or "via inet6 fe80::1" for an IPv4 route by an IPv6 next hop.
        let words: Vec<&str> = routes
            .split_whitespace()
            .filter(|w| *w != "inet6" && *w != "inet")
            .collect();
        let mut hops: Vec<String> = words
            .windows(2)
            .filter(|w| w[0] == "via")
            .map(|w| w[1].to_string())
            .collect();
        hops.sort();
        hops
    }

    /// `vtysh` output on `host` for FRR started with [`Lab::start_frr_bgpd`].
    pub fn vtysh(&self, host: &str, vty_dir: &str, command: &str) -> String {
        String::from_utf8_lossy(
            &self
                .exec_unchecked(host, &["vtysh", "--vty_socket", vty_dir, "-c", command])
                .stdout,
        )
        .into_owned()
    }
}

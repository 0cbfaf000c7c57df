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
        })
    }
}

/// Drops gossip (port 7946, UDP and TCP) in and out of `node` while ARP still works: the
/// partition neither side can decide safely. `false` removes it.
pub fn gossip_partition(cluster: &L2Cluster, node: &str, on: bool) -> anyhow::Result<()> {
    nft_rules(cluster, node, on, &["input", "output"])
}

/// Drops gossip arriving at `node` only: it still sends, and hears nothing.
pub fn gossip_deaf(cluster: &L2Cluster, node: &str, on: bool) -> anyhow::Result<()> {
    nft_rules(cluster, node, on, &["input"])
}

fn nft_rules(cluster: &L2Cluster, node: &str, on: bool, hooks: &[&str]) -> anyhow::Result<()> {
    if !on {
        cluster
            .lab
            .exec(node, &["nft", "delete", "table", "inet", "ferrolb_fault"])?;
        return Ok(());
    }
    let mut script = String::from("table inet ferrolb_fault {\n");
    for hook in hooks {
        script.push_str(&format!(
            "  chain {hook} {{ type filter hook {hook} priority 0; udp dport 7946 drop; tcp dport 7946 drop; udp sport 7946 drop; tcp sport 7946 drop; }}\n"
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

//! A standalone member for interoperability tests, the counterpart of `tests/go/mlnode`: it
//! joins the given peers, prints the live member names as one JSON line whenever they change,
//! and leaves gracefully on SIGTERM.
//!
//! `node --name a --bind 192.0.2.11:7946 [--join 192.0.2.12:7946] [--key-dir DIR]`
//! (it watches its ring neighbours closely, as every FerroLB member does).
use ferrolb_gossip::core::Config;
use ferrolb_gossip::driver::{Gossip, GossipConfig};
use ferrolb_gossip::wire::{Keyring, metallb_key};
use std::net::SocketAddr;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let name = value("--name").ok_or("--name is required")?;
    let bind: SocketAddr = value("--bind").ok_or("--bind is required")?.parse()?;
    let seeds: Vec<SocketAddr> = value("--join")
        .map(|j| j.split(',').map(str::parse).collect())
        .transpose()?
        .unwrap_or_default();
    let keyring = match value("--key-dir") {
        Some(dir) => Some(Keyring::new(metallb_key(&std::fs::read(format!(
            "{dir}/secretkey"
        ))?))),
        None => None,
    };
    let mut gossip = Gossip::start(GossipConfig {
        core: Config::lan(&name, bind),
        bind,
        keyring,
        seeds,
        metrics: Default::default(),
        stream_budget: ferrolb_gossip::driver::DEFAULT_STREAM_BUDGET,
    })
    .await?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut last = String::new();
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = terminate.recv() => {
                gossip.leave().await;
                return Ok(());
            }
            _ = gossip.events.recv() => {}
            _ = ticker.tick() => {}
        }
        let mut names: Vec<String> = gossip
            .members()
            .await
            .into_iter()
            .filter(|m| {
                matches!(
                    m.state,
                    ferrolb_gossip::core::State::Alive | ferrolb_gossip::core::State::Suspect
                )
            })
            .map(|m| m.name)
            .collect();
        names.sort();
        let line = serde_json::to_string(&names)?;
        if line != last {
            println!("{line}");
            last = line;
        }
    }
}

//! `ferrolbctl status`: what a speaker is doing (its gossip members, layer 2 announcements,
//! BGP and BFD sessions), asked over its admin gRPC API.
use crate::table::aligned;
use anyhow::Context;
use clap::ValueEnum;
use ferrolb_proto::v1::controller_client::ControllerClient;
use ferrolb_proto::v1::{self, speaker_client::SpeakerClient};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Channel;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum What {
    Members,
    Announcements,
    /// BGP sessions and the BFD sessions under them.
    Sessions,
    /// The controller's pools and how much of each is used.
    Pools,
    /// The controller's allocations: the IPs each Service holds.
    Allocations,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Wide,
    Json,
}

#[derive(clap::Args)]
pub struct Status {
    /// What to show (default: everything).
    what: Option<What>,
    /// The admin API to ask (its `--admin-addr`); by default the speaker's on this host
    /// (127.0.0.1:7473), or for pools and allocations the controller's (127.0.0.1:7474).
    #[arg(long)]
    admin: Option<String>,
    #[arg(short, long, value_enum)]
    output: Option<Format>,
    /// Print again at each change, until interrupted.
    #[arg(long)]
    watch: bool,
}

/// What the speaker answered; a part not asked for is None.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    pub node: String,
    pub members: Option<Vec<v1::Member>>,
    pub announcements: Option<Vec<v1::Announcement>>,
    pub sessions: Option<Vec<v1::Session>>,
    pub bfd_sessions: Option<Vec<v1::BfdSession>>,
    pub pools: Option<Vec<v1::Pool>>,
    pub allocations: Option<Vec<v1::Allocation>>,
}

fn node_name(node: &Option<v1::Node>) -> String {
    node.as_ref().map(|n| n.name.clone()).unwrap_or_default()
}

impl Status {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if let Some(what @ (What::Pools | What::Allocations)) = self.what {
            anyhow::ensure!(
                !self.watch,
                "the controller's admin API has no watch: run without --watch"
            );
            let admin = self
                .admin
                .as_deref()
                .unwrap_or(ferrolb_proto::CONTROLLER_ADMIN_ADDR);
            let channel = connect(admin, "the controller").await?;
            let mut client = ControllerClient::new(channel);
            let mut view = View::default();
            if what == What::Pools {
                view.pools = Some(
                    client
                        .list_pools(v1::ListRequest {})
                        .await?
                        .into_inner()
                        .pools,
                );
            } else {
                let allocations = client.list_allocations(v1::ListRequest {}).await?;
                view.allocations = Some(allocations.into_inner().allocations);
            }
            print!("{}", render(&view, self.output, now_unix_ms())?);
            return Ok(ExitCode::SUCCESS);
        }
        let admin = self
            .admin
            .as_deref()
            .unwrap_or(ferrolb_proto::SPEAKER_ADMIN_ADDR);
        let mut client = SpeakerClient::new(connect(admin, "a speaker").await?);
        let parts: Vec<What> = match self.what {
            Some(what) => vec![what],
            None => vec![What::Members, What::Announcements, What::Sessions],
        };
        if !self.watch {
            let view = list(&mut client, &parts).await?;
            print!("{}", render(&view, self.output, now_unix_ms())?);
            return Ok(ExitCode::SUCCESS);
        }
        self.follow(client, &parts).await?;
        Ok(ExitCode::SUCCESS)
    }

    /// Prints the view, then again at each change of any part, until the speaker ends the
    /// streams or the user interrupts.
    async fn follow(
        &self,
        mut client: SpeakerClient<Channel>,
        parts: &[What],
    ) -> anyhow::Result<()> {
        let mut streams = tokio_stream::StreamMap::new();
        for part in parts {
            let request = || v1::ListRequest {};
            match part {
                What::Members => {
                    let stream = client.watch_members(request()).await?.into_inner();
                    streams.insert(0, changes(stream, set_members));
                }
                What::Announcements => {
                    let stream = client.watch_announcements(request()).await?.into_inner();
                    streams.insert(1, changes(stream, set_announcements));
                }
                What::Sessions => {
                    let stream = client.watch_sessions(request()).await?.into_inner();
                    streams.insert(2, changes(stream, set_sessions));
                    let stream = client.watch_bfd_sessions(request()).await?.into_inner();
                    streams.insert(3, changes(stream, set_bfd_sessions));
                }
                What::Pools | What::Allocations => {}
            }
        }
        let expected = streams.len();
        let mut heard = std::collections::BTreeSet::new();
        let mut view = View::default();
        let mut printed: Option<String> = None;
        while let Some((part, change)) = streams.next().await {
            change.context("the speaker's admin API")?(&mut view);
            // The first print waits for every part's first snapshot; then only what shows
            // differently is printed again (BFD's packet counters move every second, but
            // only the wide tables show them), ages aside (rendered at a fixed time).
            heard.insert(part);
            if heard.len() < expected {
                continue;
            }
            let shown = render(&view, self.output, 0)?;
            if printed.as_ref() == Some(&shown) {
                continue;
            }
            if printed.is_some() && self.output != Some(Format::Json) {
                println!();
            }
            print!("{}", render(&view, self.output, now_unix_ms())?);
            printed = Some(shown);
        }
        anyhow::bail!("the speaker closed the admin API's streams (it stopped?)")
    }
}

/// One part's new snapshot, to be applied to the view.
type Change = Box<dyn FnOnce(&mut View) + Send>;
type Changes = Pin<Box<dyn Stream<Item = Result<Change, tonic::Status>> + Send>>;

/// A Watch call's snapshots, as changes made by `set`.
fn changes<T: Send + 'static>(stream: tonic::Streaming<T>, set: fn(T, &mut View)) -> Changes {
    Box::pin(stream.map(move |snapshot| {
        snapshot.map(|snapshot| -> Change { Box::new(move |view| set(snapshot, view)) })
    }))
}

fn set_members(m: v1::Members, view: &mut View) {
    view.node = node_name(&m.node);
    view.members = Some(m.members);
}

fn set_announcements(a: v1::Announcements, view: &mut View) {
    view.node = node_name(&a.node);
    view.announcements = Some(a.announcements);
}

fn set_sessions(s: v1::Sessions, view: &mut View) {
    view.node = node_name(&s.node);
    view.sessions = Some(s.sessions);
}

fn set_bfd_sessions(b: v1::BfdSessions, view: &mut View) {
    view.node = node_name(&b.node);
    view.bfd_sessions = Some(b.sessions);
}

/// A channel to `whose` admin API at `admin`.
async fn connect(admin: &str, whose: &str) -> anyhow::Result<Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{admin}"))
        .with_context(|| format!("{admin:?} is no address"))?
        .connect_timeout(Duration::from_secs(3));
    endpoint.connect().await.with_context(|| {
        format!("cannot reach {whose}'s admin API at {admin} (does it run here? is --admin set to its --admin-addr?)")
    })
}

async fn list(client: &mut SpeakerClient<Channel>, parts: &[What]) -> anyhow::Result<View> {
    let mut view = View::default();
    for part in parts {
        let request = || v1::ListRequest {};
        match part {
            What::Members => set_members(
                client.list_members(request()).await?.into_inner(),
                &mut view,
            ),
            What::Announcements => set_announcements(
                client.list_announcements(request()).await?.into_inner(),
                &mut view,
            ),
            What::Sessions => {
                set_sessions(
                    client.list_sessions(request()).await?.into_inner(),
                    &mut view,
                );
                let bfd = client.list_bfd_sessions(request()).await?.into_inner();
                set_bfd_sessions(bfd, &mut view);
            }
            What::Pools | What::Allocations => {}
        }
    }
    Ok(view)
}

fn now_unix_ms() -> u64 {
    #[allow(clippy::disallowed_methods)] // the command's shell: ages are counted from now
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The view as tables (a heading per part when there are several), or as one JSON object.
pub fn render(view: &View, output: Option<Format>, now_ms: u64) -> anyhow::Result<String> {
    if output == Some(Format::Json) {
        let mut object = serde_json::Map::new();
        object.insert("node".into(), view.node.clone().into());
        let parts = [
            ("members", view.members.as_ref().map(serde_json::to_value)),
            (
                "announcements",
                view.announcements.as_ref().map(serde_json::to_value),
            ),
            ("sessions", view.sessions.as_ref().map(serde_json::to_value)),
            (
                "bfd_sessions",
                view.bfd_sessions.as_ref().map(serde_json::to_value),
            ),
            ("pools", view.pools.as_ref().map(serde_json::to_value)),
            (
                "allocations",
                view.allocations.as_ref().map(serde_json::to_value),
            ),
        ];
        for (name, value) in parts {
            if let Some(value) = value {
                object.insert(name.into(), value?);
            }
        }
        return Ok(serde_json::to_string_pretty(&object)? + "\n");
    }
    let wide = output == Some(Format::Wide);
    let mut sections: Vec<(&str, String)> = Vec::new();
    if let Some(members) = &view.members {
        sections.push(("MEMBERS", members_table(members, wide, now_ms)));
    }
    if let Some(announcements) = &view.announcements {
        sections.push(("ANNOUNCEMENTS", announcements_table(announcements, now_ms)));
    }
    if let Some(sessions) = &view.sessions {
        sections.push(("BGP SESSIONS", sessions_table(sessions, wide, now_ms)));
    }
    if let Some(bfd) = &view.bfd_sessions {
        sections.push(("BFD SESSIONS", bfd_table(bfd, wide)));
    }
    if let Some(pools) = &view.pools {
        sections.push(("POOLS", pools_table(pools)));
    }
    if let Some(allocations) = &view.allocations {
        sections.push(("ALLOCATIONS", allocations_table(allocations)));
    }
    if let [(_, only)] = &sections[..] {
        return Ok(only.clone());
    }
    let mut out = format!("Node: {}\n", view.node);
    for (heading, table) in sections {
        out.push_str(&format!("\n{heading}\n{table}"));
    }
    Ok(out)
}

/// `rows` under `header`, or one line saying there are none.
fn table_or_none(header: &[&str], rows: Vec<Vec<String>>, none: &str) -> String {
    if rows.is_empty() {
        return format!("{none}\n");
    }
    let mut all = vec![header.iter().map(|h| h.to_string()).collect()];
    all.extend(rows);
    aligned(&all)
}

fn members_table(members: &[v1::Member], wide: bool, now_ms: u64) -> String {
    let mut header = vec!["NAME", "STATE", "ADDRESS", "AGE"];
    if wide {
        header.push("INCARNATION");
    }
    let rows = members
        .iter()
        .map(|m| {
            let state = v1::MemberState::try_from(m.state).map_or("unknown", |s| match s {
                v1::MemberState::Alive => "alive",
                v1::MemberState::Suspect => "suspect",
                v1::MemberState::Dead => "dead",
                v1::MemberState::Left => "left",
                v1::MemberState::Unspecified => "unknown",
            });
            let mut row = vec![
                m.name.clone(),
                state.to_string(),
                m.address.clone(),
                age(m.since_unix_ms, now_ms),
            ];
            if wide {
                row.push(m.incarnation.to_string());
            }
            row
        })
        .collect();
    table_or_none(&header, rows, "No gossip members.")
}

fn announcements_table(announcements: &[v1::Announcement], now_ms: u64) -> String {
    let header = ["IP", "SERVICE", "INTERFACE", "AGE", "LAST-ANNOUNCED"];
    let rows = announcements
        .iter()
        .map(|a| {
            let last = match a.last_announced_unix_ms {
                0 => "-".to_string(),
                at => format!("{} ago", age(at, now_ms)),
            };
            vec![
                a.ip.clone(),
                a.service.clone(),
                a.interface.clone(),
                age(a.since_unix_ms, now_ms),
                last,
            ]
        })
        .collect();
    table_or_none(&header, rows, "No layer 2 announcements on this node.")
}

fn sessions_table(sessions: &[v1::Session], wide: bool, now_ms: u64) -> String {
    let mut header = vec![
        "PEER", "ADDRESS", "AS", "UP/DOWN", "STATE", "SENT", "RECEIVED",
    ];
    if wide {
        header.extend(["LOCAL-AS", "HOLD", "CAPABILITIES"]);
    }
    header.push("LAST-ERROR");
    let rows = sessions
        .iter()
        .map(|s| {
            let established = s.state == i32::from(v1::SessionState::Established);
            let mut row = vec![
                s.peer.clone(),
                s.address.clone(),
                s.peer_asn.to_string(),
                if established {
                    age(s.established_unix_ms, now_ms)
                } else {
                    "-".into()
                },
                if established { "Established" } else { "Active" }.to_string(),
                s.prefixes_sent.to_string(),
                s.prefixes_received.to_string(),
            ];
            if wide {
                row.push(s.local_asn.to_string());
                row.push(if established {
                    format!("{}s", s.hold_time_s)
                } else {
                    "-".into()
                });
                row.push(match s.capabilities.join(",") {
                    none if none.is_empty() => "-".into(),
                    names => names,
                });
            }
            row.push(if s.last_error.is_empty() {
                "-".into()
            } else {
                s.last_error.clone()
            });
            row
        })
        .collect();
    table_or_none(&header, rows, "No BGP sessions on this node.")
}

fn bfd_state(state: i32) -> &'static str {
    v1::BfdState::try_from(state).map_or("unknown", |s| match s {
        v1::BfdState::AdminDown => "AdminDown",
        v1::BfdState::Down => "Down",
        v1::BfdState::Init => "Init",
        v1::BfdState::Up => "Up",
        v1::BfdState::Unspecified => "unknown",
    })
}

fn bfd_table(sessions: &[v1::BfdSession], wide: bool) -> String {
    let mut header = vec!["PEER", "STATE", "TX", "DETECT", "BGP-PEERS"];
    if wide {
        header.extend(["MULTIHOP", "REMOTE", "DIAGNOSTIC", "IN", "OUT"]);
    }
    let interval = |us: u64| match us {
        0 => "-".to_string(),
        us if us % 1000 == 0 => format!("{}ms", us / 1000),
        us => format!("{:.1}ms", us as f64 / 1000.0),
    };
    let rows = sessions
        .iter()
        .map(|b| {
            let mut row = vec![
                b.peer.clone(),
                bfd_state(b.state).to_string(),
                interval(b.tx_interval_us),
                interval(b.detection_time_us),
                b.bgp_peers.join(","),
            ];
            if wide {
                row.extend([
                    b.multihop.to_string(),
                    bfd_state(b.remote_state).to_string(),
                    b.diagnostic.clone(),
                    b.packets_in.to_string(),
                    b.packets_out.to_string(),
                ]);
            }
            row
        })
        .collect();
    table_or_none(&header, rows, "No BFD sessions on this node.")
}

fn pools_table(pools: &[v1::Pool]) -> String {
    let header = ["NAME", "USED", "SIZE", "AUTO-ASSIGN", "ADDRESSES"];
    let rows = pools
        .iter()
        .map(|p| {
            let size = match p.size {
                u64::MAX => "huge".to_string(),
                n => n.to_string(),
            };
            vec![
                p.name.clone(),
                p.used.to_string(),
                size,
                p.auto_assign.to_string(),
                p.cidrs.join(","),
            ]
        })
        .collect();
    table_or_none(&header, rows, "No address pools.")
}

fn allocations_table(allocations: &[v1::Allocation]) -> String {
    let header = ["SERVICE", "POOL", "IPS"];
    let rows = allocations
        .iter()
        .map(|a| vec![a.service.clone(), a.pool.clone(), a.ips.join(",")])
        .collect();
    table_or_none(&header, rows, "No Service holds an IP.")
}

/// How long ago `since_ms` was, as kubectl writes ages: 45s, 3m12s, 5h3m, 12d.
fn age(since_ms: u64, now_ms: u64) -> String {
    if since_ms == 0 {
        return "-".into();
    }
    let s = now_ms.saturating_sub(since_ms) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests;

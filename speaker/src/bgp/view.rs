//! A BGP session as the admin API shows it, followed from what its driver reports.
use crate::admin::unix_ms_now;
use ferrolb_bfd::driver as bfd;
use ferrolb_bgp::driver::Event;
use ferrolb_bgp::packet::Family;
use ferrolb_bgp::session::Negotiated;
use ferrolb_proto::v1;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};

/// Received prefixes are counted up to this many: FerroLB imports no route, and a router
/// sending a full table must not cost each speaker a copy of it.
pub const RECEIVED_COUNTED: usize = 100_000;

/// One session's view, and the prefixes the peer announced to us (to count them).
pub struct View {
    pub session: v1::Session,
    received: BTreeSet<IpNet>,
}

impl View {
    pub fn new(peer: &str, address: std::net::SocketAddr, local_asn: u32, peer_asn: u32) -> View {
        View {
            session: v1::Session {
                peer: peer.to_string(),
                address: address.to_string(),
                local_asn,
                peer_asn,
                state: v1::SessionState::Active.into(),
                ..Default::default()
            },
            received: BTreeSet::new(),
        }
    }

    /// Takes in what the driver reported; whether the view changed.
    pub fn on_event(&mut self, event: &Event) -> bool {
        let s = &mut self.session;
        match event {
            Event::Established(negotiated) => {
                s.state = v1::SessionState::Established.into();
                s.established_unix_ms = unix_ms_now();
                s.peer_asn = negotiated.peer_as;
                s.hold_time_s = u32::from(negotiated.hold_time);
                s.capabilities = capabilities(negotiated);
                self.received.clear();
                s.prefixes_received = 0;
            }
            Event::Down(why) => {
                s.state = v1::SessionState::Active.into();
                s.established_unix_ms = 0;
                s.hold_time_s = 0;
                s.capabilities.clear();
                s.prefixes_sent = 0;
                s.prefixes_received = 0;
                s.last_error = why.describe();
                self.received.clear();
            }
            Event::ConnectFailed(why) => {
                let error = format!("cannot connect: {why}");
                if s.last_error == error {
                    return false;
                }
                s.last_error = error;
            }
            Event::Sent { advertised, .. } => {
                let sent = *advertised as u64;
                if s.prefixes_sent == sent {
                    return false;
                }
                s.prefixes_sent = sent;
            }
            Event::Update(update) => {
                let a = &update.attributes;
                let withdrawn = update
                    .withdrawn
                    .iter()
                    .chain(a.mp_unreach.iter().flat_map(|u| &u.withdrawn));
                for prefix in withdrawn {
                    self.received.remove(prefix);
                }
                let announced = update
                    .nlri
                    .iter()
                    .chain(a.mp_reach.iter().flat_map(|r| &r.nlri));
                for prefix in announced {
                    if self.received.len() >= RECEIVED_COUNTED {
                        break;
                    }
                    self.received.insert(*prefix);
                }
                let received = self.received.len() as u64;
                if s.prefixes_received == received {
                    return false;
                }
                s.prefixes_received = received;
            }
            Event::EndOfRibSent(_) => return false,
        }
        true
    }
}

/// The capabilities both sides announced, by the names `gobgp neighbor` uses.
fn capabilities(n: &Negotiated) -> Vec<String> {
    let mut names: Vec<String> = n.families.iter().map(family_name).collect();
    let flags = [
        (n.route_refresh, "route-refresh"),
        (n.enhanced_route_refresh, "enhanced-route-refresh"),
        (n.extended_next_hop, "extended-nexthop"),
        (n.peer_graceful_restart.is_some(), "graceful-restart"),
    ];
    names.extend(
        flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| name.to_string()),
    );
    names
}

fn family_name(family: &Family) -> String {
    match *family {
        Family::IPV4_UNICAST => "ipv4-unicast".into(),
        Family::IPV6_UNICAST => "ipv6-unicast".into(),
        Family { afi, safi } => format!("afi {afi} safi {safi}"),
    }
}

impl View {
    /// A stopped session's last view: not established, saying why.
    pub fn stopped(session: &v1::Session, why: &str) -> v1::Session {
        v1::Session {
            state: v1::SessionState::Active.into(),
            established_unix_ms: 0,
            prefixes_sent: 0,
            prefixes_received: 0,
            last_error: why.to_string(),
            hold_time_s: 0,
            capabilities: Vec::new(),
            ..session.clone()
        }
    }
}

/// The BFD driver's sessions as the admin API shows them, with the BGPPeers each serves.
pub fn bfd_sessions(
    status: &bfd::Status,
    peers: &BTreeMap<bfd::Key, BTreeSet<String>>,
) -> Vec<v1::BfdSession> {
    let state = |state: ferrolb_bfd::State| -> i32 {
        match state {
            ferrolb_bfd::State::AdminDown => v1::BfdState::AdminDown,
            ferrolb_bfd::State::Down => v1::BfdState::Down,
            ferrolb_bfd::State::Init => v1::BfdState::Init,
            ferrolb_bfd::State::Up => v1::BfdState::Up,
        }
        .into()
    };
    let micros = |d: Option<std::time::Duration>| {
        d.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    };
    status
        .sessions
        .iter()
        .map(|s| v1::BfdSession {
            peer: match &s.key.interface {
                Some(interface) if s.key.scope_id != 0 => format!("{}%{interface}", s.key.peer),
                _ => s.key.peer.to_string(),
            },
            multihop: s.key.multihop,
            state: state(s.state),
            remote_state: state(s.remote_state),
            diagnostic: s.diag.to_string(),
            tx_interval_us: micros(s.tx_interval),
            detection_time_us: micros(s.detection_time),
            packets_in: s.counters.control_in,
            packets_out: s.counters.control_out,
            bgp_peers: peers
                .get(&s.key)
                .map(|p| p.iter().cloned().collect())
                .unwrap_or_default(),
        })
        .collect()
}

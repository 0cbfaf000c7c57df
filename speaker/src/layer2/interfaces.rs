//! The node's network interfaces and which of them may announce: read and then watched with
//! rtnetlink, so a link that goes down stops being used (and the node stops being a
//! candidate for the IPs that only it could carry) at once.
use ferrolb_api::exclusions::Exclusions;
use ferrolb_l2::packet::Mac;
use futures::StreamExt;
use futures::TryStreamExt;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// How often the full list is read again, in case a netlink notification was lost.
const RESYNC: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<Mac>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Carrier present (IFF_LOWER_UP): a cut cable or a downed peer clears it.
    pub carrier: bool,
    pub noarp: bool,
    /// Enslaved to a bond or bridge: its master announces instead.
    pub enslaved: bool,
}

impl Link {
    /// Whether the link may announce: up with a carrier, with ARP and an Ethernet address,
    /// not enslaved, and not excluded by name.
    pub fn eligible(&self, exclusions: &Exclusions) -> bool {
        self.up
            && self.carrier
            && !self.noarp
            && !self.enslaved
            && self.mac.is_some()
            && !exclusions.excludes(&self.name)
    }

    fn from_message(message: &LinkMessage) -> Option<Link> {
        let mut name = None;
        let mut mac = None;
        let mut enslaved = false;
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::Address(a) => mac = <Mac>::try_from(a.as_slice()).ok(),
                LinkAttribute::Controller(_) => enslaved = true,
                _ => {}
            }
        }
        let flags = message.header.flags;
        Some(Link {
            index: message.header.index,
            name: name?,
            // An all-zero address is no address (lo has one).
            mac: mac.filter(|m| m.iter().any(|b| *b != 0)),
            up: flags.contains(LinkFlags::Up),
            carrier: flags.contains(LinkFlags::LowerUp),
            noarp: flags.contains(LinkFlags::Noarp),
            enslaved,
        })
    }
}

pub type Links = BTreeMap<u32, Link>;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("opening a netlink socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("listing the network interfaces: {0}")]
    List(#[from] rtnetlink::Error),
}

/// Reads every link, then keeps the returned channel up to date from netlink notifications.
pub async fn watch_links() -> Result<watch::Receiver<Links>, LinkError> {
    let (mut connection, handle, mut messages) = rtnetlink::new_connection()?;
    let groups = rtnetlink::constants::RTMGRP_LINK;
    rtnetlink::sys::AsyncSocket::socket_mut(connection.socket_mut())
        .bind(&rtnetlink::sys::SocketAddr::new(0, groups))?;
    tokio::spawn(connection);
    let initial = dump(&handle).await?;
    let (tx, rx) = watch::channel(initial);
    tokio::spawn(async move {
        let mut resync = tokio::time::interval(RESYNC);
        resync.tick().await;
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some((message, _)) = message else { return };
                    let NetlinkPayload::InnerMessage(inner) = message.payload else { continue };
                    tx.send_if_modified(|links| match inner {
                        RouteNetlinkMessage::NewLink(m) => match Link::from_message(&m) {
                            Some(link) if links.get(&link.index) != Some(&link) => {
                                links.insert(link.index, link);
                                true
                            }
                            _ => false,
                        },
                        RouteNetlinkMessage::DelLink(m) => links.remove(&m.header.index).is_some(),
                        _ => false,
                    });
                }
                _ = resync.tick() => match dump(&handle).await {
                    Ok(links) => {
                        tx.send_if_modified(|current| {
                            let changed = *current != links;
                            *current = links;
                            changed
                        });
                    }
                    Err(error) => tracing::warn!(%error, "reading the network interfaces failed"),
                },
            }
        }
    });
    Ok(rx)
}

async fn dump(handle: &rtnetlink::Handle) -> Result<Links, rtnetlink::Error> {
    let messages: Vec<LinkMessage> = handle.link().get().execute().try_collect().await?;
    Ok(messages
        .iter()
        .filter_map(Link::from_message)
        .map(|l| (l.index, l))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str) -> Link {
        Link {
            index: 2,
            name: name.into(),
            mac: Some([2, 0, 0, 0, 0, 1]),
            up: true,
            carrier: true,
            noarp: false,
            enslaved: false,
        }
    }

    #[test]
    fn plain_ethernet_links_are_eligible() {
        for name in ["eth0", "ens3", "br0", "bond0", "eno1.100", "local0"] {
            assert!(link(name).eligible(&Exclusions::default()), "{name}");
        }
    }

    #[test]
    fn plumbing_down_links_noarp_and_enslaved_links_are_not() {
        for name in [
            "lo",
            "docker0",
            "veth1234",
            "cali12",
            "flannel.1",
            "kube-ipvs0",
            "cni0",
        ] {
            assert!(!link(name).eligible(&Exclusions::default()), "{name}");
        }
        let mut down = link("eth0");
        down.up = false;
        let mut no_carrier = link("eth0");
        no_carrier.carrier = false;
        let mut noarp = link("eth0");
        noarp.noarp = true;
        let mut enslaved = link("eth0");
        enslaved.enslaved = true;
        let mut no_mac = link("eth0");
        no_mac.mac = None;
        for l in [down, no_carrier, noarp, enslaved, no_mac] {
            assert!(!l.eligible(&Exclusions::default()), "{l:?}");
        }
    }
}

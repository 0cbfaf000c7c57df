//! ARP (RFC 826) in Ethernet frames, and the NDP messages (RFC 4861) we answer and send, as
//! ICMPv6 bodies. Pure: bytes in, bytes out; anything malformed is `None`, never a panic.
use std::net::{Ipv4Addr, Ipv6Addr};

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];
pub const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERNET_HEADER: usize = 14;
const ARP_BODY: usize = 28;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
}

/// An IPv4-over-Ethernet ARP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub op: ArpOp,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

fn mac(bytes: &[u8]) -> Option<Mac> {
    bytes.try_into().ok()
}

fn ipv4(bytes: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(bytes).ok().map(Ipv4Addr::from)
}

fn ipv6(bytes: &[u8]) -> Option<Ipv6Addr> {
    <[u8; 16]>::try_from(bytes).ok().map(Ipv6Addr::from)
}

impl Arp {
    /// Reads an Ethernet frame carrying ARP for IPv4 over Ethernet.
    pub fn parse(frame: &[u8]) -> Option<Arp> {
        let ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
        if ethertype != ETHERTYPE_ARP {
            return None;
        }
        let body = frame.get(ETHERNET_HEADER..ETHERNET_HEADER + ARP_BODY)?;
        // Hardware Ethernet (1), protocol IPv4, address lengths 6 and 4.
        if body[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
            return None;
        }
        let op = match u16::from_be_bytes([body[6], body[7]]) {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            _ => return None,
        };
        Some(Arp {
            op,
            sender_mac: mac(&body[8..14])?,
            sender_ip: ipv4(&body[14..18])?,
            target_mac: mac(&body[18..24])?,
            target_ip: ipv4(&body[24..28])?,
        })
    }

    /// The Ethernet frame carrying this message to `destination`.
    pub fn frame(&self, destination: Mac) -> Vec<u8> {
        let mut frame = Vec::with_capacity(ETHERNET_HEADER + ARP_BODY);
        frame.extend_from_slice(&destination);
        frame.extend_from_slice(&self.sender_mac);
        frame.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        frame.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
        frame.extend_from_slice(match self.op {
            ArpOp::Request => &[0, 1],
            ArpOp::Reply => &[0, 2],
        });
        frame.extend_from_slice(&self.sender_mac);
        frame.extend_from_slice(&self.sender_ip.octets());
        frame.extend_from_slice(&self.target_mac);
        frame.extend_from_slice(&self.target_ip.octets());
        frame
    }

    /// Our answer to a request for `ip`, which we own.
    pub fn reply_to(&self, our_mac: Mac) -> Arp {
        Arp {
            op: ArpOp::Reply,
            sender_mac: our_mac,
            sender_ip: self.target_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        }
    }

    /// A gratuitous ARP announcing that `ip` is at `our_mac`, in the request or the reply
    /// form (hosts differ in which one updates their cache, so both are sent).
    pub fn gratuitous(op: ArpOp, our_mac: Mac, ip: Ipv4Addr) -> Arp {
        Arp {
            op,
            sender_mac: our_mac,
            sender_ip: ip,
            target_mac: match op {
                ArpOp::Request => [0; 6],
                ArpOp::Reply => BROADCAST,
            },
            target_ip: ip,
        }
    }
}

const ICMPV6_NEIGHBOR_SOLICITATION: u8 = 135;
const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
const OPTION_SOURCE_LLADDR: u8 = 1;
const OPTION_TARGET_LLADDR: u8 = 2;

/// A neighbor solicitation or advertisement: the ICMPv6 body as a raw ICMPv6 socket gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbor {
    pub target: Ipv6Addr,
    /// The link-layer address option (source for a solicitation, target for an advertisement).
    pub lladdr: Option<Mac>,
}

fn parse_neighbor(icmp: &[u8], kind: u8, option: u8) -> Option<Neighbor> {
    if *icmp.first()? != kind || *icmp.get(1)? != 0 {
        return None;
    }
    let target = ipv6(icmp.get(8..24)?)?;
    let mut lladdr = None;
    let mut options = icmp.get(24..)?;
    while options.len() >= 2 {
        let len = usize::from(options[1]) * 8;
        // A zero-length option is invalid (RFC 4861 4.6) and would loop forever.
        if len == 0 || len > options.len() {
            return None;
        }
        if options[0] == option && len == 8 {
            lladdr = mac(&options[2..8]);
        }
        options = &options[len..];
    }
    Some(Neighbor { target, lladdr })
}

impl Neighbor {
    pub fn parse_solicitation(icmp: &[u8]) -> Option<Neighbor> {
        parse_neighbor(icmp, ICMPV6_NEIGHBOR_SOLICITATION, OPTION_SOURCE_LLADDR)
    }

    pub fn parse_advertisement(icmp: &[u8]) -> Option<Neighbor> {
        parse_neighbor(icmp, ICMPV6_NEIGHBOR_ADVERTISEMENT, OPTION_TARGET_LLADDR)
    }
}

/// A neighbor advertisement for `target` at `our_mac`, with the override flag (we take the
/// address over) and the solicited flag when it answers a solicitation. The checksum is left
/// at zero: the kernel computes it for raw ICMPv6 sockets.
pub fn neighbor_advertisement(target: Ipv6Addr, our_mac: Mac, solicited: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(&[ICMPV6_NEIGHBOR_ADVERTISEMENT, 0, 0, 0]);
    // Flags: router (0x80) no, solicited (0x40), override (0x20).
    body.push(if solicited { 0x60 } else { 0x20 });
    body.extend_from_slice(&[0, 0, 0]);
    body.extend_from_slice(&target.octets());
    body.extend_from_slice(&[OPTION_TARGET_LLADDR, 1]);
    body.extend_from_slice(&our_mac);
    body
}

/// The solicited-node multicast group of `ip` (ff02::1:ffXX:XXXX): solicitations for it go
/// there, so an interface announcing it must be in the group.
pub fn solicited_node_group(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OURS: Mac = [2, 0, 0, 0, 0, 0x11];
    const CLIENT: Mac = [2, 0, 0, 0, 0, 0x64];

    /// A broadcast request from 192.0.2.100 for 198.51.100.10, laid out as `arping` sends it
    /// (the lab tests run the real `arping` against the speaker).
    const ARPING_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0x64, 0x08, 0x06, 0x00, 0x01, 0x08,
        0x00, 0x06, 0x04, 0x00, 0x01, 2, 0, 0, 0, 0, 0x64, 192, 0, 2, 100, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 198, 51, 100, 10,
    ];

    #[test]
    fn an_arping_request_is_read_and_answered() {
        let request = Arp::parse(&ARPING_REQUEST).expect("parses");
        assert_eq!(request.op, ArpOp::Request);
        assert_eq!(request.sender_mac, CLIENT);
        assert_eq!(request.sender_ip, Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(request.target_ip, Ipv4Addr::new(198, 51, 100, 10));

        let reply = request.reply_to(OURS);
        let frame = reply.frame(request.sender_mac);
        assert_eq!(&frame[0..6], &CLIENT, "to the asker");
        assert_eq!(&frame[6..12], &OURS);
        assert_eq!(&frame[20..22], &[0, 2], "a reply");
        assert_eq!(&frame[28..32], &[198, 51, 100, 10], "the IP is ours");
        assert_eq!(&frame[32..38], &CLIENT);
        assert_eq!(Arp::parse(&frame), Some(reply));
    }

    #[test]
    fn gratuitous_arp_comes_in_both_forms() {
        let ip = Ipv4Addr::new(198, 51, 100, 10);
        let request = Arp::gratuitous(ArpOp::Request, OURS, ip);
        let reply = Arp::gratuitous(ArpOp::Reply, OURS, ip);
        for garp in [request, reply] {
            assert_eq!(garp.sender_ip, ip);
            assert_eq!(garp.target_ip, ip);
            let frame = garp.frame(BROADCAST);
            assert_eq!(&frame[0..6], &BROADCAST);
            assert_eq!(Arp::parse(&frame), Some(garp));
        }
    }

    #[test]
    fn other_protocols_and_short_frames_are_ignored() {
        let mut ipv4_frame = ARPING_REQUEST;
        ipv4_frame[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(Arp::parse(&ipv4_frame), None);
        assert_eq!(Arp::parse(&ARPING_REQUEST[..41]), None);
        let mut odd_op = ARPING_REQUEST;
        odd_op[21] = 9;
        assert_eq!(Arp::parse(&odd_op), None);
    }

    /// A solicitation with the source link-layer option, as `ndisc6` sends it (ICMPv6 body).
    fn solicitation(target: Ipv6Addr, mac: Mac) -> Vec<u8> {
        let mut body = vec![135, 0, 0x12, 0x34, 0, 0, 0, 0];
        body.extend_from_slice(&target.octets());
        body.extend_from_slice(&[1, 1]);
        body.extend_from_slice(&mac);
        body
    }

    #[test]
    fn a_solicitation_is_read_and_answered_with_override() {
        let target: Ipv6Addr = "2001:db8:1::10".parse().expect("ip");
        let ns = Neighbor::parse_solicitation(&solicitation(target, CLIENT)).expect("parses");
        assert_eq!(ns.target, target);
        assert_eq!(ns.lladdr, Some(CLIENT));

        let na = neighbor_advertisement(target, OURS, true);
        assert_eq!(na[4], 0x60, "solicited and override");
        let parsed = Neighbor::parse_advertisement(&na).expect("parses");
        assert_eq!(parsed.target, target);
        assert_eq!(parsed.lladdr, Some(OURS));
        assert_eq!(neighbor_advertisement(target, OURS, false)[4], 0x20);
    }

    #[test]
    fn a_zero_length_option_is_rejected() {
        let mut ns = solicitation(Ipv6Addr::LOCALHOST, CLIENT);
        ns[25] = 0;
        assert_eq!(Neighbor::parse_solicitation(&ns), None);
    }

    #[test]
    fn solicited_node_groups_take_the_last_24_bits() {
        let ip: Ipv6Addr = "2001:db8::abcd:1234".parse().expect("ip");
        assert_eq!(
            solicited_node_group(ip),
            "ff02::1:ffcd:1234".parse::<Ipv6Addr>().expect("ip")
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Arp::parse(&bytes);
            let _ = Neighbor::parse_solicitation(&bytes);
            let _ = Neighbor::parse_advertisement(&bytes);
        }
    }
}

//! ARP (RFC 826) in Ethernet frames, and the NDP messages (RFC 4861) we answer and send, as
//! ICMPv6 bodies. Pure: bytes in, bytes out; anything malformed is `None`, never a panic.
//!
//! Frames and fixed headers are read and built with pnet's packet types. NDP options are
//! walked here instead: pnet computes an option's length as `u8 * 8`, which panics (debug) or
//! wraps (release) for an option of 256 bytes or more, a length RFC 4861 allows.
use pnet_base::MacAddr;
use pnet_packet::MutablePacket;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::icmpv6::Icmpv6Types;
use pnet_packet::icmpv6::ndp::{
    MutableNeighborAdvertPacket, NeighborAdvertFlags, NeighborAdvertPacket, NeighborSolicitPacket,
};
use std::net::{Ipv4Addr, Ipv6Addr};

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];
pub const ETHERTYPE_ARP: u16 = 0x0806;
const ARP_FRAME: usize = EthernetPacket::minimum_packet_size() + ArpPacket::minimum_packet_size();

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

fn mac_of(address: MacAddr) -> Mac {
    address.octets()
}

fn mac_addr(mac: Mac) -> MacAddr {
    MacAddr::from(mac)
}

impl Arp {
    /// Reads an Ethernet frame carrying ARP for IPv4 over Ethernet.
    pub fn parse(frame: &[u8]) -> Option<Arp> {
        let ethernet = EthernetPacket::new(frame)?;
        if ethernet.get_ethertype() != EtherTypes::Arp {
            return None;
        }
        let arp = ArpPacket::new(frame.get(EthernetPacket::minimum_packet_size()..)?)?;
        // pnet reads the fields as IPv4 over Ethernet whatever the header says: check it.
        if arp.get_hardware_type() != ArpHardwareTypes::Ethernet
            || arp.get_protocol_type() != EtherTypes::Ipv4
            || arp.get_hw_addr_len() != 6
            || arp.get_proto_addr_len() != 4
        {
            return None;
        }
        let op = match arp.get_operation() {
            ArpOperations::Request => ArpOp::Request,
            ArpOperations::Reply => ArpOp::Reply,
            _ => return None,
        };
        Some(Arp {
            op,
            sender_mac: mac_of(arp.get_sender_hw_addr()),
            sender_ip: arp.get_sender_proto_addr(),
            target_mac: mac_of(arp.get_target_hw_addr()),
            target_ip: arp.get_target_proto_addr(),
        })
    }

    /// The Ethernet frame carrying this message to `destination`.
    pub fn frame(&self, destination: Mac) -> Vec<u8> {
        let mut frame = vec![0u8; ARP_FRAME];
        let mut ethernet =
            MutableEthernetPacket::new(&mut frame).expect("the buffer fits an ARP frame");
        ethernet.set_destination(mac_addr(destination));
        ethernet.set_source(mac_addr(self.sender_mac));
        ethernet.set_ethertype(EtherTypes::Arp);
        let mut arp =
            MutableArpPacket::new(ethernet.payload_mut()).expect("the buffer fits an ARP body");
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(match self.op {
            ArpOp::Request => ArpOperations::Request,
            ArpOp::Reply => ArpOperations::Reply,
        });
        arp.set_sender_hw_addr(mac_addr(self.sender_mac));
        arp.set_sender_proto_addr(self.sender_ip);
        arp.set_target_hw_addr(mac_addr(self.target_mac));
        arp.set_target_proto_addr(self.target_ip);
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

const OPTION_SOURCE_LLADDR: u8 = 1;
const OPTION_TARGET_LLADDR: u8 = 2;
/// Type, code, checksum, flags/reserved and target: where the options begin.
const NEIGHBOR_HEADER: usize = 24;

/// A neighbor solicitation or advertisement: the ICMPv6 body as a raw ICMPv6 socket gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbor {
    pub target: Ipv6Addr,
    /// The link-layer address option (source for a solicitation, target for an advertisement).
    pub lladdr: Option<Mac>,
}

/// The link-layer address in the options after the fixed header, or `None` (outer) when an
/// option is malformed.
fn lladdr_option(mut options: &[u8], wanted: u8) -> Option<Option<Mac>> {
    let mut lladdr = None;
    while options.len() >= 2 {
        let len = usize::from(options[1]) * 8;
        // A zero-length option is invalid (RFC 4861 4.6) and would loop forever.
        if len == 0 || len > options.len() {
            return None;
        }
        if options[0] == wanted && len == 8 {
            lladdr = options[2..8].try_into().ok();
        }
        options = &options[len..];
    }
    Some(lladdr)
}

impl Neighbor {
    pub fn parse_solicitation(icmp: &[u8]) -> Option<Neighbor> {
        let ns = NeighborSolicitPacket::new(icmp)?;
        if ns.get_icmpv6_type() != Icmpv6Types::NeighborSolicit || ns.get_icmpv6_code().0 != 0 {
            return None;
        }
        Some(Neighbor {
            target: ns.get_target_addr(),
            lladdr: lladdr_option(icmp.get(NEIGHBOR_HEADER..)?, OPTION_SOURCE_LLADDR)?,
        })
    }

    pub fn parse_advertisement(icmp: &[u8]) -> Option<Neighbor> {
        let na = NeighborAdvertPacket::new(icmp)?;
        if na.get_icmpv6_type() != Icmpv6Types::NeighborAdvert || na.get_icmpv6_code().0 != 0 {
            return None;
        }
        Some(Neighbor {
            target: na.get_target_addr(),
            lladdr: lladdr_option(icmp.get(NEIGHBOR_HEADER..)?, OPTION_TARGET_LLADDR)?,
        })
    }
}

/// A neighbor advertisement for `target` at `our_mac`, with the override flag (we take the
/// address over) and the solicited flag when it answers a solicitation. The checksum is left
/// at zero: the kernel computes it for raw ICMPv6 sockets.
pub fn neighbor_advertisement(target: Ipv6Addr, our_mac: Mac, solicited: bool) -> Vec<u8> {
    let mut body = vec![0u8; NEIGHBOR_HEADER + 8];
    let mut na = MutableNeighborAdvertPacket::new(&mut body).expect("the buffer fits an NA");
    na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
    let mut flags = NeighborAdvertFlags::Override;
    if solicited {
        flags |= NeighborAdvertFlags::Solicited;
    }
    na.set_flags(flags);
    na.set_target_addr(target);
    // The target link-layer address option (one unit of 8 bytes), written as bytes: pnet
    // would size its buffer with the arithmetic the module comment describes.
    body[NEIGHBOR_HEADER..NEIGHBOR_HEADER + 2].copy_from_slice(&[OPTION_TARGET_LLADDR, 1]);
    body[NEIGHBOR_HEADER + 2..].copy_from_slice(&our_mac);
    body
}

/// ICMPv6 router advertisement (RFC 4861 4.2).
pub const ROUTER_ADVERTISEMENT: u8 = 134;
/// Type, code, checksum, hop limit, flags, lifetime, reachable and retransmit times.
const ROUTER_ADVERTISEMENT_LEN: usize = 16;

/// A router advertisement that only says "here I am": BGP unnumbered peers learn each
/// other's link-local address from the source of these. Router lifetime 0, so no host on
/// the link takes us as its default router; no options. The checksum is left at zero: the
/// kernel computes it for raw ICMPv6 sockets.
pub fn router_advertisement() -> Vec<u8> {
    let mut body = vec![0u8; ROUTER_ADVERTISEMENT_LEN];
    body[0] = ROUTER_ADVERTISEMENT;
    // Current hop limit: 0 is "unspecified", leaving hosts' own setting alone.
    body
}

/// Whether an ICMPv6 body is a valid router advertisement (RFC 4861 6.1.2: code 0, at
/// least the fixed 16 bytes, options well formed).
pub fn is_router_advertisement(icmp: &[u8]) -> bool {
    icmp.len() >= ROUTER_ADVERTISEMENT_LEN
        && icmp[0] == ROUTER_ADVERTISEMENT
        && icmp[1] == 0
        && lladdr_option(&icmp[ROUTER_ADVERTISEMENT_LEN..], OPTION_SOURCE_LLADDR).is_some()
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

    /// An option of 256 bytes or more is legal (RFC 4861 4.6); pnet's own option reader
    /// overflows on it, which is why the options are walked here.
    #[test]
    fn a_long_option_is_skipped_not_misread() {
        let target = Ipv6Addr::LOCALHOST;
        let mut ns = solicitation(target, CLIENT);
        let mut long = vec![14, 40];
        long.resize(320, 0);
        ns.splice(24..24, long);
        let parsed = Neighbor::parse_solicitation(&ns).expect("parses");
        assert_eq!(parsed.lladdr, Some(CLIENT));
    }

    #[test]
    fn an_arp_header_for_another_protocol_is_refused() {
        let mut frame = ARPING_REQUEST;
        frame[16..18].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(Arp::parse(&frame), None);
        let mut frame = ARPING_REQUEST;
        frame[19] = 16;
        assert_eq!(Arp::parse(&frame), None);
    }

    #[test]
    fn router_advertisements_are_ours_and_frrs() {
        let ours = router_advertisement();
        assert!(is_router_advertisement(&ours));
        assert_eq!(u16::from_be_bytes([ours[6], ours[7]]), 0, "router lifetime");
        // FRR's (zebra) for an unnumbered peer: hop limit 64, lifetime 30 s, a source
        // link-layer address and an MTU option.
        let mut frr = vec![134, 0, 0x12, 0x34, 64, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0];
        frr.extend_from_slice(&[1, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        frr.extend_from_slice(&[5, 1, 0, 0, 0, 0, 0x05, 0xdc]);
        assert!(is_router_advertisement(&frr));
        assert!(!is_router_advertisement(&frr[..15]), "too short");
        let mut bad_code = frr.clone();
        bad_code[1] = 1;
        assert!(!is_router_advertisement(&bad_code));
        let mut zero_option = frr.clone();
        zero_option[17] = 0;
        assert!(
            !is_router_advertisement(&zero_option),
            "a zero-length option"
        );
        assert!(!is_router_advertisement(&solicitation(
            Ipv6Addr::LOCALHOST,
            [1; 6]
        )));
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
            let _ = is_router_advertisement(&bytes);
        }
    }
}

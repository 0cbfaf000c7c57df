//! NLRI prefixes: a length in bits, then as many bytes as that length needs. A hand-written
//! borrowing loop: tighter than nom for the hottest path of a full table.
use super::capability::{AFI_IPV4, AFI_IPV6, Afi};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Reads every prefix of `afi` in `bytes`; `None` when one is malformed (a length past the
/// family's width, or bytes cut short). Bits past the length are ignored, as RFC 4271 says.
pub fn decode_prefixes(afi: Afi, mut bytes: &[u8], out: &mut Vec<IpNet>) -> Option<()> {
    let width: u8 = match afi {
        AFI_IPV4 => 32,
        AFI_IPV6 => 128,
        _ => return None,
    };
    // Room for host routes, the densest common case (one length byte and a full address
    // each), so a full UPDATE fills the vector without growing it.
    out.reserve(bytes.len() / (1 + usize::from(width) / 8));
    while let Some((&len, rest)) = bytes.split_first() {
        if len > width {
            return None;
        }
        let size = usize::from(len).div_ceil(8);
        let body = rest.get(..size)?;
        let net = if width == 32 {
            let mut octets = [0u8; 4];
            octets[..size].copy_from_slice(body);
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(octets), len).ok()?.trunc())
        } else {
            let mut octets = [0u8; 16];
            octets[..size].copy_from_slice(body);
            IpNet::V6(Ipv6Net::new(Ipv6Addr::from(octets), len).ok()?.trunc())
        };
        out.push(net);
        bytes = &rest[size..];
    }
    Some(())
}

/// Appends `net` in NLRI form.
pub fn encode_prefix(net: &IpNet, out: &mut Vec<u8>) {
    let len = net.prefix_len();
    let size = usize::from(len).div_ceil(8);
    out.push(len);
    match net {
        IpNet::V4(n) => out.extend_from_slice(&n.network().octets()[..size]),
        IpNet::V6(n) => out.extend_from_slice(&n.network().octets()[..size]),
    }
}

/// How many bytes `net` takes in NLRI form.
pub fn encoded_len(net: &IpNet) -> usize {
    1 + usize::from(net.prefix_len()).div_ceil(8)
}

pub(crate) fn afi_of(net: &IpNet) -> Afi {
    match net {
        IpNet::V4(_) => AFI_IPV4,
        IpNet::V6(_) => AFI_IPV6,
    }
}

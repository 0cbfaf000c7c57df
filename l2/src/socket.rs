//! Raw sockets for layer 2, async with tokio: an AF_PACKET socket per interface for ARP, and
//! a raw ICMPv6 socket per interface for NDP.
//!
//! socket2 opens both, but has no safe way to build a link-layer address (`sockaddr_ll`) to
//! bind a packet socket to one interface, nor to receive into an initialised buffer with the
//! sender's address; and tokio registers a raw descriptor only through an unsafe call. Those
//! calls are kept here (the only other unsafe call is `memory::release_free_memory`).
#![allow(unsafe_code)]

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// An AF_PACKET socket bound to one interface and one ethertype: it receives whole Ethernet
/// frames of that type arriving on the interface, and sends whole frames out of it.
pub struct PacketSocket {
    fd: AsyncFd<Socket>,
}

impl PacketSocket {
    pub fn open(ifindex: u32, ethertype: u16) -> io::Result<PacketSocket> {
        // Protocol 0 receives nothing until the bind below names the interface and the
        // ethertype together: no frame from another interface can slip in between.
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))?;
        socket.set_nonblocking(true)?;
        let index = i32::try_from(ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value, and the fields we set
        // are the ones packet(7) documents for bind.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as libc::sa_family_t;
        address.sll_protocol = ethertype.to_be();
        address.sll_ifindex = index;
        // SAFETY: the pointer and length describe `address`, which outlives the call.
        let result = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&raw const address).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket {
            fd: register(socket)?,
        })
    }

    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |s| {
                let mut reader: &Socket = s;
                io::Read::read(&mut reader, buf)
            })
            .await
    }

    pub async fn send(&self, frame: &[u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::WRITABLE, |s| s.send(frame))
            .await
    }
}

/// Registers a socket with tokio's reactor.
fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the Socket owns its descriptor, which stays open and the same until the
    // AsyncFd (which owns the Socket) is dropped.
    unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)
}

/// A raw ICMPv6 socket bound to one interface, with hop limit 255 as NDP requires.
pub struct Icmp6Socket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
}

impl Icmp6Socket {
    /// For neighbor discovery: only solicitations and advertisements reach it.
    pub fn open(ifname: &str, ifindex: u32) -> io::Result<Icmp6Socket> {
        Icmp6Socket::open_for(
            ifname,
            ifindex,
            &[NEIGHBOR_SOLICITATION, NEIGHBOR_ADVERTISEMENT],
        )
    }

    /// A socket that receives only the ICMPv6 `types`: the kernel drops every other message
    /// before it reaches us.
    pub fn open_for(ifname: &str, ifindex: u32, types: &[u8]) -> io::Result<Icmp6Socket> {
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        socket.set_nonblocking(true)?;
        set_icmp6_filter(&socket, types)?;
        socket.bind_device(Some(ifname.as_bytes()))?;
        // Messages that arrived from other interfaces before the bind are dropped.
        drain(&socket);
        set_int_option(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
        socket.set_unicast_hops_v6(255)?;
        socket.set_multicast_hops_v6(255)?;
        socket.set_multicast_loop_v6(false)?;
        // Our advertisements come from the address they advertise, as the kernel's own do
        // (some resolvers, ndisc6 among them, ignore others); that address is not configured
        // on the interface, which freebind allows.
        socket.set_freebind_v6(true)?;
        Ok(Icmp6Socket {
            fd: register(socket)?,
            ifindex,
        })
    }

    pub fn join(&self, group: Ipv6Addr) -> io::Result<()> {
        self.fd.get_ref().join_multicast_v6(&group, self.ifindex)
    }

    pub fn leave(&self, group: Ipv6Addr) -> io::Result<()> {
        self.fd.get_ref().leave_multicast_v6(&group, self.ifindex)
    }

    /// One ICMPv6 message sent on this link: its bytes, the sender, and whether its hop limit
    /// was 255 (RFC 4861 7.1: anything less came through a router and must be ignored).
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, Option<Ipv6Addr>, bool)> {
        self.fd
            .async_io(Interest::READABLE, |s| {
                // SAFETY: an initialised `[u8]` is a valid `[MaybeUninit<u8>]`, and recvmsg
                // only writes bytes into it, so it stays initialised.
                let uninit = unsafe {
                    std::slice::from_raw_parts_mut(
                        buf.as_mut_ptr().cast::<MaybeUninit<u8>>(),
                        buf.len(),
                    )
                };
                let mut buffers = [socket2::MaybeUninitSlice::new(uninit)];
                let mut from = SockAddr::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
                let mut control = [MaybeUninit::<u8>::new(0); 64];
                let mut message = socket2::MsgHdrMut::new()
                    .with_addr(&mut from)
                    .with_buffers(&mut buffers)
                    .with_control(&mut control);
                let len = s.recvmsg(&mut message, 0)?;
                let control_len = message.control_len();
                // SAFETY: the control buffer was initialised (zeros) before the call.
                let control: Vec<u8> = control[..control_len.min(control.len())]
                    .iter()
                    .map(|b| unsafe { b.assume_init() })
                    .collect();
                let on_link = hop_limit(&control) == Some(255);
                Ok((len, from.as_socket_ipv6().map(|a| *a.ip()), on_link))
            })
            .await
    }

    /// Sends an ICMPv6 message from `from` (IPV6_PKTINFO) to `to`, out of this interface.
    pub async fn send_from(&self, body: &[u8], from: Ipv6Addr, to: Ipv6Addr) -> io::Result<usize> {
        let address = SockAddr::from(SocketAddrV6::new(to, 0, 0, self.ifindex));
        let control = pktinfo(from, self.ifindex);
        self.fd
            .async_io(Interest::WRITABLE, |s| {
                let buffers = [io::IoSlice::new(body)];
                let message = socket2::MsgHdr::new()
                    .with_addr(&address)
                    .with_buffers(&buffers)
                    .with_control(&control);
                s.sendmsg(&message, 0)
            })
            .await
    }
}

/// An IPV6_PKTINFO control message choosing the source address and interface of a datagram:
/// a `cmsghdr` (length, level, type) followed by an `in6_pktinfo` (address, interface index),
/// padded to the platform's alignment.
fn pktinfo(source: Ipv6Addr, ifindex: u32) -> Vec<u8> {
    let header = std::mem::size_of::<libc::cmsghdr>();
    let data: usize = 16 + 4;
    let align = std::mem::size_of::<usize>();
    let space = header + data.div_ceil(align) * align;
    let mut control = Vec::with_capacity(space);
    control.extend_from_slice(&(header + data).to_ne_bytes());
    control.extend_from_slice(&libc::IPPROTO_IPV6.to_ne_bytes());
    control.extend_from_slice(&libc::IPV6_PKTINFO.to_ne_bytes());
    control.resize(header, 0);
    control.extend_from_slice(&source.octets());
    control.extend_from_slice(&ifindex.to_ne_bytes());
    control.resize(space, 0);
    control
}

const NEIGHBOR_SOLICITATION: u8 = 135;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// `ICMP6_FILTER` from <linux/icmpv6.h> (not in the libc crate).
const ICMP6_FILTER: libc::c_int = 1;

/// Blocks every ICMPv6 type but `allowed` on the socket: `struct icmp6_filter` is 256 bits,
/// a set bit blocks that type.
fn set_icmp6_filter(socket: &Socket, allowed: &[u8]) -> io::Result<()> {
    let mut filter = [u32::MAX; 8];
    for t in allowed {
        filter[usize::from(t >> 5)] &= !(1u32 << (t & 31));
    }
    setsockopt(socket, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &filter)
}

fn set_int_option(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    setsockopt(socket, level, name, &value)
}

fn setsockopt<T>(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, which outlives the call.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads and drops whatever is queued on a non-blocking socket.
fn drain(socket: &Socket) {
    let mut buf = [0u8; 1600];
    let mut reader: &Socket = socket;
    while io::Read::read(&mut reader, &mut buf).is_ok_and(|n| n > 0) {}
}

/// The IPV6_HOPLIMIT value among received control messages: each is a `cmsghdr` (length,
/// level, type) followed by its data, padded to the platform's alignment.
fn hop_limit(control: &[u8]) -> Option<i32> {
    let header = std::mem::size_of::<libc::cmsghdr>();
    let align = std::mem::size_of::<usize>();
    let mut rest = control;
    while rest.len() >= header {
        let len = usize::from_ne_bytes(rest[..align].try_into().ok()?);
        let level = i32::from_ne_bytes(rest[align..align + 4].try_into().ok()?);
        let kind = i32::from_ne_bytes(rest[align + 4..align + 8].try_into().ok()?);
        if len < header || len > rest.len() {
            return None;
        }
        if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_HOPLIMIT && len >= header + 4 {
            return Some(i32::from_ne_bytes(
                rest[header..header + 4].try_into().ok()?,
            ));
        }
        rest = rest.get(len.div_ceil(align) * align..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control message as the kernel lays it out.
    fn cmsg(level: libc::c_int, kind: libc::c_int, data: &[u8]) -> Vec<u8> {
        let header = std::mem::size_of::<libc::cmsghdr>();
        let align = std::mem::size_of::<usize>();
        let mut out = Vec::new();
        out.extend_from_slice(&(header + data.len()).to_ne_bytes());
        out.extend_from_slice(&level.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.resize(header, 0);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(align) * align, 0);
        out
    }

    #[test]
    fn the_hop_limit_is_found_among_control_messages() {
        let mut control = cmsg(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &[0; 20]);
        control.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &255i32.to_ne_bytes(),
        ));
        assert_eq!(hop_limit(&control), Some(255));
        assert_eq!(
            hop_limit(&cmsg(
                libc::IPPROTO_IPV6,
                libc::IPV6_HOPLIMIT,
                &64i32.to_ne_bytes()
            )),
            Some(64)
        );
        assert_eq!(hop_limit(&[]), None);
        // A length pointing past the end is not followed.
        let mut broken = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &255i32.to_ne_bytes(),
        );
        broken[0] = 200;
        assert_eq!(hop_limit(&broken), None);
    }

    #[test]
    fn pktinfo_is_laid_out_as_the_kernel_expects() {
        let control = pktinfo(Ipv6Addr::LOCALHOST, 7);
        let header = std::mem::size_of::<libc::cmsghdr>();
        assert_eq!(control.len() % std::mem::size_of::<usize>(), 0);
        assert_eq!(
            usize::from_ne_bytes(control[..8].try_into().expect("8 bytes")),
            header + 20
        );
        assert_eq!(&control[header..header + 16], &Ipv6Addr::LOCALHOST.octets());
        assert_eq!(&control[header + 16..header + 20], &7u32.to_ne_bytes());
    }
}

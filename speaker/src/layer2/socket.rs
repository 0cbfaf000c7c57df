//! Raw sockets for layer 2, async with tokio: an AF_PACKET socket per interface for ARP, and
//! a raw ICMPv6 socket per interface for NDP.
//!
//! socket2 opens both, but has no safe way to build a link-layer address (`sockaddr_ll`) to
//! bind a packet socket to one interface, nor to receive into an initialised buffer with the
//! sender's address; and tokio registers a raw descriptor only through an unsafe call. Those
//! are the only unsafe code in FerroLB, kept here.
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
        let protocol = i32::from(ethertype.to_be());
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(protocol)))?;
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
    pub fn open(ifname: &str, ifindex: u32) -> io::Result<Icmp6Socket> {
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        socket.set_nonblocking(true)?;
        socket.bind_device(Some(ifname.as_bytes()))?;
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

    /// One ICMPv6 message and the address it came from.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, Option<Ipv6Addr>)> {
        self.fd
            .async_io(Interest::READABLE, |s| {
                // SAFETY: an initialised `[u8]` is a valid `[MaybeUninit<u8>]`, and recv only
                // writes bytes into it, so it stays initialised.
                let uninit = unsafe {
                    std::slice::from_raw_parts_mut(
                        buf.as_mut_ptr().cast::<MaybeUninit<u8>>(),
                        buf.len(),
                    )
                };
                let (len, from) = s.recv_from(uninit)?;
                Ok((len, from.as_socket_ipv6().map(|a| *a.ip())))
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

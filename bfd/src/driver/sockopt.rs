//! What socket2 has no safe call for: receiving a datagram together with the TTL (IPv4) or
//! hop limit (IPv6) it arrived with, and the time it arrived. Single-hop BFD accepts only
//! 255 (RFC 5881 section 5, the GTSM of RFC 5082), multihop BFD its profile's minimumTtl;
//! the kernel's IP_MINTTL guards TCP only, so the check is ours. The arrival time lets the
//! driver read a datagram a few milliseconds late without its detection time moving.
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Asks the kernel to hand each datagram's TTL (hop limit) and arrival time over with it.
pub fn receive_ttl_and_time(socket: &impl AsRawFd, ipv6: bool) -> io::Result<()> {
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVTTL)
    };
    set_int(socket, level, name)?;
    set_int(socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)
}

/// Sets an int socket option to 1.
fn set_int(socket: &impl AsRawFd, level: libc::c_int, name: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the pointer and length describe `on`, an int, which outlives the call.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const on).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A datagram received into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub len: usize,
    pub from: SocketAddr,
    /// None if the kernel did not say, which [`receive_ttl_and_time`] prevents.
    pub ttl: Option<u8>,
    /// When the kernel received it, on the real-time clock (since the Unix epoch); None if
    /// it did not say.
    pub received: Option<Duration>,
}

/// Receives one datagram without waiting.
pub fn recv_datagram(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<Datagram> {
    // SAFETY: all-zero is a valid sockaddr_storage and msghdr (plain C structs).
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast::<libc::c_void>(),
        iov_len: buf.len(),
    };
    // u64s: aligned as a cmsghdr must be.
    let mut control = [0u64; 16];
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&raw mut storage).cast::<libc::c_void>();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast::<libc::c_void>();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points to the live `storage`, `iov` (describing `buf`) and `control`,
    // with their true sizes; the kernel writes within them.
    let received = unsafe { libc::recvmsg(socket.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ttl = None;
    let mut received_at = None;
    // The length a header needs to hold a `T`.
    let holds = |header: &libc::cmsghdr, size: usize| {
        // SAFETY: CMSG_LEN is arithmetic on its argument.
        let needed = unsafe { libc::CMSG_LEN(size as libc::c_uint) } as usize;
        header.cmsg_len >= needed
    };
    // SAFETY: the CMSG_* macros walk the control data the kernel wrote, within
    // `msg_controllen` (and the buffer, zeroed, is larger than what the two options
    // write); each header they return is valid to read, and its data is read only when the
    // header's length covers the int or timespec its level and type say it holds.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            if ((header.cmsg_level == libc::IPPROTO_IP && header.cmsg_type == libc::IP_TTL)
                || (header.cmsg_level == libc::IPPROTO_IPV6
                    && header.cmsg_type == libc::IPV6_HOPLIMIT))
                && holds(header, std::mem::size_of::<libc::c_int>())
            {
                let value = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                ttl = u8::try_from(value).ok();
            } else if header.cmsg_level == libc::SOL_SOCKET
                && header.cmsg_type == libc::SCM_TIMESTAMPNS
                && holds(header, std::mem::size_of::<libc::timespec>())
            {
                let time = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                received_at = u64::try_from(time.tv_sec)
                    .ok()
                    .zip(u32::try_from(time.tv_nsec).ok())
                    .map(|(secs, nanos)| Duration::new(secs, nanos));
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    let from = match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the kernel wrote a sockaddr_in, which fits in the
            // storage; read unaligned to need nothing of its alignment.
            let v4 = unsafe {
                std::ptr::read_unaligned((&raw const storage).cast::<libc::sockaddr_in>())
            };
            SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for a sockaddr_in6.
            let v6 = unsafe {
                std::ptr::read_unaligned((&raw const storage).cast::<libc::sockaddr_in6>())
            };
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            ))
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not an IP sender",
            ));
        }
    };
    Ok(Datagram {
        len: received as usize,
        from,
        ttl,
        received: received_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn a_datagram_comes_with_its_ttl_and_its_arrival_time() {
        let receiver = UdpSocket::bind("127.0.0.1:0").expect("bound");
        receive_ttl_and_time(&receiver, false).expect("options set");
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bound");
        sender.set_ttl(77).expect("a TTL");
        let before = super::super::wall_clock();
        sender
            .send_to(b"bfd", receiver.local_addr().expect("an address"))
            .expect("sent");
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a timeout");
        // Waits (recv_datagram does not): the datagram is there when this returns.
        let mut peek = [0u8; 8];
        receiver.peek(&mut peek).expect("a datagram");
        let mut buf = [0u8; 64];
        let datagram = recv_datagram(&receiver, &mut buf).expect("received");
        let after = super::super::wall_clock();
        assert_eq!(&buf[..datagram.len], b"bfd");
        assert_eq!(datagram.from, sender.local_addr().expect("an address"));
        assert_eq!(datagram.ttl, Some(77));
        let received = datagram.received.expect("an arrival time");
        assert!(
            before <= received && received <= after,
            "{before:?} {received:?} {after:?}"
        );
        // Nothing more: without waiting, that is an error, not a hang.
        assert_eq!(
            recv_datagram(&receiver, &mut buf).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
    }
}

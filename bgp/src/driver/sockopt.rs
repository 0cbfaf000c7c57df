//! Socket options socket2 has no safe call for, the BGP crate's only unsafe code:
//! - TCP MD5 signatures (RFC 2385), which BGP peers use for their `password`: a key for the
//!   peer's address, set with `TCP_MD5SIG` before connecting (or on the listening socket, for
//!   the connections it accepts);
//! - the minimum TTL (hop limit) accepted, for GTSM (RFC 5082): with TTL 255 sent and 255
//!   required, only a directly connected peer can reach the session.
#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// `TCP_MD5SIG` from linux/tcp.h.
const TCP_MD5SIG: libc::c_int = 14;
/// The longest key the kernel takes.
pub const MAX_KEY_LEN: usize = 80;

/// `struct tcp_md5sig` from linux/tcp.h.
#[repr(C, align(8))]
struct TcpMd5Sig {
    addr: [u8; 128],
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: libc::c_int,
    key: [u8; MAX_KEY_LEN],
}

/// Signs everything this socket exchanges with `peer` with `key`.
pub fn set_key(socket: &impl AsRawFd, peer: SocketAddr, key: &[u8]) -> io::Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a TCP MD5 key is at most {MAX_KEY_LEN} bytes"),
        ));
    }
    let address = socket2::SockAddr::from(peer);
    let mut sig = TcpMd5Sig {
        addr: [0; 128],
        flags: 0,
        prefix_len: 0,
        key_len: key.len() as u16,
        ifindex: 0,
        key: [0; MAX_KEY_LEN],
    };
    let len = (address.len() as usize).min(sig.addr.len());
    // SAFETY: `address.as_ptr()` points to `address.len()` initialised bytes of a sockaddr,
    // and we copy at most as many as `sig.addr` holds.
    unsafe {
        std::ptr::copy_nonoverlapping(address.as_ptr().cast::<u8>(), sig.addr.as_mut_ptr(), len);
    }
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: the pointer and length describe `sig`, a `struct tcp_md5sig` laid out as the
    // kernel expects, which outlives the call.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            TCP_MD5SIG,
            (&raw const sig).cast::<libc::c_void>(),
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Drops what arrives with a TTL (IPv4) or hop limit (IPv6) under `min`.
pub fn set_min_ttl(socket: &impl AsRawFd, ipv6: bool, min: u8) -> io::Result<()> {
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT)
    } else {
        (libc::IPPROTO_IP, libc::IP_MINTTL)
    };
    let value = libc::c_int::from(min);
    // SAFETY: the pointer and length describe `value`, an int, which outlives the call.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const value).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_struct_is_laid_out_as_the_kernels() {
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, key_len), 130);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, key), 136);
    }

    #[test]
    fn a_key_is_set_on_a_socket_and_a_long_one_refused() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a socket");
        let peer: SocketAddr = "127.0.0.2:179".parse().expect("an address");
        set_key(&socket, peer, b"secret").expect("the kernel takes the key");
        assert!(set_key(&socket, peer, &[b'x'; 81]).is_err());
        set_min_ttl(&socket, false, 255).expect("the kernel takes a minimum TTL");
    }
}

//! TCP MD5 signatures (RFC 2385), which BGP peers use for their `password`: a key for the
//! peer's address on our socket, set with `TCP_MD5SIG` before connecting (or on the listening
//! socket, for the connections it accepts). socket2 and libc have no safe call for it; this
//! is the BGP crate's only unsafe code.
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
    }
}

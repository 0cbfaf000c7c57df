//! The BFD thread's one way to wait: ppoll(2) on its sockets, until the next deadline.
//!
//! A plain system call rather than an async runtime: each packet in and each packet out
//! wakes the thread, and at 50 ms intervals that is hundreds of wakeups a second, so what a
//! wakeup costs is most of what BFD costs. ppoll rather than poll for its nanosecond
//! timeout: poll's milliseconds would send packets up to a millisecond late.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// At most this many sockets are waited on at once (the wakeup and the four listeners).
pub const MAX_SOCKETS: usize = 8;

/// Waits until one of `sockets` (None: a place kept for one not open) can be read, or
/// `timeout` has passed. Returns which could be read, as bits by their index; 0 for a
/// timeout or a signal.
pub fn wait(sockets: &[Option<BorrowedFd<'_>>], timeout: Duration) -> io::Result<u32> {
    let mut fds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX_SOCKETS];
    let count = sockets.len().min(MAX_SOCKETS);
    // A negative fd is skipped by the kernel.
    for (fd, socket) in fds.iter_mut().zip(sockets) {
        if let Some(socket) = socket {
            fd.fd = socket.as_raw_fd();
            fd.events = libc::POLLIN;
        }
    }
    let timeout = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        // Under 10^9: fits.
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `fds` holds `count` initialised pollfds the kernel may write the revents of;
    // the timespec is alive for the call; no signal mask is passed.
    let ready = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            count as libc::nfds_t,
            &raw const timeout,
            std::ptr::null(),
        )
    };
    if ready < 0 {
        let error = io::Error::last_os_error();
        return if error.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(error)
        };
    }
    // An error or a hangup counts as readable: reading it returns (and clears) the error,
    // rather than the thread waking at once again and again.
    let readable = libc::POLLIN | libc::POLLERR | libc::POLLHUP;
    Ok(fds[..count]
        .iter()
        .enumerate()
        .filter(|(_, fd)| fd.revents & readable != 0)
        .fold(0, |bits, (i, _)| bits | 1 << i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn a_timeout_returns_nothing_ready_after_the_time() {
        let (a, _b) = UnixDatagram::pair().expect("a pair");
        let start = tokio::time::Instant::now();
        let ready = wait(&[Some(a.as_fd())], Duration::from_millis(20)).expect("waits");
        assert_eq!(ready, 0);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn a_readable_socket_is_named_by_its_index() {
        let (a, b) = UnixDatagram::pair().expect("a pair");
        let (c, d) = UnixDatagram::pair().expect("a pair");
        b.send(b"x").expect("sent");
        let ready = wait(
            &[Some(c.as_fd()), None, Some(a.as_fd())],
            Duration::from_secs(5),
        )
        .expect("waits");
        assert_eq!(ready, 0b100);
        drop(d);
    }
}

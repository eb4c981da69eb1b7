//! The listening TCP sockets from the kernel's sock_diag netlink interface
//! (what `ss -tln` asks). Asking for the LISTEN state only, the kernel
//! walks its small listening table and skips the established-connection
//! table, which is the host's (hundreds of thousands of buckets) and which
//! reading /proc/net/tcp walks in full each time.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_LISTEN: u32 = 10;
/// nlmsghdr, and the inet_diag_msg that follows it in an answer.
const HEADER: usize = 16;
const MSG: usize = 72;

/// A sock_diag socket, kept open between rounds.
pub(super) struct Diag {
    fd: OwnedFd,
    seq: u32,
}

impl Diag {
    pub(super) fn open() -> std::io::Result<Diag> {
        // SAFETY: socket(2) with constant arguments; the fd is owned below.
        let fd =
            unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::NETLINK_SOCK_DIAG) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new fd that nothing else owns.
        Ok(Diag { fd: unsafe { OwnedFd::from_raw_fd(fd) }, seq: 0 })
    }

    /// (port, address, socket inode) of every listening TCP socket, IPv4
    /// then IPv6.
    pub(super) fn listening(&mut self) -> std::io::Result<Vec<(u16, String, u64)>> {
        let mut out = Vec::new();
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            self.seq = self.seq.wrapping_add(1);
            self.send(&request(family, self.seq))?;
            self.receive(&mut out)?;
        }
        Ok(out)
    }

    fn send(&self, req: &[u8]) -> std::io::Result<()> {
        // SAFETY: an all-zero sockaddr_nl is valid; nl_pid 0 is the kernel.
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: the buffer and address outlive the call; lengths are theirs.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads the dump's answers until its end.
    fn receive(&self, out: &mut Vec<(u16, String, u64)>) -> std::io::Result<()> {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: recv(2) into a buffer of that length.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if parse_answers(&buf[..n as usize], out)? {
                return Ok(());
            }
        }
    }
}

/// A dump request for one address family's listening TCP sockets
/// (nlmsghdr + inet_diag_req_v2).
fn request(family: u8, seq: u32) -> Vec<u8> {
    let len = HEADER + 56;
    let mut b = Vec::with_capacity(len);
    b.extend((len as u32).to_ne_bytes());
    b.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend(seq.to_ne_bytes());
    b.extend(0u32.to_ne_bytes());
    b.extend([family, libc::IPPROTO_TCP as u8, 0, 0]);
    b.extend((1u32 << TCP_LISTEN).to_ne_bytes());
    b.resize(len, 0);
    b
}

/// Adds the sockets in one datagram of answers to `out`; true once the
/// dump's end is in it.
fn parse_answers(buf: &[u8], out: &mut Vec<(u16, String, u64)>) -> std::io::Result<bool> {
    let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    let mut at = 0;
    while at + HEADER <= buf.len() {
        let len = u32_at(buf, at) as usize;
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if len < HEADER || at + len > buf.len() {
            return Err(std::io::Error::other("sock_diag: a truncated answer"));
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = if len >= HEADER + 4 { u32_at(buf, at + HEADER) as i32 } else { 0 };
                return Err(std::io::Error::from_raw_os_error(-code));
            }
            _ if len >= HEADER + MSG => out.extend(socket_of(&buf[at + HEADER..at + len])),
            _ => {}
        }
        at += (len + 3) & !3;
    }
    Ok(false)
}

/// (port, address, inode) of one inet_diag_msg.
fn socket_of(m: &[u8]) -> Option<(u16, String, u64)> {
    let port = u16::from_be_bytes([m[4], m[5]]);
    let address = match m[0] as i32 {
        libc::AF_INET => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(&m[8..12]).ok()?).to_string(),
        libc::AF_INET6 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&m[8..24]).ok()?).to_string(),
        _ => return None,
    };
    let inode = u32::from_ne_bytes(m[68..72].try_into().ok()?);
    Some((port, address, inode as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One answer message as the kernel writes it.
    fn answer(family: u8, port: u16, addr: &[u8], inode: u32) -> Vec<u8> {
        let mut m = vec![0u8; HEADER + MSG];
        m[..4].copy_from_slice(&((HEADER + MSG) as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        let body = &mut m[HEADER..];
        body[0] = family;
        body[1] = TCP_LISTEN as u8;
        body[4..6].copy_from_slice(&port.to_be_bytes());
        body[8..8 + addr.len()].copy_from_slice(addr);
        body[68..72].copy_from_slice(&inode.to_ne_bytes());
        m
    }

    fn done() -> Vec<u8> {
        let mut m = vec![0u8; HEADER + 4];
        m[..4].copy_from_slice(&((HEADER + 4) as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        m
    }

    #[test]
    fn answers_are_read_until_the_end_of_the_dump() {
        let mut buf = answer(libc::AF_INET as u8, 8080, &[127, 0, 0, 1], 42);
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        buf.extend(answer(libc::AF_INET6 as u8, 3000, &v6, 43));
        let mut out = Vec::new();
        assert!(!parse_answers(&buf, &mut out).unwrap());
        buf.extend(done());
        out.clear();
        assert!(parse_answers(&buf, &mut out).unwrap());
        assert_eq!(out, [(8080, "127.0.0.1".to_string(), 42), (3000, "::1".to_string(), 43)]);
        // A kernel error (here EACCES) is an error, and a cut answer too.
        let mut err = done();
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[HEADER..HEADER + 4].copy_from_slice(&(-libc::EACCES).to_ne_bytes());
        assert_eq!(parse_answers(&err, &mut out).unwrap_err().raw_os_error(), Some(libc::EACCES));
        assert!(parse_answers(&answer(2, 1, &[0; 4], 1)[..40], &mut out).is_err());
    }

    #[test]
    fn the_kernel_reports_a_socket_this_process_listens_on() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut d = Diag::open().unwrap();
        let found = d.listening().unwrap();
        let mine = found.iter().find(|(p, a, _)| *p == port && a == "127.0.0.1");
        assert!(mine.is_some_and(|(_, _, inode)| *inode > 0), "{found:?}");
        // Only listening sockets: a connection to it is not among them.
        let _c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(d.listening().unwrap().iter().filter(|(p, _, _)| *p == port).count(), 1);
    }
}

//! Pseudo-terminals for sessions that ask for one.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

pub fn open(cols: u32, rows: u32) -> std::io::Result<Pty> {
    let mut master = -1;
    let mut slave = -1;
    let ws = winsize(cols, rows);
    // SAFETY: openpty writes two fds; null name and termios are allowed.
    let r = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &ws) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just returned by openpty and are ours.
    Ok(Pty { master: unsafe { OwnedFd::from_raw_fd(master) }, slave: unsafe { OwnedFd::from_raw_fd(slave) } })
}

fn winsize(cols: u32, rows: u32) -> libc::winsize {
    libc::winsize {
        ws_row: rows.clamp(1, u16::MAX as u32) as u16,
        ws_col: cols.clamp(1, u16::MAX as u32) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

pub fn resize(master: &impl AsRawFd, cols: u32, rows: u32) {
    let ws = winsize(cols, rows);
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer.
    unsafe {
        libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
    }
}

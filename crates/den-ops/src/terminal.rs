//! A terminal for a front end other than this process's own (the
//! dashboard's terminal in the browser): a shell in the workspace with a
//! pseudo-terminal, the same path as `den ssh ID` ([`crate::ssh`]: the
//! agent, a stopped workspace started first), its bytes through the
//! caller's channels and its size fed by the caller.

use std::pin::Pin;
use std::task::{Context, Poll};

use den_ssh::client::{Io, Window};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::ssh::{Note, SessionRequest};
use crate::{Ctx, Progress, Result};

/// The terminal's end at the caller.
pub struct Terminal {
    /// Keys and pastes; the shell's input ends when the sender drops.
    pub input: UnboundedReceiver<Vec<u8>>,
    pub output: Box<dyn std::io::Write + Send>,
    pub error: Box<dyn std::io::Write + Send>,
    /// Columns and rows to start with.
    pub size: (u32, u32),
    /// Each new size.
    pub resize: UnboundedReceiver<(u32, u32)>,
    pub note: Note,
}

/// The terminal type the pseudo-terminal is asked with (xterm.js is one).
pub const TERM: &str = "xterm-256color";

/// Runs a login shell in workspace `id` on `term` until it ends; its exit
/// code (255 when the connection ended first, which `note` says).
pub fn terminal(ctx: &Ctx, id: &str, term: Terminal, r: &mut dyn Progress) -> Result<i32> {
    let req = SessionRequest {
        command: None,
        tty: true,
        local_terminal: false,
        user: None,
        workdir: None,
        local: vec![],
        remote: vec![],
        agent_socket: None,
        forward_ports: false,
        note: term.note,
    };
    let io =
        Io { stdin: Box::new(Keys { rx: term.input, pending: Vec::new() }), stdout: term.output, stderr: term.error };
    let window = Window::Fed { term: TERM.into(), size: term.size, changes: term.resize };
    crate::ssh::session_with(ctx, id, &req, io, window, r)
}

/// The caller's keys as the session's input.
struct Keys {
    rx: UnboundedReceiver<Vec<u8>>,
    /// What a read had no room for.
    pending: Vec<u8>,
}

impl tokio::io::AsyncRead for Keys {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pending.is_empty() {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(bytes)) => self.pending = bytes,
                // The caller is gone: end of input.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn keys_arrive_in_order_whatever_the_reads_size_then_end() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tx.send(b"hello ".to_vec()).unwrap();
        tx.send(b"world".to_vec()).unwrap();
        drop(tx);
        let mut keys = Keys { rx, pending: Vec::new() };
        let mut small = [0u8; 4];
        let n = rt.block_on(keys.read(&mut small)).unwrap();
        assert_eq!(&small[..n], b"hell");
        let mut rest = Vec::new();
        rt.block_on(keys.read_to_end(&mut rest)).unwrap();
        assert_eq!(rest, b"o world");
    }
}

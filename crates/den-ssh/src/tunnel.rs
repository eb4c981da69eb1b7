//! The process under a connection: a command (`docker exec`, a provider's
//! command, `kubectl exec`) whose stdin and stdout carry the SSH stream.

use tokio::io::{AsyncReadExt, Join};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// What the tunnel says on stderr that is kept (its first bytes; more is
/// noise).
const STDERR_KEPT: usize = 64 * 1024;

pub struct Tunnel {
    /// Killed when dropped.
    pub child: Child,
    /// Its stdout and stdin, as one stream for the SSH client.
    pub stream: Join<ChildStdout, ChildStdin>,
    /// What it wrote on stderr, once it closed it (its end, or a kill).
    pub stderr: tokio::task::JoinHandle<String>,
}

/// Starts `cmd` with its stdio piped (pipes grown, as for bulk transfers).
pub fn spawn(cmd: std::process::Command) -> std::io::Result<Tunnel> {
    let mut child = tokio::process::Command::from(cmd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let (out, inp) = (child.stdout.take().expect("piped"), child.stdin.take().expect("piped"));
    {
        use std::os::fd::AsRawFd;
        crate::grow_pipe(out.as_raw_fd());
        crate::grow_pipe(inp.as_raw_fd());
    }
    let mut err = child.stderr.take().expect("piped");
    let stderr = tokio::spawn(async move {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = err.read(&mut buf).await {
            if all.len() < STDERR_KEPT {
                all.extend_from_slice(&buf[..n]);
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    Ok(Tunnel { child, stream: tokio::io::join(out, inp), stderr })
}

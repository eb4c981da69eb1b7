//! The byte stream under an SSH session, made so that writing never waits.
//!
//! russh's session loop awaits each write to the transport before it reads
//! again. Over pipes (the tunnel is `docker exec`'s stdin and stdout) whose
//! buffers are smaller than the SSH windows, both ends can end up writing
//! into full pipes at once, each waiting for the other to read: a deadlock
//! (seen with `den ssh ws -- cat < 100MB | cmp`). As OpenSSH does, outgoing
//! bytes go to a buffer in memory that a separate task writes out, so the
//! loop always gets back to reading. The SSH windows bound how much can
//! wait there.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;

/// A stream whose writes complete at once (see the module docs).
pub struct Unblocked {
    incoming: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    offset: usize,
    outgoing: mpsc::UnboundedSender<Option<Vec<u8>>>,
    eof: bool,
}

/// Wraps a stream: a task reads it ahead, another writes what was queued.
pub fn unblocked<S>(stream: S) -> Unblocked
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let (in_tx, in_rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(64);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if in_tx.send(Ok(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = in_tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
    tokio::spawn(async move {
        while let Some(item) = out_rx.recv().await {
            match item {
                Some(mut data) => {
                    // Coalesce what is already queued into one write.
                    while data.len() < 256 * 1024 {
                        match out_rx.try_recv() {
                            Ok(Some(more)) => data.extend_from_slice(&more),
                            Ok(None) => {
                                let _ = w.write_all(&data).await;
                                let _ = w.shutdown().await;
                                return;
                            }
                            Err(_) => break,
                        }
                    }
                    if w.write_all(&data).await.is_err() {
                        break;
                    }
                    let _ = w.flush().await;
                }
                None => {
                    let _ = w.shutdown().await;
                    break;
                }
            }
        }
    });
    Unblocked { incoming: in_rx, current: Vec::new(), offset: 0, outgoing: out_tx, eof: false }
}

impl AsyncRead for Unblocked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        loop {
            if self.offset < self.current.len() {
                let n = (self.current.len() - self.offset).min(buf.remaining());
                let start = self.offset;
                buf.put_slice(&self.current[start..start + n]);
                self.offset += n;
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            match self.incoming.poll_recv(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    self.current = data;
                    self.offset = 0;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => {
                    self.eof = true;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for Unblocked {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.outgoing.send(Some(data.to_vec())) {
            Ok(()) => Poll::Ready(Ok(data.len())),
            Err(_) => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let _ = self.outgoing.send(None);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ends write more than the pipe holds before reading: with plain
    /// pipes this would hang; unblocked it completes.
    #[tokio::test(flavor = "current_thread")]
    async fn both_sides_writing_at_once_do_not_deadlock() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let mut a = unblocked(a);
        let mut b = unblocked(b);
        let payload = vec![7u8; 8 * 1024 * 1024];
        let mut got_a = vec![0u8; payload.len()];
        let mut got_b = vec![0u8; payload.len()];
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            a.write_all(&payload).await.unwrap();
            b.write_all(&payload).await.unwrap();
            a.read_exact(&mut got_a).await.unwrap();
            b.read_exact(&mut got_b).await.unwrap();
        })
        .await
        .expect("no deadlock");
        assert!(got_a == payload && got_b == payload);
    }
}

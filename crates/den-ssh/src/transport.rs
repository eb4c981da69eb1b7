//! The byte stream under an SSH session, made so that writing never waits.
//!
//! russh's session loop awaits each write to the transport before it reads
//! again. Over pipes (the tunnel is `docker exec`'s stdin and stdout) whose
//! buffers are smaller than the SSH windows, both ends can end up writing
//! into full pipes at once, each waiting for the other to read: a deadlock
//! (seen with `den ssh ws -- cat < 100MB | cmp`). As OpenSSH does, den's
//! client puts outgoing bytes in a buffer in memory that a separate task
//! writes out, so its loop always gets back to reading; one end that always
//! reads is enough to break the cycle, so the agent writes directly (its
//! output is the bulk direction, where every extra copy shows). The SSH windows bound how much can
//! wait there. Reads need no such care: they go to the stream directly.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;

/// A stream whose writes complete at once (see the module docs). Reads go
/// straight to the underlying stream.
pub struct Unblocked<S> {
    reader: tokio::io::ReadHalf<S>,
    outgoing: mpsc::UnboundedSender<Option<Vec<u8>>>,
}

/// Wraps a stream: writes are queued for a task that writes them out.
pub fn unblocked<S>(stream: S) -> Unblocked<S>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, mut w) = tokio::io::split(stream);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
    tokio::spawn(async move {
        // What is queued goes out in as few writes as possible: each write
        // into the tunnel costs system calls on both ends of the pipe.
        let mut batch: Vec<u8> = Vec::with_capacity(1 << 20);
        while let Some(first) = out_rx.recv().await {
            let mut close = first.is_none();
            batch.clear();
            if let Some(d) = first {
                batch.extend_from_slice(&d);
                // Let the session loop queue what it has ready.
                tokio::task::yield_now().await;
                while batch.len() < (1 << 20) {
                    match out_rx.try_recv() {
                        Ok(Some(d)) => batch.extend_from_slice(&d),
                        Ok(None) => {
                            close = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            if !batch.is_empty() && w.write_all(&batch).await.is_err() {
                break;
            }
            if close {
                let _ = w.shutdown().await;
                break;
            }
        }
    });
    Unblocked { reader: r, outgoing: out_tx }
}

impl<S: AsyncRead> AsyncRead for Unblocked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl<S> AsyncWrite for Unblocked<S> {
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
    use tokio::io::AsyncReadExt;

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

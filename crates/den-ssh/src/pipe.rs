//! Moving bytes between SSH channels and local files, pipes and sockets.
//!
//! russh delivers a channel's incoming data from its one session loop and
//! waits when the channel's reader is behind; and it re-opens the SSH
//! window as soon as data arrives, not when it is consumed (russh issues
//! #387, #392), so the window cannot hold a fast sender back. If the reader
//! waits on a local write (a program's stdin) that waits on that program's
//! output, which needs the session loop to leave, everything stops: `ssh ws
//! cat < big` would hang. So incoming data goes through a queue that a
//! separate task drains, and the queue pushes back (by blocking) only past
//! a large byte budget, as a guard against running out of memory.

use std::sync::Arc;

use russh::{ChannelMsg, ChannelReadHalf};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};

/// How many bytes of incoming data may wait for a slow local writer.
const QUEUE_BYTES: usize = 512 * 1024 * 1024;

/// What the input side saw besides data.
pub enum Control {
    Eof,
    Close,
    Other(ChannelMsg),
}

/// Reads `rx` until the channel closes: data goes to `writer` (through the
/// queue), everything else to `on_control`. Returns when the channel is
/// closed or gone.
pub async fn drain_into<W, F>(rx: ChannelReadHalf, writer: Option<W>, on_control: F)
where
    W: AsyncWrite + Unpin + Send + 'static,
    F: FnMut(Control),
{
    drain_into_bounded(rx, writer, QUEUE_BYTES, on_control).await
}

/// [`drain_into`] with at most `queue_bytes` waiting for the writer.
pub async fn drain_into_bounded<W, F>(mut rx: ChannelReadHalf, writer: Option<W>, queue_bytes: usize, mut on_control: F)
where
    W: AsyncWrite + Unpin + Send + 'static,
    F: FnMut(Control),
{
    let queue = queue_bytes.max(256 * 1024);
    let budget = Arc::new(Semaphore::new(queue));
    let (qtx, mut qrx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
    let writer_task = writer.map(|mut w| {
        let budget = budget.clone();
        tokio::spawn(async move {
            let mut broken = false;
            while let Some(item) = qrx.recv().await {
                match item {
                    Some(data) => {
                        if !broken && (w.write_all(&data).await.is_err() || w.flush().await.is_err()) {
                            broken = true;
                        }
                        budget.add_permits(data.len().min(queue));
                    }
                    None => {
                        let _ = w.shutdown().await;
                        drop(w);
                        // Keep taking (and dropping) data so the budget never
                        // blocks the input side.
                        while let Some(Some(d)) = qrx.recv().await {
                            budget.add_permits(d.len().min(queue));
                        }
                        break;
                    }
                }
            }
        })
    });
    loop {
        match rx.wait().await {
            Some(ChannelMsg::Data { data }) => {
                if writer_task.is_some() {
                    let n = data.len().min(queue) as u32;
                    if let Ok(p) = budget.acquire_many(n).await {
                        p.forget();
                    }
                    let _ = qtx.send(Some(data.to_vec()));
                }
            }
            Some(ChannelMsg::Eof) => {
                let _ = qtx.send(None);
                on_control(Control::Eof);
            }
            Some(ChannelMsg::Close) | None => {
                let _ = qtx.send(None);
                on_control(Control::Close);
                break;
            }
            Some(other) => on_control(Control::Other(other)),
        }
    }
    drop(qtx);
    if let Some(t) = writer_task {
        let _ = t.await;
    }
}

/// Pipes `io` and `channel` both ways until both directions are closed. EOF
/// on one side becomes EOF (not close) on the other, so half-closed
/// connections keep working.
pub async fn pipe<S, M>(channel: russh::Channel<M>, io: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    M: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    pipe_bounded(channel, io, QUEUE_BYTES).await
}

/// [`pipe`] with at most `queue_bytes` of incoming data waiting for `io`
/// (for a socket, whose reader drains it by itself: a small queue keeps
/// memory small, and a slow reader slows the sender down).
pub async fn pipe_bounded<S, M>(channel: russh::Channel<M>, io: S, queue_bytes: usize)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    M: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    let (rx, tx) = channel.split();
    let tx = Arc::new(tx);
    let (mut r, w) = tokio::io::split(io);
    let out_tx = tx.clone();
    let mut outgoing = tokio::spawn(async move {
        let tx = out_tx;
        // Big reads: each becomes as few full SSH packets as fit, and every
        // packet costs a write through the tunnel and the engine's copies.
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = tx.eof().await;
                    break;
                }
                Ok(n) => {
                    if tx.data_bytes(buf[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    // The channel ends as OpenSSH ends one: when the other side closes it,
    // or once EOF went both ways (its EOF came and ours was sent). Waiting
    // for a close on both sides would keep every finished connection open.
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel();
    let mut eof_tx = Some(eof_tx);
    let mut drain = tokio::spawn(drain_into_bounded(rx, Some(w), queue_bytes, move |c| {
        if let Control::Eof = c {
            if let Some(t) = eof_tx.take() {
                let _ = t.send(());
            }
        }
    }));
    tokio::select! {
        _ = &mut drain => outgoing.abort(),
        Ok(()) = eof_rx => tokio::select! {
            _ = &mut outgoing => {}
            _ = &mut drain => outgoing.abort(),
        },
    }
    let _ = tx.close().await;
}

/// Answers a channel that asks for a TCP connection: connects to
/// `host:port`, accepts and pipes, or rejects when the connection fails.
pub async fn connect_tcp<M>(channel: russh::Channel<M>, reply: crate::ChannelOpenReply<M>, host: &str, port: u16)
where
    M: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    match tokio::net::TcpStream::connect((host, port)).await {
        Ok(tcp) => {
            let _ = tcp.set_nodelay(true);
            reply.accept().await;
            tokio::spawn(pipe(channel, tcp));
        }
        Err(_) => reply.reject(russh::ChannelOpenFailure::ConnectFailed).await,
    }
}

//! `GET /api/workspaces/{id}/terminal`: a websocket to a shell in the
//! workspace with a pseudo-terminal, through the agent as `den ssh ID`
//! goes (den-ops' terminal, on a thread of its own). Binary frames carry
//! the bytes both ways; a text frame `{"resize":[cols,rows]}` resizes;
//! the server ends with `{"exit":N}` (255: the connection ended first)
//! or `{"error":"…"}`, then closes.

use std::io::Write;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::Response;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::server::Shared;

#[derive(Debug, Deserialize)]
pub struct TerminalQuery {
    pub context: Option<String>,
    pub cols: Option<u32>,
    pub rows: Option<u32>,
}

/// What the session's thread sends to the websocket.
#[derive(Debug)]
enum Out {
    Bytes(Vec<u8>),
    Exit(i32),
    Error(String),
}

pub async fn upgrade(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<TerminalQuery>,
    ws: WebSocketUpgrade,
) -> Response<Body> {
    let size = (q.cols.unwrap_or(80).clamp(2, 1000), q.rows.unwrap_or(24).clamp(2, 1000));
    ws.on_upgrade(move |socket| run(app, q.context, id, size, socket)).into_response()
}

/// A resize asked by the page.
pub fn resize_of(text: &str) -> Option<(u32, u32)> {
    #[derive(Deserialize)]
    struct Resize {
        resize: (u32, u32),
    }
    let r: Resize = serde_json::from_str(text).ok()?;
    let (c, r) = r.resize;
    (c > 0 && r > 0 && c <= 1000 && r <= 1000).then_some((c, r))
}

async fn run(app: Shared, context: Option<String>, id: String, size: (u32, u32), mut socket: WebSocket) {
    let ctx = match app.ctx(context.as_deref()) {
        Ok(c) => c,
        Err(e) => return end(&mut socket, Out::Error(den_ops::exit::render(den_ops::exit::causes(&e)))).await,
    };
    let (in_tx, in_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let (size_tx, size_rx) = mpsc::unbounded_channel::<(u32, u32)>();
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(64);
    let thread = std::thread::Builder::new().name(format!("terminal-{id}")).spawn(move || {
        let term = den_ops::terminal::Terminal {
            input: in_rx,
            output: Box::new(Sink(out_tx.clone())),
            error: Box::new(Sink(out_tx.clone())),
            size,
            resize: size_rx,
            note: {
                let tx = out_tx.clone();
                std::sync::Arc::new(move |m: &str| {
                    let _ = tx.blocking_send(Out::Bytes(format!("\r\nden: {m}\r\n").into_bytes()));
                })
            },
        };
        let mut progress = Lines(out_tx.clone());
        let last = match den_ops::terminal::terminal(&ctx, &id, term, &mut progress) {
            Ok(code) => Out::Exit(code),
            Err(e) => Out::Error(den_ops::exit::render(den_ops::exit::causes(&e))),
        };
        let _ = out_tx.blocking_send(last);
    });
    if let Err(e) = thread {
        return end(&mut socket, Out::Error(format!("starting the terminal: {e}"))).await;
    }
    let mut stop = app.shutdown.clone();
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(Out::Bytes(b)) => {
                    if socket.send(Message::Binary(b.into())).await.is_err() {
                        break;
                    }
                }
                Some(last) => return end(&mut socket, last).await,
                None => return end(&mut socket, Out::Exit(255)).await,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(b))) => { let _ = in_tx.send(b.to_vec()); }
                Some(Ok(Message::Text(t))) => {
                    if let Some(s) = resize_of(t.as_str()) {
                        let _ = size_tx.send(s);
                    }
                }
                Some(Ok(_)) => {}
                // The page went away: the shell's input ends.
                Some(Err(_)) | None => break,
            },
            _ = stop.changed() => break,
        }
    }
    // Dropping the senders ends the session's input; its thread ends
    // with the shell.
}

/// The last frame, then the close.
async fn end(socket: &mut WebSocket, last: Out) {
    let doc = match last {
        Out::Exit(n) => json!({ "exit": n }),
        Out::Error(e) => json!({ "error": e }),
        Out::Bytes(_) => return,
    };
    let _ = socket.send(Message::Text(doc.to_string().into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// The session's output, from den-ssh's writer thread.
struct Sink(mpsc::Sender<Out>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.blocking_send(Out::Bytes(buf.to_vec())).map_err(|_| std::io::ErrorKind::BrokenPipe)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A workspace started for the terminal says so in it, as `den ssh` does
/// on stderr.
struct Lines(mpsc::Sender<Out>);

impl Lines {
    fn say(&mut self, text: String) {
        let _ = self.0.blocking_send(Out::Bytes(format!("{}\r\n", text.replace('\n', "\r\n")).into_bytes()));
    }
}

impl den_workspace::Reporter for Lines {
    fn phase(&mut self, name: &str, detail: &str) {
        self.say(if detail.is_empty() { name.to_string() } else { format!("{name}: {detail}") });
    }

    fn line(&mut self, text: &str) {
        self.say(format!("  {text}"));
    }
}

impl den_ops::Progress for Lines {
    fn finish(&mut self) {}

    fn output(&mut self, tag: &str, line: &str) {
        self.say(format!("[{tag}] {line}"));
    }

    fn say(&mut self, text: &str) {
        Lines::say(self, format!("den: {text}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizes_are_read_and_bounded() {
        assert_eq!(resize_of(r#"{"resize":[120,40]}"#), Some((120, 40)));
        assert_eq!(resize_of(r#"{"resize":[0,40]}"#), None);
        assert_eq!(resize_of(r#"{"resize":[99999,40]}"#), None);
        assert_eq!(resize_of("hello"), None);
    }
}

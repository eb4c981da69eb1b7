//! Following the workspaces: `GET /api/events` sends the list at once and
//! again whenever it changes, whoever changed it (this page, another one,
//! a `den` in a shell). While no page follows a context, nothing is
//! watched; while one does, a watcher looks at the records under
//! DEN_HOME every [`TICK`] (a few `stat`s) and follows the container
//! events of each local engine (`docker events`, one process per engine,
//! idle until something happens); on a change it asks the engines (one
//! `docker ps` each), so a change shows within a second. Workspaces
//! without such a stream (machines, pods) are asked for every
//! [`ENGINE_EVERY`] ticks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use serde_json::json;

use crate::api::InContext;
use crate::server::{App, Shared};

pub const TICK: Duration = Duration::from_millis(250);
pub const ENGINE_EVERY: u32 = 3;

/// The latest list of each context a page follows.
#[derive(Default)]
pub struct Watch {
    lists: Mutex<HashMap<String, tokio::sync::watch::Sender<Arc<String>>>>,
}

impl Watch {
    /// Follows `context`'s list, starting its watcher when none runs.
    fn subscribe(&self, app: &Shared, context: &str) -> tokio::sync::watch::Receiver<Arc<String>> {
        let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = lists.get(context) {
            return tx.subscribe();
        }
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(String::new()));
        lists.insert(context.to_string(), tx.clone());
        tokio::spawn(watcher(app.clone(), context.to_string(), tx));
        rx
    }

    fn forget(&self, context: &str) {
        self.lists.lock().unwrap_or_else(|p| p.into_inner()).remove(context);
    }
}

/// A cheap look at what `den` writes: each record file's and lock
/// file's name and mtime in the context.
pub fn fingerprint(home: &den_state::Home, context: &str) -> Vec<(String, Option<SystemTime>)> {
    let mut out = Vec::new();
    let dirs = [home.workspaces_dir(context), home.context_dir(context).join("locks")];
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            out.push((path.display().to_string(), e.metadata().and_then(|m| m.modified()).ok()));
            if path.is_dir() {
                let Ok(inner) = std::fs::read_dir(&path) else { continue };
                for f in inner.flatten() {
                    out.push((f.path().display().to_string(), f.metadata().and_then(|m| m.modified()).ok()));
                }
            }
        }
    }
    out.sort();
    out
}

/// Keeps `tx` holding the context's list while anyone follows it.
async fn watcher(app: Shared, context: String, tx: tokio::sync::watch::Sender<Arc<String>>) {
    let mut ended = app.ops.ended.subscribe();
    let mut stop = app.shutdown.clone();
    let (event_tx, mut events) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut engines = Engines::default();
    let mut last_print = Vec::new();
    let mut tick = 0u32;
    let mut interval = tokio::time::interval(TICK);
    loop {
        let mut forced = tokio::select! {
            _ = interval.tick() => false,
            _ = ended.changed() => true,
            e = events.recv() => e.is_some(),
            _ = stop.changed() => break,
        };
        // A burst of events (kill, die, stop) is one change.
        while events.try_recv().is_ok() {
            forced = true;
        }
        if tx.receiver_count() == 0 {
            break;
        }
        let home = app.opts.home.clone();
        let print = {
            let c = context.clone();
            tokio::task::spawn_blocking(move || fingerprint(&home, &c)).await.unwrap_or_default()
        };
        if print != last_print {
            // Workspaces came or went: follow their engines anew.
            engines = follow_engines(&app, &context, &event_tx).await;
            forced = true;
        }
        let every = if engines.must_poll() { ENGINE_EVERY } else { SAFETY_EVERY };
        let due = forced || tick.is_multiple_of(every);
        tick = tick.wrapping_add(1);
        last_print = print;
        if !due {
            continue;
        }
        let doc = list_text(&app, &context).await;
        tx.send_if_modified(|old| {
            let changed = **old != doc;
            if changed {
                *old = Arc::new(doc);
            }
            changed
        });
    }
    app.watch.forget(&context);
}

/// Ticks between asks of the engines when their events are followed (a
/// safety net: an event stream can miss what its engine does not report).
pub const SAFETY_EVERY: u32 = 40;

/// The event streams of the engines a context's workspaces run on; their
/// processes end when this is dropped.
#[derive(Default)]
struct Engines {
    children: Vec<tokio::process::Child>,
    /// Some workspaces have no stream, or a stream ended: ask the engines.
    poll: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Engines {
    /// The event streams end, and are waited for (no zombie is left).
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        for mut child in std::mem::take(&mut self.children) {
            rt.spawn(async move {
                let _ = child.kill().await;
            });
        }
    }
}

impl Engines {
    fn must_poll(&self) -> bool {
        self.poll.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Starts `docker events` for each local engine of the context; each line
/// it prints sends on `changed`.
async fn follow_engines(app: &Shared, context: &str, changed: &tokio::sync::mpsc::UnboundedSender<()>) -> Engines {
    let poll = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (app, c) = (app.clone(), context.to_string());
    let found = crate::api::blocking(move || Ok(den_workspace::events::engine_events(&app.ctx(Some(&c))?.den)?)).await;
    let Ok(found) = found else { return Engines { children: vec![], poll } };
    let mut children = Vec::new();
    let mut all_started = true;
    for cmd in found.commands {
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
        match cmd.kill_on_drop(true).spawn() {
            Ok(mut child) => {
                if let Some(out) = child.stdout.take() {
                    tokio::spawn(relay_events(out, changed.clone(), poll.clone()));
                }
                children.push(child);
            }
            Err(_) => all_started = false,
        }
    }
    poll.store(!all_started || found.others > 0, std::sync::atomic::Ordering::Relaxed);
    Engines { children, poll }
}

/// Each line of an engine's events is a change; when the stream ends, the
/// engines are polled instead.
async fn relay_events(
    out: tokio::process::ChildStdout,
    changed: tokio::sync::mpsc::UnboundedSender<()>,
    poll: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(out).lines();
    while let Ok(Some(_)) = lines.next_line().await {
        if changed.send(()).is_err() {
            return;
        }
    }
    poll.store(true, std::sync::atomic::Ordering::Relaxed);
}

async fn list_text(app: &Shared, context: &str) -> String {
    let busy = app.ops.busy();
    let (app, context) = (app.clone(), context.to_string());
    let doc = crate::api::blocking(move || {
        let ctx = app.ctx(Some(&context))?;
        crate::api::list_doc(&ctx, &busy)
    })
    .await;
    match doc {
        Ok(v) => v.to_string(),
        Err(e) => crate::api::error_doc(&e).to_string(),
    }
}

/// `GET /api/events?context=C`: `event: workspaces` at once and on every
/// change; a `: ping` comment every 15 s.
pub async fn events(State(app): State<Shared>, Query(q): Query<InContext>) -> Response<Body> {
    let context = match app.ctx(q.context.as_deref()) {
        Ok(ctx) => ctx.den.context,
        Err(e) => return crate::api::error_response(&e),
    };
    let mut rx = app.watch.subscribe(&app, &context);
    let stop = app.shutdown.clone();
    // The first list is sent at once, not after the first tick.
    if rx.borrow().is_empty() {
        let doc = list_text(&app, &context).await;
        rx.borrow_and_update();
        let first = Event::default().event("workspaces").data(doc);
        let rest = list_stream(rx, stop);
        let s = futures_util::StreamExt::chain(futures_util::stream::iter([Ok(first)]), rest);
        return sse(s);
    }
    rx.mark_changed();
    sse(list_stream(rx, stop))
}

fn sse(
    s: impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>> + Send + 'static,
) -> Response<Body> {
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("ping")).into_response()
}

fn list_stream(
    rx: tokio::sync::watch::Receiver<Arc<String>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>> {
    futures_util::stream::unfold((rx, stop), |(mut rx, mut stop)| async move {
        loop {
            tokio::select! {
                r = rx.changed() => r.ok()?,
                _ = stop.changed() => return None,
            }
            let doc = rx.borrow_and_update().clone();
            if !doc.is_empty() {
                return Some((Ok(Event::default().event("workspaces").data(doc.as_str())), (rx, stop)));
            }
        }
    })
}

/// How often a followed log is read again.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// The agent's log as `den logs ID` prints it, then what is added to it,
/// as `line` events.
pub fn follow_log(app: Arc<App>, ctx: den_ops::Ctx, id: String) -> Response<Body> {
    let state = (ctx, id, 0usize, Vec::<String>::new(), app.shutdown.clone(), true);
    let s = futures_util::stream::unfold(state, |(ctx, id, mut sent, mut queue, mut stop, mut first)| async move {
        loop {
            if let Some(line) = queue.pop() {
                let ev = Event::default().event("line").data(json!({ "text": line }).to_string());
                return Some((Ok(ev), (ctx, id, sent, queue, stop, first)));
            }
            if !first {
                tokio::select! {
                    _ = tokio::time::sleep(LOG_EVERY) => {}
                    _ = stop.changed() => return None,
                }
            }
            let (c, i) = (ctx.clone(), id.clone());
            let text = crate::api::blocking(move || Ok(den_workspace::logs(&c.den, &i)?)).await;
            let text = match text {
                Ok(t) => t,
                Err(e) if first => crate::api::error_doc(&e)["error"].as_str().unwrap_or_default().to_string(),
                Err(_) => continue,
            };
            // A log that got shorter started again (a new container).
            if text.len() < sent {
                sent = 0;
            }
            let new = &text[sent..];
            let complete = new.rfind('\n').map(|i| i + 1).unwrap_or(if first { new.len() } else { 0 });
            queue = new[..complete].lines().rev().map(String::from).collect();
            sent += complete;
            first = false;
        }
    });
    sse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_changes_with_a_record_and_not_without() {
        let d = tempfile::tempdir().unwrap();
        let home = den_state::Home::at(d.path());
        let ws = home.workspace_dir("default", "w");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join("workspace.json"), "{}").unwrap();
        let a = fingerprint(&home, "default");
        assert_eq!(a, fingerprint(&home, "default"));
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(ws.join("workspace.json"), "{\"x\":1}").unwrap();
        assert_ne!(a, fingerprint(&home, "default"));
        std::fs::remove_dir_all(&ws).unwrap();
        assert!(fingerprint(&home, "default").is_empty());
    }
}

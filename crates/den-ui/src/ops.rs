//! Operations the page starts: each runs on a thread of its own calling
//! the den-ops function the CLI calls (same locks, same records), and
//! tells what it does to a [`Recorder`] whose events a page can follow
//! (`GET /api/ops/{op}/events`) from the start, whenever it connects.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Response, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use den_ops::{Ctx, OpsError};

use crate::server::{App, Shared};

/// What an operation told, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum OpEvent {
    Phase { name: String, detail: String },
    Line { text: String },
    Done { ok: bool, exit: i32, error: Option<String> },
}

impl OpEvent {
    pub fn sse_name(&self) -> &'static str {
        match self {
            OpEvent::Phase { .. } => "phase",
            OpEvent::Line { .. } => "line",
            OpEvent::Done { .. } => "done",
        }
    }

    pub fn data(&self) -> Value {
        match self {
            OpEvent::Phase { name, detail } => json!({ "name": name, "detail": detail }),
            OpEvent::Line { text } => json!({ "text": text }),
            OpEvent::Done { ok, exit, error } => json!({ "ok": ok, "exit": exit, "error": error }),
        }
    }
}

/// No operation keeps more lines than this (the first ones are kept,
/// then the last: a build's log can be long).
const MAX_EVENTS: usize = 20_000;

/// One operation's events; followers wait on `changed`.
pub struct Op {
    pub id: String,
    /// (context, workspace id) it works on.
    pub on: (String, String),
    events: Mutex<Vec<OpEvent>>,
    changed: tokio::sync::watch::Sender<usize>,
}

impl Op {
    fn new(id: String, on: (String, String)) -> Op {
        Op { id, on, events: Mutex::new(Vec::new()), changed: tokio::sync::watch::channel(0).0 }
    }

    pub fn push(&self, e: OpEvent) {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.len() >= MAX_EVENTS && !matches!(e, OpEvent::Done { .. }) {
            // Keep the start; drop from the middle.
            events.remove(MAX_EVENTS / 2);
        }
        events.push(e);
        let n = events.len();
        drop(events);
        self.changed.send_replace(n);
    }

    /// Events from `from` on.
    pub fn since(&self, from: usize) -> Vec<OpEvent> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events.get(from..).map(<[OpEvent]>::to_vec).unwrap_or_default()
    }

    pub fn is_done(&self) -> bool {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).last().is_some_and(|e| matches!(e, OpEvent::Done { .. }))
    }
}

/// The operations of this server, the last [`KEEP`] of them.
#[derive(Default)]
pub struct Ops {
    next: AtomicU64,
    all: Mutex<VecDeque<Arc<Op>>>,
    /// Counts operations that ended: the workspace list refreshes.
    pub ended: tokio::sync::watch::Sender<u64>,
}

const KEEP: usize = 100;

impl Ops {
    fn add(&self, on: (String, String)) -> Arc<Op> {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let op = Arc::new(Op::new(format!("op-{n}"), on));
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() >= KEEP {
            if let Some(i) = all.iter().position(|o| o.is_done()) {
                all.remove(i);
            }
        }
        all.push_back(op.clone());
        op
    }

    pub fn get(&self, id: &str) -> Option<Arc<Op>> {
        self.all.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|o| o.id == id).cloned()
    }

    /// (context, workspace) of the operations still running.
    pub fn busy(&self) -> Vec<(String, String)> {
        let all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().filter(|o| !o.is_done()).map(|o| o.on.clone()).collect()
    }

    /// At shutdown: followers see the end of each operation's stream.
    pub fn end_all(&self) {
        let all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        for op in all.iter() {
            op.changed.send_replace(usize::MAX);
        }
    }
}

/// Where an operation's progress goes: its [`Op`]'s events, worded as
/// the CLI prints them.
pub struct Recorder(pub Arc<Op>);

impl den_workspace::Reporter for Recorder {
    fn phase(&mut self, name: &str, detail: &str) {
        self.0.push(OpEvent::Phase { name: name.into(), detail: detail.into() });
    }

    fn line(&mut self, text: &str) {
        self.0.push(OpEvent::Line { text: format!("  {text}") });
    }
}

impl den_ops::Progress for Recorder {
    fn finish(&mut self) {}

    fn output(&mut self, tag: &str, line: &str) {
        self.0.push(OpEvent::Line { text: format!("[{tag}] {line}") });
    }

    fn say(&mut self, text: &str) {
        self.0.push(OpEvent::Line { text: format!("den: {text}") });
    }
}

/// The end of an operation, as the CLI would end: its message and exit
/// code.
pub fn done_event(result: &Result<Option<String>, OpsError>) -> OpEvent {
    match result {
        Ok(_) => OpEvent::Done { ok: true, exit: 0, error: None },
        Err(e) => {
            let doc = crate::api::error_doc(e);
            OpEvent::Done {
                ok: false,
                exit: doc["exit"].as_i64().unwrap_or(1) as i32,
                error: doc["error"].as_str().map(String::from),
            }
        }
    }
}

/// Starts `work` on a thread of its own; the operation's id. `work`
/// returns a last line to show (what the CLI prints when it succeeds).
pub(crate) fn spawn(
    app: &Shared,
    ctx: Ctx,
    id: &str,
    work: impl FnOnce(&Ctx, &mut Recorder) -> Result<Option<String>, OpsError> + Send + 'static,
) -> Result<String, OpsError> {
    let op = app.ops.add((ctx.den.context.clone(), id.to_string()));
    let app = app.clone();
    let name = op.id.clone();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let mut rec = Recorder(op.clone());
            let result = work(&ctx, &mut rec);
            if let Ok(Some(last)) = &result {
                op.push(OpEvent::Line { text: last.clone() });
            }
            op.push(done_event(&result));
            app.ops.ended.send_modify(|n| *n += 1);
        })
        .map_err(OpsError::io("starting an operation"))?;
    Ok(name)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionBody {
    pub context: Option<String>,
    pub force: bool,
    pub ide: Option<String>,
}

/// `up`, `stop`, `delete`, `open` on workspace `id`.
pub fn start_action(app: &Shared, id: &str, action: &str, body: ActionBody) -> Result<String, OpsError> {
    let ctx = app.ctx(body.context.as_deref())?;
    let wid = id.to_string();
    match action {
        "up" => spawn(app, ctx, id, move |ctx, r| {
            let rec = den_workspace::WorkspaceRecord::load(&ctx.den, &wid)?
                .ok_or_else(|| den_workspace::WorkspaceError::NotFound(wid.clone()))?;
            let rec = den_ops::restart(ctx, &rec, r)?;
            Ok(Some(den_ops::workspace::summary(&rec)))
        }),
        "stop" => spawn(app, ctx, id, move |ctx, r| den_ops::stop(ctx, &wid, r).map(|()| None)),
        "delete" => spawn(app, ctx, id, move |ctx, r| den_ops::delete(ctx, &wid, body.force, r).map(|()| None)),
        "open" => spawn(app, ctx, id, move |ctx, r| {
            let opened = den_ops::ide::open(ctx, &wid, body.ide.as_deref(), &[], r)?;
            Ok(crate::create::opened_line(opened))
        }),
        other => Err(OpsError::BadInput(format!("`{other}` is not an operation (up, stop, delete, open)"))),
    }
}

pub use crate::create::{start_create, CreateBody};

/// `GET /api/ops/{op}/events`: every event so far, then the new ones,
/// until `done`.
pub async fn events(State(app): State<Shared>, Path(op): Path<String>) -> Response<Body> {
    let Some(op) = app.ops.get(&op) else {
        return crate::server::text(StatusCode::NOT_FOUND, "no such operation");
    };
    Sse::new(follow(op, app.clone())).keep_alive(KeepAlive::default()).into_response()
}

fn follow(op: Arc<Op>, app: Arc<App>) -> impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>> {
    let changed = op.changed.subscribe();
    let state = (op, changed, app.shutdown.clone(), 0usize, VecDeque::<OpEvent>::new(), false);
    futures_util::stream::unfold(state, |(op, mut changed, mut stop, mut seen, mut queue, mut ended)| async move {
        loop {
            if let Some(e) = queue.pop_front() {
                ended = matches!(e, OpEvent::Done { .. });
                let ev = Event::default().event(e.sse_name()).data(e.data().to_string());
                return Some((Ok(ev), (op, changed, stop, seen, queue, ended)));
            }
            if ended || *stop.borrow() {
                return None;
            }
            let new = op.since(seen);
            if !new.is_empty() {
                seen += new.len();
                queue.extend(new);
                continue;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return None },
                _ = stop.changed() => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use den_ops::Progress;
    use den_workspace::Reporter;

    #[test]
    fn progress_is_recorded_as_the_cli_words_it_and_replayed() {
        let op = Arc::new(Op::new("op-1".into(), ("default".into(), "w".into())));
        let mut rec = Recorder(op.clone());
        rec.phase("build", "step 1");
        rec.line("hook output");
        rec.output("dotfiles", "installed");
        rec.say("warning: x");
        let all = op.since(0);
        assert_eq!(all[0], OpEvent::Phase { name: "build".into(), detail: "step 1".into() });
        let lines: Vec<_> = all[1..].iter().map(|e| e.data()["text"].as_str().unwrap().to_string()).collect();
        assert_eq!(lines, ["  hook output", "[dotfiles] installed", "den: warning: x"]);
        assert_eq!(op.since(3).len(), 1);
        assert!(op.since(9).is_empty());
        assert!(!op.is_done());
        op.push(done_event(&Err(OpsError::from(den_workspace::WorkspaceError::NotFound("w".into())))));
        assert!(op.is_done());
        let done = op.since(4).pop().unwrap();
        assert_eq!(done.sse_name(), "done");
        assert_eq!(done.data()["exit"], 4);
        assert_eq!(done.data()["ok"], false);
    }

    #[test]
    fn a_long_operation_keeps_its_start_and_its_end() {
        let op = Op::new("op-1".into(), ("c".into(), "w".into()));
        for i in 0..MAX_EVENTS + 10 {
            op.push(OpEvent::Line { text: i.to_string() });
        }
        op.push(done_event(&Ok(None)));
        let all = op.since(0);
        assert_eq!(all.len(), MAX_EVENTS + 1);
        assert_eq!(all[0], OpEvent::Line { text: "0".into() });
        assert_eq!(all[MAX_EVENTS - 1], OpEvent::Line { text: (MAX_EVENTS + 9).to_string() });
        assert_eq!(all[MAX_EVENTS].data()["ok"], true);
    }

    #[tokio::test]
    async fn a_follower_gets_the_past_then_the_rest_then_the_end() {
        use futures_util::StreamExt;
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let op = Arc::new(Op::new("op-1".into(), ("c".into(), "w".into())));
        op.push(OpEvent::Line { text: "before".into() });
        let changed = op.changed.subscribe();
        let _ = changed;
        let app = test_app(stop);
        let mut s = Box::pin(follow(op.clone(), app));
        assert!(s.next().await.is_some());
        op.push(OpEvent::Line { text: "after".into() });
        op.push(done_event(&Ok(None)));
        assert!(s.next().await.is_some());
        assert!(s.next().await.is_some());
        assert!(s.next().await.is_none(), "the stream ends after done");
    }

    fn test_app(stop: tokio::sync::watch::Receiver<bool>) -> Arc<App> {
        Arc::new(App {
            guard: crate::guard::Guard { port: 1, token: "t".into() },
            opts: crate::Options {
                home: den_state::Home::at("/nonexistent"),
                context: None,
                exe: "/bin/false".into(),
                env: vec![],
                port: None,
                ssh_config: None,
            },
            ops: Ops::default(),
            watch: crate::watch::Watch::default(),
            shutdown: stop,
        })
    }
}

//! The server: the listener on 127.0.0.1, the routes, the one middleware
//! every route (the websocket upgrade included) sits behind, and the end
//! on SIGINT/SIGTERM.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use axum::middleware::Next;
use axum::routing::{get, post};
use axum::Router;

use crate::guard::{Admitted, Guard, Seen};
use crate::{instance, Options, Result, UiError};

/// What every handler shares.
pub struct App {
    pub guard: Guard,
    pub opts: Options,
    pub ops: crate::ops::Ops,
    pub watch: crate::watch::Watch,
    /// Ends the long-lived streams (SSE, terminals) at shutdown.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

pub type Shared = Arc<App>;

impl App {
    /// den's state and what an operation needs, in `context` (`None`:
    /// the one the server started in).
    pub fn ctx(&self, context: Option<&str>) -> Result<den_ops::Ctx, den_ops::OpsError> {
        let context = context.filter(|c| !c.is_empty()).or(self.opts.context.as_deref());
        let den = den_workspace::Den::open(self.opts.home.clone(), context)?;
        Ok(den_ops::Ctx { den, exe: self.opts.exe.clone(), env: self.opts.env.clone() })
    }
}

pub async fn run(opts: Options, ready: impl FnOnce(&str)) -> Result<()> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], opts.port.unwrap_or(0)));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(UiError::io(format!("listening on {addr}")))?;
    let port = listener.local_addr().map_err(UiError::io("reading the listener's address"))?.port();
    let token = crate::guard::new_token().map_err(UiError::io("making the token"))?;
    let url = format!("http://127.0.0.1:{port}/?token={token}");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let app = Arc::new(App {
        guard: Guard { port, token },
        ops: crate::ops::Ops::default(),
        watch: crate::watch::Watch::default(),
        shutdown: stop_rx,
        opts,
    });
    let _claimed =
        instance::claim(app.opts.home.root(), &instance::Instance { pid: std::process::id(), port, url: url.clone() })?;
    ready(&url);
    let signals = async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    };
    axum::serve(listener, router(app.clone()))
        .with_graceful_shutdown(signals)
        .await
        .map_err(UiError::io("serving the dashboard"))?;
    app.ops.end_all();
    end_operations(&app).await;
    Ok(())
}

/// Operations still running at the end: the programs they run (docker,
/// git) get the SIGINT a Ctrl-C in the terminal gives a job, when den ui
/// leads its process group (the forwarders it started have sessions of
/// their own); then the operations get a moment to let go of their locks.
async fn end_operations(app: &App) {
    if app.ops.busy().is_empty() {
        return;
    }
    // SAFETY: getpgrp and getpid only read; kill(0, …) signals our own
    // group, whose SIGINT this process handles (tokio's handler).
    unsafe {
        if libc::getpgrp() == libc::getpid() {
            libc::kill(0, libc::SIGINT);
        }
    }
    let start = std::time::Instant::now();
    while !app.ops.busy().is_empty() && start.elapsed() < std::time::Duration::from_secs(5) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(crate::assets::index))
        .route("/assets/{*name}", get(crate::assets::asset))
        .route("/api/contexts", get(crate::api::contexts))
        .route("/api/providers", get(crate::api::providers))
        .route("/api/ides", get(crate::api::ides))
        .route("/api/workspaces", get(crate::api::workspaces).post(crate::api::create))
        .route("/api/events", get(crate::watch::events))
        .route("/api/workspaces/{id}/{action}", post(crate::api::action))
        .route("/api/workspaces/{id}/log", get(crate::api::log))
        .route("/api/workspaces/{id}/terminal", get(crate::terminal::upgrade))
        .route("/api/ops/{op}/events", get(crate::ops::events))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

async fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "not found")
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// The checks, before any route; the security headers on every answer.
async fn guard(State(app): State<Shared>, req: Request, next: Next) -> Response<Body> {
    let verdict = app.guard.check(&seen(&req));
    let first_load = req.method() == Method::GET && req.uri().path() == "/";
    let api = req.uri().path().starts_with("/api/");
    let mut resp = match verdict {
        Err(denied) => text(StatusCode::FORBIDDEN, denied.text()),
        // The first load: the token goes into the cookie and out of the
        // address bar. Not a 303: a redirect continues the navigation
        // that brought the browser here, and when that came from another
        // site (den's redirect page is a file: URL) a SameSite=Strict
        // cookie is not sent on it. The page's own refresh is same-site.
        Ok(Admitted::Query) if first_load => {
            let mut r = Response::new(Body::from(FIRST_LOAD));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            if let Ok(v) = HeaderValue::from_str(&app.guard.set_cookie()) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(_) => next.run(req).await,
    };
    if api {
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    secure(resp.headers_mut());
    resp
}

fn seen(req: &Request) -> Seen<'_> {
    let h = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    Seen {
        method: req.method().as_str(),
        query: req.uri().query(),
        host: h("host"),
        origin: h("origin"),
        cookie: h("cookie"),
        x_den: h("x-den"),
    }
}

/// What `/?token=T` answers with its cookie: on to `/`.
const FIRST_LOAD: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url=/\"><title>den</title></head><body><p><a href=\"/\">Open the dashboard</a></p></body></html>\n";

const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

fn secure(h: &mut axum::http::HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

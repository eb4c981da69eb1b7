//! The JSON API: contexts, providers, IDEs, the workspace list, and the
//! operations (each started at once, its progress in `ops`). Errors are
//! `{"error": "what den would print", "exit": N}`, N being the exit code
//! the CLI would end with.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use den_ops::{Ctx, OpsError};
use den_workspace::{Den, DenConfig, WorkspaceRecord};

use crate::server::Shared;

#[derive(Debug, Default, Deserialize)]
pub struct InContext {
    pub context: Option<String>,
}

pub fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An operation's error as the CLI prints it, with its exit code.
pub fn error_doc(e: &OpsError) -> Value {
    let causes = den_ops::exit::causes(e);
    json!({ "error": den_ops::exit::render(causes.clone()), "exit": den_ops::exit::code_for(causes) })
}

pub fn error_response(e: &OpsError) -> Response<Body> {
    let status = match den_ops::exit::code_for(den_ops::exit::causes(e)) {
        den_ops::exit::NOT_FOUND => StatusCode::NOT_FOUND,
        _ if matches!(e, OpsError::BadInput(_)) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json_response(status, &error_doc(e))
}

/// Runs `f` (which may call engines and block) off the server's thread.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OpsError> + Send + 'static,
) -> Result<T, OpsError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(OpsError::Failed(format!("the request failed: {e}"))))
}

/// `f`'s document (or its error) as the answer; `f` runs off the
/// server's thread.
async fn answer(f: impl FnOnce() -> Result<Value, OpsError> + Send + 'static) -> Response<Body> {
    match blocking(f).await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => error_response(&e),
    }
}

pub async fn contexts(State(app): State<Shared>) -> Response<Body> {
    let opts = app.opts.clone();
    answer(move || {
        let den = Den::open_any(opts.home.clone(), opts.context.as_deref())?;
        let contexts = den_workspace::context::list(&den)?;
        Ok(json!({ "current": den.context, "contexts": contexts }))
    })
    .await
}

pub async fn providers(State(app): State<Shared>, Query(q): Query<InContext>) -> Response<Body> {
    answer(move || {
        let ctx = app.ctx(q.context.as_deref())?;
        let names: Vec<String> = den_workspace::providers::list(&ctx.den)?.into_iter().map(|p| p.name).collect();
        let default = den_workspace::providers::default_provider(&ctx.den).ok();
        Ok(json!({ "default": default, "providers": names }))
    })
    .await
}

pub async fn ides(State(app): State<Shared>, Query(q): Query<InContext>) -> Response<Body> {
    answer(move || {
        let ctx = app.ctx(q.context.as_deref())?;
        let default = default_ide(&ctx.den)?.unwrap_or_else(|| "none".into());
        let ides: Vec<Value> = den_ide::all().iter().map(|i| json!({ "name": i.name, "label": i.title })).collect();
        Ok(json!({ "default": default, "ides": ides }))
    })
    .await
}

fn default_ide(den: &Den) -> Result<Option<String>, OpsError> {
    Ok(DenConfig::load(&den.home).map_err(OpsError::from)?.default_ide.get(&den.context).cloned())
}

pub async fn workspaces(State(app): State<Shared>, Query(q): Query<InContext>) -> Response<Body> {
    let busy = app.ops.busy();
    answer(move || {
        let ctx = app.ctx(q.context.as_deref())?;
        list_doc(&ctx, &busy)
    })
    .await
}

/// `GET /api/workspaces`'s document: every workspace of the context with
/// its status (`Busy` while an operation of this server works on it).
pub fn list_doc(ctx: &Ctx, busy: &[(String, String)]) -> Result<Value, OpsError> {
    let den = &ctx.den;
    let ide = default_ide(den)?;
    let now = now_secs();
    let rows: Vec<Value> = den_workspace::list(den)?
        .into_iter()
        .map(|s| {
            let rec = WorkspaceRecord::load(den, &s.id).ok().flatten();
            let mut status = s.status.to_string();
            if busy.iter().any(|(c, id)| *c == den.context && *id == s.id) {
                status = "Busy".into();
            }
            let ports = if s.status == den_workspace::Status::Running { ports_of(ctx, &s.id) } else { vec![] };
            let created = rec.as_ref().map(|r| r.created_at).unwrap_or(0);
            json!({
                "id": s.id,
                "status": status,
                "source": source_of(&s),
                "provider": s.provider,
                "machine": rec.as_ref().and_then(|r| r.machine.clone()),
                "ide": ide,
                "created": rfc3339(created),
                "age": age(now.saturating_sub(created)),
                "ports": ports,
                "problem": s.problem,
            })
        })
        .collect();
    Ok(json!({ "context": den.context, "workspaces": rows }))
}

fn source_of(s: &den_workspace::WorkspaceSummary) -> Value {
    match &s.source {
        Some(src) => {
            let reference = [&src.reference, &src.commit].into_iter().find(|r| !r.is_empty());
            json!({ "kind": src.kind, "text": src.url, "ref": reference })
        }
        None => json!({ "kind": "folder", "text": s.local_folder, "ref": null }),
    }
}

/// What the workspace's forwarder holds, as links.
fn ports_of(ctx: &Ctx, id: &str) -> Vec<Value> {
    let Ok(report) = den_ops::ports::list(ctx, id) else { return vec![] };
    report
        .ports
        .iter()
        .filter(|p| !p.local.is_empty())
        .map(|p| {
            let label = (!p.label.is_empty()).then(|| p.label.clone());
            json!({ "port": p.port, "local": p.local, "url": format!("http://{}/", p.local), "label": label })
        })
        .collect()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `3h`, `2d`: the largest unit that fits.
pub fn age(secs: u64) -> String {
    match secs {
        // Not by the second: the list would change (and be sent) each one.
        s if s < 60 => "<1m".into(),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Seconds since the epoch as RFC 3339 in UTC.
pub fn rfc3339(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// `POST /api/workspaces/{id}/up|stop|delete|open`.
pub async fn action(
    State(app): State<Shared>,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response<Body> {
    match parse_body(&body).and_then(|req| crate::ops::start_action(&app, &id, &action, req)) {
        Ok(op) => json_response(StatusCode::ACCEPTED, &json!({ "op": op })),
        Err(e) => error_response(&e),
    }
}

/// `POST /api/workspaces`: a new workspace.
pub async fn create(State(app): State<Shared>, body: axum::body::Bytes) -> Response<Body> {
    match parse_body(&body).and_then(|req| crate::ops::start_create(&app, req)) {
        Ok(op) => json_response(StatusCode::ACCEPTED, &json!({ "op": op })),
        Err(e) => error_response(&e),
    }
}

/// A JSON body (an empty one is `{}`).
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, OpsError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}" as &[u8] } else { body };
    serde_json::from_slice(body)
        .map_err(|e| OpsError::BadInput(format!("the request's body is not what this route takes: {e}")))
}

/// `GET /api/workspaces/{id}/log`: the agent's log, then what it adds.
pub async fn log(State(app): State<Shared>, Path(id): Path<String>, Query(q): Query<InContext>) -> Response<Body> {
    let ctx = match app.ctx(q.context.as_deref()) {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    crate::watch::follow_log(app, ctx, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dates_and_ages() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_937_800), "2025-12-05T12:30:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!((age(59), age(61), age(7200), age(200_000)), ("<1m".into(), "1m".into(), "2h".into(), "2d".into()));
    }

    #[test]
    fn errors_say_what_the_cli_says_with_its_code() {
        let e = OpsError::from(den_workspace::WorkspaceError::NotFound("w".into()));
        let doc = error_doc(&e);
        assert_eq!(doc["exit"], 4);
        assert_eq!(doc["error"], e.to_string());
        assert_eq!(error_response(&e).status(), StatusCode::NOT_FOUND);
    }
}

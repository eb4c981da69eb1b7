//! The page and its scripts, embedded at build time (build.rs): every
//! file under assets/. `/assets/NAME` is `assets/NAME`, else
//! `assets/vendor/NAME` (the vendored xterm.js).

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderValue, Response, StatusCode};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

fn find(name: &str) -> Option<&'static [u8]> {
    let get = |n: &str| embedded::FILES.iter().find(|(f, _)| *f == n).map(|(_, b)| *b);
    get(name).or_else(|| get(&format!("vendor/{name}")))
}

fn mime(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

fn serve(name: &str) -> Response<Body> {
    let Some(bytes) = find(name) else {
        return crate::server::text(StatusCode::NOT_FOUND, "no such file");
    };
    let mut r = Response::new(Body::from(bytes));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(name)));
    r
}

pub async fn index() -> Response<Body> {
    serve("index.html")
}

pub async fn asset(Path(name): Path<String>) -> Response<Body> {
    if name.contains("..") {
        return crate::server::text(StatusCode::NOT_FOUND, "no such file");
    }
    serve(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_at_the_top_then_in_vendor() {
        assert!(find("index.html").is_some());
        assert_eq!(find("xterm.js"), find("vendor/xterm.js"));
        assert!(find("nothing.js").is_none());
        assert_eq!(mime("a.js"), "text/javascript; charset=utf-8");
    }
}

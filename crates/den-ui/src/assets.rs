//! The page and its scripts, embedded at build time (build.rs): every
//! file under assets/, the larger ones gzipped. `/assets/NAME` is
//! `assets/NAME`, else `assets/vendor/NAME` (the vendored xterm.js).

use std::io::Read;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// An embedded file: its bytes, and whether they are gzipped.
fn find(name: &str) -> Option<(&'static [u8], bool)> {
    let get = |n: &str| embedded::FILES.iter().find(|(f, _, _)| *f == n).map(|(_, b, gz)| (*b, *gz));
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

fn takes_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.split(';').next().is_some_and(|c| c.trim().eq_ignore_ascii_case("gzip")))
}

/// The file as the client takes it: gzipped as stored, or unpacked.
fn body(bytes: &'static [u8], gzipped: bool, gzip_ok: bool) -> (Body, bool) {
    if !gzipped || gzip_ok {
        return (Body::from(bytes), gzipped);
    }
    let mut plain = Vec::new();
    match flate2::read::GzDecoder::new(bytes).read_to_end(&mut plain) {
        Ok(_) => (Body::from(plain), false),
        Err(_) => (Body::empty(), false),
    }
}

fn serve(name: &str, headers: &HeaderMap) -> Response<Body> {
    let Some((bytes, gzipped)) = find(name) else {
        return crate::server::text(StatusCode::NOT_FOUND, "no such file");
    };
    let (body, encoded) = body(bytes, gzipped, takes_gzip(headers));
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(name)));
    if encoded {
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    r
}

pub async fn index(headers: HeaderMap) -> Response<Body> {
    serve("index.html", &headers)
}

pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response<Body> {
    if name.contains("..") {
        return crate::server::text(StatusCode::NOT_FOUND, "no such file");
    }
    serve(&name, &headers)
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

    #[test]
    fn large_files_are_stored_gzipped_and_unpacked_for_clients_without_gzip() {
        let (bytes, gzipped) = find("xterm.js").unwrap();
        assert!(gzipped, "xterm.js compresses well");
        let plain = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/vendor/xterm.js")).unwrap();
        assert!(bytes.len() * 2 < plain.len());
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut unpacked).unwrap();
        assert_eq!(unpacked, plain);
        let mut h = HeaderMap::new();
        assert!(!takes_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br, GZIP;q=0.8"));
        assert!(takes_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("x-gzip2"));
        assert!(!takes_gzip(&h));
    }
}

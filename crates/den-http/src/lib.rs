//! den's one HTTP client, for registries (Features) and for providers
//! (manifests and binaries), with one set of rules:
//!
//! - https with the platform-independent rustls roots; plain http only to a
//!   loopback host (`localhost`, `127.0.0.0/8`, `[::1]`), as the devcontainer
//!   CLI allows for local registries;
//! - redirects of GET and HEAD are followed (at most [`MAX_REDIRECTS`]), each
//!   hop under the same rule, and never from https down to http;
//! - an `Authorization` header goes only to the origin (scheme, host, port)
//!   of the URL asked for, never to a host a redirect leads to.

use std::io::Read;
use std::time::Duration;

pub use ureq::Response;
use url::Url;

/// Redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("`{url}` is not a valid URL: {message}")]
    BadUrl { url: String, message: String },
    #[error("{url}: {message}")]
    Refused { url: String, message: String },
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: the answer is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
}

impl HttpError {
    /// The server answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, HttpError::Status { status: 404, .. })
    }
}

pub type Result<T, E = HttpError> = std::result::Result<T, E>;

/// A request: method, URL, headers, an optional body and credentials.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, String)],
    pub body: Option<&'a [u8]>,
    /// The `Authorization` value, sent to the URL's own origin only.
    pub auth: Option<&'a str>,
}

impl<'a> Request<'a> {
    pub fn get(url: &'a str) -> Self {
        Request { method: "GET", url, headers: &[], body: None, auth: None }
    }
}

/// The client. Cheap to clone (connections are pooled and shared).
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses a URL den may fetch: https, or http to a loopback host.
pub fn checked_url(url: &str) -> Result<Url> {
    let parsed = Url::parse(url).map_err(|e| HttpError::BadUrl { url: url.into(), message: e.to_string() })?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => Err(HttpError::Refused {
            url: url.into(),
            message: "plain http is used only for loopback hosts; use https".into(),
        }),
        other => {
            Err(HttpError::Refused { url: url.into(), message: format!("den fetches http(s) only, not {other}:") })
        }
    }
}

/// Where a redirect from `from` may lead: a URL [`checked_url`] accepts,
/// and never from https to http.
pub fn redirect_target(from: &Url, location: &str) -> Result<Url> {
    let to = from.join(location).map_err(|e| HttpError::Refused {
        url: from.to_string(),
        message: format!("redirects to `{location}`, which is not a valid URL: {e}"),
    })?;
    if from.scheme() == "https" && to.scheme() != "https" {
        return Err(HttpError::Refused {
            url: from.to_string(),
            message: format!("redirects from https to {to}; den does not follow a redirect down to plain http"),
        });
    }
    checked_url(to.as_str()).map_err(|e| HttpError::Refused {
        url: from.to_string(),
        message: format!("redirects to {to}, which den does not fetch: {e}"),
    })
}

/// A path relative to a URL (a binary beside the provider.yaml), made
/// absolute; [`checked_url`] holds for the result.
pub fn join(base: &str, relative: &str) -> Result<String> {
    let base = checked_url(base)?;
    let joined = base
        .join(relative)
        .map_err(|e| HttpError::BadUrl { url: relative.into(), message: format!("relative to {base}: {e}") })?;
    checked_url(joined.as_str()).map(String::from)
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// Reads an answer's body, refusing one larger than `limit` bytes.
pub fn read_limited(resp: Response, limit: u64, url: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    resp.into_reader()
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| HttpError::Unreachable { url: url.to_string(), message: format!("reading the answer: {e}") })?;
    if out.len() as u64 > limit {
        return Err(HttpError::TooLarge { url: url.into(), limit });
    }
    Ok(out)
}

impl Http {
    pub fn new() -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            // Redirects are followed here, under den's rules.
            .redirects(0)
            .user_agent(concat!("den/", env!("CARGO_PKG_VERSION")))
            .build();
        Http { agent }
    }

    fn send_once(&self, req: &Request<'_>, url: &Url, auth: bool) -> Result<std::result::Result<Response, Response>> {
        let mut r = self.agent.request_url(req.method, url);
        for (k, v) in req.headers {
            r = r.set(k, v);
        }
        if let (true, Some(a)) = (auth, req.auth) {
            r = r.set("Authorization", a);
        }
        let res = match req.body {
            Some(b) => r.send_bytes(b),
            None => r.call(),
        };
        match res {
            Ok(resp) => Ok(Ok(resp)),
            Err(ureq::Error::Status(_, resp)) => Ok(Err(resp)),
            Err(ureq::Error::Transport(t)) => {
                Err(HttpError::Unreachable { url: url.to_string(), message: t.to_string() })
            }
        }
    }

    /// Sends a request under den's rules (see the crate's comment). `Ok(Ok)`
    /// is a success (or a redirect den does not follow: methods other than
    /// GET and HEAD), `Ok(Err)` an answer of 400 or more.
    pub fn send(&self, req: &Request<'_>) -> Result<std::result::Result<Response, Response>> {
        let first = checked_url(req.url)?;
        let follows = matches!(req.method, "GET" | "HEAD");
        let mut url = first.clone();
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.send_once(req, &url, same_origin(&url, &first))?;
            let location = match &resp {
                Ok(r) if follows && matches!(r.status(), 301 | 302 | 303 | 307 | 308) => r.header("location"),
                _ => None,
            };
            let Some(location) = location else { return Ok(resp) };
            url = redirect_target(&url, location)?;
        }
        Err(HttpError::Refused { url: req.url.into(), message: format!("more than {MAX_REDIRECTS} redirects") })
    }

    /// GETs a URL's body (at most `limit` bytes); an answer of 400 or more
    /// is an error naming the URL and the status.
    pub fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>> {
        match self.send(&Request::get(url))? {
            Ok(resp) => read_limited(resp, limit, url),
            Err(resp) => Err(HttpError::Status { url: url.into(), status: resp.status() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A loopback server answering `n` requests with `answer(path, headers)`
    /// and handing back what it was asked.
    fn serve(
        n: usize,
        answer: impl Fn(&str) -> String + Send + 'static,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..n {
                let (s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                let mut s = s;
                s.write_all(answer(&path).as_bytes()).unwrap();
                seen.push(head);
            }
            seen
        });
        (base, h)
    }

    fn ok(body: &str) -> String {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
    }

    fn moved(to: &str) -> String {
        format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for good in ["https://example.com/x", "http://127.0.0.1:8/x", "http://localhost/x", "http://[::1]:5/x"] {
            checked_url(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        let e = checked_url("http://example.com/x").unwrap_err().to_string();
        assert!(e.contains("plain http is used only for loopback hosts"), "{e}");
        assert!(checked_url("ftp://example.com/x").unwrap_err().to_string().contains("http(s) only"));
        assert!(checked_url("no url").unwrap_err().to_string().contains("is not a valid URL"));
    }

    #[test]
    fn relative_paths_join_their_base() {
        let base = "http://127.0.0.1:9/o/r/releases/download/v1/provider.yaml";
        assert_eq!(join(base, "tool.tgz").unwrap(), "http://127.0.0.1:9/o/r/releases/download/v1/tool.tgz");
        assert_eq!(join(base, "../v2/t").unwrap(), "http://127.0.0.1:9/o/r/releases/download/v2/t");
        assert!(join("https://example.com/p.yaml", "http://example.com/x").is_err());
    }

    #[test]
    fn no_redirect_down_to_http() {
        let from = Url::parse("https://github.com/o/r/releases/latest/download/provider.yaml").unwrap();
        let e = redirect_target(&from, "http://127.0.0.1:9/provider.yaml").unwrap_err().to_string();
        assert!(e.contains("does not follow a redirect down to plain http"), "{e}");
        let e = redirect_target(&from, "http://example.com/p").unwrap_err().to_string();
        assert!(e.contains("down to plain http"), "{e}");
        let to = redirect_target(&from, "/o/r/releases/download/v1/provider.yaml").unwrap();
        assert_eq!(to.as_str(), "https://github.com/o/r/releases/download/v1/provider.yaml");
        let local = Url::parse("http://127.0.0.1:9/a/b").unwrap();
        let e = redirect_target(&local, "http://example.com/p").unwrap_err().to_string();
        assert!(e.contains("plain http is used only for loopback"), "{e}");
    }

    /// A redirect is followed; credentials go to the origin asked, not to
    /// the other server the redirect leads to.
    #[test]
    fn redirects_drop_credentials_across_origins() {
        let (other, other_seen) = serve(1, |_| ok("there"));
        let (base, seen) =
            serve(2, move |path| if path == "/start" { moved("/same") } else { moved(&format!("{other}/elsewhere")) });
        let http = Http::new();
        let url = format!("{base}/start");
        let req = Request { auth: Some("Bearer secret"), ..Request::get(&url) };
        let resp = http.send(&req).unwrap().unwrap();
        assert_eq!(resp.into_string().unwrap(), "there");
        let seen = seen.join().unwrap();
        assert!(seen.iter().all(|h| h.contains("Bearer secret")), "{seen:?}");
        let other_seen = other_seen.join().unwrap();
        assert!(!other_seen[0].to_ascii_lowercase().contains("authorization"), "{other_seen:?}");
    }

    #[test]
    fn status_and_size_limits_name_the_url() {
        let (base, h) = serve(2, |path| {
            if path == "/big" {
                ok(&"x".repeat(100))
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            }
        });
        let http = Http::new();
        let e = http.get(&format!("{base}/missing"), 10).unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), format!("{base}/missing: the server answered 404"));
        let e = http.get(&format!("{base}/big"), 10).unwrap_err().to_string();
        assert!(e.contains("larger than 10 bytes"), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn redirect_loops_end() {
        let (base, h) = serve(MAX_REDIRECTS + 1, |_| moved("/again"));
        let e = Http::new().get(&format!("{base}/again"), 10).unwrap_err().to_string();
        assert!(e.contains("more than 5 redirects"), "{e}");
        h.join().unwrap();
    }
}

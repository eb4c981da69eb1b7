//! Who may talk to the dashboard: the checks every request passes before
//! any route sees it (websocket upgrades included). Pure functions over
//! the request's method, URI and headers, so they are tested alone.
//!
//! - `Host` must name the loopback address or `localhost` with the
//!   server's port: a page on another site that rebinds its own name to
//!   127.0.0.1 (DNS rebinding) sends its own name, and is refused.
//! - `Origin`, when sent, must be the dashboard's own: no other site's
//!   page may call it (browsers send Origin on every cross-site POST and
//!   on websocket handshakes).
//! - The token: the cookie (after the first load), or `?token=` (the URL
//!   den prints). Compared in constant time.
//! - State-changing requests also carry `X-Den: 1`, which a plain form
//!   post from another site cannot set.

/// The cookie that carries the token after the first load.
pub const COOKIE: &str = "den_ui";

/// What the guard knows: the server's port and its token.
#[derive(Debug, Clone)]
pub struct Guard {
    pub port: u16,
    pub token: String,
}

/// The parts of a request the guard looks at.
#[derive(Debug, Default, Clone)]
pub struct Seen<'a> {
    pub method: &'a str,
    /// The query string (without `?`).
    pub query: Option<&'a str>,
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub x_den: Option<&'a str>,
}

/// Why a request was refused (the 403's text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Host,
    Origin,
    Token,
    Header,
}

impl Denied {
    pub fn text(&self) -> &'static str {
        match self {
            Denied::Host => "forbidden: the Host header is not this dashboard's (127.0.0.1 or localhost with its port)",
            Denied::Origin => "forbidden: the request comes from another site",
            Denied::Token => "forbidden: no valid token (open the URL `den ui` printed)",
            Denied::Header => "forbidden: a request that changes something must carry the header X-Den: 1",
        }
    }
}

/// How the token came, when it was valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// In the cookie.
    Cookie,
    /// In the query (`?token=`): the first load, which sets the cookie.
    Query,
}

impl Guard {
    /// Admits or refuses a request.
    pub fn check(&self, req: &Seen<'_>) -> Result<Admitted, Denied> {
        if !req.host.is_some_and(|h| self.is_own_host(h)) {
            return Err(Denied::Host);
        }
        if let Some(o) = req.origin {
            if !self.is_own_origin(o) {
                return Err(Denied::Origin);
            }
        }
        let how = if req.cookie.and_then(|c| cookie_value(c, COOKIE)).is_some_and(|t| self.is_token(t)) {
            Admitted::Cookie
        } else if req.query.and_then(|q| query_value(q, "token")).is_some_and(|t| self.is_token(&t)) {
            Admitted::Query
        } else {
            return Err(Denied::Token);
        };
        if !matches!(req.method, "GET" | "HEAD" | "OPTIONS") && req.x_den != Some("1") {
            return Err(Denied::Header);
        }
        Ok(how)
    }

    /// `127.0.0.1:PORT` or `localhost:PORT`, the port exact.
    pub fn is_own_host(&self, host: &str) -> bool {
        let Some((name, port)) = host.rsplit_once(':') else { return false };
        matches!(name.to_ascii_lowercase().as_str(), "127.0.0.1" | "localhost") && port == self.port.to_string()
    }

    /// `http://` and an own host, nothing after it.
    pub fn is_own_origin(&self, origin: &str) -> bool {
        origin.strip_prefix("http://").is_some_and(|h| self.is_own_host(h))
    }

    fn is_token(&self, given: &str) -> bool {
        constant_time_eq(given.as_bytes(), self.token.as_bytes())
    }

    /// The cookie the first load sets.
    pub fn set_cookie(&self) -> String {
        format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", self.token)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in a `Cookie:` header (`a=1; b=2`).
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim())
}

/// The (percent-decoded) value of `name` in a query string.
pub fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| percent_decode(v))
}

/// `%XX` and `+` decoded; a malformed escape is kept as it is.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = || std::str::from_utf8(b.get(i + 1..i + 3)?).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex()) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A new token: 32 random bytes from the kernel, as hex.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: writes at most the rest of `bytes`.
        let n = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
            continue;
        }
        filled += n as usize;
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard { port: 4242, token: "a".repeat(64) }
    }

    fn ok<'a>() -> Seen<'a> {
        Seen { method: "GET", host: Some("127.0.0.1:4242"), ..Default::default() }
    }

    fn cookie() -> String {
        format!("other=1; den_ui={}", "a".repeat(64))
    }

    #[test]
    fn the_token_comes_in_the_cookie_or_the_query() {
        let g = guard();
        let c = cookie();
        assert_eq!(g.check(&Seen { cookie: Some(&c), ..ok() }), Ok(Admitted::Cookie));
        let q = format!("x=1&token={}", "a".repeat(64));
        assert_eq!(g.check(&Seen { query: Some(&q), ..ok() }), Ok(Admitted::Query));
        assert_eq!(g.check(&ok()), Err(Denied::Token));
        assert_eq!(g.check(&Seen { cookie: Some("den_ui=aaaa"), ..ok() }), Err(Denied::Token));
        assert_eq!(g.check(&Seen { query: Some("token="), ..ok() }), Err(Denied::Token));
        let wrong = format!("den_ui={}b", "a".repeat(63));
        assert_eq!(g.check(&Seen { cookie: Some(&wrong), ..ok() }), Err(Denied::Token));
    }

    #[test]
    fn only_the_loopback_host_with_the_port_passes() {
        let g = guard();
        let c = cookie();
        for host in ["127.0.0.1:4242", "localhost:4242", "LOCALHOST:4242"] {
            assert!(g.check(&Seen { host: Some(host), cookie: Some(&c), ..ok() }).is_ok(), "{host}");
        }
        for host in ["evil.example:4242", "127.0.0.1:4243", "127.0.0.1", "localhost", "127.0.0.1:4242.evil", ""] {
            assert_eq!(g.check(&Seen { host: Some(host), cookie: Some(&c), ..ok() }), Err(Denied::Host), "{host}");
        }
        assert_eq!(g.check(&Seen { host: None, cookie: Some(&c), ..ok() }), Err(Denied::Host));
    }

    #[test]
    fn a_foreign_origin_is_refused_an_own_one_or_none_passes() {
        let g = guard();
        let c = cookie();
        for origin in ["http://127.0.0.1:4242", "http://localhost:4242"] {
            assert!(g.check(&Seen { origin: Some(origin), cookie: Some(&c), ..ok() }).is_ok(), "{origin}");
        }
        for origin in ["https://127.0.0.1:4242", "http://evil.example", "null", "http://localhost:4243", ""] {
            let seen = Seen { origin: Some(origin), cookie: Some(&c), ..ok() };
            assert_eq!(g.check(&seen), Err(Denied::Origin), "{origin}");
        }
    }

    #[test]
    fn changes_need_the_header() {
        let g = guard();
        let c = cookie();
        let post = Seen { method: "POST", cookie: Some(&c), ..ok() };
        assert_eq!(g.check(&post), Err(Denied::Header));
        assert_eq!(g.check(&Seen { x_den: Some("1"), ..post.clone() }), Ok(Admitted::Cookie));
        assert_eq!(g.check(&Seen { method: "DELETE", x_den: Some("yes"), ..post }), Err(Denied::Header));
    }

    #[test]
    fn cookies_and_queries_are_parsed() {
        assert_eq!(cookie_value("a=1; den_ui=xyz ;b=2", "den_ui"), Some("xyz"));
        assert_eq!(cookie_value("xden_ui=1", "den_ui"), None);
        assert_eq!(query_value("a=%2Fw+x&b=2", "a").as_deref(), Some("/w x"));
        assert_eq!(query_value("a=%zz", "a").as_deref(), Some("%zz"));
        assert_eq!(query_value("a", "a"), None);
    }

    #[test]
    fn tokens_are_new_each_time() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

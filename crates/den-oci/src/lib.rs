//! A client of the OCI distribution API, for artifacts that are not images
//! (dev container Features): manifests, blobs and tags, pulled and pushed,
//! with the registry's auth flows (anonymous and credentialed bearer tokens,
//! basic auth) and the client's docker credentials.
//!
//! Plain http is used only for loopback registries (`localhost:PORT`,
//! `127.0.0.1:PORT`), as the devcontainer CLI does; everything else is https.
//! Requests go through den's one HTTP client ([`den_http`]), which holds the
//! TLS, redirect and credential rules.

pub mod credentials;
mod reference;

use std::collections::HashMap;
use std::sync::Mutex;

use den_http::{HttpError, Response};

pub use reference::Reference;

/// The manifest media type den pushes and asks for first.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest read (they are a few hundred bytes).
const MAX_MANIFEST: u64 = 4 << 20;
/// Largest blob read into memory.
pub const MAX_BLOB: u64 = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("`{0}` is not a valid OCI reference: {1}")]
    BadReference(String, String),
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{registry}: {message}")]
    Auth { registry: String, message: String },
    #[error("{url}: the registry answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status { url: String, status: u16, body: String },
    #[error("{url}: {message}")]
    Invalid { url: String, message: String },
    /// What den's HTTP rules refused (a URL, a redirect, a size).
    #[error(transparent)]
    Http(HttpError),
}

impl From<HttpError> for OciError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Unreachable { url, message } => OciError::Unreachable { url, message },
            HttpError::Status { url, status } => OciError::Status { url, status, body: String::new() },
            other => OciError::Http(other),
        }
    }
}

impl OciError {
    /// The registry does not have what was asked for.
    pub fn is_not_found(&self) -> bool {
        matches!(self, OciError::Status { status: 404, .. })
    }
}

pub type Result<T, E = OciError> = std::result::Result<T, E>;

/// A manifest as fetched: its bytes, its digest and its parsed form.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: String,
    pub bytes: Vec<u8>,
    pub json: serde_json::Value,
}

impl Manifest {
    /// The manifest's layers: (media type, digest, size).
    pub fn layers(&self) -> Vec<(String, String, u64)> {
        self.json
            .get("layers")
            .and_then(|l| l.as_array())
            .map(|l| {
                l.iter()
                    .map(|x| {
                        let s = |k: &str| x.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                        (s("mediaType"), s("digest"), x.get("size").and_then(|v| v.as_u64()).unwrap_or(0))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An annotation of the manifest.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.json.get("annotations")?.get(key)?.as_str()
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(bytes);
    format!("sha256:{}", h.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

type Login = Box<dyn Fn(&str) -> Option<(String, String)> + Send + Sync>;

/// A registry client. Tokens are kept per registry and scope for the
/// client's lifetime.
pub struct Client {
    http: den_http::Http,
    login: Login,
    tokens: Mutex<HashMap<(String, String), String>>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new(Box::new(credentials::login))
    }
}

/// What a 401 asked for.
enum Challenge {
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
    Basic,
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    // key="value" pairs separated by commas; values may hold commas
    // (scope="repository:a:pull,push").
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let Some((key, after)) = s.split_once('=') else { break };
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_string());
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

/// Whether den may ask `realm` for a token (with the registry's
/// credentials): over https, or over plain http when the token service and
/// the registry are both on loopback.
fn realm_allowed(realm: &str, registry_loopback: bool) -> bool {
    den_http::checked_url(realm).is_ok_and(|u| u.scheme() == "https" || registry_loopback)
}

fn basic(user: &str, secret: &str) -> String {
    use base64ct::Encoding;
    format!("Basic {}", base64ct::Base64::encode_string(format!("{user}:{secret}").as_bytes()))
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const COMPONENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn percent(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

fn read_limited(resp: Response, limit: u64, url: &str) -> Result<Vec<u8>> {
    Ok(den_http::read_limited(resp, limit, url)?)
}

/// A request to send: method, headers and body.
struct Req<'a> {
    method: &'a str,
    url: String,
    headers: Vec<(&'a str, String)>,
    body: Option<&'a [u8]>,
}

impl Client {
    /// A client that asks `login(registry_host)` for credentials when a
    /// registry wants them.
    pub fn new(login: Login) -> Self {
        Client { http: den_http::Http::new(), login, tokens: Mutex::new(HashMap::new()) }
    }

    fn send(&self, r: &Req<'_>, auth: Option<&str>) -> Result<std::result::Result<Response, Response>> {
        let req = den_http::Request { method: r.method, url: &r.url, headers: &r.headers, body: r.body, auth };
        Ok(self.http.send(&req)?)
    }

    /// Sends a request, answering the registry's auth challenge once (also
    /// when a kept token has expired). Credentials go only to the
    /// registry's own origin: an upload `Location` elsewhere gets none.
    fn request(&self, r: &Reference, req: Req<'_>, push: bool) -> Result<Response> {
        let scope = format!("repository:{}:{}", r.repository, if push { "pull,push" } else { "pull" });
        let key = (r.registry.clone(), scope.clone());
        let own_origin = req.url.starts_with(&format!("{}/", r.origin()));
        if !own_origin {
            return self.send(&req, None)?.map_err(|resp| self.status_error(&req.url, resp));
        }
        let cached = self.tokens.lock().expect("token cache").get(&key).cloned();
        let first = self.send(&req, cached.as_deref())?;
        let failed = match first {
            Ok(resp) => return Ok(resp),
            Err(resp) if resp.status() == 401 => {
                self.tokens.lock().expect("token cache").remove(&key);
                resp
            }
            Err(resp) => return Err(self.status_error(&req.url, resp)),
        };
        let challenge = failed.header("www-authenticate").and_then(parse_challenge);
        let auth = match challenge {
            Some(Challenge::Basic) => match (self.login)(&r.registry) {
                Some((u, s)) => basic(&u, &s),
                None => {
                    return Err(OciError::Auth {
                        registry: r.registry.clone(),
                        message: format!(
                        "the registry wants a user name and password; none is stored for it (run `docker login {}`)",
                        r.registry
                    ),
                    })
                }
            },
            Some(Challenge::Bearer { realm, service, scope: asked }) => {
                // A push needs both actions, whatever the first (HEAD)
                // request's challenge asked for.
                let scope = if push { scope } else { asked.unwrap_or(scope) };
                if !realm_allowed(&realm, r.is_loopback()) {
                    return Err(OciError::Auth {
                        registry: r.registry.clone(),
                        message: format!(
                            "the token service {realm} is not https; den sends credentials over plain http only between loopback addresses"
                        ),
                    });
                }
                self.token(r, &realm, service.as_deref(), &scope)?
            }
            None => return Err(self.status_error(&req.url, failed)),
        };
        self.tokens.lock().expect("token cache").insert(key, auth.clone());
        match self.send(&req, Some(&auth))? {
            Ok(resp) => Ok(resp),
            Err(resp) if resp.status() == 401 || resp.status() == 403 => Err(OciError::Auth {
                registry: r.registry.clone(),
                message: format!(
                    "access to {} was refused ({}){}",
                    r.repository,
                    resp.status(),
                    if (self.login)(&r.registry).is_some() {
                        " with the stored credentials"
                    } else {
                        "; no credentials are stored for this registry (docker login)"
                    }
                ),
            }),
            Err(resp) => Err(self.status_error(&req.url, resp)),
        }
    }

    /// A bearer token from the registry's token service: with the stored
    /// credentials when there are any, anonymous otherwise.
    fn token(&self, r: &Reference, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let mut url = format!("{realm}{}scope={}", if realm.contains('?') { "&" } else { "?" }, percent(scope));
        if let Some(s) = service {
            url.push_str(&format!("&service={}", percent(s)));
        }
        let login = (self.login)(&r.registry).map(|(u, s)| basic(&u, &s));
        let req = den_http::Request { auth: login.as_deref(), ..den_http::Request::get(&url) };
        let resp = match self.http.send(&req) {
            Ok(Ok(resp)) => resp,
            Ok(Err(resp)) => {
                let code = resp.status();
                let body = resp.into_string().unwrap_or_default();
                return Err(OciError::Auth {
                    registry: r.registry.clone(),
                    message: format!("the token service at {realm} answered {code}: {}", body.trim()),
                });
            }
            Err(HttpError::Unreachable { message, .. }) => {
                return Err(OciError::Unreachable { url: realm.to_string(), message })
            }
            Err(e) => return Err(OciError::Auth { registry: r.registry.clone(), message: e.to_string() }),
        };
        let body = read_limited(resp, 1 << 20, realm)?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| OciError::Invalid { url: realm.to_string(), message: format!("token answer: {e}") })?;
        let token =
            v.get("token").or_else(|| v.get("access_token")).and_then(|t| t.as_str()).ok_or_else(|| {
                OciError::Invalid { url: realm.to_string(), message: "the answer holds no token".into() }
            })?;
        Ok(format!("Bearer {token}"))
    }

    fn status_error(&self, url: &str, resp: Response) -> OciError {
        let status = resp.status();
        let body = resp.into_string().unwrap_or_default();
        // Registries answer JSON `{"errors":[{"code","message"}]}`.
        let body = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let e = v.get("errors")?.as_array()?.first()?.clone();
                Some(format!(
                    "{} {}",
                    e.get("code").and_then(|c| c.as_str()).unwrap_or(""),
                    e.get("message").and_then(|c| c.as_str()).unwrap_or("")
                ))
            })
            .unwrap_or_else(|| body.chars().take(300).collect());
        OciError::Status { url: url.to_string(), status, body: body.trim().to_string() }
    }

    /// The manifest a reference names (its tag or digest); a digest
    /// reference is checked against the bytes.
    pub fn manifest(&self, r: &Reference) -> Result<Manifest> {
        let url = format!("{}/manifests/{}", r.api_base(), r.target());
        let req = Req { method: "GET", url: url.clone(), headers: vec![("Accept", ACCEPT.into())], body: None };
        let resp = self.request(r, req, false)?;
        let bytes = read_limited(resp, MAX_MANIFEST, &url)?;
        let digest = sha256_digest(&bytes);
        if let Some(want) = &r.digest {
            if *want != digest {
                return Err(OciError::Invalid {
                    url,
                    message: format!("the manifest's digest is {digest}, not the {want} asked for"),
                });
            }
        }
        let json = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::Invalid { url: url.clone(), message: format!("the manifest is not JSON: {e}") })?;
        Ok(Manifest { digest, bytes, json })
    }

    /// A blob, checked against its digest.
    pub fn blob(&self, r: &Reference, digest: &str) -> Result<Vec<u8>> {
        let url = format!("{}/blobs/{digest}", r.api_base());
        let req = Req { method: "GET", url: url.clone(), headers: vec![], body: None };
        let resp = self.request(r, req, false)?;
        let bytes = read_limited(resp, MAX_BLOB, &url)?;
        let got = sha256_digest(&bytes);
        if got != digest {
            return Err(OciError::Invalid { url, message: format!("the blob's digest is {got}, not {digest}") });
        }
        Ok(bytes)
    }

    /// The repository's tags.
    pub fn tags(&self, r: &Reference) -> Result<Vec<String>> {
        let url = format!("{}/tags/list?n=1000", r.api_base());
        let req = Req { method: "GET", url: url.clone(), headers: vec![], body: None };
        let resp = self.request(r, req, false)?;
        let bytes = read_limited(resp, MAX_MANIFEST, &url)?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::Invalid { url: url.clone(), message: format!("the tag list is not JSON: {e}") })?;
        Ok(v.get("tags")
            .and_then(|t| t.as_array())
            .map(|t| t.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default())
    }

    /// Uploads a blob (unless the registry has it) and returns its digest.
    pub fn push_blob(&self, r: &Reference, bytes: &[u8]) -> Result<String> {
        let digest = sha256_digest(bytes);
        let head = Req { method: "HEAD", url: format!("{}/blobs/{digest}", r.api_base()), headers: vec![], body: None };
        match self.request(r, head, true) {
            Ok(_) => return Ok(digest),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let start =
            Req { method: "POST", url: format!("{}/blobs/uploads/", r.api_base()), headers: vec![], body: Some(&[]) };
        let resp = self.request(r, start, true)?;
        let location = resp.header("location").unwrap_or("").to_string();
        if location.is_empty() {
            return Err(OciError::Invalid { url: r.api_base(), message: "the upload answer has no Location".into() });
        }
        let mut url = if location.starts_with('/') { format!("{}{location}", r.origin()) } else { location };
        url.push_str(if url.contains('?') { "&" } else { "?" });
        url.push_str(&format!("digest={}", percent(&digest)));
        let put = Req {
            method: "PUT",
            url,
            headers: vec![("Content-Type", "application/octet-stream".into())],
            body: Some(bytes),
        };
        self.request(r, put, true)?;
        Ok(digest)
    }

    /// Uploads a manifest under a tag and returns its digest.
    pub fn push_manifest(&self, r: &Reference, tag: &str, media_type: &str, bytes: &[u8]) -> Result<String> {
        let put = Req {
            method: "PUT",
            url: format!("{}/manifests/{tag}", r.api_base()),
            headers: vec![("Content-Type", media_type.into())],
            body: Some(bytes),
        };
        self.request(r, put, true)?;
        Ok(sha256_digest(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_read_with_commas_in_values() {
        let c = parse_challenge(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:devcontainers/features/node:pull,push""#,
        );
        let Some(Challenge::Bearer { realm, service, scope }) = c else { panic!("not bearer") };
        assert_eq!(realm, "https://ghcr.io/token");
        assert_eq!(service.as_deref(), Some("ghcr.io"));
        assert_eq!(scope.as_deref(), Some("repository:devcontainers/features/node:pull,push"));
        assert!(matches!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic)));
        assert!(parse_challenge("Negotiate").is_none());
        assert!(parse_challenge("Bearer service=\"x\"").is_none(), "no realm");
    }

    #[test]
    fn plain_http_token_services_only_between_loopback_addresses() {
        assert!(realm_allowed("https://auth.example.com/token", false));
        assert!(realm_allowed("https://auth.example.com/token", true));
        assert!(realm_allowed("http://127.0.0.1:5001/token", true));
        assert!(realm_allowed("http://localhost:5001/token", true));
        // A loopback registry does not make a far token service safe.
        assert!(!realm_allowed("http://auth.example.com/token", true));
        // Nor does a loopback token service make a far registry's
        // credentials safe on plain http.
        assert!(!realm_allowed("http://127.0.0.1:5001/token", false));
        assert!(!realm_allowed("ftp://127.0.0.1/token", true));
    }

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(sha256_digest(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}

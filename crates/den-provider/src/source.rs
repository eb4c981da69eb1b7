//! Where a provider comes from, as `den provider add` takes it (DevPod's
//! forms): a path, an http(s) URL, `OWNER/REPO[@VERSION]` (that release's
//! `provider.yaml`), or a short name `NAME[@VERSION]` for DevPod's release
//! repository `loft-sh/devpod-provider-NAME`. A built-in provider's name
//! names the built-in.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::ProviderError;

/// The owner of the release repositories short names stand for.
pub const SHORT_NAME_OWNER: &str = "loft-sh";
/// The prefix of those repositories' names.
pub const SHORT_NAME_PREFIX: &str = "devpod-provider-";
/// The release host, unless a setting names another.
pub const DEFAULT_RELEASES_URL: &str = "https://github.com";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A provider.yaml on this machine (an absolute path).
    Path(PathBuf),
    /// An http(s) URL of a provider.yaml.
    Url(String),
    /// The `provider.yaml` of a release (`None`: the latest).
    Release { owner: String, repo: String, version: Option<String>, short: bool },
    /// One of den's built-in providers.
    Builtin(String),
}

/// A manifest as read from its source.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub text: String,
    /// The file or URL it was read from (names it in errors).
    pub origin: String,
    /// Where the manifest's relative binary paths start.
    pub base: Base,
}

/// Where a manifest's relative binary paths start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// The folder of a provider.yaml on this machine.
    Dir(PathBuf),
    /// The URL a provider.yaml was fetched from: binaries are fetched too,
    /// and a path on this machine is refused.
    Url(String),
    /// Built in: no binaries of its own.
    None,
}

fn bad(given: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::Source { given: given.into(), message: message.into() }
}

/// A repository owner, name or short name: letters, digits, `-`, `_`, `.`.
fn is_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A release tag as it may stand in a URL path.
fn is_version(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
}

const FORMS: &str = "a provider source is a path to a provider.yaml, an http(s) URL, NAME (DevPod's \
                     loft-sh/devpod-provider-NAME) or OWNER/REPO, each with an optional @VERSION";

impl Source {
    /// Reads a source as the user typed it; `cwd` anchors a relative path.
    /// A file that exists is a path; so is anything that looks like one
    /// (`/…`, `./…`, `../…`, `….yaml`, `….yml`, `….json`).
    pub fn parse(given: &str, cwd: &Path) -> Result<Source, ProviderError> {
        let s = given.trim();
        if s.is_empty() {
            return Err(bad(given, format!("it is empty; {FORMS}")));
        }
        if s.starts_with("https://") || s.starts_with("http://") {
            return Ok(Source::Url(s.to_string()));
        }
        // Without `.` components (`cwd/./p.yaml` is `cwd/p.yaml`).
        let path = |p: &str| Source::Path(cwd.join(p).components().collect());
        if let Some(p) = s.strip_prefix("file://") {
            return Ok(path(p));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(bad(given, format!("den fetches providers over http(s) only, not {scheme}://")));
        }
        let looks_like_path = s.starts_with('/')
            || s.starts_with("./")
            || s.starts_with("../")
            || [".yaml", ".yml", ".json"].iter().any(|e| s.ends_with(e));
        if looks_like_path || cwd.join(s).is_file() {
            return Ok(path(s));
        }
        if crate::builtin(s).is_some() {
            return Ok(Source::Builtin(s.to_string()));
        }
        Self::release(given, s)
    }

    fn release(given: &str, s: &str) -> Result<Source, ProviderError> {
        let s = s.strip_prefix("github.com/").unwrap_or(s);
        let (path, version) = match s.rsplit_once('@') {
            Some((p, v)) if is_version(v) => (p, Some(v.to_string())),
            Some((_, v)) => {
                return Err(bad(given, format!("`{v}` is not a release version (letters, digits, . - _ +)")))
            }
            None => (s, None),
        };
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        match parts[..] {
            [name] if is_name(name) => Ok(Source::Release {
                owner: SHORT_NAME_OWNER.into(),
                repo: format!("{SHORT_NAME_PREFIX}{name}"),
                version,
                short: true,
            }),
            [owner, repo] if is_name(owner) && is_name(repo) => {
                Ok(Source::Release { owner: owner.into(), repo: repo.into(), version, short: false })
            }
            _ => Err(bad(given, format!("no such file, and not a release either; {FORMS}"))),
        }
    }

    /// A release's built-in counterpart given up: `--force` with a
    /// built-in's name means DevPod's release of that name.
    pub fn not_builtin(self) -> Source {
        match self {
            Source::Builtin(name) => Source::Release {
                owner: SHORT_NAME_OWNER.into(),
                repo: format!("{SHORT_NAME_PREFIX}{name}"),
                version: None,
                short: true,
            },
            other => other,
        }
    }

    /// The provider.yaml's URL on the release host `releases` (for URLs
    /// and releases).
    pub fn url(&self, releases: &str) -> Option<String> {
        let base = releases.trim_end_matches('/');
        match self {
            Source::Url(u) => Some(u.clone()),
            Source::Release { owner, repo, version: Some(v), .. } => {
                Some(format!("{base}/{owner}/{repo}/releases/download/{v}/provider.yaml"))
            }
            Source::Release { owner, repo, version: None, .. } => {
                Some(format!("{base}/{owner}/{repo}/releases/latest/download/provider.yaml"))
            }
            Source::Path(_) | Source::Builtin(_) => None,
        }
    }

    /// Reads the manifest's text: the file, the URL through `http`, or the
    /// built-in.
    pub fn fetch(&self, releases: &str, http: &den_http::Http) -> Result<Fetched, ProviderError> {
        let given = self.to_string();
        match self {
            Source::Path(p) => read_file(p).map_err(|m| bad(&given, m)),
            Source::Builtin(name) => Ok(Fetched {
                text: crate::builtin(name).unwrap_or_default().to_string(),
                origin: name.clone(),
                base: Base::None,
            }),
            Source::Url(_) | Source::Release { .. } => {
                let url = self.url(releases).expect("a URL or release has a URL");
                let bytes =
                    http.get(&url, crate::MAX_MANIFEST_BYTES as u64).map_err(|e| bad(&given, self.explain(e)))?;
                let text = String::from_utf8(bytes).map_err(|e| bad(&given, format!("{url}: not UTF-8 text: {e}")))?;
                Ok(Fetched { text, origin: url.clone(), base: Base::Url(url) })
            }
        }
    }

    /// An HTTP error, with what a short name was taken to mean.
    fn explain(&self, e: den_http::HttpError) -> String {
        match self {
            Source::Release { owner, repo, short: true, .. } if e.is_not_found() => format!(
                "{e}; a short name stands for DevPod's release repository {owner}/{repo}, which has no such release (give OWNER/REPO, a URL or a path for others)"
            ),
            Source::Release { owner, repo, .. } if e.is_not_found() => {
                format!("{e}; the repository {owner}/{repo} has no such release with a provider.yaml")
            }
            _ => e.to_string(),
        }
    }
}

/// What `update` re-reads: a path as an absolute path, a URL, a release as
/// `OWNER/REPO[@VERSION]`, a built-in by its name.
impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Path(p) => write!(f, "{}", p.display()),
            Source::Url(u) => f.write_str(u),
            Source::Release { owner, repo, version, .. } => {
                write!(f, "{owner}/{repo}")?;
                version.as_ref().map_or(Ok(()), |v| write!(f, "@{v}"))
            }
            Source::Builtin(name) => f.write_str(name),
        }
    }
}

/// A provider.yaml on this machine, at most one byte past the limit (a
/// file over it goes to the parser, which refuses it by its size).
fn read_file(path: &Path) -> Result<Fetched, String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(crate::MAX_MANIFEST_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    let text = if bytes.len() > crate::MAX_MANIFEST_BYTES {
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        String::from_utf8(bytes).map_err(|e| format!("reading {}: not UTF-8 text: {e}", path.display()))?
    };
    let dir = std::fs::canonicalize(path).ok().and_then(|p| p.parent().map(Path::to_path_buf));
    Ok(Fetched { text, origin: path.display().to_string(), base: Base::Dir(dir.unwrap_or_else(|| PathBuf::from("."))) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Source, String> {
        Source::parse(s, Path::new("/nowhere")).map_err(|e| e.to_string())
    }

    fn release(owner: &str, repo: &str, version: Option<&str>, short: bool) -> Source {
        Source::Release { owner: owner.into(), repo: repo.into(), version: version.map(String::from), short }
    }

    #[test]
    fn short_names_and_releases() {
        assert_eq!(parse("aws").unwrap(), release("loft-sh", "devpod-provider-aws", None, true));
        assert_eq!(parse("aws@v0.0.15").unwrap(), release("loft-sh", "devpod-provider-aws", Some("v0.0.15"), true));
        let gcloud = release("loft-sh", "devpod-provider-gcloud", Some("v0.0.11"), false);
        assert_eq!(parse("loft-sh/devpod-provider-gcloud@v0.0.11").unwrap(), gcloud);
        assert_eq!(parse("github.com/loft-sh/devpod-provider-gcloud@v0.0.11").unwrap(), gcloud);
        assert_eq!(parse("me/my-prov").unwrap(), release("me", "my-prov", None, false));
        let base = "http://127.0.0.1:8000/";
        assert_eq!(
            gcloud.url(base).unwrap(),
            "http://127.0.0.1:8000/loft-sh/devpod-provider-gcloud/releases/download/v0.0.11/provider.yaml"
        );
        assert_eq!(
            parse("aws").unwrap().url(DEFAULT_RELEASES_URL).unwrap(),
            "https://github.com/loft-sh/devpod-provider-aws/releases/latest/download/provider.yaml"
        );
        assert_eq!(gcloud.to_string(), "loft-sh/devpod-provider-gcloud@v0.0.11");
        assert_eq!(parse("aws").unwrap().to_string(), "loft-sh/devpod-provider-aws");
    }

    #[test]
    fn urls_paths_and_builtins() {
        let u = "https://example.com/p/provider.yaml";
        assert_eq!(parse(u).unwrap(), Source::Url(u.into()));
        assert_eq!(parse(u).unwrap().url("https://github.com").unwrap(), u);
        assert_eq!(parse("./p.yaml").unwrap(), Source::Path("/nowhere/p.yaml".into()));
        assert_eq!(parse("dir/provider.yaml").unwrap(), Source::Path("/nowhere/dir/provider.yaml".into()));
        assert_eq!(parse("/abs/p").unwrap(), Source::Path("/abs/p".into()));
        assert_eq!(parse("file:///abs/p").unwrap(), Source::Path("/abs/p".into()));
        assert_eq!(parse("ssh").unwrap(), Source::Builtin("ssh".into()));
        assert_eq!(parse("ssh").unwrap().not_builtin(), release("loft-sh", "devpod-provider-ssh", None, true));
        // A file that exists is a path, whatever it looks like.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("owner")).unwrap();
        std::fs::write(dir.path().join("owner/repo"), "name: x\n").unwrap();
        let p = Source::parse("owner/repo", dir.path()).unwrap();
        assert_eq!(p, Source::Path(dir.path().join("owner/repo")));
        let f = p.fetch(DEFAULT_RELEASES_URL, &den_http::Http::new()).unwrap();
        assert_eq!(f.text, "name: x\n");
        assert_eq!(f.base, Base::Dir(std::fs::canonicalize(dir.path().join("owner")).unwrap()));
    }

    #[test]
    fn bad_forms_say_what_is_taken() {
        for (given, want) in [
            ("", "it is empty"),
            ("   ", "it is empty"),
            ("ftp://x/p.yaml", "http(s) only, not ftp://"),
            ("a/b/c", "no such file, and not a release either"),
            ("owner//repo", "no such file, and not a release either"),
            ("/", "reading"),
            ("@v1", "not a release either"),
            ("aws@", "`` is not a release version"),
            ("aws@v1/x", "`v1/x` is not a release version"),
            ("foo bar", "not a release either"),
            ("../..", "reading"),
            ("aws@..", "`..` is not a release version"),
            ("o/..", "not a release either"),
        ] {
            let e = match parse(given) {
                Ok(Source::Path(p)) => {
                    Source::Path(p).fetch("", &den_http::Http::new()).map(|_| ()).unwrap_err().to_string()
                }
                Ok(other) => panic!("{given:?} was taken as {other:?}"),
                Err(e) => e,
            };
            assert!(e.contains(want), "{given:?}: {e}");
            assert!(e.starts_with("provider source `"), "{given:?}: {e}");
        }
    }
}

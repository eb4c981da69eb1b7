//! What `den up SOURCE` names: a local folder, a git repository (with a
//! branch, tag, commit, pull request or sub-folder), or a container image;
//! and cloning a repository with git, never prompting, with no secret
//! written into the clone.

use std::path::{Path, PathBuf};

use den_process::Cmd;

/// A SOURCE, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    Local(PathBuf),
    Git(GitSource),
    Image(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GitSource {
    /// The URL as given (it may hold a password; see [`redact`]).
    pub url: String,
    pub reference: GitRef,
    /// The folder of the repository the workspace is (its devcontainer
    /// configuration is there).
    pub subpath: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GitRef {
    /// The remote's default branch.
    #[default]
    Default,
    /// A branch or a tag.
    Branch(String),
    /// A commit (full or abbreviated hex).
    Commit(String),
    /// A GitHub-style pull request head (`pull/N/head`).
    PullRequest(u64),
}

impl std::fmt::Display for GitRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GitRef::Default => Ok(()),
            GitRef::Branch(b) => write!(f, "{b}"),
            GitRef::Commit(c) => write!(f, "sha256:{c}"),
            GitRef::PullRequest(n) => write!(f, "pull/{n}/head"),
        }
    }
}

/// How much of the history a clone fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    Full,
    /// `--filter=blob:none`: file contents on demand.
    Blobless,
    /// `--filter=tree:0`: trees and contents on demand.
    Treeless,
    /// `--depth 1`.
    Shallow,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Full => "full",
            Strategy::Blobless => "blobless",
            Strategy::Treeless => "treeless",
            Strategy::Shallow => "shallow",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Strategy::Full),
            "blobless" => Ok(Strategy::Blobless),
            "treeless" => Ok(Strategy::Treeless),
            "shallow" => Ok(Strategy::Shallow),
            _ => Err(format!("`{s}` is not a clone strategy (full, blobless, treeless, shallow)")),
        }
    }
}

/// Hosts whose `host/org/repo` is a git repository, not an image.
const GIT_HOSTS: &[&str] = &["github.com", "gitlab.com", "bitbucket.org", "codeberg.org", "dev.azure.com", "git.sr.ht"];

fn is_scp_like(s: &str) -> bool {
    // user@host:path, with no scheme and no slash before the colon.
    match (s.find('@'), s.find(':')) {
        (Some(at), Some(colon)) => at < colon && !s[..colon].contains('/') && !s.contains("://"),
        _ => false,
    }
}

/// Reads a SOURCE. `kind`: `git`, `image` or `local` when the user said it
/// (`--source KIND:VALUE`); else it is told from the string. `exists`:
/// whether a local path exists (a path that exists is always local).
pub fn parse(s: &str, exists: &dyn Fn(&Path) -> bool) -> Result<Spec, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("the source is empty".into());
    }
    if let Some(rest) = s.strip_prefix("local:") {
        return Ok(Spec::Local(PathBuf::from(rest)));
    }
    if let Some(rest) = s.strip_prefix("image:") {
        return image(rest);
    }
    if let Some(rest) = s.strip_prefix("git:").filter(|r| !r.starts_with("//")) {
        return git(rest);
    }
    let path_like = s.starts_with('/') || s.starts_with("./") || s.starts_with("../") || s == "." || s == "..";
    if path_like || exists(Path::new(s)) {
        return Ok(Spec::Local(PathBuf::from(s)));
    }
    let lower = s.to_ascii_lowercase();
    if ["https://", "http://", "ssh://", "git://", "file://", "git+ssh://"].iter().any(|p| lower.starts_with(p))
        || is_scp_like(s)
    {
        return git(s);
    }
    // host/org/repo: a git host, or a path ending in .git, is a repository;
    // anything else with a registry host is an image.
    if let Some((host, _)) = s.split_once('/') {
        let host_l = host.to_ascii_lowercase();
        let repo_part = s.split('@').next().unwrap_or(s);
        if GIT_HOSTS.contains(&host_l.as_str()) || repo_part.ends_with(".git") {
            return git(s);
        }
        if host.contains('.') || host.contains(':') || host == "localhost" {
            return image(s);
        }
    }
    if s.contains(':') || s.contains('/') {
        return image(s);
    }
    Err(format!(
        "`{s}` is not a folder here; write `image:{s}` for an image, `git:URL` for a repository, or the path of an existing folder"
    ))
}

fn image(r: &str) -> Result<Spec, String> {
    let ok = !r.is_empty()
        && r.chars().all(|c| c.is_ascii_alphanumeric() || "./:_-@".contains(c))
        && r.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(format!("`{r}` is not an image reference"));
    }
    Ok(Spec::Image(r.to_string()))
}

/// Where the repository path starts (after `scheme://authority` or
/// `user@host:`), so that an `@` in a user name is not a suffix.
fn path_start(s: &str) -> usize {
    if let Some(i) = s.find("://") {
        let after = i + 3;
        return s[after..].find('/').map_or(s.len(), |p| after + p);
    }
    if is_scp_like(s) {
        return s.find(':').map_or(0, |c| c + 1);
    }
    s.find('/').unwrap_or(0)
}

fn git(s: &str) -> Result<Spec, String> {
    let start = path_start(s);
    let (head, tail) = s.split_at(start);
    let mut parts = tail.split('@');
    let repo_path = parts.next().unwrap_or("");
    let mut src = GitSource::default();
    for suffix in parts {
        if let Some(c) = suffix.strip_prefix("sha256:") {
            check_commit(c).map_err(|e| format!("@sha256:{c}: {e}"))?;
            src.reference = GitRef::Commit(c.to_ascii_lowercase());
        } else if let Some(n) = suffix.strip_prefix("pull/").and_then(|r| r.strip_suffix("/head")) {
            let n = n.parse().map_err(|_| format!("`@{suffix}` is not pull/NUMBER/head"))?;
            src.reference = GitRef::PullRequest(n);
        } else if let Some(d) = suffix.strip_prefix("subpath:") {
            src.subpath = Some(check_subpath(d).map_err(|e| format!("@subpath:{d}: {e}"))?);
        } else if suffix.is_empty() || suffix.starts_with('-') || suffix.contains("..") || suffix.contains(' ') {
            return Err(format!("`@{suffix}` is not a branch or tag name"));
        } else {
            src.reference = GitRef::Branch(suffix.to_string());
        }
    }
    let mut url = format!("{head}{repo_path}");
    if !url.contains("://") && !is_scp_like(&url) {
        url = format!("https://{url}");
    }
    src.url = url;
    Ok(Spec::Git(src))
}

/// The URL without a password (`https://user:secret@host/x` →
/// `https://user@host/x`), for messages and records.
pub fn redact(url: &str) -> String {
    split_password(url).0
}

/// The URL without its password, and the user and password it held.
fn split_password(url: &str) -> (String, Option<(String, String)>) {
    let Some(scheme_end) = url.find("://") else { return (url.to_string(), None) };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else { return (url.to_string(), None) };
    let userinfo = &authority[..at];
    let Some((user, password)) = userinfo.split_once(':') else { return (url.to_string(), None) };
    let clean = format!("{}{user}@{}", &url[..scheme_end + 3], &rest[at + 1..]);
    // As git reads them: percent-encoded in the URL.
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    (clean, Some((decode(user), decode(password))))
}

/// `scheme://host[:port]` of a URL (what git matches credentials on).
fn origin_of(url: &str) -> String {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let authority = rest.split('/').next().unwrap_or(rest);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{}://{host}", &url[..i])
        }
        None => url.to_string(),
    }
}

/// Where a repository URL points: its scheme (`ssh` for the scp-like form),
/// user and host (lowercase) and port when they are written, and the path
/// as git hands it to the server (`/org/r.git` for `ssh://h/org/r.git`,
/// `org/r.git` for `git@h:org/r.git`, `~u/r` for `ssh://h/~u/r`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

/// The [`Endpoint`] of a repository URL; `None` for a local path or a
/// form den does not read.
pub fn endpoint(url: &str) -> Option<Endpoint> {
    let (scheme, authority, path) = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let (authority, path) = rest.find('/').map_or((rest, ""), |j| rest.split_at(j));
            // git sends `~user/…` without the slash before it.
            let path = path.strip_prefix('/').filter(|p| p.starts_with('~')).unwrap_or(path);
            (url[..i].to_ascii_lowercase(), authority, path)
        }
        None if is_scp_like(url) || (url.contains(':') && !url.starts_with('/')) => {
            let (authority, path) = url.split_once(':').unwrap_or((url, ""));
            ("ssh".to_string(), authority, path)
        }
        None => return None,
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.split(':').next().unwrap_or(u).to_string()), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(rest) = host_port.strip_prefix('[') {
        // [v6]:port
        let (h, after) = rest.split_once(']')?;
        (format!("[{h}]"), after.strip_prefix(':').and_then(|p| p.parse().ok()))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => (h.to_string(), p.parse().ok()),
            _ => (host_port.to_string(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(Endpoint { scheme, user, host: host.to_ascii_lowercase(), port, path: path.to_string() })
}

/// Checks a commit given apart from the URL (`--git-commit`).
pub fn check_commit(c: &str) -> Result<(), String> {
    if c.len() < 4 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{c}` is not a commit (hex digits)"));
    }
    Ok(())
}

/// Checks a sub-folder given apart from the URL (`--git-subpath`).
pub fn check_subpath(d: &str) -> Result<String, String> {
    let d = d.trim_matches('/');
    if d.is_empty() || d.split('/').any(|p| p == ".." || p.is_empty()) {
        return Err(format!("`{d}` must be a folder inside the repository"));
    }
    Ok(d.to_string())
}

/// The repository's name: the last path part without `.git`.
pub fn repo_name(url: &str) -> String {
    let path = url.trim_end_matches('/');
    let last = path.rsplit(['/', ':']).next().unwrap_or(path);
    last.strip_suffix(".git").unwrap_or(last).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cloning {url} failed: `{step}`:\n{stderr}")]
    Git { url: String, step: String, stderr: String },
    #[error("{0}")]
    Other(String),
}

/// What a clone made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloned {
    pub commit: String,
}

/// Clones `src` into `dest` (which must not exist): into a folder beside
/// it first, renamed when everything worked, so a failure leaves nothing.
pub fn clone(
    src: &GitSource,
    strategy: Strategy,
    recursive: bool,
    dest: &Path,
    on_line: &mut dyn FnMut(&str),
) -> Result<Cloned, SourceError> {
    clone_with(src, strategy, recursive, false, &[], dest, on_line)
}

/// [`clone`] with `env` set for every git it runs (den on a machine: the
/// clone relay's helpers).
pub fn clone_with_env(
    src: &GitSource,
    strategy: Strategy,
    recursive: bool,
    env: &[(String, String)],
    dest: &Path,
    on_line: &mut dyn FnMut(&str),
) -> Result<Cloned, SourceError> {
    clone_with(src, strategy, recursive, false, env, dest, on_line)
}

/// Only what den reads before the workspace's own clone exists elsewhere
/// (in a pod): the files at the top of the repository (or of its subpath,
/// and the folders above it) and the `.devcontainer` folder there, with no
/// history and no other file contents (a shallow, blobless, sparse clone).
pub fn clone_config(src: &GitSource, dest: &Path, on_line: &mut dyn FnMut(&str)) -> Result<Cloned, SourceError> {
    clone_with(src, Strategy::Shallow, false, true, &[], dest, on_line)
}

fn clone_with(
    src: &GitSource,
    strategy: Strategy,
    recursive: bool,
    config_only: bool,
    env: &[(String, String)],
    dest: &Path,
    on_line: &mut dyn FnMut(&str),
) -> Result<Cloned, SourceError> {
    let (url, login) = split_password(&src.url);
    let shown = url.clone();
    let parent = dest.parent().ok_or_else(|| SourceError::Other("no parent folder".into()))?;
    std::fs::create_dir_all(parent).map_err(|e| SourceError::Other(format!("making {}: {e}", parent.display())))?;
    let tmp = parent.join(format!(".clone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| {
        let mut git = |args: &[&str], dir: Option<&Path>| -> Result<String, SourceError> {
            // The clone is the user's project: the user's umask, not den's.
            let mut c = Cmd::new("git").user_umask();
            for (k, v) in env {
                c = c.env(k, v);
            }
            if let Some((user, _)) = &login {
                // The password travels in the environment to a helper given
                // on the command line: it is never written to the clone.
                // The helper is a fixed text: the user name and password
                // come from the environment, never into the shell line.
                // Only for the repository's own origin: a submodule or a
                // redirect to another host never gets it.
                c = c
                    .args(["-c", "credential.helper="])
                    .arg("-c")
                    .arg(format!(
                        "credential.{}.helper=!f() {{ test \"$1\" = get || exit 0; echo \"username=$DEN_GIT_USER\"; echo \"password=$DEN_GIT_PASSWORD\"; }}; f",
                        origin_of(&url)
                    ))
                    .env("DEN_GIT_USER", user)
                    .env("DEN_GIT_PASSWORD", &login.as_ref().expect("login").1);
            }
            if let Some(d) = dir {
                c = c.arg("-C").arg(d);
            }
            c = c.args(args).env("GIT_TERMINAL_PROMPT", "0");
            if std::env::var_os("GIT_SSH_COMMAND").is_none() && !env.iter().any(|(k, _)| k == "GIT_SSH_COMMAND") {
                c = c.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
            }
            on_line(&format!("git {}", args.join(" ")));
            c.output().map(|o| o.stdout).map_err(|e| SourceError::Git {
                url: shown.clone(),
                step: format!("git {}", args.join(" ")),
                stderr: den_process::last_lines(e.stderr(), 8),
            })
        };
        let mut args: Vec<String> = vec!["clone".into(), "--quiet".into()];
        let pinned = matches!(src.reference, GitRef::Commit(_) | GitRef::PullRequest(_));
        if config_only {
            // History only as far as the ref needs it; no file contents but
            // the configuration's.
            args.extend(["--filter=blob:none".into(), "--no-checkout".into()]);
            if !pinned {
                args.extend(["--depth".into(), "1".into()]);
            }
        }
        match if config_only { Strategy::Full } else { strategy } {
            Strategy::Full => {}
            Strategy::Blobless => args.push("--filter=blob:none".into()),
            Strategy::Treeless => args.push("--filter=tree:0".into()),
            Strategy::Shallow if !matches!(src.reference, GitRef::Commit(_) | GitRef::PullRequest(_)) => {
                args.extend(["--depth".into(), "1".into()])
            }
            Strategy::Shallow => args.push("--no-checkout".into()),
        }
        if let GitRef::Branch(b) = &src.reference {
            args.extend(["--branch".into(), b.clone()]);
        }
        if recursive && !matches!(src.reference, GitRef::Commit(_) | GitRef::PullRequest(_)) {
            args.push("--recurse-submodules".into());
            if strategy == Strategy::Shallow {
                args.push("--shallow-submodules".into());
            }
        }
        args.push("--".into());
        args.push(url.clone());
        args.push(tmp.display().to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        git(&refs, None)?;
        if config_only {
            let dir = match &src.subpath {
                Some(sub) => format!("{sub}/.devcontainer"),
                None => ".devcontainer".into(),
            };
            git(&["sparse-checkout", "set", "--cone", &dir], Some(&tmp))?;
            if !pinned {
                git(&["checkout", "--quiet", "--detach", "HEAD"], Some(&tmp))?;
            }
        }
        let shallow = strategy == Strategy::Shallow && !config_only;
        let depth: &[&str] = if shallow { &["--depth", "1"] } else { &[] };
        match &src.reference {
            GitRef::Commit(c) => {
                if shallow {
                    let mut a = vec!["fetch", "--quiet"];
                    a.extend_from_slice(depth);
                    a.extend(["origin", c.as_str()]);
                    git(&a, Some(&tmp))?;
                }
                git(&["checkout", "--quiet", "--detach", c], Some(&tmp)).map_err(|e| match e {
                    SourceError::Git { url, step, stderr } => SourceError::Git {
                        url,
                        step,
                        stderr: format!("{stderr}\n(commit {c} is not in the repository)"),
                    },
                    other => other,
                })?;
            }
            GitRef::PullRequest(n) => {
                let spec = format!("pull/{n}/head");
                let mut a = vec!["fetch", "--quiet"];
                a.extend_from_slice(depth);
                a.extend(["origin", spec.as_str()]);
                git(&a, Some(&tmp))?;
                git(&["checkout", "--quiet", "--detach", "FETCH_HEAD"], Some(&tmp))?;
            }
            _ => {}
        }
        if recursive && matches!(src.reference, GitRef::Commit(_) | GitRef::PullRequest(_)) {
            git(&["submodule", "update", "--quiet", "--init", "--recursive"], Some(&tmp))?;
        }
        if let Some(sub) = &src.subpath {
            // A sparse clone has only the folders it was asked for: ask git.
            let tree = config_only
                && git(&["cat-file", "-t", &format!("HEAD:{sub}")], Some(&tmp)).is_ok_and(|t| t.trim() == "tree");
            if config_only && tree {
                std::fs::create_dir_all(tmp.join(sub))
                    .map_err(|e| SourceError::Other(format!("making {}: {e}", tmp.join(sub).display())))?;
            }
            if !tree && !tmp.join(sub).is_dir() {
                return Err(SourceError::Other(format!(
                    "{shown} has no folder `{sub}` (given with @subpath:{sub} or --git-subpath)"
                )));
            }
        }
        let commit = git(&["rev-parse", "HEAD"], Some(&tmp))?.trim().to_string();
        Ok(Cloned { commit })
    })();
    match result {
        Ok(c) => {
            std::fs::rename(&tmp, dest)
                .map_err(|e| SourceError::Other(format!("moving the clone to {}: {e}", dest.display())))?;
            Ok(c)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// The commit checked out in a clone.
pub fn head(dir: &Path) -> Option<String> {
    Cmd::new("git").arg("-C").arg(dir).args(["rev-parse", "HEAD"]).output().ok().map(|o| o.stdout.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Spec {
        parse(s, &|_| false).unwrap()
    }

    fn g(s: &str) -> GitSource {
        match p(s) {
            Spec::Git(g) => g,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn endpoints_of_urls() {
        let e = |u: &str| endpoint(u).map(|e| (e.scheme, e.host, e.port));
        let up = |u: &str| endpoint(u).map(|e| (e.user, e.path));
        assert_eq!(up("ssh://git@h:2222/org/r.git"), Some((Some("git".into()), "/org/r.git".into())));
        assert_eq!(up("git@github.com:org/r.git"), Some((Some("git".into()), "org/r.git".into())));
        assert_eq!(up("ssh://h/~me/r"), Some((None, "~me/r".into())));
        assert_eq!(up("https://u:p@h.example/r.git"), Some((Some("u".into()), "/r.git".into())));
        assert_eq!(e("ssh://git@Example.com:2222/org/r.git"), Some(("ssh".into(), "example.com".into(), Some(2222))));
        assert_eq!(e("git@github.com:org/r.git"), Some(("ssh".into(), "github.com".into(), None)));
        assert_eq!(e("https://u:p@h.example/r.git"), Some(("https".into(), "h.example".into(), None)));
        assert_eq!(e("http://[::1]:8080/r"), Some(("http".into(), "[::1]".into(), Some(8080))));
        assert_eq!(e("/srv/repo.git"), None);
    }

    #[test]
    fn git_url_forms() {
        for u in [
            "https://github.com/org/repo",
            "http://127.0.0.1:8080/repo.git",
            "ssh://git@host:2222/org/repo.git",
            "git://127.0.0.1/repo",
            "file:///srv/git/repo.git",
            "git@github.com:org/repo.git",
        ] {
            assert_eq!(g(u).url, u, "{u}");
        }
        assert_eq!(g("github.com/org/repo").url, "https://github.com/org/repo");
        assert_eq!(g("example.com/team/repo.git").url, "https://example.com/team/repo.git");
    }

    #[test]
    fn suffixes() {
        let s = g("github.com/org/repo@main");
        assert_eq!((s.url.as_str(), s.reference), ("https://github.com/org/repo", GitRef::Branch("main".into())));
        assert_eq!(g("git@github.com:org/repo.git@v1.2").reference, GitRef::Branch("v1.2".into()));
        assert_eq!(g("https://h.example/r.git@sha256:abc123").reference, GitRef::Commit("abc123".into()));
        assert_eq!(g("github.com/org/repo@pull/42/head").reference, GitRef::PullRequest(42));
        let s = g("ssh://git@h:22/r.git@dev@subpath:services/api");
        assert_eq!((s.reference, s.subpath.as_deref()), (GitRef::Branch("dev".into()), Some("services/api")));
        assert_eq!(s.url, "ssh://git@h:22/r.git");
        for bad in [
            "github.com/o/r@sha256:xyz",
            "github.com/o/r@pull/x/head",
            "github.com/o/r@subpath:../x",
            "github.com/o/r@",
        ] {
            assert!(parse(bad, &|_| false).is_err(), "{bad}");
        }
    }

    #[test]
    fn images_folders_and_ambiguity() {
        assert_eq!(p("ubuntu:22.04"), Spec::Image("ubuntu:22.04".into()));
        assert_eq!(
            p("mcr.microsoft.com/devcontainers/base:bookworm"),
            Spec::Image("mcr.microsoft.com/devcontainers/base:bookworm".into())
        );
        assert_eq!(p("image:busybox"), Spec::Image("busybox".into()));
        assert_eq!(p("./x"), Spec::Local("./x".into()));
        assert_eq!(p("local:github.com/o/r"), Spec::Local("github.com/o/r".into()));
        assert!(matches!(p("git:example.com/o/r"), Spec::Git(_)));
        assert_eq!(parse("proj", &|_| true).unwrap(), Spec::Local("proj".into()));
        let e = parse("proj", &|_| false).unwrap_err();
        assert!(e.contains("image:proj") && e.contains("git:URL"), "{e}");
    }

    #[test]
    fn passwords_are_redacted_and_names_found() {
        assert_eq!(redact("https://bob:s3cret@git.example.com/r.git"), "https://bob@git.example.com/r.git");
        assert_eq!(redact("https://git.example.com/r.git"), "https://git.example.com/r.git");
        assert_eq!(split_password("https://b%40x:p%40ss@h/r").1, Some(("b@x".into(), "p@ss".into())));
        assert_eq!(origin_of("https://u@git.corp:8443/r.git"), "https://git.corp:8443");
        assert!(check_commit("--upload-pack=x").is_err() && check_subpath("../..").is_err());
        assert_eq!(redact("git@github.com:o/r.git"), "git@github.com:o/r.git");
        assert_eq!(repo_name("https://github.com/org/my-repo.git"), "my-repo");
        assert_eq!(repo_name("git@github.com:org/tool"), "tool");
    }
}

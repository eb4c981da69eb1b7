//! `den up SOURCE` from git repositories and images: a real `git daemon`,
//! git over http with basic auth (`git http-backend` behind a loopback web
//! server), git over ssh to a real sshd with the key only in a real
//! ssh-agent; all on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

fn git(dir: &Path, args: &[&str]) -> String {
    git_in(dir, args)
}

/// A config whose postCreateCommand records `word` in /tmp/which.
fn config(word: &str) -> String {
    format!(r#"{{"image": "den-test/busybox", "postCreateCommand": "echo {word} > /tmp/which"}}"#)
}

/// Commits `files` to the work tree and returns the commit.
fn commit(work: &Path, files: &[(&str, &str)], msg: &str) -> String {
    for (rel, text) in files {
        let p = work.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", msg]);
    git(work, &["rev-parse", "HEAD"])
}

/// The repositories the tests clone, under `root`: `repo.git` (branches
/// main and feature, tag v1, a first commit, refs/pull/7/head, a
/// sub-project, a submodule) and `lib.git`.
struct Repos {
    root: PathBuf,
    work: PathBuf,
    first: String,
}

/// `lib_url`: where the submodule is cloned from (the daemon's URL of
/// lib.git: git refuses local-path submodules by default).
fn make_repos(root: &Path, lib_url: &str) -> Repos {
    std::fs::create_dir_all(root).unwrap();
    for bare in ["repo.git", "lib.git"] {
        git(root, &["init", "-q", "--bare", "-b", "main", bare]);
        // Partial clones (blobless, treeless) need the server's consent.
        git(&root.join(bare), &["config", "uploadpack.allowFilter", "true"]);
    }
    let lib = root.join("lib-work");
    git(root, &["clone", "-q", "lib.git", "lib-work"]);
    commit(&lib, &[("README", "the library\n")], "lib");
    git(&lib, &["push", "-q", "origin", "HEAD:main"]);

    let work = root.join("work");
    git(root, &["clone", "-q", "repo.git", "work"]);
    git(&work, &["checkout", "-q", "-b", "main"]);
    let first = commit(&work, &[(".devcontainer/devcontainer.json", &config("first"))], "first");
    commit(&work, &[(".devcontainer/devcontainer.json", &config("tagged"))], "tagged");
    git(&work, &["tag", "v1"]);
    commit(
        &work,
        &[(".devcontainer/devcontainer.json", &config("main")), ("services/api/.devcontainer.json", &config("api"))],
        "main",
    );
    git(
        &work,
        &["-c", "protocol.file.allow=always", "submodule", "add", "-q", root.join("lib.git").to_str().unwrap(), "lib"],
    );
    git(&work, &["config", "-f", ".gitmodules", "submodule.lib.url", lib_url]);
    git(&work, &["add", ".gitmodules"]);
    git(&work, &["commit", "-q", "-m", "submodule"]);
    git(&work, &["push", "-q", "origin", "main", "v1"]);
    git(&work, &["checkout", "-q", "-b", "feature"]);
    commit(&work, &[(".devcontainer/devcontainer.json", &config("feature"))], "feature");
    git(&work, &["push", "-q", "origin", "feature"]);
    git(&work, &["checkout", "-q", "main"]);
    git(&work, &["checkout", "-q", "-b", "pr"]);
    commit(&work, &[(".devcontainer/devcontainer.json", &config("pr7"))], "pr");
    git(&work, &["push", "-q", "origin", "pr:refs/pull/7/head"]);
    git(&work, &["checkout", "-q", "main"]);
    Repos { root: root.to_path_buf(), work, first }
}

fn git_daemon(root: &Path) -> (Daemon, u16) {
    let port = free_port();
    let mut child = Command::new("git");
    child
        .args(["daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", root.display()))
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let daemon = Daemon::spawn(&mut child);
    wait_port(port);
    (daemon, port)
}

/// The test repositories under the sandbox, served by a git daemon
/// (which serves the submodule too).
fn served_repos(sb: &Sandbox) -> (Daemon, u16, Repos) {
    let root = sb.path().join("git");
    std::fs::create_dir_all(&root).unwrap();
    let (daemon, port) = git_daemon(&root);
    let repos = make_repos(&root, &format!("git://127.0.0.1:{port}/lib.git"));
    (daemon, port, repos)
}

/// `git http-backend` for the repositories under `root` behind a loopback
/// web server that asks for basic auth (den / hunter2).
fn git_http_server(sb: &Sandbox, root: &Path) -> (Daemon, u16) {
    let script = sb.path().join("git-http.py");
    std::fs::write(&script, GIT_HTTP_SERVER).unwrap();
    let port = free_port();
    let server = Daemon::spawn(
        Command::new("python3")
            .arg(&script)
            .arg(root)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_port(port);
    (server, port)
}

/// A real ssh-agent that holds `key`, which is then moved away: only the
/// agent can use it. Returns the agent and its socket.
pub(crate) fn ssh_agent_holding(sb: &Sandbox, key: &Path) -> (Daemon, PathBuf) {
    let sock = sb.path().join("agent.sock");
    let agent = Daemon::spawn(Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).stdout(Stdio::null()));
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let add = Command::new("ssh-add").arg(key).env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    std::fs::rename(key, sb.path().join("moved-away-key")).unwrap();
    (agent, sock)
}

/// The client's record of a workspace, as JSON.
fn record(sb: &Sandbox, id: &str) -> serde_json::Value {
    let path = sb.home().join("contexts/default/workspaces").join(id).join("workspace.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn which(sb: &Sandbox, id: &str) -> String {
    let r = run(sb.den().args(["ssh", id, "--", "cat", "/tmp/which"]));
    r.assert_ok();
    r.stdout.trim().to_string()
}

/// The git daemon the tests start forks a `git-daemon` and one process
/// per connection: dropping it leaves none of them running.
#[test]
fn a_test_git_daemon_leaves_nothing_running() {
    let sb = Sandbox::new();
    let (daemon, port, _repos) = served_repos(&sb);
    let out = Command::new("git").args(["ls-remote", &format!("git://127.0.0.1:{port}/repo.git")]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pgid = daemon.id();
    assert!(!group_members(pgid).is_empty());
    drop(daemon);
    let start = std::time::Instant::now();
    while !group_members(pgid).is_empty() {
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "still running: {:?}", group_members(pgid));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn git_sources_with_refs_subpaths_strategies_and_submodules() {
    require_engine();
    let sb = Sandbox::new();
    let (_daemon, port, repos) = served_repos(&sb);
    let url = format!("git://127.0.0.1:{port}/repo.git");
    let cases: &[(&str, &[&str], &str)] = &[
        ("default", &[], "main"),
        ("branch", &["--git-branch", "feature"], "feature"),
        ("tag", &[], "tagged"),
        ("commit", &[], "first"),
        ("pr", &[], "pr7"),
        ("sub", &[], "api"),
    ];
    for (name, flags, want) in cases {
        let source = match *name {
            "tag" => format!("{url}@v1"),
            "commit" => format!("{url}@sha256:{}", repos.first),
            "pr" => format!("{url}@pull/7/head"),
            "sub" => format!("{url}@subpath:services/api"),
            _ => url.clone(),
        };
        let id = unique_id(&format!("src-{name}"));
        let _c = sb.cleanup(&id);
        let r = run(sb.den().args(["up", "--ide", "none", "--id", &id]).args(*flags).arg(&source));
        r.assert_ok();
        assert_eq!(which(&sb, &id), *want, "{name}");
    }

    // The id is the repository's name; list and status show the source.
    let _c = sb.cleanup("repo");
    let up = run(sb.den().args(["up", "--ide", "none", "--git-clone-strategy", "shallow", "--output", "json", &url]));
    up.assert_ok();
    assert_eq!(up.json()["source"]["url"], url.as_str());
    let clone = sb.home().join("contexts/default/sources/repo");
    assert_eq!(git(&clone, &["rev-parse", "--is-shallow-repository"]), "true");
    let list = run(sb.den().args(["list", "--output", "json"])).json();
    let row = list.as_array().unwrap().iter().find(|r| r["id"] == "repo").unwrap().clone();
    assert_eq!(row["source"]["kind"], "git");
    assert_eq!(row["source"]["url"], url);
    let main_commit = git(&repos.work, &["rev-parse", "main"]);
    assert_eq!(row["source"]["commit"], main_commit);
    // A later up reuses the clone and never pulls; --reset clones again.
    let newer = commit(&repos.work, &[("NEWS", "newer\n")], "newer");
    git(&repos.work, &["push", "-q", "origin", "main"]);
    run(sb.den().args(["up", "--ide", "none", &url])).assert_ok();
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), main_commit);
    run(sb.den().args(["up", "--ide", "none", "--reset", &url])).assert_ok();
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), newer);
    // Another ref for the same workspace is not taken silently.
    let r = run(sb.den().args(["up", "--ide", "none", &format!("{url}@feature")]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not `feature`") && r.stderr.contains("--reset"), "{}", r.stderr);
    // A --reset whose new clone fails keeps the old clone in place.
    let r = run(sb.den().args(["up", "--ide", "none", "--reset", &format!("{url}@nope")]));
    assert_ne!(r.code, 0);
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), newer, "{}", r.stderr);
    // An id that belongs to a folder workspace is refused before cloning.
    let folder = sb.project("taken", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let fid = unique_id("src-taken");
    let _cf = sb.cleanup(&fid);
    run(sb.den().args(["up", "--ide", "none", "--id", &fid]).arg(&folder)).assert_ok();
    let r = run(sb.den().args(["up", "--ide", "none", "--id", &fid, &url]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("was made from") && !r.stderr.contains("cloning"), "{}", r.stderr);
    assert!(!sb.home().join("contexts/default/sources").join(&fid).exists());
    // delete removes den's clone.
    run(sb.den().args(["delete", "repo"])).assert_ok();
    assert!(!clone.exists());

    // Blobless, with submodules.
    let id = unique_id("src-sub");
    let _c = sb.cleanup(&id);
    run(sb.den().args([
        "up",
        "--ide",
        "none",
        "--id",
        &id,
        "--git-clone-strategy",
        "blobless",
        "--git-clone-recursive-submodules",
        &url,
    ]))
    .assert_ok();
    let clone = sb.home().join("contexts/default/sources").join(&id);
    assert_eq!(git(&clone, &["config", "remote.origin.partialclonefilter"]), "blob:none");
    let r = run(sb.den().args(["ssh", &id, "--", "cat", "lib/README"]));
    assert_eq!(r.stdout, "the library\n", "{}", r.stderr);
}

#[test]
fn bad_git_sources_name_the_url_and_git_and_leave_nothing() {
    require_engine();
    let sb = Sandbox::new();
    let (_daemon, port, _repos) = served_repos(&sb);
    let url = format!("git://127.0.0.1:{port}/repo.git");
    let closed = free_port();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("branch", format!("{url}@nope"), vec!["Remote branch nope not found"]),
        ("commit", format!("{url}@sha256:{}", "ab".repeat(20)), vec!["is not in the repository"]),
        ("subpath", format!("{url}@subpath:not/there"), vec!["has no folder `not/there`"]),
        ("repo", format!("git://127.0.0.1:{port}/missing.git"), vec!["missing.git"]),
        ("host", format!("git://127.0.0.1:{closed}/repo.git"), vec!["Connection refused"]),
        ("form", "git:ftp://example.com/x".to_string(), vec![]),
    ];
    for (name, source, wants) in cases {
        let id = unique_id(&format!("srcbad-{name}"));
        let _c = sb.cleanup(&id);
        let r = run(sb.den().args(["up", "--ide", "none", "--id", &id]).arg(&source));
        assert_ne!(r.code, 0, "{name}: {}", r.stderr);
        for w in wants {
            assert!(r.stderr.contains(w), "{name}: `{w}` not in {}", r.stderr);
        }
        if name != "form" {
            assert!(r.stderr.contains("cloning") || r.stderr.contains("has no folder"), "{name}: {}", r.stderr);
        }
        assert_eq!(docker(&["ps", "-a", "-q", "--filter", &format!("name=den-{id}")]), "", "{name}");
        assert!(!sb.home().join("contexts/default/sources").join(&id).exists(), "{name}: a clone was left");
        assert!(!sb.home().join("contexts/default/workspaces").join(&id).join("workspace.json").exists(), "{name}");
    }
}

/// A web server on loopback that runs `git http-backend` for a root of
/// repositories, wanting basic auth `den:hunter2` (and a stand-in for no
/// one else: it is a test server, written here).
const GIT_HTTP_SERVER: &str = r#"
import base64, os, subprocess, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
ROOT, PORT = sys.argv[1], int(sys.argv[2])
WANT = "Basic " + base64.b64encode(b"den:hunter2").decode()
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def handle_any(self):
        if self.headers.get("Authorization") != WANT:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        env = dict(os.environ, GIT_PROJECT_ROOT=ROOT, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path,
                   QUERY_STRING=query, REQUEST_METHOD=self.command, REMOTE_USER="den",
                   CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(n))
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)
    do_GET = do_POST = handle_any
HTTPServer(("127.0.0.1", PORT), H).serve_forever()
"#;

#[test]
fn private_repositories_over_http_and_ssh_use_the_clients_credentials_and_store_none() {
    require_engine();
    let sb = Sandbox::new();
    let repos = make_repos(&sb.path().join("git"), "https://unused.invalid/lib.git");
    let (_server, port) = git_http_server(&sb, &repos.root);
    let url = format!("http://127.0.0.1:{port}/repo.git");

    // No credentials: a clear failure, never a prompt.
    let id = unique_id("src-http");
    let _c = sb.cleanup(&id);
    let empty = sb.path().join("empty-gitconfig");
    std::fs::write(&empty, "").unwrap();
    let r = run(sb
        .den()
        .env("GIT_CONFIG_GLOBAL", &empty)
        .stdin(Stdio::null())
        .args(["up", "--ide", "none", "--id", &id, &url]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(&url) && r.stderr.contains("could not read Username"), "{}", r.stderr);

    // The client's credential store: the clone works and nothing in the
    // clone or the container holds the password.
    let store = sb.path().join("git-credentials");
    std::fs::write(&store, format!("http://den:hunter2@127.0.0.1:{port}\n")).unwrap();
    let gitconfig = sb.path().join("gitconfig");
    std::fs::write(&gitconfig, format!("[credential]\n\thelper = store --file={}\n", store.display())).unwrap();
    run(sb.den().env("GIT_CONFIG_GLOBAL", &gitconfig).args(["up", "--ide", "none", "--id", &id, &url])).assert_ok();
    assert_eq!(which(&sb, &id), "main");
    let clone = sb.home().join("contexts/default/sources").join(&id);
    let grep = Command::new("grep").args(["-r", "-l", "hunter2"]).arg(&clone).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&grep.stdout), "", "the password is in the clone");
    assert_eq!(exec(&container(&id), "grep -r -l hunter2 /workspaces /tmp /root 2>/dev/null || true"), "");

    // A password in the URL itself is used, and not kept either.
    let id2 = unique_id("src-http-url");
    let _c2 = sb.cleanup(&id2);
    let with_password = format!("http://den:hunter2@127.0.0.1:{port}/repo.git");
    run(sb.den().env("GIT_CONFIG_GLOBAL", &empty).args(["up", "--ide", "none", "--id", &id2, &with_password]))
        .assert_ok();
    let clone2 = sb.home().join("contexts/default/sources").join(&id2);
    assert_eq!(git(&clone2, &["remote", "get-url", "origin"]), format!("http://den@127.0.0.1:{port}/repo.git"));
    let grep = Command::new("grep")
        .args(["-r", "-l", "hunter2"])
        .arg(&clone2)
        .arg(sb.home().join("contexts"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&grep.stdout), "", "the password was stored");
    let list = run(sb.den().args(["list", "--output", "json"]));
    assert!(!list.stdout.contains("hunter2"), "{}", list.stdout);

    // ssh: a real sshd, the key only in a real ssh-agent.
    let sshd = crate::remote::Sshd::start(&sb.path().join("sshd"));
    let (_agent, sock) = ssh_agent_holding(&sb, &sshd.key);
    let ssh_url = format!("ssh://root@127.0.0.1:{}{}", sshd.port, repos.root.join("repo.git").display());
    let id3 = unique_id("src-ssh");
    let _c3 = sb.cleanup(&id3);
    let ssh_cmd = sshd.git_ssh_command();
    let r = run(sb.den().env("SSH_AUTH_SOCK", &sock).env("GIT_SSH_COMMAND", &ssh_cmd).args([
        "up",
        "--ide",
        "none",
        "--id",
        &id3,
        "--git-branch",
        "feature",
        &ssh_url,
    ]));
    r.assert_ok();
    assert_eq!(which(&sb, &id3), "feature");
}

#[test]
fn an_image_source_comes_up_on_that_image_with_an_empty_folder() {
    require_engine();
    let sb = Sandbox::new();
    let id = unique_id("src-image");
    let _c = sb.cleanup(&id);
    run(sb.den().args([
        "up",
        "--ide",
        "none",
        "--id",
        &id,
        "image:den-test/busybox",
        "--workspace-env",
        "FROM_FLAG=yes",
    ]))
    .assert_ok();
    assert_eq!(docker(&["inspect", "-f", "{{.Config.Image}}", &container(&id)]).trim(), "den-test/busybox");
    let r = run(sb.den().args(["ssh", &id, "--", "sh", "-c", "ls -A | wc -l; echo $FROM_FLAG"]));
    assert_eq!(r.stdout.split_whitespace().collect::<Vec<_>>(), ["0", "yes"], "{}", r.stderr);
    let status = run(sb.den().args(["list", "--output", "json"])).json();
    let row = status.as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).unwrap().clone();
    assert_eq!(row["source"], serde_json::json!({"kind": "image", "url": "den-test/busybox"}));
    run(sb.den().args(["delete", &id])).assert_ok();
    assert!(!sb.home().join("contexts/default/sources").join(&id).exists());
}

#[test]
fn dotfiles_from_a_local_repository_with_and_without_a_script() {
    require_engine();
    let sb = Sandbox::new();
    let repo = |name: &str, files: &[(&str, &str)]| -> PathBuf {
        let work = sb.path().join(format!("{name}-work"));
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        commit(&work, files, "dotfiles");
        let bare = sb.path().join(format!("{name}.git"));
        git(sb.path(), &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()]);
        bare
    };
    let scripted = repo(
        "scripted",
        &[
            ("install.sh", "#!/bin/sh\necho \"installing for $(id -un) with $GREETING\"\necho ran >> \"$HOME/.ran\"\n"),
            (".vimrc", "set nu\n"),
        ],
    );
    let linked = repo("linked", &[(".bashrc", "alias ll='ls -l'\n"), (".gitconfig", "[user]\n")]);
    let failing = repo("failing", &[("bootstrap.sh", "#!/bin/sh\necho about to fail\nexit 9\n")]);
    // A plain folder (no repository) is copied as it is.
    let plain = sb.path().join("plain-dots");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("setup.sh"), "#!/bin/sh\necho plain-folder > \"$HOME/.plain\"\n").unwrap();

    let ws = sb.workspace("dots-script", r#"{"image": "den-test/busybox"}"#);
    let r = ws.up(&[
        "--ide",
        "none",
        "--dotfiles",
        scripted.to_str().unwrap(),
        "--dotfiles-script-env",
        "GREETING=hi there",
    ]);
    r.assert_ok();
    assert!(r.stderr.contains("[dotfiles] installing for root with hi there"), "{}", r.stderr);
    // Once per container: a second up does not run it again.
    let again = ws.up(&["--ide", "none", "--dotfiles", scripted.to_str().unwrap()]);
    again.assert_ok();
    assert!(again.stderr.contains("already installed"), "{}", again.stderr);
    assert_eq!(exec(&ws.container(), "cat /root/.ran; cat /root/dotfiles/.vimrc"), "ran\nset nu\n");

    // No script: the dotfiles are linked into the home; the URL comes from
    // the context's option.
    run(sb.den().args(["context", "set-options", "-o", &format!("DOTFILES_URL={}", linked.display())])).assert_ok();
    let ws2 = sb.workspace("dots-link", r#"{"image": "den-test/busybox"}"#);
    ws2.up(&["--ide", "none"]).assert_ok();
    assert_eq!(
        exec(&ws2.container(), "readlink /root/.bashrc; cat /root/.gitconfig"),
        "/root/dotfiles/.bashrc\n[user]\n"
    );
    run(sb.den().args(["context", "set-options", "-o", "DOTFILES_URL="])).assert_ok();

    let ws4 = sb.workspace("dots-plain", r#"{"image": "den-test/busybox"}"#);
    ws4.up(&["--ide", "none", "--dotfiles", plain.to_str().unwrap()]).assert_ok();
    assert_eq!(exec(&ws4.container(), "cat /root/.plain"), "plain-folder\n");

    // A failing script fails up with its code, its output shown.
    let ws3 = sb.workspace("dots-fail", r#"{"image": "den-test/busybox"}"#);
    let r = ws3.up(&["--ide", "none", "--dotfiles", failing.to_str().unwrap()]);
    r.assert_code(9);
    assert!(r.stderr.contains("[dotfiles] about to fail") && r.stderr.contains("bootstrap.sh"), "{}", r.stderr);
    // A named script that is not there is said before anything runs in the workspace.
    let r = ws3.up(&["--ide", "none", "--dotfiles", failing.to_str().unwrap(), "--dotfiles-script", "nope.sh"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no script `nope.sh`"), "{}", r.stderr);
}

/// On the ssh provider the machine clones: nothing is cloned here or sent
/// from here. A private repository over http uses this machine's
/// credential store, and one over ssh this machine's ssh and ssh-agent,
/// through the clone relay; neither reaches the machine's disk.
#[test]
fn a_git_source_on_the_ssh_provider_is_cloned_on_the_machine() {
    require_engine();
    let sb = Sandbox::new();
    let (_daemon, port, repos) = served_repos(&sb);
    let sshd = crate::remote::Sshd::start(&sb.path().join("sshd"));
    let id = unique_id("src-remote");
    let _c = sb.cleanup(&id);
    let mut up = sb.den();
    up.args(["up", "--ide", "none", "--provider", "ssh", "--id", &id]).args(sshd.provider_args());
    up.arg(format!("git://127.0.0.1:{port}/repo.git@feature"));
    let r = run(&mut up);
    r.assert_ok();
    assert!(r.stderr.contains("cloned on the machine"), "{}", r.stderr);
    assert_eq!(which(&sb, &id), "feature");
    assert!(!sb.home().join("contexts/default/sources").join(&id).exists(), "cloned on the client");
    let rec = record(&sb, &id);
    let machine_clone = Path::new(rec["remoteHome"].as_str().unwrap()).join("contexts/default/sources").join(&id);
    assert_eq!(git(&machine_clone, &["rev-parse", "--abbrev-ref", "HEAD"]), "feature");
    assert_eq!(rec["source"]["commit"].as_str().unwrap(), git(&repos.work, &["rev-parse", "feature"]));
    let r = run(sb.den().args([
        "ssh",
        &id,
        "--",
        "sh",
        "-c",
        "grep -c feature .devcontainer/devcontainer.json; ls services/api/.devcontainer.json",
    ]));
    assert_eq!(r.stdout, "1\nservices/api/.devcontainer.json\n", "{}", r.stderr);
    // A second up reuses the machine's clone.
    let mut again = sb.den();
    again.args(["up", "--ide", "none", "--id", &id, &format!("git://127.0.0.1:{port}/repo.git@feature")]);
    let r = run(&mut again);
    r.assert_ok();
    assert!(!r.stderr.contains("git clone"), "{}", r.stderr);
    // Stopped, `den open` brings it up again from den's record (the clone
    // is on the machine, not here).
    run(sb.den().args(["stop", &id])).assert_ok();
    run(sb.den().args(["open", &id, "--ide", "none"])).assert_ok();
    assert_eq!(which(&sb, &id), "feature");
    run(sb.den().args(["delete", &id])).assert_ok();
    assert!(!machine_clone.exists(), "the machine's clone outlived the workspace");

    // Private over http: the credentials are only in this machine's store.
    let (_server, http_port) = git_http_server(&sb, &repos.root);
    let store = sb.path().join("git-credentials");
    std::fs::write(&store, format!("http://den:hunter2@127.0.0.1:{http_port}\n")).unwrap();
    let gitconfig = sb.path().join("gitconfig");
    std::fs::write(&gitconfig, format!("[credential]\n\thelper = store --file={}\n", store.display())).unwrap();
    let id2 = unique_id("src-remote-http");
    let _c2 = sb.cleanup(&id2);
    let mut up = sb.den();
    up.env("GIT_CONFIG_GLOBAL", &gitconfig);
    up.args(["up", "--ide", "none", "--provider", "ssh", "--id", &id2]).args(sshd.provider_args());
    up.arg(format!("http://127.0.0.1:{http_port}/repo.git"));
    run(&mut up).assert_ok();
    assert_eq!(which(&sb, &id2), "main");
    let home2 = PathBuf::from(record(&sb, &id2)["remoteHome"].as_str().unwrap());
    let grep = Command::new("grep").args(["-r", "-l", "hunter2"]).arg(&home2).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&grep.stdout), "", "the password reached the machine's disk");

    // Private over ssh: the key is only in this machine's ssh-agent, the
    // host key only in this machine's known hosts (GIT_SSH_COMMAND here).
    let git_sshd = crate::remote::Sshd::start(&sb.path().join("git-sshd"));
    let (_agent, sock) = ssh_agent_holding(&sb, &git_sshd.key);
    let ssh_cmd = git_sshd.git_ssh_command();
    let id3 = unique_id("src-remote-ssh");
    let _c3 = sb.cleanup(&id3);
    let mut up = sb.den();
    up.env("SSH_AUTH_SOCK", &sock).env("GIT_SSH_COMMAND", &ssh_cmd);
    up.args(["up", "--ide", "none", "--provider", "ssh", "--id", &id3, "--git-branch", "feature"]);
    up.args(sshd.provider_args());
    up.arg(format!("ssh://root@127.0.0.1:{}{}", git_sshd.port, repos.root.join("repo.git").display()));
    run(&mut up).assert_ok();
    assert_eq!(which(&sb, &id3), "feature");

    // Without the agent the machine's clone fails, naming ssh's own words.
    let id4 = unique_id("src-remote-noagent");
    let _c4 = sb.cleanup(&id4);
    let mut up = sb.den();
    up.env_remove("SSH_AUTH_SOCK").env("GIT_SSH_COMMAND", &ssh_cmd);
    up.args(["up", "--ide", "none", "--provider", "ssh", "--id", &id4]).args(sshd.provider_args());
    up.arg(format!("ssh://root@127.0.0.1:{}{}", git_sshd.port, repos.root.join("repo.git").display()));
    let r = run(&mut up);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    assert!(!Path::new(record(&sb, &id3)["remoteHome"].as_str().unwrap())
        .join("contexts/default/sources")
        .join(&id4)
        .exists());
}

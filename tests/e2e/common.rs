//! What every end-to-end test shares: a sandbox with its own DEN_HOME and ssh
//! config, a command builder for the built binary, and engine helpers.
//!
//! `run(…).assert_ok()` / `.assert_code(n)` show the command, its stdout and
//! its stderr when they fail. `Sandbox::workspace` gives a project and an id
//! that are cleaned up when the test ends. With `DEN_E2E_KEEP=1`, a failing
//! test keeps its containers and its sandbox folder (the paths are printed)
//! for a look afterwards.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn den_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_den"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// An isolated place to run den: private DEN_HOME, private ssh config,
/// removed when dropped (kept after a failure with `DEN_E2E_KEEP=1`).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

/// True when a failing test should leave what it made behind.
pub fn keep_after_failure() -> bool {
    std::thread::panicking() && std::env::var_os("DEN_E2E_KEEP").is_some_and(|v| !v.is_empty() && v != "0")
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if keep_after_failure() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "DEN_E2E_KEEP: sandbox kept at {} (DEN_HOME: {})",
                self.dir.path().display(),
                self.home().display()
            );
        }
    }
}

impl Sandbox {
    /// The real OpenSSH client on `ID.den` through the ssh config den wrote
    /// in this sandbox, never asking for anything; the caller adds the
    /// remote command.
    pub fn openssh(&self, id: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(self.path().join("ssh_config")).args(["-o", "BatchMode=yes", &format!("{id}.den")]);
        c
    }

    pub fn new() -> Self {
        Sandbox { dir: tempfile::Builder::new().prefix("den-e2e-").tempdir().unwrap() }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("den-home")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `den ARGS` with this sandbox's DEN_HOME and ssh config.
    pub fn den(&self) -> Command {
        let mut c = Command::new(den_bin());
        c.env("DEN_HOME", self.home()).env("DEN_SSH_CONFIG", self.dir.path().join("ssh_config")).env_remove("DEN_LOG");
        c
    }

    /// Writes `files` (relative path → content) under `name` and returns it.
    pub fn project(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = self.dir.path().join(name);
        for (rel, content) in files {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        root
    }
}

pub struct Run {
    /// What ran, for failure messages.
    pub command: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Run {
    let command = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("{:?}", a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    let Output { status, stdout, stderr } = cmd.output().expect("running den");
    Run {
        command,
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

impl Run {
    /// Panics unless the command exited 0, showing what ran and said.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        self.assert_code(0)
    }

    /// Panics unless the command exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert!(
            self.code == code,
            "expected exit code {code}, got {}\ncommand: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.command,
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout as JSON (`--output json`).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e})\ncommand: {}\nstdout: {}", self.command, self.stdout))
    }
}

/// `docker ARGS`, panicking with its stderr when it fails.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker runs");
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The engine must be there: tests/engine/setup.sh starts it. A test that
/// needs it fails loudly rather than skipping silently.
pub fn require_engine() {
    let ok = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    match ok {
        Ok(o) if o.status.success() => {}
        _ => panic!("no Docker engine answers: run tests/engine/setup.sh (tests/run.sh does)"),
    }
}

/// A workspace id unique to this test run, so parallel tests never collide.
pub fn unique_id(name: &str) -> String {
    format!("t{}-{name}", std::process::id())
}

/// Deletes the workspace when dropped, even if the test failed.
pub struct Cleanup<'a> {
    pub sandbox: &'a Sandbox,
    pub id: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if keep_after_failure() {
            eprintln!("DEN_E2E_KEEP: workspace `{}` kept (container den-{})", self.id, self.id);
            return;
        }
        let _ = self.sandbox.den().args(["delete", "--force", &self.id]).output();
        let _ = Command::new("docker").args(["rm", "-f", &format!("den-{}", self.id)]).output();
    }
}

impl Sandbox {
    /// `den up FOLDER --id ID --output json`, asserting success; returns the
    /// parsed result.
    pub fn up(&self, folder: &Path, id: &str, extra: &[&str]) -> serde_json::Value {
        let r = run(self.den().args(["up", "--output", "json", "--id", id]).args(extra).arg(folder));
        assert_eq!(r.code, 0, "den up failed:\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("up output is not JSON ({e}): {}", r.stdout))
    }

    pub fn cleanup(&self, id: &str) -> Cleanup<'_> {
        Cleanup { sandbox: self, id: id.to_string() }
    }

    /// A project `name` with `config` as its devcontainer.json, and an id
    /// unique to this run; the workspace is deleted when the test ends.
    pub fn workspace(&self, name: &str, config: &str) -> TestWorkspace<'_> {
        let folder = self.project(name, &[(".devcontainer/devcontainer.json", config)]);
        let id = unique_id(name);
        TestWorkspace { folder, cleanup: self.cleanup(&id), id }
    }
}

/// A sandboxed workspace: its project folder and id, deleted on drop.
pub struct TestWorkspace<'a> {
    pub id: String,
    pub folder: PathBuf,
    pub cleanup: Cleanup<'a>,
}

impl TestWorkspace<'_> {
    /// `den up FOLDER --id ID ARGS…`, not yet run.
    pub fn up_cmd(&self, extra: &[&str]) -> Command {
        let mut c = self.cleanup.sandbox.den();
        c.args(["up", "--id", &self.id]).args(extra).arg(&self.folder);
        c
    }

    /// Runs `den up` for it (see [`TestWorkspace::up_cmd`]).
    pub fn up(&self, extra: &[&str]) -> Run {
        run(&mut self.up_cmd(extra))
    }

    /// The container's name.
    pub fn container(&self) -> String {
        container(&self.id)
    }
}

/// The container of workspace `id` in the default context.
pub fn container(id: &str) -> String {
    format!("den-{id}")
}

/// Whether a container runs: `None` when there is no such container.
pub fn container_running(name: &str) -> Option<bool> {
    let o = Command::new("docker").args(["container", "inspect", "-f", "{{.State.Running}}", name]).output().unwrap();
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim() == "true")
}

/// `docker exec CONTAINER sh -c SCRIPT`, its stdout.
pub fn exec(container: &str, script: &str) -> String {
    docker(&["exec", container, "sh", "-c", script])
}

/// A free loopback port (bound and released; start the server at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits (bounded) until `port` on 127.0.0.1 accepts connections.
pub fn wait_port(port: u16) {
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "port {port} never opened");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// One HTTP GET to 127.0.0.1:port, the body.
pub fn http_get(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

/// `git -C DIR ARGS` with a fixed author, its stdout trimmed; panics with
/// git's stderr when it fails.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A server a test started, in a process group of its own: dropping it
/// stops the whole group, so what it forked (`git daemon` runs
/// `git-daemon`, which forks per connection) goes too.
pub struct Daemon(std::process::Child);

impl Daemon {
    pub fn spawn(cmd: &mut Command) -> Daemon {
        use std::os::unix::process::CommandExt;
        let what = format!("{:?}", cmd.get_program());
        Daemon(cmd.process_group(0).spawn().unwrap_or_else(|e| panic!("starting {what}: {e}")))
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the group this test made; no memory is touched.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// The processes of process group `pgid` that are still there (zombies
/// excepted).
pub fn group_members(pgid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // pid (comm) state ppid pgrp …: comm may hold spaces, so from the last ')'.
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let f: Vec<&str> = rest.split(' ').collect();
        if f.len() > 2 && f[2] == pgid.to_string() && f[0] != "Z" {
            out.push(head.to_string() + ")");
        }
    }
    out
}

/// `den ui --no-open --port P` for the sandbox (its stderr in
/// `den-ui.log` there): the server, its port, and the URL with the token
/// it wrote to `ui.json` (waited for, bounded).
pub fn start_den_ui(sb: &Sandbox) -> (Daemon, u16, String) {
    let port = free_port();
    let log = std::fs::File::create(sb.path().join("den-ui.log")).unwrap();
    let server = Daemon::spawn(
        sb.den().args(["ui", "--no-open", "--port", &port.to_string()]).stdout(std::process::Stdio::null()).stderr(log),
    );
    wait_port(port);
    let path = sb.home().join("ui.json");
    let start = std::time::Instant::now();
    loop {
        let url = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["url"].as_str().map(String::from));
        if let Some(url) = url {
            assert!(url.starts_with(&format!("http://127.0.0.1:{port}/?token=")), "{url}");
            return (server, port, url);
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "no url in {}", path.display());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

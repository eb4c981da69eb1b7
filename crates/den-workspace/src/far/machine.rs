//! den on a machine: its own den state there (the "agent home"), and the
//! workspaces it brings up on that machine's docker engine.
//!
//! - `den agent remote-up`: reads a [`RemoteUpRequest`] line on stdin,
//!   receives the workspace's files when it needs them (a tar stream after
//!   `DEN-SEND-CONTENT`), or clones a git source here through the clone
//!   relay, brings the container up and prints `DEN-RESULT
//!   <RemoteUpResult>`.
//! - `den agent remote-tunnel`: `docker exec`s the container's SSH server
//!   on its own stdio — the middle hop of `den ssh`.
//! - `den agent remote-op stop|delete|status|logs`.

use std::io::{BufRead, StdinLock, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use den_protocol::transfer::{receive, RemoteUpRequest, RemoteUpResult};
use den_protocol::{Outcome, NO_CONTENT, SEND_CONTENT};

use super::clone_relay::CloneRelay;
use super::watch::{self, touch};
use super::{answer, fail, on_path, ready, ToDen};
use crate::{Den, RemoteSource, Reporter, UpOptions, UpResult, WorkspaceError, WorkspaceRecord};

/// The agent home: the provider's `agent.dataPath`, else ~/.den-agent.
pub fn agent_home(data_path: &str) -> PathBuf {
    if !data_path.trim().is_empty() {
        return PathBuf::from(data_path);
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h).join(".den-agent"),
        None => PathBuf::from("/var/lib/den-agent"),
    }
}

/// Where a workspace's files live on the machine.
pub fn content_dir(home: &Path, context: &str, id: &str) -> PathBuf {
    home.join("content").join(context).join(id)
}

fn agent_den(home: &Path, context: &str) -> Result<Den, String> {
    let den = Den { home: den_state::Home::at(home), context: context.to_string() };
    if !crate::context::exists(&den, context) {
        den_state::create_private_dir(&den.home.context_dir(context)).map_err(|e| e.to_string())?;
    }
    Ok(den)
}

/// A failure once the agent home is known: den can still reach (and
/// delete) what is there.
fn fail_at(home: &Path, msg: String) -> i32 {
    let outcome = Outcome::Failed { message: msg };
    answer(&RemoteUpResult { outcome, home: home.display().to_string(), ..Default::default() })
}

/// `den agent remote-up`.
pub fn remote_up_main() -> i32 {
    ready();
    let mut input = std::io::stdin().lock();
    let mut line = String::new();
    let req: RemoteUpRequest = match input.read_line(&mut line).map(|_| serde_json::from_str(&line)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return fail(format!("bad request: {e}")),
        Err(e) => return fail(format!("reading the request: {e}")),
    };
    let home = agent_home(&req.data_path);
    let content = content_dir(&home, &req.context, &req.workspace_id);
    // A container made from an earlier copy still mounts that copy: new
    // files mean a new container. The need survives a failed up (a marker
    // beside the files).
    let pending = content.with_extension("recreate");
    let git = match req.git.as_ref().map(RemoteSource::from_git_clone).transpose() {
        Ok(g) => g,
        Err(e) => return fail(format!("bad request: {e}")),
    };
    let files = match git {
        Some(_) => relay_for_clone(&home, input).map(|relay| (Some(relay), false)),
        None => receive_files(&req, &content, &pending, input).map(|replaced| (None, replaced)),
    };
    let (relay, replaced) = match files {
        Ok(f) => f,
        Err(e) => return fail_at(&home, e),
    };
    let replaced = replaced || pending.exists();
    if let Err(e) = prepare_docker(&req, &home) {
        return fail_at(&home, e);
    }
    let den = match agent_den(&home, &req.context) {
        Ok(d) => d,
        Err(e) => return fail_at(&home, format!("making the agent home {}: {e}", home.display())),
    };
    if let Err(e) = watch::configure(&home, req.machine_watch.as_ref()) {
        ToDen.line(&format!("warning: the machine's inactivity watcher did not start: {e}"));
    }
    let git_env = relay.as_ref().map(|r| r.env()).unwrap_or_default();
    let opts = up_options(&req, content, git, git_env, req.recreate || replaced);
    let result = watch::with_heartbeat(&home, || {
        let up = crate::up(&den, &opts, &mut ToDen);
        if let Some(r) = relay {
            r.close();
        }
        result_of(up, &den, &req, &home, &pending)
    });
    answer(&result)
}

/// A git source is cloned here, with the client's credentials and ssh
/// through the relay; nothing is sent.
fn relay_for_clone(home: &Path, input: StdinLock<'static>) -> Result<CloneRelay, String> {
    if !on_path("git") {
        println!("{NO_CONTENT}");
        return Err("git is not installed on this machine; install it there to clone the workspace's repository".into());
    }
    // The relay reads stdin on from where the request ended.
    drop(input);
    CloneRelay::start(home).map_err(|e| {
        println!("{NO_CONTENT}");
        format!("starting the clone relay in {}: {e}", home.display())
    })
}

/// The workspace's files, sent by den when there are none here yet or den
/// asks for fresh ones. True when they replaced a copy (which is marked
/// at `pending`).
fn receive_files(
    req: &RemoteUpRequest,
    content: &Path,
    pending: &Path,
    mut input: StdinLock<'static>,
) -> Result<bool, String> {
    if !req.fresh_content && content.is_dir() {
        println!("{NO_CONTENT}");
        let _ = std::io::stdout().flush();
        return Ok(false);
    }
    let replaced = content.is_dir();
    if replaced {
        let _ = std::fs::write(pending, b"");
    }
    println!("{SEND_CONTENT}");
    let _ = std::io::stdout().flush();
    receive(&mut input, content)
        .map_err(|e| format!("receiving the workspace's files into {}: {e}", content.display()))?;
    Ok(replaced)
}

/// The machine's docker is there, and its environment is the provider's.
fn prepare_docker(req: &RemoteUpRequest, home: &Path) -> Result<(), String> {
    if !on_path(&req.docker_path) {
        return Err(if req.docker_install {
            format!(
                "`{}` is not installed on this machine; the provider asks den to install docker (agent.docker.install), which den does not do: install it on the machine",
                req.docker_path
            )
        } else {
            format!("`{}` is not installed on this machine (agent.docker.install is false)", req.docker_path)
        });
    }
    watch::save_docker_env(home, &req.docker_env)?;
    watch::apply_docker_env(home);
    Ok(())
}

/// The `up` that the request asks for, on this machine's docker.
fn up_options(
    req: &RemoteUpRequest,
    content: PathBuf,
    git: Option<RemoteSource>,
    git_env: Vec<(String, String)>,
    recreate: bool,
) -> UpOptions {
    let mut options = vec![("DOCKER_PATH".to_string(), req.docker_path.clone())];
    if !req.container_inactivity_timeout.is_empty() {
        options.push(("INACTIVITY_TIMEOUT".into(), req.container_inactivity_timeout.clone()));
    }
    UpOptions {
        workspace: crate::Source {
            remote: git,
            source: content,
            id: Some(req.workspace_id.clone()),
            devcontainer_path: req.devcontainer_path.clone(),
            provider: Some("docker".into()),
            provider_options: options,
            fallback_image: Some(req.fallback_image.clone()).filter(|f| !f.is_empty()),
            prebuild: match req.prebuild_repository.as_str() {
                "" => None,
                // Checked on the client already.
                r => crate::features::Prebuild::new(r, false).ok(),
            },
            workspace_env: req.workspace_env.clone(),
            devcontainer_image: Some(req.devcontainer_image.clone()).filter(|i| !i.is_empty()),
            git_env,
            ..Default::default()
        },
        recreate,
        reset: req.reset,
        ssh_config: None,
        machine: None,
        authorized_key: Some(req.authorized_key.clone()),
        // It ran where the files are: on the client, or here for a clone.
        skip_initialize: req.git.is_none(),
        credentials: Some(req.credentials),
        lockfile: Default::default(),
    }
}

/// What den on the client learns of the `up`: on a failure too, what
/// exists despite it, so den can still reach it.
fn result_of(
    up: crate::Result<UpResult>,
    den: &Den,
    req: &RemoteUpRequest,
    home: &Path,
    pending: &Path,
) -> RemoteUpResult {
    let mut result = RemoteUpResult { home: home.display().to_string(), ..Default::default() };
    match up {
        Ok(r) => {
            result.commit = r.record.source.as_ref().map(|s| s.commit.clone()).unwrap_or_default();
            let _ = den_state::atomic_write(&key_file(den, &req.workspace_id), req.authorized_key.as_bytes());
            let _ = std::fs::remove_file(pending);
            result.outcome = Outcome::Done;
            result.facts = Some(r.record.facts());
            result.host_key = r.host_key;
            result.created = r.created;
            result.started = r.started;
            result.uploaded_agent = r.uploaded_agent;
            result.hooks_ran = r.hooks_ran;
        }
        Err(e) => {
            result.outcome = match e {
                WorkspaceError::HookFailed { hook, code } => Outcome::HookFailed { hook, code, detail: None },
                e => Outcome::Failed { message: e.to_string() },
            };
            if let Ok(Some(r)) = WorkspaceRecord::load(den, &req.workspace_id) {
                result.facts = Some(r.facts());
            }
            let alias = crate::ssh::host_alias(&req.workspace_id);
            if let Ok(Some(key)) = den_state::ssh_config::pinned_host_key(&den.home.known_hosts(), &alias) {
                result.host_key = key;
            }
            let _ = den_state::atomic_write(&key_file(den, &req.workspace_id), req.authorized_key.as_bytes());
        }
    }
    result
}

/// What a `remote-tunnel` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// An SSH session (a session for the machine's inactivity timeout).
    Session,
    /// The credentials relay.
    Credentials,
    /// den's port forwarder: its traffic is activity, its being there is not.
    Forwarder,
}

/// `den agent remote-tunnel`: the container's SSH server on our stdio.
/// A stopped container is started first (its postStartCommand runs), as
/// `den ssh` does on a laptop: `docker exec` refuses a stopped container
/// before reading any input, so the client's first bytes are still unread.
pub fn tunnel_main(home: &Path, context: &str, id: &str, workdir: Option<&str>, kind: TunnelKind) -> i32 {
    watch::apply_docker_env(home);
    let den = Den { home: den_state::Home::at(home), context: context.to_string() };
    let run = || -> Result<i32, String> {
        let rec = WorkspaceRecord::load(&den, id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("workspace `{id}` is not on this machine"))?;
        // The container's direct line on this machine, when it answers
        // (the client asks for a session's folder in the SSH request
        // itself): no `docker exec` at all. Else the exec tunnel below,
        // which also starts a stopped container.
        if kind != TunnelKind::Credentials && !crate::line::forced_exec() {
            if let Ok(stream) = crate::line::connect(&crate::line::folder(&den, id)) {
                touch(home);
                let code = line_tunnel(home, stream, kind == TunnelKind::Forwarder);
                touch(home);
                return Ok(code);
            }
        }
        let via = crate::ssh::engine_via(&den, &rec).map_err(|e| e.to_string())?;
        if kind == TunnelKind::Forwarder {
            let cmd = via.tunnel(&rec, workdir).map_err(|e| e.to_string())?;
            return forwarder_tunnel(home, &cmd);
        }
        if kind == TunnelKind::Credentials {
            let cmd = via.credentials_cmd(&rec).map_err(|e| e.to_string())?;
            let status = cmd.to_command().status().map_err(|e| cmd.spawn_error(e).to_string())?;
            return Ok(status.code().unwrap_or(1));
        }
        let cmd = via.tunnel(&rec, workdir).map_err(|e| e.to_string())?;
        touch(home);
        let (code, not_running) = relay_tunnel(&cmd)?;
        if !not_running {
            touch(home);
            return Ok(code);
        }
        restart(&den, &rec)?;
        let status = cmd.to_command().status().map_err(|e| cmd.spawn_error(e).to_string());
        touch(home);
        Ok(status?.code().unwrap_or(1))
    };
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("den agent: {e}");
            1
        }
    }
}

/// The forwarder's tunnel: bytes pass through here, and a few seconds with
/// traffic mark the machine as used.
fn forwarder_tunnel(home: &Path, cmd: &den_process::Cmd) -> Result<i32, String> {
    let mut c = cmd.to_command();
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(|e| cmd.spawn_error(e).to_string())?;
    let (to, mut from) = (child.stdin.take().expect("piped"), child.stdout.take().expect("piped"));
    pass_through(home, to, &mut from, true);
    let status = child.wait().map_err(|e| cmd.spawn_error(e).to_string())?;
    Ok(status.code().unwrap_or(1))
}

/// The tunnel on the container's direct line: our stdio spliced to its
/// socket, until the agent ends the connection.
fn line_tunnel(home: &Path, stream: std::os::unix::net::UnixStream, forwarder: bool) -> i32 {
    let Ok(to) = stream.try_clone() else { return 1 };
    pass_through(home, LineWriter(to), &mut &stream, forwarder);
    0
}

/// The write half of the line: its end closes the socket's writing side
/// (the agent sees EOF) and keeps the reading side open.
struct LineWriter(std::os::unix::net::UnixStream);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Write);
    }
}

/// Copies our stdin to `to` (in a thread) and `from` to our stdout until
/// `from` ends; with `count`, a few seconds with traffic mark the machine
/// as used (the forwarder's connection is no session by itself).
fn pass_through(home: &Path, mut to: impl Write + Send + 'static, from: &mut dyn std::io::Read, count: bool) {
    use std::sync::atomic::{AtomicU64, Ordering};
    /// Fewer bytes than this in a tick are the connection's own keepalives.
    const TRAFFIC: u64 = 1024;
    let bytes = std::sync::Arc::new(AtomicU64::new(0));
    let copy = |r: &mut dyn std::io::Read, w: &mut dyn Write, bytes: &AtomicU64| {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = r.read(&mut buf) {
            if w.write_all(&buf[..n]).and_then(|_| w.flush()).is_err() {
                break;
            }
            bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    };
    {
        let bytes = bytes.clone();
        std::thread::spawn(move || {
            copy(&mut std::io::stdin().lock(), &mut to, &bytes);
            drop(to);
        });
    }
    if count {
        let (bytes, home) = (bytes.clone(), home.to_path_buf());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(2));
            if bytes.swap(0, Ordering::Relaxed) > TRAFFIC {
                touch(&home);
            }
        });
    }
    copy(from, &mut std::io::stdout().lock(), &bytes);
}

/// Runs the tunnel, passing its stderr on except the engine's "is not
/// running", which it reports instead.
fn relay_tunnel(cmd: &den_process::Cmd) -> Result<(i32, bool), String> {
    let mut c = cmd.to_command();
    c.stderr(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(|e| cmd.spawn_error(e).to_string())?;
    let stderr = child.stderr.take().expect("piped");
    let mut not_running = false;
    let mut out = std::io::stderr();
    for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
        if den_driver::phrases::says_not_running(&line) {
            not_running = true;
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    let status = child.wait().map_err(|e| cmd.spawn_error(e).to_string())?;
    Ok((status.code().unwrap_or(1), not_running && !status.success()))
}

fn key_file(den: &Den, id: &str) -> PathBuf {
    den.home.workspace_dir(&den.context, id).join("authorized_key")
}

/// Brings a stopped workspace on this machine up again, telling the client
/// on stderr.
fn restart(den: &Den, rec: &WorkspaceRecord) -> Result<(), String> {
    struct ToStderr;
    impl Reporter for ToStderr {
        fn phase(&mut self, _: &str, _: &str) {}
        fn line(&mut self, text: &str) {
            eprintln!("{text}");
        }
    }
    let key = std::fs::read_to_string(key_file(den, &rec.id)).map_err(|e| format!("reading the workspace key: {e}"))?;
    let opts = UpOptions {
        workspace: crate::Source { source: rec.local_folder.clone(), id: Some(rec.id.clone()), ..Default::default() },
        authorized_key: Some(key.trim().to_string()),
        skip_initialize: true,
        credentials: Some(rec.credentials),
        ..Default::default()
    };
    crate::up(den, &opts, &mut ToStderr).map(|_| ()).map_err(|e| e.to_string())
}

/// `den agent remote-op OP`: stop, delete, status or logs of a workspace
/// here.
pub fn op_main(home: &Path, context: &str, op: &str, id: &str) -> i32 {
    watch::apply_docker_env(home);
    let den = Den { home: den_state::Home::at(home), context: context.to_string() };
    let r = match op {
        "stop" => crate::stop(&den, id, &mut crate::Quiet).map(|_| String::new()),
        "delete" => delete_here(&den, home, id).map(|_| String::new()),
        "status" => crate::status(&den, id).map(|s| s.to_string()),
        "logs" => crate::logs(&den, id),
        _ => {
            eprintln!("den agent: unknown operation {op}");
            return 2;
        }
    };
    match r {
        Ok(text) => {
            if !text.is_empty() {
                println!("{text}");
            }
            0
        }
        Err(e) => {
            eprintln!("den agent: {e}");
            1
        }
    }
}

/// Deletes the workspace (one that is gone already is fine) and its files
/// on this machine.
fn delete_here(den: &Den, home: &Path, id: &str) -> crate::Result<()> {
    match crate::delete(den, id, true, &mut crate::Quiet) {
        Ok(()) | Err(WorkspaceError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let content = content_dir(home, &den.context, id);
    crate::record::remove_dir(&content)?;
    let _ = std::fs::remove_file(content.with_extension("recreate"));
    Ok(())
}

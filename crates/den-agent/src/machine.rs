//! The agent on a machine (a host reached through a provider's `command`),
//! and in a pod for the files: it keeps its own den state there (the "agent
//! home") and drives that machine's docker engine with den-workspace, the
//! same code as `den up` on a laptop.
//!
//! - `den agent remote-up`: reads a [`RemoteUpRequest`] line on stdin,
//!   receives the workspace's files when it needs them (a tar stream after
//!   `DEN-SEND-CONTENT`), brings the container up and prints
//!   `DEN-RESULT <RemoteUpResult>`.
//! - `den agent remote-tunnel`: `docker exec`s the container's SSH server
//!   on its own stdio — the middle hop of `den ssh`.
//! - `den agent remote-op stop|delete|status`.
//! - `den agent machine-watch`: stops the containers and runs the
//!   provider's shutdown command once no tunnel has been open for
//!   `inactivityTimeout`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::protocol::{PHASE_PREFIX, RESULT_PREFIX};

use crate::protocol::transfer::{receive, unpack_into, MachineWatch, RemoteUpRequest, RemoteUpResult, CONTENT_MARKER};
use crate::protocol::{Outcome, NO_CONTENT, READY, SEND_CONTENT};
use den_workspace::{Den, Reporter, UpOptions};

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
    if !den_workspace::context::exists(&den, context) {
        den_state::create_private_dir(&den.home.context_dir(context)).map_err(|e| e.to_string())?;
    }
    Ok(den)
}

/// Phases and lines go to stdout for den on the other side.
struct Relay;

impl Reporter for Relay {
    fn phase(&mut self, name: &str, detail: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{PHASE_PREFIX}{name}\t{detail}");
        let _ = out.flush();
    }
    fn line(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

fn answer(r: &RemoteUpResult) -> i32 {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{RESULT_PREFIX}{}", serde_json::to_string(r).expect("serialises"));
    let _ = out.flush();
    if r.outcome.is_done() {
        0
    } else {
        1
    }
}

/// `den agent remote-up`.
pub fn remote_up_main() -> i32 {
    ready();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = String::new();
    let req: RemoteUpRequest = match input.read_line(&mut line).map(|_| serde_json::from_str(&line)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return fail(format!("bad request: {e}")),
        Err(e) => return fail(format!("reading the request: {e}")),
    };
    let home = agent_home(&req.data_path);
    let content = content_dir(&home, &req.context, &req.workspace_id);
    // A container made from an earlier copy still mounts that copy: new
    // files mean a new container.
    // The need survives a failed up (a marker beside the files).
    let pending = content.with_extension("recreate");
    let mut replaced = pending.exists();
    // A git SOURCE is cloned here, with the client's credentials and ssh
    // through the relay; nothing is sent.
    let mut relay = None;
    let git = match &req.git {
        Some(g) => match den_workspace::RemoteSource::from_git_clone(g) {
            Ok(r) => Some(r),
            Err(e) => return fail(format!("bad request: {e}")),
        },
        None => None,
    };
    if git.is_some() {
        if !on_path("git") {
            println!("{NO_CONTENT}");
            return fail_at(
                &home,
                "git is not installed on this machine; install it there to clone the workspace's repository".into(),
            );
        }
        // The relay reads stdin on from where the request ended.
        drop(input);
        match crate::clone_relay::CloneRelay::start(&home) {
            Ok(r) => relay = Some(r),
            Err(e) => {
                println!("{NO_CONTENT}");
                return fail_at(&home, format!("starting the clone relay in {}: {e}", home.display()));
            }
        }
    } else {
        if req.fresh_content || !content.is_dir() {
            if content.is_dir() {
                replaced = true;
                let _ = std::fs::write(&pending, b"");
            }
            println!("{SEND_CONTENT}");
            let _ = std::io::stdout().flush();
            if let Err(e) = receive(&mut input, &content) {
                return fail_at(&home, format!("receiving the workspace's files into {}: {e}", content.display()));
            }
        } else {
            println!("{NO_CONTENT}");
            let _ = std::io::stdout().flush();
        }
        drop(input);
    }
    if !on_path(&req.docker_path) {
        return fail_at(
            &home,
            if req.docker_install {
                format!(
                "`{}` is not installed on this machine; the provider asks den to install docker (agent.docker.install), which den does not do: install it on the machine",
                req.docker_path
            )
            } else {
                format!("`{}` is not installed on this machine (agent.docker.install is false)", req.docker_path)
            },
        );
    }
    if let Err(e) = den_state::write_json(&docker_env_file(&home), &req.docker_env) {
        return fail_at(&home, format!("writing {}: {e}", docker_env_file(&home).display()));
    }
    apply_docker_env(&home);
    let den = match agent_den(&home, &req.context) {
        Ok(d) => d,
        Err(e) => return fail_at(&home, format!("making the agent home {}: {e}", home.display())),
    };
    match &req.machine_watch {
        Some(w) => {
            if let Err(e) = start_machine_watch(&home, w) {
                Relay.line(&format!("warning: the machine's inactivity watcher did not start: {e}"));
            }
        }
        // No timeout (any more): a running watcher ends on its next tick.
        None => {
            let _ = std::fs::remove_file(watch_file(&home));
        }
    }
    // An `up` is activity: a long build must not look like an idle machine.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let heartbeat = {
        let home = home.clone();
        std::thread::spawn(move || {
            touch(&home);
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                finished.recv_timeout(Duration::from_millis(500))
            {
                touch(&home);
            }
        })
    };
    let mut options = vec![("DOCKER_PATH".to_string(), req.docker_path.clone())];
    if !req.container_inactivity_timeout.is_empty() {
        options.push(("INACTIVITY_TIMEOUT".into(), req.container_inactivity_timeout.clone()));
    }
    let opts = UpOptions {
        workspace: den_workspace::Source {
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
                r => den_workspace::features::Prebuild::new(r, false).ok(),
            },
            workspace_env: req.workspace_env.clone(),
            devcontainer_image: Some(req.devcontainer_image.clone()).filter(|i| !i.is_empty()),
            git_env: relay.as_ref().map(|r| r.env()).unwrap_or_default(),
            ..Default::default()
        },
        recreate: req.recreate || replaced,
        reset: req.reset,
        ssh_config: None,
        machine: None,
        authorized_key: Some(req.authorized_key.clone()),
        // It ran where the files are: on the client, or here for a clone.
        skip_initialize: req.git.is_none(),
        credentials: Some(req.credentials),
        lockfile: Default::default(),
    };
    let mut result = RemoteUpResult { home: home.display().to_string(), ..Default::default() };
    let up = den_workspace::up(&den, &opts, &mut Relay);
    if let Some(r) = relay {
        r.close();
    }
    match up {
        Ok(r) => {
            result.commit = r.record.source.as_ref().map(|s| s.commit.clone()).unwrap_or_default();
            let _ = den_state::atomic_write(&key_file(&den, &req.workspace_id), req.authorized_key.as_bytes());
            let _ = std::fs::remove_file(&pending);
            result.outcome = Outcome::Done;
            result.facts = Some(r.record.facts());
            result.host_key = r.host_key;
            result.created = r.created;
            result.started = r.started;
            result.uploaded_agent = r.uploaded_agent;
            result.hooks_ran = r.hooks_ran;
        }
        Err(e) => {
            match e {
                den_workspace::WorkspaceError::HookFailed { hook, code } => {
                    result.outcome = Outcome::HookFailed { hook, code, detail: None }
                }
                e => result.outcome = Outcome::Failed { message: e.to_string() },
            }
            // What exists despite the failure, so den can still reach it.
            if let Ok(Some(r)) = den_workspace::WorkspaceRecord::load(&den, &req.workspace_id) {
                result.facts = Some(r.facts());
            }
            let alias = den_workspace::ssh::host_alias(&req.workspace_id);
            if let Ok(Some(key)) = den_state::ssh_config::pinned_host_key(&den.home.known_hosts(), &alias) {
                result.host_key = key;
            }
            let _ = den_state::atomic_write(&key_file(&den, &req.workspace_id), req.authorized_key.as_bytes());
        }
    }
    drop(done);
    let _ = heartbeat.join();
    touch(&home);
    answer(&result)
}

/// True when `program` is a path that exists or a name found on PATH.
fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file())).unwrap_or(false)
}

fn ready() {
    println!("{READY}");
    let _ = std::io::stdout().flush();
}

fn fail(msg: String) -> i32 {
    answer(&RemoteUpResult { outcome: Outcome::Failed { message: msg }, ..Default::default() })
}

/// A failure once the agent home is known: den can still reach (and
/// delete) what is there.
fn fail_at(home: &Path, msg: String) -> i32 {
    let outcome = Outcome::Failed { message: msg };
    answer(&RemoteUpResult { outcome, home: home.display().to_string(), ..Default::default() })
}

/// In a pod: where the workspace's files go ($DEN_CONTENT_DIR, the
/// volume's mount point).
fn content_target() -> Option<PathBuf> {
    std::env::var_os(crate::protocol::transfer::CONTENT_DIR_ENV).map(PathBuf::from)
}

/// In a pod: the marker (on the volume) that the files arrived.
fn mark_content_received() {
    let marker = Path::new(crate::protocol::DATA_DIR).join(CONTENT_MARKER);
    let _ = std::fs::create_dir_all(crate::protocol::DATA_DIR).and_then(|_| std::fs::write(marker, b""));
}

/// `den agent clone-content` (kubernetes): clones the workspace's
/// repository (the request) into $DEN_CONTENT_DIR, the volume's mount
/// point, in place, with the client's credentials and ssh through the
/// clone relay. Without git in the image it says [`NO_GIT`] and den sends
/// the files instead.
pub fn clone_content_main() -> i32 {
    let Some(dir) = content_target() else {
        return fail(format!("{} is not set", crate::protocol::transfer::CONTENT_DIR_ENV));
    };
    ready();
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        return fail(format!("reading the request: {e}"));
    }
    let source = match serde_json::from_str::<crate::protocol::transfer::GitClone>(&line)
        .map_err(|e| e.to_string())
        .and_then(|g| den_workspace::RemoteSource::from_git_clone(&g).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => return fail(format!("bad request: {e}")),
    };
    let den_source::Spec::Git(g) = &source.spec else { return fail("bad request: not a git source".into()) };
    if !on_path("git") {
        println!("{NO_CONTENT}");
        return answer(&RemoteUpResult { outcome: Outcome::NoGit, ..Default::default() });
    }
    let data = Path::new(crate::protocol::DATA_DIR);
    let relay = match std::fs::create_dir_all(data).and_then(|_| crate::clone_relay::CloneRelay::start(data)) {
        Ok(r) => r,
        Err(e) => {
            println!("{NO_CONTENT}");
            return fail(format!("starting the clone relay: {e}"));
        }
    };
    let incoming = dir.join(".den-incoming");
    let _ = std::fs::remove_dir_all(&incoming);
    Relay.phase("source", &format!("cloning {} in the pod", den_source::redact(&g.url)));
    let cloned = den_source::clone_with_env(
        g,
        source.strategy,
        source.recursive_submodules,
        &relay.env(),
        &incoming,
        &mut |l| Relay.line(&format!("  │ {l}")),
    );
    relay.close();
    let cloned = match cloned {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&incoming);
            return fail(e.to_string());
        }
    };
    // The clone (or its subpath) becomes the volume's content.
    let from = match &g.subpath {
        Some(sub) => incoming.join(sub),
        None => incoming.clone(),
    };
    // The subpath is a folder of the repository, not a link out of it.
    if !std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_dir()) {
        let _ = std::fs::remove_dir_all(&incoming);
        return fail(format!("the repository's `{}` is not a folder", g.subpath.as_deref().unwrap_or("")));
    }
    let moved = (|| -> std::io::Result<()> {
        for entry in std::fs::read_dir(&from)? {
            let entry = entry?;
            let to = dir.join(entry.file_name());
            if to.symlink_metadata().is_ok() {
                remove_dir(&to).or_else(|_| std::fs::remove_file(&to))?;
            }
            std::fs::rename(entry.path(), to)?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&incoming);
    if let Err(e) = moved {
        return fail(format!("moving the clone into {}: {e}", dir.display()));
    }
    mark_content_received();
    answer(&RemoteUpResult { outcome: Outcome::Done, commit: cloned.commit, ..Default::default() })
}

/// `den agent receive-content` (kubernetes): unpacks the workspace's files
/// into $DEN_CONTENT_DIR, a volume's mount point, in place.
pub fn receive_content_main() -> i32 {
    let Some(dir) = content_target() else {
        return fail(format!("{} is not set", crate::protocol::transfer::CONTENT_DIR_ENV));
    };
    ready();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = String::new();
    if let Err(e) = input.read_line(&mut line) {
        return fail(format!("reading the request: {e}"));
    }
    println!("{SEND_CONTENT}");
    let _ = std::io::stdout().flush();
    let r = std::fs::create_dir_all(&dir).and_then(|_| unpack_into(&mut input, &dir));
    match r {
        Ok(()) => {
            mark_content_received();
            answer(&RemoteUpResult { outcome: Outcome::Done, ..Default::default() })
        }
        Err(e) => fail(format!("unpacking the workspace's files into {}: {e}", dir.display())),
    }
}

/// `den agent remote-tunnel`: the container's SSH server on our stdio.
/// A stopped container is started first (its postStartCommand runs), as
/// `den ssh` does on a laptop: `docker exec` refuses a stopped container
/// before reading any input, so the client's first bytes are still unread.
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

pub fn tunnel_main(home: &Path, context: &str, id: &str, workdir: Option<&str>, kind: TunnelKind) -> i32 {
    apply_docker_env(home);
    let den = Den { home: den_state::Home::at(home), context: context.to_string() };
    let run = || -> Result<i32, String> {
        let rec = den_workspace::WorkspaceRecord::load(&den, id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("workspace `{id}` is not on this machine"))?;
        let via = den_workspace::ssh::engine_via(&den, &rec).map_err(|e| e.to_string())?;
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
    use std::sync::atomic::{AtomicU64, Ordering};
    /// Fewer bytes than this in a tick are the connection's own keepalives.
    const TRAFFIC: u64 = 1024;
    let mut c = cmd.to_command();
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(|e| cmd.spawn_error(e).to_string())?;
    let (mut to, mut from) = (child.stdin.take().expect("piped"), child.stdout.take().expect("piped"));
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
    {
        let (bytes, home) = (bytes.clone(), home.to_path_buf());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(2));
            if bytes.swap(0, Ordering::Relaxed) > TRAFFIC {
                touch(&home);
            }
        });
    }
    copy(&mut from, &mut std::io::stdout().lock(), &bytes);
    let status = child.wait().map_err(|e| cmd.spawn_error(e).to_string())?;
    Ok(status.code().unwrap_or(1))
}

/// Runs the tunnel, passing its stderr on except docker's "is not
/// running", which it reports instead.
fn relay_tunnel(cmd: &den_process::Cmd) -> Result<(i32, bool), String> {
    let mut c = cmd.to_command();
    c.stderr(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(|e| cmd.spawn_error(e).to_string())?;
    let stderr = child.stderr.take().expect("piped");
    let mut not_running = false;
    let mut out = std::io::stderr();
    for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
        if line.contains("is not running") {
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
fn restart(den: &Den, rec: &den_workspace::WorkspaceRecord) -> Result<(), String> {
    struct ToStderr;
    impl Reporter for ToStderr {
        fn phase(&mut self, _: &str, _: &str) {}
        fn line(&mut self, text: &str) {
            eprintln!("{text}");
        }
    }
    let key = std::fs::read_to_string(key_file(den, &rec.id)).map_err(|e| format!("reading the workspace key: {e}"))?;
    let opts = UpOptions {
        workspace: den_workspace::Source {
            source: rec.local_folder.clone(),
            id: Some(rec.id.clone()),
            ..Default::default()
        },
        authorized_key: Some(key.trim().to_string()),
        skip_initialize: true,
        credentials: Some(rec.credentials),
        ..Default::default()
    };
    den_workspace::up(den, &opts, &mut ToStderr).map(|_| ()).map_err(|e| e.to_string())
}

/// Removes a folder and what is in it; one that is not there is fine.
fn remove_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `den agent remote-op OP`: stop, delete or status of a workspace here.
pub fn op_main(home: &Path, context: &str, op: &str, id: &str) -> i32 {
    apply_docker_env(home);
    let den = Den { home: den_state::Home::at(home), context: context.to_string() };
    let mut quiet = den_workspace::Quiet;
    let r = match op {
        "stop" => den_workspace::stop(&den, id, &mut quiet).map(|_| String::new()),
        "delete" => den_workspace::delete(&den, id, true, &mut quiet)
            .or_else(|e| match e {
                den_workspace::WorkspaceError::NotFound(_) => Ok(()),
                e => Err(e),
            })
            .and_then(|_| {
                remove_dir(&content_dir(home, context, id)).map_err(|source| den_workspace::WorkspaceError::Io {
                    action: format!("removing {}", content_dir(home, context, id).display()),
                    source,
                })
            })
            .map(|_| {
                let _ = std::fs::remove_file(content_dir(home, context, id).with_extension("recreate"));
            })
            .map(|_| String::new()),
        "status" => den_workspace::status(&den, id).map(|s| s.to_string()),
        "logs" => den_workspace::logs(&den, id),
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

fn docker_env_file(home: &Path) -> PathBuf {
    home.join("docker-env.json")
}

/// The provider's `agent.docker.env`, saved by `remote-up`, for every
/// docker command the agent runs on this machine.
fn apply_docker_env(home: &Path) {
    let env: Vec<(String, String)> = den_state::read_json(&docker_env_file(home)).ok().flatten().unwrap_or_default();
    for (k, v) in env {
        // SAFETY: called first thing, before any thread starts.
        unsafe { std::env::set_var(k, v) };
    }
}

fn activity_file(home: &Path) -> PathBuf {
    home.join("last-activity")
}

fn touch(home: &Path) {
    let _ = std::fs::create_dir_all(home);
    let _ = std::fs::write(activity_file(home), b"");
}

fn watch_file(home: &Path) -> PathBuf {
    home.join("machine-watch.json")
}

/// True when a process of ours with `needle` in its arguments and this
/// home runs (`remote-tunnel` or `machine-watch`).
fn running(home: &Path, needle: &str) -> bool {
    let home = home.as_os_str().as_encoded_bytes();
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc").into_iter().flatten().flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me.as_str() {
            return false;
        }
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                // den's port forwarder is no session (its traffic counts).
                args.contains(&needle.as_bytes()) && args.contains(&home) && !args.contains(&&b"--forwarder"[..])
            })
            .unwrap_or(false)
    })
}

fn start_machine_watch(home: &Path, w: &MachineWatch) -> std::io::Result<()> {
    std::fs::create_dir_all(home)?;
    den_state::write_json(&watch_file(home), w).map_err(std::io::Error::other)?;
    touch(home);
    if running(home, "machine-watch") {
        return Ok(()); // it re-reads the file on every tick
    }
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["agent", "machine-watch", "--home"])
        .arg(home)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(home.join("machine-watch.log"))?);
    // SAFETY: setsid between fork and exec: the watcher outlives this
    // session's tunnel.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn().map(|_| ())
}

/// `den agent machine-watch`: returns once it shut the machine down.
pub fn machine_watch_main(home: &Path) -> i32 {
    apply_docker_env(home);
    let started = SystemTime::now();
    loop {
        let Ok(Some(w)) = den_state::read_json::<MachineWatch>(&watch_file(home)) else {
            return 0; // the machine's state is gone: nothing to watch
        };
        if w.timeout_secs == 0 {
            return 0;
        }
        let timeout = Duration::from_secs(w.timeout_secs);
        let tick = (timeout / 10).clamp(Duration::from_millis(200), Duration::from_secs(30));
        std::thread::sleep(tick);
        if running(home, "remote-tunnel") {
            touch(home);
            continue;
        }
        let last = std::fs::metadata(activity_file(home)).and_then(|m| m.modified()).unwrap_or(started);
        if SystemTime::now().duration_since(last).unwrap_or_default() < timeout {
            continue;
        }
        eprintln!("den agent: no session for {}s: stopping the workspaces and the machine", w.timeout_secs);
        stop_all(home);
        let _ = std::fs::remove_file(watch_file(home));
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(&w.shutdown);
        for (k, v) in &w.env {
            cmd.env(k, v);
        }
        match cmd.status() {
            Ok(s) if s.success() => return 0,
            Ok(s) => eprintln!("den agent: the shutdown command {s}"),
            Err(e) => eprintln!("den agent: running the shutdown command: {e}"),
        }
        return 1;
    }
}

/// Stops every running workspace container of this agent home.
fn stop_all(home: &Path) {
    let den = Den { home: den_state::Home::at(home), context: "default".into() };
    for context in den_workspace::context::list(&den).unwrap_or_default() {
        let den = Den { home: den.home.clone(), context };
        for rec in den_workspace::WorkspaceRecord::all(&den).unwrap_or_default() {
            if let Err(e) = den_workspace::stop(&den, &rec.id, &mut den_workspace::Quiet) {
                eprintln!("den agent: stopping {}: {e}", rec.id);
            }
        }
    }
}

//! den's port forwarder: one detached process per workspace (started by
//! `den up`) that holds one SSH connection through the workspace's tunnel
//! and keeps its ports on 127.0.0.1 for as long as the workspace runs,
//! with no session open. See `docs/ports.md`.
//!
//! The process (`den forward-daemon ID`, [`daemon::run`]) is alone per
//! workspace (a lock in the workspace's folder), logs to `forwarder.log`
//! there, and answers on a Unix socket: [`Request`] as one JSON line,
//! [`Reply`] as one JSON line. This module is the other end of that
//! socket, for `den ports`, `den forward`, `up`, `stop` and `delete`.

pub mod daemon;
pub mod rules;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use den_workspace::Den;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no port forwarder runs for workspace `{0}` (`den up {0}` starts one)")]
    NotRunning(String),
    #[error("the port forwarder of `{id}` said: {message}")]
    Refused { id: String, message: String },
    #[error("talking to the port forwarder of `{id}`: {source}")]
    Io {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the port forwarder of `{id}`: {message}")]
    Start { id: String, message: String },
}

pub type Result<T> = std::result::Result<T, ForwardError>;

/// Where a workspace's forwarder keeps its files.
pub struct Paths {
    pub lock: PathBuf,
    pub pid: PathBuf,
    pub log: PathBuf,
    pub socket: PathBuf,
}

pub fn paths(den: &Den, id: &str) -> Paths {
    let dir = den.home.workspace_dir(&den.context, id);
    let mut socket = dir.join("forwarder.sock");
    // A Unix socket's path has room for about 100 bytes: a long DEN_HOME
    // gets one in this user's own folder in the temporary folder (see
    // [`private_tmp`]), named after the workspace's folder.
    if socket.as_os_str().len() > 100 {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        socket =
            std::env::temp_dir().join(format!("den-{uid}")).join(format!("forward-{}.sock", den_state::path_tag(&dir)));
    }
    Paths { lock: dir.join("forwarder.lock"), pid: dir.join("forwarder.pid"), log: dir.join("forwarder.log"), socket }
}

/// Makes sure the folder of a socket in the temporary folder is this
/// user's and private (0700), so nobody else can put a socket there.
pub(crate) fn private_tmp(socket: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let Some(dir) = socket.parent() else { return Ok(()) };
    if !dir.starts_with(std::env::temp_dir()) || dir == std::env::temp_dir() {
        return Ok(());
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let m = std::fs::symlink_metadata(dir)?;
    // SAFETY: geteuid has no preconditions.
    if !m.is_dir() || m.uid() != unsafe { libc::geteuid() } || m.permissions().mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!("{} is not a private folder of this user", dir.display())));
    }
    Ok(())
}

/// The uid of the process at the other end of `conn`.
fn peer_uid(conn: &UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a ucred of the given length.
    let r = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut libc::ucred as *mut libc::c_void,
            &mut len,
        )
    };
    (r == 0).then_some(cred.uid)
}

/// A question for the forwarder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    /// The ports it forwards.
    List,
    /// Forward `host:port` (as the workspace sees them) on `local_port`
    /// (default: the same number, else the next free one).
    #[serde(rename_all = "camelCase")]
    Add { host: String, port: u16, local_port: Option<u16> },
    /// Stop forwarding the workspace's `port` (or the local port of that
    /// number).
    Stop { port: u16 },
    /// Read the workspace's record again (after `up`).
    Reload,
    /// Stop forwarding and exit.
    Quit,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Reply {
    pub ok: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Whether the SSH connection is up now.
    pub connected: bool,
    pub ports: Vec<PortView>,
}

/// One forwarded port, as `den ports` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortView {
    /// The port in the workspace.
    pub port: u16,
    /// The host it is reached at from the workspace (`localhost`, or a
    /// compose service).
    pub host: String,
    /// `127.0.0.1:PORT` here; empty when it could not be bound.
    pub local: String,
    pub label: String,
    /// `forwardPorts`, `appPort`, `auto` or `den forward`.
    pub origin: String,
    /// The command line of the process listening in the workspace.
    pub process: String,
    /// Why it is not forwarded, or what changed (a busy local port).
    pub note: String,
}

/// Asks the running forwarder of `id`.
pub fn ask(den: &Den, id: &str, req: &Request) -> Result<Reply> {
    let p = paths(den, id);
    let mut conn = UnixStream::connect(&p.socket).map_err(|_| ForwardError::NotRunning(id.to_string()))?;
    let io = |source| ForwardError::Io { id: id.to_string(), source };
    // Only a forwarder of this user is believed.
    // SAFETY: geteuid has no preconditions.
    if peer_uid(&conn) != Some(unsafe { libc::geteuid() }) {
        return Err(io(std::io::Error::other(format!("{} is not this user's", p.socket.display()))));
    }
    conn.set_read_timeout(Some(Duration::from_secs(10))).map_err(io)?;
    let line = serde_json::to_string(req).expect("serialises");
    writeln!(conn, "{line}").map_err(io)?;
    let mut answer = String::new();
    BufReader::new(conn).read_line(&mut answer).map_err(io)?;
    let reply: Reply = serde_json::from_str(&answer).map_err(|e| io(std::io::Error::other(e)))?;
    if !reply.ok {
        return Err(ForwardError::Refused { id: id.to_string(), message: reply.error });
    }
    Ok(reply)
}

/// True while a forwarder answers for the workspace. (Asking, not taking
/// its lock: a forwarder that starts meanwhile must get the lock.)
pub fn running(den: &Den, id: &str) -> bool {
    ask(den, id, &Request::List).is_ok()
}

/// True while some forwarder process holds the workspace's lock.
fn holds_lock(den: &Den, id: &str) -> bool {
    let p = paths(den, id);
    p.lock.exists() && matches!(den_state::Lock::try_acquire(&p.lock), Ok(None))
}

/// Starts the forwarder of `id` (the program `exe`, which is den), or
/// tells the running one to read the record again; returns what it
/// forwards once it answers (with `wait` false, a new one is not waited
/// for: nothing is configured to show yet).
pub fn start(den: &Den, id: &str, exe: &Path, wait: bool) -> Result<Reply> {
    if running(den, id) {
        if let Ok(r) = ask(den, id, &Request::Reload) {
            return Ok(r);
        }
    }
    let p = paths(den, id);
    let fail = |message: String| ForwardError::Start { id: id.to_string(), message };
    if let Some(dir) = p.log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p.log)
        .map_err(|e| fail(format!("{}: {e}", p.log.display())))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--home").arg(den.home.root()).arg("--context").arg(&den.context).arg("forward-daemon").arg(id);
    cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone().map_err(|e| fail(e.to_string()))?).stderr(log);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid between fork and exec: the forwarder leaves den's
        // session, so a closed terminal or Ctrl-C does not reach it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(|e| fail(format!("{}: {e}", exe.display())))?;
    if !wait {
        return Ok(Reply { ok: true, ..Default::default() });
    }
    // It answers once its listeners are bound (before it connects).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match ask(den, id, &Request::List) {
            // Not waited for: it outlives den.
            Ok(r) => return Ok(r),
            Err(_) if Instant::now() < deadline => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(fail(format!("it exited ({status}); see {}", p.log.display())));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(fail(format!("it does not answer ({e}); see {}", p.log.display()))),
        }
    }
}

/// Stops the forwarder of `id` if one runs (before `stop` and `delete`).
pub fn shutdown(den: &Den, id: &str) {
    if !holds_lock(den, id) {
        return;
    }
    let _ = ask(den, id, &Request::Quit);
    let deadline = Instant::now() + Duration::from_secs(3);
    while holds_lock(den, id) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if holds_lock(den, id) {
        // It does not answer: end it, if the pid still is a forwarder.
        let p = paths(den, id);
        if let Some(pid) = std::fs::read_to_string(&p.pid).ok().and_then(|t| t.trim().parse::<i32>().ok()) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline.windows(b"forward-daemon".len()).any(|w| w == b"forward-daemon") {
                // SAFETY: kill(2) of a process checked to be den's forwarder.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_on_the_wire() {
        let r = Request::Add { host: "db".into(), port: 5432, local_port: Some(15432) };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"op":"add","host":"db","port":5432,"localPort":15432}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        assert_eq!(serde_json::to_string(&Request::Quit).unwrap(), r#"{"op":"quit"}"#);
    }

    #[test]
    fn a_long_home_gets_a_short_socket() {
        let den = Den { home: den_state::Home::at("/tmp/x"), context: "default".into() };
        assert!(paths(&den, "ws").socket.starts_with("/tmp/x"));
        let long = format!("/tmp/{}", "h".repeat(120));
        let den = Den { home: den_state::Home::at(&long), context: "default".into() };
        let s = paths(&den, "ws").socket;
        assert!(s.as_os_str().len() < 100 && !s.starts_with(&long), "{}", s.display());
        private_tmp(&s).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(s.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        // The same workspace always gets the same one.
        assert_eq!(paths(&den, "ws").socket, s);
        assert_ne!(paths(&den, "other").socket, s);
    }
}

//! The agent: what den does inside a workspace container ([`setup`],
//! [`hooks`], [`ssh`], [`line`], [`credentials`], [`inactivity`], [`ports`],
//! [`extensions`]): it sets the workspace up and serves SSH. It is a leaf:
//! den on a machine or in a pod (`den_workspace::far`) is orchestration and
//! lives with it, so the container agent is not built against it.

pub mod credentials;
pub mod extensions;
pub mod hooks;
pub mod inactivity;
pub mod line;
pub mod passwd;
pub mod ports;
pub mod setup;
pub mod ssh;

pub use den_protocol as protocol;
pub use den_protocol::DATA_DIR;

/// Where the agent's files live: /var/lib/den, or /tmp/den when that
/// cannot be made (a read-only image).
pub fn data_dir() -> std::path::PathBuf {
    let preferred = std::path::Path::new(DATA_DIR);
    if std::fs::create_dir_all(preferred.join("markers")).is_ok() {
        return preferred.to_path_buf();
    }
    let fallback = std::path::PathBuf::from("/tmp/den");
    let _ = std::fs::create_dir_all(fallback.join("markers"));
    fallback
}

/// True when `pid` is this agent's `den agent SUB`.
/// The subcommand of the direct line's server (docs/line.md).
pub(crate) const LINE_SERVER: &str = "line-server";

pub(crate) fn is_agent(pid: i32, sub: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0).collect::<Vec<_>>().windows(2).any(|w| w[0] == b"agent" && w[1] == sub.as_bytes())
        })
        .unwrap_or(false)
}

/// The pid in `pidfile`, when that process is still `den agent SUB`.
pub(crate) fn running(pidfile: &std::path::Path, sub: &str) -> Option<i32> {
    let pid = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    is_agent(pid, sub).then_some(pid)
}

/// Starts `den agent ARGS…` in a session of its own (it outlives the
/// `docker exec` that started it) and writes its pid to `pidfile`.
pub(crate) fn spawn_detached(pidfile: &std::path::Path, args: &[&str]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("agent")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid between fork and exec: the process leaves the exec's
    // session so it survives it.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| e.to_string())?;
    std::fs::write(pidfile, child.id().to_string()).map_err(|e| e.to_string())
}

//! Stopping an idle container: `containerInactivityTimeout` of the provider
//! (the docker provider's INACTIVITY_TIMEOUT). A watcher process in the
//! container stops it (SIGTERM to PID 1, which den's keep-alive entrypoint
//! turns into a clean exit) once no SSH session has been open for that long.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use den_protocol::parse_duration;

/// The file whose modification time says when the workspace was last used.
pub fn activity_file(data: &Path) -> PathBuf {
    data.join("last-activity")
}

/// Marks the workspace as used now.
pub fn touch(data: &Path) {
    let _ = std::fs::write(activity_file(data), b"");
}

/// True while some `den agent ssh-server` runs in this container, other
/// than den's port forwarder's (whose connections count by themselves,
/// see [`crate::ports`]).
pub fn session_open(data: &Path) -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                    args.windows(2).any(|w| w[0] == b"agent" && w[1] == b"ssh-server")
                })
                .unwrap_or(false)
                && !e
                    .file_name()
                    .to_str()
                    .and_then(|p| p.parse().ok())
                    .is_some_and(|pid| crate::ports::is_forwarder(data, pid))
        })
}

/// The watcher's loop: returns when it stopped the container.
pub fn watch(data: &Path, timeout: Duration) {
    touch(data);
    let tick = (timeout / 10).clamp(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        std::thread::sleep(tick);
        if session_open(data) {
            touch(data);
            continue;
        }
        let last = std::fs::metadata(activity_file(data)).and_then(|m| m.modified()).unwrap_or(SystemTime::now());
        if last.elapsed().unwrap_or_default() >= timeout {
            // SAFETY: kill(2) on PID 1 of this container.
            unsafe {
                libc::kill(1, libc::SIGTERM);
            }
            return;
        }
    }
}

/// Starts the watcher in the background unless one runs already; it
/// outlives the `docker exec` that started it.
pub fn ensure_watcher(data: &Path, timeout: Duration) -> Result<(), String> {
    let pidfile = data.join("inactivity.pid");
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let alive = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.windows(b"inactivity-watch".len()).any(|w| w == b"inactivity-watch"))
                .unwrap_or(false);
            if alive {
                return Ok(());
            }
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["agent", "inactivity-watch", "--timeout-secs", &timeout.as_secs().to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid between fork and exec: the watcher leaves the exec's
    // session so it survives it.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("starting the inactivity watcher: {e}"))?;
    std::fs::write(&pidfile, child.id().to_string()).map_err(|e| e.to_string())?;
    Ok(())
}

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
/// see [`crate::ports`]), or the direct line holds such a connection
/// ([`crate::line::busy`]).
pub fn session_open(data: &Path) -> bool {
    crate::line::busy(data) || exec_session_open(data)
}

fn exec_session_open(data: &Path) -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()))
        .any(|pid| crate::is_agent(pid as i32, "ssh-server") && !crate::ports::is_forwarder(data, pid))
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
    if crate::running(&pidfile, "inactivity-watch").is_some() {
        return Ok(());
    }
    let secs = timeout.as_secs().to_string();
    crate::spawn_detached(&pidfile, &["inactivity-watch", "--timeout-secs", &secs])
        .map_err(|e| format!("starting the inactivity watcher: {e}"))
}

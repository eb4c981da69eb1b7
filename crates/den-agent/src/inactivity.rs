//! Stopping an idle container: `containerInactivityTimeout` of the provider
//! (the docker provider's INACTIVITY_TIMEOUT). A watcher process in the
//! container stops it (SIGTERM to PID 1, which den's keep-alive entrypoint
//! turns into a clean exit) once no SSH session has been open for that long.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
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
/// see [`crate::ports`]), or the direct line's server holds such a
/// connection ([`line_busy`]).
pub fn session_open(data: &Path) -> bool {
    line_busy(data) || exec_session_open(data)
}

/// What the direct line's server (one process, many connections) writes
/// down for this watcher: its pid and how many connections keep the
/// workspace in use.
pub fn busy_file(data: &Path) -> PathBuf {
    data.join("line-busy")
}

/// True while the line's server holds a connection that keeps the
/// workspace in use: any but den's port forwarder's, and any forwarded
/// connection.
fn line_busy(data: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(busy_file(data)) else { return false };
    let mut words = text.split_whitespace();
    let (Some(pid), Some(n)) = (words.next().and_then(|p| p.parse().ok()), words.next()) else { return false };
    n != "0" && crate::is_agent(pid, crate::LINE_SERVER)
}

/// The line server's count of connections that keep the workspace in
/// use, written down ([`busy_file`]) as it changes.
pub struct Busy {
    file: PathBuf,
    count: AtomicUsize,
}

impl Busy {
    /// A count of zero, written down now.
    pub fn at(data: &Path) -> Busy {
        let busy = Busy { file: busy_file(data), count: AtomicUsize::new(0) };
        busy.add(0);
        busy
    }

    pub fn add(&self, n: isize) {
        let now = if n >= 0 {
            self.count.fetch_add(n as usize, Ordering::SeqCst) + n as usize
        } else {
            self.count.fetch_sub(n.unsigned_abs(), Ordering::SeqCst) - n.unsigned_abs()
        };
        let tmp = self.file.with_extension("tmp");
        if std::fs::write(&tmp, format!("{} {now}\n", std::process::id())).is_ok() {
            let _ = std::fs::rename(&tmp, &self.file);
        }
    }
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

//! One dashboard per DEN_HOME: `$DEN_HOME/ui.json` (0600: it holds the
//! token) says where the running one is; a second `den ui` reads it and
//! points there instead of starting another.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Result, UiError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Instance {
    pub pid: u32,
    pub port: u16,
    /// With the token.
    pub url: String,
}

pub fn path(home: &Path) -> PathBuf {
    home.join("ui.json")
}

/// The page that sends the browser on to the running dashboard.
pub fn page(home: &Path) -> PathBuf {
    home.join("ui.html")
}

/// The dashboard that runs for this DEN_HOME: its file names a live
/// process and its port answers. A stale file is left for [`claim`].
pub fn running(home: &Path) -> Option<Instance> {
    let text = std::fs::read_to_string(path(home)).ok()?;
    let inst: Instance = serde_json::from_str(&text).ok()?;
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = inst.pid != std::process::id() && unsafe { libc::kill(inst.pid as i32, 0) } == 0;
    let answers = || {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], inst.port));
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500)).is_ok()
    };
    (alive && answers()).then_some(inst)
}

/// Writes this server's file (0600); removed when the returned guard drops.
pub fn claim(home: &Path, inst: &Instance) -> Result<Claimed> {
    let p = path(home);
    let bytes = serde_json::to_vec_pretty(inst).map_err(|e| UiError::Failed(e.to_string()))?;
    den_state::create_private_dir(home).map_err(|e| UiError::Failed(e.to_string()))?;
    den_state::replace_file(&p, &bytes, 0o600).map_err(|e| UiError::Failed(e.to_string()))?;
    Ok(Claimed { path: p, pid: inst.pid })
}

/// The file of a running server; removed on drop when it is still ours.
pub struct Claimed {
    path: PathBuf,
    pid: u32,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| serde_json::from_str::<Instance>(&t).ok())
            .is_some_and(|i| i.pid == self.pid);
        if ours {
            let _ = std::fs::remove_file(&self.path);
            if let Some(home) = self.path.parent() {
                let _ = std::fs::remove_file(page(home));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_private_found_while_it_answers_and_removed_after() {
        let d = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Another live process (our parent) with a port that answers.
        let other = Instance { pid: std::os::unix::process::parent_id(), port, url: "http://x".into() };
        let claimed = claim(d.path(), &other).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(path(d.path())).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(running(d.path()), Some(other.clone()));
        drop(listener);
        assert_eq!(running(d.path()), None, "a port that no longer answers is not a running dashboard");
        drop(claimed);
        assert!(!path(d.path()).exists());
    }

    #[test]
    fn a_file_of_another_pid_is_not_removed() {
        let d = tempfile::tempdir().unwrap();
        let claimed = claim(d.path(), &Instance { pid: 1, port: 1, url: "u".into() }).unwrap();
        std::mem::forget(claim(d.path(), &Instance { pid: 2, port: 1, url: "u".into() }).unwrap());
        drop(claimed);
        assert!(path(d.path()).exists());
    }
}

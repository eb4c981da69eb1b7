//! The agent without an upload. A container den makes on an engine of this
//! machine gets den's binary through a read-only bind mount instead of a
//! copy through the inject exec: a copy of den's executable kept under
//! DEN_HOME, one folder per fingerprint (`agents/FINGERPRINT/den`, and
//! `den.id`, the marker the inject script reads), mounted at [`MOUNT_DIR`].
//!
//! A folder is written once, whole (a temp folder renamed into place), and
//! never changed or removed afterwards: a container mounts it by path for
//! its whole life (a stopped one mounts it again when it starts), so an
//! upgraded den makes a new folder beside it and a container made before
//! keeps the agent it has. The copies are kept, not pruned.
//!
//! The inject script only probes the mounted path (the `@` of
//! [`candidate`]): when its marker is not this den's fingerprint (den was
//! upgraded since the container was made), the agent is uploaded to the
//! next, writable candidate, as for any container.

use std::path::{Path, PathBuf};

use den_driver::Docker;

use crate::{Den, Reporter, Result, WorkspaceError};

/// Where the folder of den's binary is mounted in the container.
pub(crate) const MOUNT_DIR: &str = "/usr/local/lib/den-agent";

/// The mounted agent as an inject candidate: looked at, never written.
pub(crate) fn candidate() -> String {
    format!("@{MOUNT_DIR}/den")
}

/// The folder of den's binary to mount into a new container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentMount {
    pub source: PathBuf,
}

impl AgentMount {
    /// `docker run --mount` of the folder, read-only.
    pub(crate) fn docker_arg(&self) -> String {
        format!("type=bind,source={},target={MOUNT_DIR},readonly", self.source.display())
    }

    /// The same as a compose service's long-syntax volume.
    pub(crate) fn compose_volume(&self) -> serde_json::Value {
        serde_json::json!({"type": "bind", "source": self.source, "target": MOUNT_DIR, "read_only": true})
    }

    /// True when the engine refused the container because it does not
    /// have the folder (its files are not this machine's after all: den
    /// in a container talking to the host's engine, a remote unix socket).
    pub(crate) fn refused_by(&self, engine_error: &str) -> bool {
        engine_error.contains(&*self.source.to_string_lossy())
    }
}

/// The mount for a new container on `docker`'s engine, its copy made if
/// needed. `None` (and the agent is uploaded as before) when the engine is
/// not on this machine or the copy cannot be made (said to `reporter`).
pub(crate) fn for_new_container(den: &Den, docker: &Docker, reporter: &mut dyn Reporter) -> Option<AgentMount> {
    if !crate::engine_here::engine_is_local(docker) {
        return None;
    }
    match ensure_copy(&den.home.agents_dir()) {
        // `--mount` splits on commas; such a folder is not mounted.
        Ok(source) if !source.to_string_lossy().contains([',', '"']) => Some(AgentMount { source }),
        Ok(_) => None,
        Err(e) => {
            reporter.line(&format!("note: the agent is copied into the container instead of mounted: {e}"));
            None
        }
    }
}

/// The copy of this den's executable for its fingerprint: made once, as a
/// temp folder renamed into place (a rename onto a folder that another den
/// made meanwhile fails, and that one is taken). An existing copy is never
/// written again.
pub(crate) fn ensure_copy(agents: &Path) -> Result<PathBuf> {
    let (fingerprint, size) = crate::inject::agent_fingerprint()?;
    let dir = agents.join(&fingerprint);
    if is_whole(&dir, size) {
        return Ok(dir);
    }
    den_state::create_private_dir(agents)?;
    let tmp = agents.join(format!(".{fingerprint}.tmp.{}", std::process::id()));
    let made = fill(&tmp, &fingerprint, size)
        .and_then(|_| std::fs::rename(&tmp, &dir).or_else(|e| if is_whole(&dir, size) { Ok(()) } else { Err(e) }));
    let _ = std::fs::remove_dir_all(&tmp);
    made.map_err(WorkspaceError::io(format!("making the agent's copy in {}", dir.display())))?;
    Ok(dir)
}

/// Writes den's executable (0755) and its marker into a new folder (0755:
/// the container's users run it; DEN_HOME above it stays private, and a
/// mount needs no way through it).
fn fill(tmp: &Path, fingerprint: &str, size: u64) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let _ = std::fs::remove_dir_all(tmp);
    std::fs::DirBuilder::new().mode(0o755).create(tmp)?;
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755))?;
    let exe = tmp.join("den");
    let copied = std::fs::copy("/proc/self/exe", &exe)?;
    if copied != size {
        return Err(std::io::Error::other(format!("copied {copied} of {size} bytes")));
    }
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))?;
    std::fs::File::open(&exe)?.sync_all()?;
    std::fs::write(tmp.join("den.id"), format!("{fingerprint}\n"))?;
    std::fs::set_permissions(tmp.join("den.id"), std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// A copy with its marker and the executable's full size.
fn is_whole(dir: &Path, size: u64) -> bool {
    dir.join("den.id").is_file() && std::fs::metadata(dir.join("den")).is_ok_and(|m| m.len() == size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_made_once_whole_and_never_written_again() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let home = tempfile::tempdir().unwrap();
        let agents = home.path().join("agents");
        let dir = ensure_copy(&agents).unwrap();
        let (fingerprint, size) = crate::inject::agent_fingerprint().unwrap();
        assert_eq!(dir, agents.join(&fingerprint));
        assert_eq!(std::fs::read_to_string(dir.join("den.id")).unwrap().trim(), fingerprint);
        let exe = std::fs::metadata(dir.join("den")).unwrap();
        assert_eq!((exe.len(), exe.permissions().mode() & 0o777), (size, 0o755));
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(std::fs::metadata(&agents).unwrap().permissions().mode() & 0o777, 0o700);
        // A second call keeps the same file (same inode), and leaves no temp.
        assert_eq!(ensure_copy(&agents).unwrap(), dir);
        assert_eq!(std::fs::metadata(dir.join("den")).unwrap().ino(), exe.ino());
        let names: Vec<_> = std::fs::read_dir(&agents).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from(&fingerprint)]);
    }

    #[test]
    fn a_broken_copy_is_left_alone() {
        let home = tempfile::tempdir().unwrap();
        let agents = home.path().join("agents");
        let (fingerprint, size) = crate::inject::agent_fingerprint().unwrap();
        std::fs::create_dir_all(agents.join(&fingerprint)).unwrap();
        std::fs::write(agents.join(&fingerprint).join("den"), b"short").unwrap();
        // A folder in the way that is not whole is not written over (a
        // container may mount it): no mount, and the agent is uploaded.
        assert!(ensure_copy(&agents).is_err());
        assert!(!is_whole(&agents.join(&fingerprint), size));
    }

    #[test]
    fn the_mount_is_read_only_in_both_spellings() {
        let m = AgentMount { source: PathBuf::from("/h/agents/ab") };
        assert_eq!(m.docker_arg(), "type=bind,source=/h/agents/ab,target=/usr/local/lib/den-agent,readonly");
        assert_eq!(m.compose_volume()["read_only"], true);
        assert!(m.refused_by("invalid mount config for type \"bind\": bind source path does not exist: /h/agents/ab"));
        assert!(!m.refused_by("no such image"));
        assert_eq!(candidate(), "@/usr/local/lib/den-agent/den");
    }
}

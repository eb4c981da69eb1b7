//! What travels between den on the client and den on a machine or in a
//! pod: the `remote-up` request and result, the machine watch settings, and
//! the workspace's files as a tar stream. Both sides use this module; it
//! knows nothing of how either side runs.

use std::io::Write;
use std::path::{Path, PathBuf};

use den_devcontainer::model::ForwardPort;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteUpRequest {
    pub context: String,
    pub workspace_id: String,
    /// The agent home on the machine; empty: `$HOME/.den-agent`.
    pub data_path: String,
    pub docker_path: String,
    pub docker_env: Vec<(String, String)>,
    /// Send the files even when the machine has them (new workspace,
    /// --recreate, --reset).
    pub fresh_content: bool,
    pub recreate: bool,
    pub devcontainer_path: Option<PathBuf>,
    pub fallback_image: String,
    pub container_inactivity_timeout: String,
    pub authorized_key: String,
    pub machine_watch: Option<MachineWatch>,
    /// The manifest's `agent.docker.install`.
    pub docker_install: bool,
    /// The manifest's `agent.injectGitCredentials`/`injectDockerCredentials`.
    pub credentials: crate::Credentials,
    /// Where to look for a prebuilt image (`REGISTRY/NAME`); empty: none.
    pub prebuild_repository: String,
    /// `--workspace-env` values.
    pub workspace_env: Vec<(String, String)>,
    /// `--devcontainer-image`; empty: the configuration's.
    pub devcontainer_image: String,
    /// A git SOURCE: the machine clones it (through the clone relay, see
    /// [`crate::relay`]) instead of receiving files.
    pub git: Option<GitClone>,
    /// `--reset`: clone again.
    pub reset: bool,
}

/// A repository for den on the machine to clone (den-workspace converts it
/// from and to its SOURCE).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitClone {
    /// As given: it may hold a password, which is never written there.
    pub url: String,
    pub branch: String,
    pub commit: String,
    pub pull_request: u64,
    pub subpath: String,
    /// `full`, `blobless`, `treeless` or `shallow`.
    pub strategy: String,
    pub recursive_submodules: bool,
}

/// Machine inactivity: after `timeout_secs` without a tunnel, stop the
/// containers and run `shutdown` (with `env`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MachineWatch {
    pub timeout_secs: u64,
    pub shutdown: String,
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteUpResult {
    pub outcome: crate::Outcome,
    /// The agent home in use on the machine.
    pub home: String,
    /// What the machine's record says of the workspace, whenever it has
    /// one (also after a failed hook: the container is there).
    pub facts: Option<WorkspaceFacts>,
    pub host_key: String,
    pub created: bool,
    pub started: bool,
    pub uploaded_agent: bool,
    pub hooks_ran: Vec<String>,
    /// A git SOURCE: the commit the machine's clone has checked out.
    pub commit: String,
}

/// What a workspace is where it runs: the part of den's record that den on
/// a machine learns and the client keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkspaceFacts {
    pub container_name: String,
    pub image: String,
    pub agent_path: String,
    pub remote_user: String,
    pub workspace_folder: String,
    pub forward_ports: Vec<ForwardPort>,
    pub ports_attributes: indexmap::IndexMap<String, den_devcontainer::model::PortAttributes>,
    pub other_ports_attributes: Option<den_devcontainer::model::PortAttributes>,
    pub app_port: Vec<String>,
    pub vscode_extensions: Vec<String>,
    pub jetbrains_backend: String,
}

/// What `den agent clone-content` says when the pod's image has no git
/// (den then clones on the client and sends the files).
pub const NO_GIT: &str = "git is not installed in the workspace's image";

/// In a pod: the file in the agent's (persistent) state folder that says the
/// workspace's files arrived.
pub const CONTENT_MARKER: &str = "content-received";

/// The variable that tells `den agent receive-content` where to unpack.
pub const CONTENT_DIR_ENV: &str = "DEN_CONTENT_DIR";

/// Unpacks a tar stream into `dest`, replacing what was there only once
/// the stream is complete.
pub fn receive(input: &mut impl std::io::Read, dest: &Path) -> std::io::Result<()> {
    let parent = dest.parent().expect("content dir has a parent");
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(".{}.incoming", dest.file_name().unwrap_or_default().to_string_lossy()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    if let Err(e) = unpack_into(input, &tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = parent.join(format!(".{}.old", dest.file_name().unwrap_or_default().to_string_lossy()));
    let _ = std::fs::remove_dir_all(&old);
    if dest.exists() {
        std::fs::rename(dest, &old)?;
    }
    std::fs::rename(&tmp, dest)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Writes `folder` as a tar stream: files, folders and symlinks (kept as
/// links) with their modes and owners. Sockets, fifos and devices cannot
/// travel and are left out, as are entries den may not read (each named on
/// stderr), so that one stray socket does not stop a workspace.
pub fn send_folder(folder: &Path, out: &mut dyn Write) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    add_tree(&mut b, folder, Path::new(""))?;
    b.finish()
}

fn add_tree(b: &mut tar::Builder<&mut dyn Write>, root: &Path, rel: &Path) -> std::io::Result<()> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = rel.join(e.file_name());
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        let kind = meta.file_type();
        let added = if kind.is_dir() {
            b.append_dir(&name, &path).and_then(|_| add_tree(b, root, &name))
        } else if kind.is_file() || kind.is_symlink() {
            b.append_path_with_name(&path, &name)
        } else {
            eprintln!("den: not sent to the machine (not a file, folder or link): {}", path.display());
            continue;
        };
        if let Err(e) = added {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                eprintln!("den: not sent to the machine (cannot read it): {}", path.display());
                continue;
            }
            return Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())));
        }
    }
    Ok(())
}

/// Unpacks with the owners the files had on the client when the agent may
/// (root), so the remote user's UID follows them as with a bind mount.
pub fn unpack_into(input: &mut impl std::io::Read, dest: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    // SAFETY: geteuid has no preconditions.
    archive.set_preserve_ownerships(unsafe { libc::geteuid() } == 0);
    archive.unpack(dest)
}

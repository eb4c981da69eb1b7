//! The workspace record: what den remembers of one workspace.

use std::path::{Path, PathBuf};

use den_devcontainer::model::ForwardPort;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::{Den, Result};

/// den's own folder for a machine a machine provider made.
pub(crate) fn machine_dir(den: &Den, id: &str) -> PathBuf {
    den.home.context_dir(&den.context).join("machines").join(id)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkspaceRecord {
    pub id: String,
    pub context: String,
    pub provider: String,
    /// Options set for this workspace with --provider-option.
    pub provider_options: IndexMap<String, String>,
    pub local_folder: PathBuf,
    /// As given with --devcontainer-path (relative to the folder).
    pub devcontainer_path: Option<PathBuf>,
    /// The config file used; `None` when the folder has none (fallback image).
    pub config_file: Option<PathBuf>,
    pub container_name: String,
    pub container_id: String,
    pub image: String,
    pub remote_user: String,
    pub workspace_folder: String,
    pub forward_ports: Vec<ForwardPort>,
    /// `portsAttributes` and `otherPortsAttributes` (merged with the
    /// image's), for den's port forwarder.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub ports_attributes: IndexMap<String, den_devcontainer::model::PortAttributes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_ports_attributes: Option<den_devcontainer::model::PortAttributes>,
    /// `appPort` as written (`3000`, `8080:80`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub app_port: Vec<String>,
    /// `customizations.vscode.extensions` (the browser IDE installs them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vscode_extensions: Vec<String>,
    /// `customizations.jetbrains.backend` (what `--ide jetbrains` opens).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jetbrains_backend: String,
    pub agent_path: String,
    /// The machine the workspace is on (machine providers).
    pub machine: Option<String>,
    /// Remote providers: the agent binary on the machine, and its home there.
    pub machine_agent_path: String,
    pub remote_home: String,
    /// What the workspace asks den for (injectGit/DockerCredentials).
    pub credentials: den_protocol::Credentials,
    /// The ssh config file that holds this workspace's `Host ID.den` block.
    pub ssh_config: Option<PathBuf>,
    /// Where the workspace's files came from when not a local folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceInfo>,
    /// `--workspace-env`: variables for every session and hook.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub workspace_env: IndexMap<String, String>,
    pub created_at: u64,
    pub last_used_at: u64,
}

/// A git repository or image a workspace was made from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SourceInfo {
    /// `git` or `image`.
    pub kind: String,
    /// The repository URL (without a password) or the image reference.
    pub url: String,
    /// The branch, tag, `sha256:COMMIT` or `pull/N/head` asked for.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reference: String,
    /// The commit checked out.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub commit: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

/// The folder den keeps a workspace's clone (or empty image folder) in.
pub(crate) fn source_dir(den: &Den, id: &str) -> PathBuf {
    den.home.context_dir(&den.context).join("sources").join(id)
}

/// Where a workspace comes from, as `up` sees it.
pub(crate) struct Origin<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub options: &'a IndexMap<String, String>,
    pub folder: &'a Path,
    pub devcontainer_path: Option<&'a PathBuf>,
    /// Empty: the folder has no config (fallback image).
    pub config_file: &'a Path,
    pub source: Option<&'a SourceInfo>,
    pub workspace_env: &'a IndexMap<String, String>,
}

impl WorkspaceRecord {
    /// What the workspace is where it runs, as den on a machine sends it.
    pub fn facts(&self) -> den_protocol::transfer::WorkspaceFacts {
        den_protocol::transfer::WorkspaceFacts {
            container_name: self.container_name.clone(),
            image: self.image.clone(),
            agent_path: self.agent_path.clone(),
            remote_user: self.remote_user.clone(),
            workspace_folder: self.workspace_folder.clone(),
            forward_ports: self.forward_ports.clone(),
            ports_attributes: self.ports_attributes.clone(),
            other_ports_attributes: self.other_ports_attributes.clone(),
            app_port: self.app_port.clone(),
            vscode_extensions: self.vscode_extensions.clone(),
            jetbrains_backend: self.jetbrains_backend.clone(),
        }
    }

    /// Takes the facts the machine sent.
    pub(crate) fn set_facts(&mut self, f: den_protocol::transfer::WorkspaceFacts) {
        self.container_name = f.container_name;
        self.image = f.image;
        self.agent_path = f.agent_path;
        self.remote_user = f.remote_user;
        self.workspace_folder = f.workspace_folder;
        self.forward_ports = f.forward_ports;
        self.ports_attributes = f.ports_attributes;
        self.other_ports_attributes = f.other_ports_attributes;
        self.app_port = f.app_port;
        self.vscode_extensions = f.vscode_extensions;
        self.jetbrains_backend = f.jetbrains_backend;
    }

    /// What the configuration says for the client's side: its ports, and
    /// what the IDEs take from `customizations`.
    pub(crate) fn set_from_config(
        &mut self,
        merged: &den_devcontainer::MergedConfig,
        cfg: &den_devcontainer::DevContainer,
    ) {
        self.forward_ports = merged.forward_ports.clone();
        self.ports_attributes = merged.ports_attributes.clone();
        self.other_ports_attributes = merged.other_ports_attributes.clone();
        self.app_port = cfg.app_port.as_ref().map(|p| p.0.clone()).unwrap_or_default();
        self.vscode_extensions = merged.vscode_extensions();
        self.jetbrains_backend = merged
            .customizations
            .get("jetbrains")
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("backend").and_then(|b| b.as_str()))
            .next_back()
            .unwrap_or_default()
            .to_string();
    }

    /// The record `up` works on: the one den had (or a new one) with its
    /// origin set afresh.
    pub(crate) fn for_up(old: Option<&WorkspaceRecord>, den: &Den, o: Origin<'_>) -> WorkspaceRecord {
        let mut rec = old.cloned().unwrap_or_else(|| WorkspaceRecord { created_at: now(), ..Default::default() });
        rec.id = o.id.to_string();
        rec.context = den.context.clone();
        rec.provider = o.provider.to_string();
        rec.provider_options = o.options.clone();
        rec.local_folder = o.folder.to_path_buf();
        rec.devcontainer_path = o.devcontainer_path.cloned();
        rec.config_file = Some(o.config_file.to_path_buf()).filter(|f| !f.as_os_str().is_empty());
        if let Some(s) = o.source {
            rec.source = Some(s.clone());
        }
        rec.workspace_env = o.workspace_env.clone();
        rec
    }

    pub fn path(den: &Den, id: &str) -> PathBuf {
        den.home.workspace_dir(&den.context, id).join("workspace.json")
    }

    pub fn load(den: &Den, id: &str) -> Result<Option<Self>> {
        Ok(den_state::read_json(&Self::path(den, id))?)
    }

    pub fn save(&self, den: &Den) -> Result<()> {
        Ok(den_state::write_json(&Self::path(den, &self.id), self)?)
    }

    /// Every workspace of the context, by id.
    pub fn all(den: &Den) -> Result<Vec<Self>> {
        let dir = den.home.workspaces_dir(&den.context);
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(crate::WorkspaceError::io(format!("reading {}", dir.display()))(e)),
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Some(r) = Self::load(den, &id)? {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn remove_dir(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::WorkspaceError::io(format!("removing {}", path.display()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip_through_the_wire() {
        let rec = WorkspaceRecord {
            container_name: "den-a".into(),
            image: "img".into(),
            agent_path: "/usr/local/bin/den".into(),
            remote_user: "dev".into(),
            workspace_folder: "/w".into(),
            forward_ports: vec![ForwardPort::Port(3000)],
            app_port: vec!["8080:80".into()],
            vscode_extensions: vec!["a.b".into()],
            jetbrains_backend: "GoLand".into(),
            ..Default::default()
        };
        let wire = serde_json::to_string(&rec.facts()).unwrap();
        let mut back = WorkspaceRecord { id: "a".into(), machine: Some("m".into()), ..Default::default() };
        back.set_facts(serde_json::from_str(&wire).unwrap());
        assert_eq!(back.facts(), rec.facts());
        assert_eq!((back.id.as_str(), back.machine.as_deref()), ("a", Some("m")));
    }
}

//! Running a provider's `exec` commands the way DevPod does: `sh -c SCRIPT`
//! on this machine, with the options and DevPod's variables in the
//! environment. Values are never spliced into the script text, so a value
//! holding quotes, `$(…)`, `;` or newlines stays inert.

use std::path::PathBuf;

use den_process::Cmd;
use indexmap::IndexMap;

use crate::{Manifest, ProviderError, ResolvedOption};

/// What a provider command is about: DevPod's MACHINE_* and WORKSPACE_*.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub workspace: Option<WorkspaceSubject>,
    pub machine: Option<MachineSubject>,
}

#[derive(Debug, Clone)]
pub struct WorkspaceSubject {
    pub id: String,
    /// den's own folder for the workspace (DEN_HOME/…/workspaces/ID).
    pub folder: PathBuf,
    /// The project folder the workspace was made from.
    pub local_folder: PathBuf,
}

#[derive(Debug, Clone)]
pub struct MachineSubject {
    pub id: String,
    /// den's own folder for the machine (DEN_HOME/…/machines/ID).
    pub folder: PathBuf,
}

impl Subject {
    /// A workspace: its id, den's folder for it, and the project folder.
    pub fn workspace(id: &str, folder: PathBuf, local_folder: PathBuf) -> Self {
        Subject { workspace: Some(WorkspaceSubject { id: id.into(), folder, local_folder }), machine: None }
    }

    /// The machine the subject is on: its id and den's folder for it.
    pub fn with_machine(mut self, id: &str, folder: PathBuf) -> Self {
        self.machine = Some(MachineSubject { id: id.into(), folder });
        self
    }

    /// The variables DevPod gives provider commands about their subject.
    pub fn env(&self, context: &str, provider: &str) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(m) = &self.machine {
            env.push(("MACHINE_ID".into(), m.id.clone()));
            env.push(("MACHINE_FOLDER".into(), m.folder.display().to_string()));
            env.push(("MACHINE_CONTEXT".into(), context.to_string()));
            env.push(("MACHINE_PROVIDER".into(), provider.into()));
        }
        if let Some(w) = &self.workspace {
            env.push(("WORKSPACE_ID".into(), w.id.clone()));
            env.push(("WORKSPACE_FOLDER".into(), w.folder.display().to_string()));
            env.push(("WORKSPACE_CONTEXT".into(), context.to_string()));
            env.push(("WORKSPACE_PROVIDER".into(), provider.into()));
            env.push(("WORKSPACE_LOCAL_FOLDER".into(), w.local_folder.display().to_string()));
            if self.machine.is_none() {
                // DevPod's non-machine providers see the workspace as their machine.
                env.push(("MACHINE_ID".into(), w.id.clone()));
                env.push(("MACHINE_FOLDER".into(), w.folder.display().to_string()));
                env.push(("MACHINE_CONTEXT".into(), context.to_string()));
                env.push(("MACHINE_PROVIDER".into(), provider.into()));
            }
        }
        env
    }
}

/// A provider with its options resolved for one subject: everything needed
/// to run its commands.
#[derive(Debug, Clone)]
pub struct ProviderRun {
    pub name: String,
    pub manifest: Manifest,
    pub options: IndexMap<String, ResolvedOption>,
    /// DEVPOD, DEVPOD_OS …, the subject's variables and the binaries.
    pub env: Vec<(String, String)>,
}

impl ProviderRun {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An option's value (empty when unset).
    pub fn option(&self, name: &str) -> &str {
        self.options.get(name).map(|o| o.value.as_str()).unwrap_or("")
    }

    /// Every variable a command gets: DevPod's, then the options by name.
    pub fn all_env(&self) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        env.extend(self.options.iter().map(|(k, v)| (k.clone(), v.value.clone())));
        env
    }

    /// Replaces `${NAME}` of options and DevPod's variables in a manifest
    /// field (agent.path, agent.dataPath …). A reference to something
    /// unknown leaves the field empty rather than half-expanded.
    pub fn expand(&self, text: &str) -> String {
        let known = |k: &str| {
            self.options
                .get(k)
                .map(|o| o.value.as_str())
                .or_else(|| self.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()))
        };
        crate::options::expand_known(text, known).unwrap_or_default()
    }

    pub fn has(&self, name: &str) -> bool {
        self.manifest.exec(name).is_some()
    }

    /// `sh -c SCRIPT` for the `exec` command `name`, with `COMMAND` set
    /// when given. `None` when the manifest has no such command.
    pub fn cmd(&self, name: &str, command: Option<&str>) -> Option<Cmd> {
        let script = self.manifest.exec(name)?.script();
        let mut cmd = Cmd::new("sh").arg("-c").arg(script);
        for (k, v) in self.all_env() {
            cmd = cmd.env(k, v);
        }
        if let Some(c) = command {
            cmd = cmd.env("COMMAND", c);
        }
        Some(cmd)
    }

    /// Runs an `exec` command to the end and returns its stdout; a failure
    /// names the provider and the command.
    pub fn run(&self, name: &str) -> Result<Option<String>, ProviderError> {
        let Some(cmd) = self.cmd(name, None) else { return Ok(None) };
        match cmd.output() {
            Ok(out) => Ok(Some(out.stdout)),
            Err(e) => {
                Err(ProviderError::Exec { provider: self.name.clone(), command: name.into(), source: Box::new(e) })
            }
        }
    }

    /// The `command` exec running `command` on the machine.
    pub fn remote(&self, command: &str) -> Result<Cmd, ProviderError> {
        self.cmd("command", Some(command)).ok_or_else(|| ProviderError::NoCommand(self.name.clone()))
    }
}

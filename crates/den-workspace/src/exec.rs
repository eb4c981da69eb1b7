//! Running a provider's `exec` commands the way DevPod does: `sh -c SCRIPT`
//! on this machine, with the options and DevPod's variables in the
//! environment. Values are never spliced into the script text, so a value
//! holding quotes, `$(…)`, `;` or newlines stays inert.

use std::path::PathBuf;

use den_process::Cmd;
use den_provider::ResolvedOption;
use indexmap::IndexMap;

use crate::providers::{self, ProviderEntry};
use crate::{Den, Result, WorkspaceError};

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
    pub fn workspace(den: &Den, id: &str, local_folder: PathBuf) -> Self {
        Subject {
            workspace: Some(WorkspaceSubject {
                id: id.into(),
                folder: den.home.workspace_dir(&den.context, id),
                local_folder,
            }),
            machine: None,
        }
    }

    pub fn with_machine(mut self, den: &Den, id: &str) -> Self {
        self.machine = Some(MachineSubject { id: id.into(), folder: crate::record::machine_dir(den, id) });
        self
    }

    /// The variables DevPod gives provider commands about their subject.
    pub fn env(&self, den: &Den, provider: &str) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(m) = &self.machine {
            env.push(("MACHINE_ID".into(), m.id.clone()));
            env.push(("MACHINE_FOLDER".into(), m.folder.display().to_string()));
            env.push(("MACHINE_CONTEXT".into(), den.context.clone()));
            env.push(("MACHINE_PROVIDER".into(), provider.into()));
        }
        if let Some(w) = &self.workspace {
            env.push(("WORKSPACE_ID".into(), w.id.clone()));
            env.push(("WORKSPACE_FOLDER".into(), w.folder.display().to_string()));
            env.push(("WORKSPACE_CONTEXT".into(), den.context.clone()));
            env.push(("WORKSPACE_PROVIDER".into(), provider.into()));
            env.push(("WORKSPACE_LOCAL_FOLDER".into(), w.local_folder.display().to_string()));
            if self.machine.is_none() {
                // DevPod's non-machine providers see the workspace as their machine.
                env.push(("MACHINE_ID".into(), w.id.clone()));
                env.push(("MACHINE_FOLDER".into(), w.folder.display().to_string()));
                env.push(("MACHINE_CONTEXT".into(), den.context.clone()));
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
    pub entry: ProviderEntry,
    pub options: IndexMap<String, ResolvedOption>,
    /// DEVPOD, DEVPOD_OS …, the subject's variables and the binaries.
    pub env: Vec<(String, String)>,
}

impl ProviderRun {
    /// Resolves the provider's options (`values`: this workspace's own,
    /// over the provider's saved ones) for `subject`.
    pub fn new(
        den: &Den,
        entry: &ProviderEntry,
        values: &IndexMap<String, String>,
        subject: &Subject,
    ) -> Result<ProviderRun> {
        let mut env = providers::provider_env(den, entry);
        env.extend(subject.env(den, &entry.name));
        env.extend(crate::binaries::env(den, &entry.name, &entry.manifest)?);
        let options = providers::resolve_with_env(den, entry, values, &env)?;
        Ok(ProviderRun { entry: entry.clone(), options, env })
    }

    pub fn name(&self) -> &str {
        &self.entry.name
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
        let mut out = den_provider::expand_options(text, &self.options);
        for (k, v) in &self.env {
            out = out.replace(&format!("${{{k}}}"), v);
        }
        if out.contains("${") {
            String::new()
        } else {
            out
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.entry.manifest.exec(name).is_some()
    }

    /// `sh -c SCRIPT` for the `exec` command `name`, with `COMMAND` set
    /// when given. `None` when the manifest has no such command.
    pub fn cmd(&self, name: &str, command: Option<&str>) -> Option<Cmd> {
        let script = self.entry.manifest.exec(name)?.script();
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
    pub fn run(&self, name: &str) -> Result<Option<String>> {
        let Some(cmd) = self.cmd(name, None) else { return Ok(None) };
        match cmd.output() {
            Ok(out) => Ok(Some(out.stdout)),
            Err(e) => Err(WorkspaceError::ProviderCommand {
                provider: self.entry.name.clone(),
                command: name.into(),
                source: Box::new(e),
            }),
        }
    }

    /// Runs `exec.init` once per set of option values (DevPod runs it when
    /// a provider is put to use); a failure says the provider is unusable.
    pub fn init(&self, den: &Den) -> Result<()> {
        if !self.has("init") {
            return Ok(());
        }
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for (k, v) in &self.options {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.value.as_bytes());
            h.update([0]);
        }
        let stamp: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
        let marker = den.home.provider_dir(&den.context, &self.entry.name).join("init.ok");
        if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == stamp) {
            return Ok(());
        }
        self.run("init")?;
        den_state::atomic_write(&marker, stamp.as_bytes())?;
        Ok(())
    }

    /// The `command` exec running `command` on the machine.
    pub fn remote(&self, command: &str) -> Result<Cmd> {
        self.cmd("command", Some(command)).ok_or_else(|| {
            WorkspaceError::Invalid(format!("provider `{}` has no exec.command to reach its machine", self.entry.name))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use den_provider::Manifest;

    fn run_for(yaml: &str, values: &[(&str, &str)]) -> (tempfile::TempDir, ProviderRun) {
        let dir = tempfile::tempdir().unwrap();
        let den = Den { home: den_state::Home::at(dir.path()), context: "default".into() };
        let manifest = Manifest::parse(yaml, "test").unwrap();
        let entry = ProviderEntry { name: manifest.name.clone(), manifest, builtin: false, source: "test".into() };
        let values = values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let subject = Subject::workspace(&den, "ws1", "/src/proj".into()).with_machine(&den, "m1");
        let run = ProviderRun::new(&den, &entry, &values, &subject).unwrap();
        (dir, run)
    }

    const MANIFEST: &str = r#"
name: t
options:
  VALUE:
    default: plain
  DERIVED:
    command: printf '%s-derived' "${VALUE}"
exec:
  command: printf '%s|%s' "${VALUE}" "${COMMAND}"
  status: |-
    printf '%s\n' "$MACHINE_ID" "$MACHINE_FOLDER" "$MACHINE_CONTEXT" "$MACHINE_PROVIDER"
    printf '%s\n' "$WORKSPACE_ID" "$WORKSPACE_CONTEXT" "$WORKSPACE_LOCAL_FOLDER" "$DEVPOD_OS" "$DEVPOD_ARCH"
    [ "$DEVPOD" = "$DEN" ] && [ -n "$DEVPOD" ] && echo same
    echo "$DERIVED"
"#;

    #[test]
    fn commands_get_devpods_environment() {
        let (dir, run) = run_for(MANIFEST, &[]);
        let out = run.run("status").unwrap().unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "m1");
        assert_eq!(lines[1], dir.path().join("contexts/default/machines/m1").display().to_string());
        assert_eq!(
            &lines[2..],
            ["default", "t", "ws1", "default", "/src/proj", "linux", "amd64", "same", "plain-derived"]
        );
        assert!(run.run("stop").unwrap().is_none());
    }

    /// Hostile option values and COMMANDs reach the command as data.
    #[test]
    fn values_stay_inert() {
        let marker = tempfile::tempdir().unwrap();
        let evil =
            format!("a'b\"c $(touch {m}/x) `touch {m}/y`; touch {m}/z\nline2 ${{HOME}}", m = marker.path().display());
        let (_d, run) = run_for(MANIFEST, &[("VALUE", &evil)]);
        let command = format!("; touch {}/w $(id)", marker.path().display());
        let out = run.remote(&command).unwrap().output().unwrap();
        assert_eq!(out.stdout, format!("{evil}|{command}"));
        assert_eq!(run.option("DERIVED"), format!("{evil}-derived"));
        assert_eq!(std::fs::read_dir(marker.path()).unwrap().count(), 0, "nothing ran");
    }

    #[test]
    fn failing_command_names_provider_and_command() {
        let (_d, run) = run_for("name: t\nexec:\n  create: echo no such cloud >&2; exit 4\n", &[]);
        let e = run.run("create").unwrap_err().to_string();
        assert!(e.starts_with("provider `t`: exec.create failed"), "{e}");
        assert!(e.contains("no such cloud"), "{e}");
    }

    #[test]
    fn expanding_agent_fields() {
        let (dir, run) = run_for("name: t\noptions:\n  P:\n    default: /opt/x\n", &[]);
        assert_eq!(run.expand("${P}/den"), "/opt/x/den");
        let mf = dir.path().join("contexts/default/machines/m1");
        assert_eq!(run.expand("${MACHINE_FOLDER}/agent"), format!("{}/agent", mf.display()));
        assert_eq!(run.expand("${NOPE}/x"), "");
    }
}

//! Provider runs for den's workspaces and machines: den-provider's
//! [`ProviderRun`] with its options resolved from what den saved, DevPod's
//! variables for the subject's folders under DEN_HOME, and the provider's
//! installed binaries.

use std::path::PathBuf;

use indexmap::IndexMap;

pub use den_provider::{ProviderRun, Subject};

use crate::providers::{self, ProviderEntry};
use crate::{Den, Result};

/// A workspace as the subject of provider commands.
pub(crate) fn workspace_subject(den: &Den, id: &str, local_folder: PathBuf) -> Subject {
    Subject::workspace(id, den.home.workspace_dir(&den.context, id), local_folder)
}

/// `subject`, on the machine `id`.
pub(crate) fn on_machine(den: &Den, subject: Subject, id: &str) -> Subject {
    subject.with_machine(id, crate::record::machine_dir(den, id))
}

/// Resolves the provider's options (`values`: this workspace's own, over
/// the provider's saved ones) for `subject`.
pub(crate) fn run_for(
    den: &Den,
    entry: &ProviderEntry,
    values: &IndexMap<String, String>,
    subject: &Subject,
) -> Result<ProviderRun> {
    run_given(den, entry, values, &[], subject)
}

/// [`run_for`] with the `global` option values given now (not yet saved).
pub(crate) fn run_given(
    den: &Den,
    entry: &ProviderEntry,
    values: &IndexMap<String, String>,
    globals: &[(String, String)],
    subject: &Subject,
) -> Result<ProviderRun> {
    let mut env = providers::provider_env(den, entry);
    env.extend(subject.env(&den.context, &entry.name));
    env.extend(den_provider::binaries::env(&providers::binaries_dir(den, &entry.name), &entry.name, &entry.manifest)?);
    let options = providers::resolve_with_env(den, entry, values, globals, &env)?;
    Ok(ProviderRun { name: entry.name.clone(), manifest: entry.manifest.clone(), options, env })
}

/// Runs `exec.init` once per set of option values (DevPod runs it when a
/// provider is put to use); a failure says the provider is unusable.
pub(crate) fn init(den: &Den, run: &ProviderRun) -> Result<()> {
    if !run.has("init") {
        return Ok(());
    }
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for (k, v) in &run.options {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.value.as_bytes());
        h.update([0]);
    }
    let stamp: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    let marker = den.home.provider_dir(&den.context, &run.name).join("init.ok");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == stamp) {
        return Ok(());
    }
    run.run("init")?;
    den_state::atomic_write(&marker, stamp.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use den_provider::Manifest;

    fn provider_run(yaml: &str, values: &[(&str, &str)]) -> (tempfile::TempDir, ProviderRun) {
        let dir = tempfile::tempdir().unwrap();
        let den = Den { home: den_state::Home::at(dir.path()), context: "default".into() };
        let manifest = Manifest::parse(yaml, "test").unwrap();
        let entry = ProviderEntry { name: manifest.name.clone(), manifest, builtin: false, source: "test".into() };
        let values = values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let subject = on_machine(&den, workspace_subject(&den, "ws1", "/src/proj".into()), "m1");
        let run = super::run_for(&den, &entry, &values, &subject).unwrap();
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
        let (dir, run) = provider_run(MANIFEST, &[]);
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
        let (_d, run) = provider_run(MANIFEST, &[("VALUE", &evil)]);
        let command = format!("; touch {}/w $(id)", marker.path().display());
        let out = run.remote(&command).unwrap().output().unwrap();
        assert_eq!(out.stdout, format!("{evil}|{command}"));
        assert_eq!(run.option("DERIVED"), format!("{evil}-derived"));
        assert_eq!(std::fs::read_dir(marker.path()).unwrap().count(), 0, "nothing ran");
    }

    #[test]
    fn failing_command_names_provider_and_command() {
        let (_d, run) = provider_run("name: t\nexec:\n  create: echo no such cloud >&2; exit 4\n", &[]);
        let e = run.run("create").unwrap_err().to_string();
        assert!(e.starts_with("provider `t`: exec.create failed"), "{e}");
        assert!(e.contains("no such cloud"), "{e}");
    }

    #[test]
    fn expanding_agent_fields() {
        let (dir, run) = provider_run("name: t\noptions:\n  P:\n    default: /opt/x\n", &[]);
        assert_eq!(run.expand("${P}/den"), "/opt/x/den");
        let mf = dir.path().join("contexts/default/machines/m1");
        assert_eq!(run.expand("${MACHINE_FOLDER}/agent"), format!("{}/agent", mf.display()));
        assert_eq!(run.expand("${NOPE}/x"), "");
    }

    /// A value that holds `${…}` is data: a field that refers to it gets it
    /// as written, neither expanded again nor dropped as unknown (it was
    /// how agent.dataPath fell back to ~/.den-agent).
    #[test]
    fn an_option_value_is_expanded_once_in_agent_fields() {
        let (_dir, run) =
            provider_run("name: t\noptions:\n  P:\n    default: x\n", &[("P", "/data/${MACHINE_FOLDER}")]);
        assert_eq!(run.expand("${P}/den"), "/data/${MACHINE_FOLDER}/den");
    }
}

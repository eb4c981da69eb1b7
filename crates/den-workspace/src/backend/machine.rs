//! Machines that machine providers (those with `exec.create`) make: one per
//! workspace unless `--machine` names a shared one. den keeps a record per
//! machine (DEN_HOME/contexts/CTX/machines/ID, which is MACHINE_FOLDER) and
//! drives it only through the manifest's create/start/stop/status/delete.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::exec::{self, ProviderRun, Subject};
use crate::providers::{self, ProviderEntry};
use crate::record::{now, remove_dir, WorkspaceRecord};
use crate::{Den, Reporter, Result, WorkspaceError};

fn machine_lock(den: &Den, id: &str) -> PathBuf {
    den.home.context_dir(&den.context).join("locks").join(format!("machine-{id}.lock"))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MachineRecord {
    pub id: String,
    pub provider: String,
    pub provider_options: IndexMap<String, String>,
    pub created_at: u64,
}

impl MachineRecord {
    fn path(den: &Den, id: &str) -> PathBuf {
        crate::record::machine_dir(den, id).join("machine.json")
    }
    pub fn load(den: &Den, id: &str) -> Result<Option<Self>> {
        Ok(den_state::read_json(&Self::path(den, id))?)
    }
    fn save(&self, den: &Den) -> Result<()> {
        Ok(den_state::write_json(&Self::path(den, &self.id), self)?)
    }
    pub fn all(den: &Den) -> Result<Vec<Self>> {
        let dir = den.home.context_dir(&den.context).join("machines");
        let mut out: Vec<Self> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Self::load(den, &e.file_name().to_string_lossy()).ok().flatten())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

/// DevPod's machine states, as `exec.status` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MachineStatus {
    Running,
    Stopped,
    Busy,
    NotFound,
}

impl std::fmt::Display for MachineStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MachineStatus::Running => "Running",
            MachineStatus::Stopped => "Stopped",
            MachineStatus::Busy => "Busy",
            MachineStatus::NotFound => "NotFound",
        })
    }
}

/// Parses what `exec.status` printed (its last non-empty line).
pub fn parse_status(provider: &str, out: &str) -> Result<MachineStatus> {
    let last = out.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("");
    match last.to_ascii_uppercase().replace(['_', '-', ' '], "").as_str() {
        "RUNNING" => Ok(MachineStatus::Running),
        "STOPPED" => Ok(MachineStatus::Stopped),
        "BUSY" => Ok(MachineStatus::Busy),
        "NOTFOUND" => Ok(MachineStatus::NotFound),
        _ => Err(WorkspaceError::ProviderAnswer(format!(
            "provider `{provider}`: exec.status printed {last:?}; expected RUNNING, STOPPED, BUSY or NOTFOUND"
        ))),
    }
}

/// The machine's state; a provider without `exec.status` is taken to have
/// its machine running.
pub fn status_of(run: &ProviderRun) -> Result<MachineStatus> {
    match run.run("status")? {
        Some(out) => parse_status(run.name(), &out),
        None => Ok(MachineStatus::Running),
    }
}

/// The provider of a machine with its options, for machine commands.
pub(crate) fn run_for(den: &Den, m: &MachineRecord, workspace: Option<&WorkspaceRecord>) -> Result<ProviderRun> {
    let entry = providers::get(den, &m.provider)?;
    let subject = match workspace {
        Some(w) => exec::workspace_subject(den, &w.id, w.local_folder.clone()),
        None => Subject::default(),
    };
    let subject = exec::on_machine(den, subject, &m.id);
    exec::run_for(den, &entry, &m.provider_options, &subject)
}

/// How long to wait for a machine to become Running after create/start:
/// the manifest's `agent.timeout` if it gives one, else ten minutes.
fn wait_limit(run: &ProviderRun) -> Duration {
    let t = run.expand(&run.manifest.agent.timeout);
    den_protocol::parse_duration(&t).ok().flatten().unwrap_or(Duration::from_secs(600))
}

/// Makes sure the machine exists and runs: NotFound → create, Stopped →
/// start, Busy → wait. Records it before creating it, so that a failed
/// create can still be deleted.
pub(crate) fn ensure_running(
    den: &Den,
    entry: &ProviderEntry,
    id: &str,
    options: &IndexMap<String, String>,
    run: &ProviderRun,
    reporter: &mut dyn Reporter,
) -> Result<()> {
    let _lock = den_state::Lock::acquire(&machine_lock(den, id), |_| {
        reporter.line(&format!("waiting for another den working on machine `{id}`…"));
    })?;
    if MachineRecord::load(den, id)?.is_none() {
        MachineRecord {
            id: id.into(),
            provider: entry.name.clone(),
            provider_options: options.clone(),
            created_at: now(),
        }
        .save(den)?;
    }
    let deadline = Instant::now() + wait_limit(run);
    let mut acted = false;
    loop {
        let status = status_of(run)?;
        match status {
            MachineStatus::Running => return Ok(()),
            MachineStatus::NotFound if !acted => {
                reporter.phase("machine", &format!("creating machine {id}"));
                run.run("create")?;
                acted = true;
                if !run.has("status") {
                    return Ok(());
                }
            }
            MachineStatus::Stopped if !acted => {
                reporter.phase("machine", &format!("starting machine {id}"));
                run.run("start")?;
                acted = true;
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(WorkspaceError::Timeout(format!(
                "machine `{id}` is still {status} after {}s; see `den machine status {id}`",
                wait_limit(run).as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(if acted { 500 } else { 1000 }));
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineSummary {
    pub id: String,
    pub provider: String,
    pub status: MachineStatus,
    pub workspaces: Vec<String>,
}

fn require(den: &Den, id: &str) -> Result<MachineRecord> {
    MachineRecord::load(den, id)?
        .ok_or_else(|| WorkspaceError::Missing(format!("there is no machine `{id}` (see `den machine list`)")))
}

/// The workspaces that live on a machine.
pub(crate) fn workspaces_on(den: &Den, id: &str) -> Result<Vec<WorkspaceRecord>> {
    Ok(WorkspaceRecord::all(den)?.into_iter().filter(|w| w.machine.as_deref() == Some(id)).collect())
}

pub fn summary(den: &Den, id: &str) -> Result<MachineSummary> {
    let m = require(den, id)?;
    let status = status_of(&run_for(den, &m, None)?)?;
    let workspaces = workspaces_on(den, id)?.into_iter().map(|w| w.id).collect();
    Ok(MachineSummary { id: m.id, provider: m.provider, status, workspaces })
}

pub fn list(den: &Den) -> Result<Vec<MachineSummary>> {
    MachineRecord::all(den)?.iter().map(|m| summary(den, &m.id)).collect()
}

/// Stops a machine (its workspaces stop with it).
pub fn stop(den: &Den, id: &str, reporter: &mut dyn Reporter) -> Result<()> {
    let m = require(den, id)?;
    let run = run_for(den, &m, None)?;
    let _lock = den_state::Lock::acquire(&machine_lock(den, id), |_| {
        reporter.line(&format!("waiting for another den working on machine `{id}`…"));
    })?;
    if status_of(&run)? != MachineStatus::Running {
        return Ok(());
    }
    reporter.phase("machine", &format!("stopping machine {id}"));
    if run.run("stop")?.is_none() {
        return Err(WorkspaceError::Unsupported(format!(
            "provider `{}` cannot stop machines (no exec.stop)",
            m.provider
        )));
    }
    Ok(())
}

/// Deletes a machine. Refused while workspaces live on it, unless `force`,
/// which forgets those workspaces too (they go with the machine).
pub fn delete(den: &Den, id: &str, force: bool, reporter: &mut dyn Reporter) -> Result<()> {
    let m = require(den, id)?;
    let users = workspaces_on(den, id)?;
    if !users.is_empty() && !force {
        let ids: Vec<_> = users.iter().map(|w| w.id.as_str()).collect();
        return Err(WorkspaceError::Conflict(format!(
            "machine `{id}` holds workspace(s) {}; delete them first, or use --force to delete them with it",
            ids.join(", ")
        )));
    }
    let run = run_for(den, &m, None)?;
    let _lock = den_state::Lock::acquire(&machine_lock(den, id), |_| {
        reporter.line(&format!("waiting for another den working on machine `{id}`…"));
    })?;
    if status_of(&run)? != MachineStatus::NotFound {
        reporter.phase("machine", &format!("deleting machine {id}"));
        run.run("delete")?;
    }
    for w in users {
        crate::publish::unpublish(den, &w.id, w.ssh_config.as_deref())?;
        remove_dir(&den.home.workspace_dir(&den.context, &w.id))?;
    }
    remove_dir(&crate::record::machine_dir(den, id))?;
    let _ = std::fs::remove_file(machine_lock(den, id));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(parse_status("p", "RUNNING\n").unwrap(), MachineStatus::Running);
        assert_eq!(parse_status("p", "log line\nStopped\n\n").unwrap(), MachineStatus::Stopped);
        assert_eq!(parse_status("p", "NotFound").unwrap(), MachineStatus::NotFound);
        assert_eq!(parse_status("p", "BUSY").unwrap(), MachineStatus::Busy);
        let e = parse_status("p", "maybe").unwrap_err().to_string();
        assert!(e.contains("exec.status printed \"maybe\""), "{e}");
    }
}

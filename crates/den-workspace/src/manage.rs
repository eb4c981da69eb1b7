//! `den stop/delete/status/list/logs`: the workspace's lock and den's
//! record here, everything about where it runs in its [`Backend`].

use serde::Serialize;

use crate::backend::{Backend, ListCache};
use crate::record::{remove_dir, WorkspaceRecord};
use crate::{Den, Reporter, Result, WorkspaceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    Running,
    Stopped,
    NotFound,
    /// Another den process is working on it right now.
    Busy,
    /// Its engine cannot be reached (`den list` only; the summary says why).
    Unreachable,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Running => "Running",
            Status::Stopped => "Stopped",
            Status::NotFound => "NotFound",
            Status::Busy => "Busy",
            Status::Unreachable => "Unreachable",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSummary {
    pub id: String,
    pub provider: String,
    pub local_folder: String,
    pub container: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::record::SourceInfo>,
    pub status: Status,
    /// Why the status could not be learned (an engine den cannot reach).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

fn require(den: &Den, id: &str) -> Result<WorkspaceRecord> {
    WorkspaceRecord::load(den, id)?.ok_or_else(|| WorkspaceError::NotFound(id.into()))
}

pub fn status(den: &Den, id: &str) -> Result<Status> {
    let Some(r) = WorkspaceRecord::load(den, id)? else {
        return Ok(Status::NotFound);
    };
    let lock_path = den.home.workspace_lock(&den.context, id);
    if den_state::Lock::try_acquire(&lock_path)?.is_none() {
        return Ok(Status::Busy);
    }
    Backend::of_record(den, &r).status(den, &r)
}

pub fn stop(den: &Den, id: &str, reporter: &mut dyn Reporter) -> Result<()> {
    let r = require(den, id)?;
    let _l = den.lock_workspace(id, reporter)?;
    Backend::of_record(den, &r).stop(den, &r, reporter)
}

/// Removes what the workspace has where it runs, its ssh config entry and
/// den's record. With `force`, engine errors do not stop the state from
/// going.
pub fn delete(den: &Den, id: &str, force: bool, reporter: &mut dyn Reporter) -> Result<()> {
    let record = WorkspaceRecord::load(den, id)?;
    let _l = den.lock_workspace(id, reporter)?;
    match &record {
        Some(r) => Backend::of_record(den, r).delete(den, r, force, reporter)?,
        None => Backend::delete_unrecorded(den, id, force, reporter)?,
    }
    crate::publish::unpublish(den, id, record.as_ref().and_then(|r| r.ssh_config.as_deref()))?;
    remove_dir(&den.home.workspace_dir(&den.context, id))?;
    // den's clone (or empty folder) of a git or image workspace.
    remove_dir(&crate::record::source_dir(den, id))?;
    let _ = std::fs::remove_file(den.home.workspace_lock(&den.context, id));
    Ok(())
}

pub fn list(den: &Den) -> Result<Vec<WorkspaceSummary>> {
    let mut cache = ListCache::default();
    let mut out = Vec::new();
    for r in WorkspaceRecord::all(den)? {
        // Every row is listed, the ones den cannot ask included: the list
        // is how one finds a workspace to fix or delete.
        let (status, problem) = match Backend::of_record(den, &r).list_status(den, &r, &mut cache) {
            Ok(s) => (s, None),
            Err(e) => (Status::Unreachable, Some(e.to_string())),
        };
        out.push(WorkspaceSummary {
            id: r.id,
            provider: r.provider,
            local_folder: r.local_folder.display().to_string(),
            container: r.container_name,
            source: r.source,
            status,
            problem,
        });
    }
    Ok(out)
}

/// The agent's log (setup and hook output) from where the workspace runs.
pub fn logs(den: &Den, id: &str) -> Result<String> {
    let r = require(den, id)?;
    Backend::of_record(den, &r).logs(den, &r)
}

/// The output of one service of a compose workspace.
pub fn service_logs(den: &Den, id: &str, service: &str) -> Result<String> {
    let r = require(den, id)?;
    Backend::of_record(den, &r).service_logs(den, &r, service)
}

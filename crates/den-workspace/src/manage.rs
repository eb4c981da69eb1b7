//! `den stop/delete/status/list/logs`.

use std::collections::HashMap;

use den_driver::Docker;
use serde::Serialize;

use crate::providers;
use crate::record::{remove_dir, WorkspaceRecord};
use crate::up::{container_name, docker_for};
use crate::{Den, Reporter, Result, WorkspaceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    Running,
    Stopped,
    NotFound,
    /// Another den process is working on it right now.
    Busy,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Running => "Running",
            Status::Stopped => "Stopped",
            Status::NotFound => "NotFound",
            Status::Busy => "Busy",
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
    pub status: Status,
}

fn require(den: &Den, id: &str) -> Result<WorkspaceRecord> {
    WorkspaceRecord::load(den, id)?.ok_or_else(|| WorkspaceError::NotFound(id.into()))
}

/// True when the workspace lives on another machine (a remote provider).
pub(crate) fn is_remote(den: &Den, r: &WorkspaceRecord) -> bool {
    r.machine.is_some() || providers::get(den, &r.provider).is_ok_and(|e| crate::remote::is_remote(&e))
}

/// True when the workspace is a pod (the kubernetes driver).
pub(crate) fn is_kube(den: &Den, r: &WorkspaceRecord) -> bool {
    providers::get(den, &r.provider).is_ok_and(|e| crate::up::driver_kind(&e) == crate::up::DriverKind::Kubernetes)
}

pub fn status(den: &Den, id: &str) -> Result<Status> {
    let Some(r) = WorkspaceRecord::load(den, id)? else {
        return Ok(Status::NotFound);
    };
    let lock_path = den.home.workspace_lock(&den.context, id);
    if den_state::Lock::try_acquire(&lock_path)?.is_none() {
        return Ok(Status::Busy);
    }
    if is_remote(den, &r) {
        return crate::remote::status(den, &r);
    }
    if is_kube(den, &r) {
        return crate::kube::status(den, &r);
    }
    let docker = den.docker_for(&r)?;
    Ok(match docker.inspect_container(&r.container_name)? {
        Some(c) if c.state.running => Status::Running,
        Some(_) => Status::Stopped,
        None => Status::NotFound,
    })
}

pub fn stop(den: &Den, id: &str, reporter: &mut dyn Reporter) -> Result<()> {
    let r = require(den, id)?;
    let _l = den.lock_workspace(id, reporter)?;
    if is_remote(den, &r) {
        return crate::remote::stop(den, &r, reporter);
    }
    if is_kube(den, &r) {
        return crate::kube::stop(den, &r, reporter);
    }
    let docker = den.docker_for(&r)?;
    match docker.inspect_container(&r.container_name)? {
        Some(c) if c.state.running => Ok(docker.stop(&r.container_name)?),
        _ => Ok(()),
    }
}

/// Removes the container, the image den built for it, and the record.
/// With `force`, engine errors do not stop the state from going.
pub fn delete(den: &Den, id: &str, force: bool, reporter: &mut dyn Reporter) -> Result<()> {
    let record = WorkspaceRecord::load(den, id)?;
    let _l = den.lock_workspace(id, reporter)?;
    if let Some(r) = record.as_ref().filter(|r| is_remote(den, r) || is_kube(den, r)) {
        if is_kube(den, r) {
            crate::kube::delete(den, r, force, reporter)?;
        } else {
            crate::remote::delete(den, r, force, reporter)?;
        }
        crate::ssh::unpublish(den, id, r.ssh_config.as_deref())?;
        remove_dir(&den.home.workspace_dir(&den.context, id))?;
        let _ = std::fs::remove_file(den.home.workspace_lock(&den.context, id));
        return Ok(());
    }
    let name = record.as_ref().map(|r| r.container_name.clone()).unwrap_or_else(|| container_name(den, id));
    let docker = match &record {
        Some(r) => den.docker_for(r),
        None => {
            let entry = providers::get(den, &providers::default_provider(den)?)?;
            let opts = providers::resolve(den, &entry, &Default::default(), Some(id))?;
            docker_for(&entry, &opts)
        }
    };
    let engine = docker.and_then(|d| {
        // A container of the same name that another DEN_HOME made is not ours.
        let tag = crate::up::home_tag(den);
        let c = d.inspect_container(&name)?.filter(|c| c.label("den.home").is_none_or(|h| h == tag));
        if record.is_none() && c.is_none() {
            return Err(WorkspaceError::NotFound(id.into()));
        }
        if c.is_some() {
            d.remove(&name)?;
        }
        // The image den built for this workspace, if any; one another
        // workspace still uses is kept by the engine itself.
        let built = format!("{name}:latest");
        if d.inspect_image(&built)?.is_some() {
            let _ = d.run_cmd(d.cmd().args(["rmi", &built]));
        }
        Ok(())
    });
    match engine {
        Ok(()) => {}
        Err(e @ WorkspaceError::NotFound(_)) => return Err(e),
        Err(e) if !force => return Err(e),
        Err(e) => reporter.line(&format!("warning: {e}; removing den's record anyway (--force)")),
    }
    crate::ssh::unpublish(den, id, record.as_ref().and_then(|r| r.ssh_config.as_deref()))?;
    remove_dir(&den.home.workspace_dir(&den.context, id))?;
    let _ = std::fs::remove_file(den.home.workspace_lock(&den.context, id));
    Ok(())
}

pub fn list(den: &Den) -> Result<Vec<WorkspaceSummary>> {
    let records = WorkspaceRecord::all(den)?;
    // One `docker ps` per distinct engine, not one inspect per workspace.
    let mut by_engine: HashMap<String, HashMap<String, bool>> = HashMap::new();
    let mut out = Vec::new();
    for r in records {
        let status = if is_remote(den, &r) {
            crate::remote::status(den, &r).unwrap_or(Status::NotFound)
        } else if is_kube(den, &r) {
            crate::kube::status(den, &r).unwrap_or(Status::NotFound)
        } else {
            local_status(den, &r, &mut by_engine)
        };
        out.push(WorkspaceSummary {
            id: r.id,
            provider: r.provider,
            local_folder: r.local_folder.display().to_string(),
            container: r.container_name,
            status,
        });
    }
    Ok(out)
}

fn local_status(den: &Den, r: &WorkspaceRecord, by_engine: &mut HashMap<String, HashMap<String, bool>>) -> Status {
    match den.docker_for(r) {
        Ok(d) => {
            let key = format!("{}|{:?}", d.path, d.env);
            if !by_engine.contains_key(&key) {
                let running = running_map(&d).unwrap_or_default();
                by_engine.insert(key.clone(), running);
            }
            match by_engine[&key].get(&r.container_name) {
                Some(true) => Status::Running,
                Some(false) => Status::Stopped,
                None => Status::NotFound,
            }
        }
        Err(_) => Status::NotFound,
    }
}

fn running_map(d: &Docker) -> Result<HashMap<String, bool>> {
    let out = d.run_cmd(d.cmd().args([
        "ps",
        "-a",
        "--filter",
        &format!("label={}", den_driver::WORKSPACE_LABEL),
        "--format",
        "{{.Names}}\t{{.State}}",
    ]))?;
    // docker prints `running`, podman `Up 3 minutes`.
    let running = |s: &str| s == "running" || s.starts_with("Up ");
    Ok(out.lines().filter_map(|l| l.split_once('\t')).map(|(n, s)| (n.to_string(), running(s))).collect())
}

/// The agent's log (setup and hook output) from inside the container.
pub fn logs(den: &Den, id: &str) -> Result<String> {
    let r = require(den, id)?;
    if is_remote(den, &r) {
        return crate::remote::logs(den, &r);
    }
    let docker = den.docker_for(&r)?;
    let c = docker.inspect_container(&r.container_name)?.ok_or_else(|| WorkspaceError::NotFound(id.into()))?;
    let paths = [format!("{}/agent.log", den_agent::DATA_DIR), "/tmp/den/agent.log".to_string()];
    if c.state.running {
        let script = format!("cat {} 2>/dev/null || cat {} 2>/dev/null || true", paths[0], paths[1]);
        let out =
            docker.run_cmd(docker.exec(&r.container_name, Some("0"), &[], &["/bin/sh".into(), "-c".into(), script]))?;
        return Ok(out);
    }
    // A stopped container cannot exec; copy the file out instead.
    let tmp = std::env::temp_dir().join(format!("den-logs-{}-{id}", std::process::id()));
    let _ = std::fs::create_dir_all(&tmp);
    let mut text = String::new();
    for p in &paths {
        let dest = tmp.join("agent.log");
        if docker.run_cmd(docker.cmd().args(["cp", &format!("{}:{p}", r.container_name)]).arg(&dest)).is_ok() {
            text = std::fs::read_to_string(&dest).unwrap_or_default();
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(text)
}

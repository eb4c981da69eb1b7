//! A compose project on the engine, as den names and handles it: its
//! name, den's labels on the workspace service, and starting, stopping and
//! removing its containers. Both `up` of a compose workspace
//! ([`super::compose`]) and the operations on a recorded one
//! ([`super::local`], which finds the project from its container's labels)
//! use it.

use den_driver::compose::{PROJECT_LABEL, SERVICE_LABEL};
use den_driver::Docker;

use crate::{Den, Result, WorkspaceError};

/// The label that holds `shutdownAction` on the service's container.
pub(crate) const SHUTDOWN_LABEL: &str = "den.compose.shutdown-action";
/// The label that holds the workspace folder when den chose it (the
/// configuration has none and the service mounts no project).
pub(crate) const FOLDER_LABEL: &str = "den.compose.workspace-folder";

/// The compose project of a workspace: stable for the workspace, distinct
/// per context (in the container name) and per DEN_HOME (its tag).
pub(crate) fn project_name(den: &Den, id: &str) -> String {
    format!("{}-{}", crate::plan::container_name(den, id), &crate::plan::home_tag(den)[..8])
}

/// When the workspace's service container is not running (its command
/// ended at once): removes the project and says why, with the service's
/// last output.
pub(crate) fn exited(docker: &Docker, name: &str, project: &str) -> Result<Option<WorkspaceError>> {
    let c = docker.inspect_container(name)?;
    if c.as_ref().is_some_and(|c| c.state.running) {
        return Ok(None);
    }
    let code = c.as_ref().map(|c| c.state.exit_code).unwrap_or_default();
    let service = c.as_ref().and_then(|c| c.label(SERVICE_LABEL)).unwrap_or(name).to_string();
    let tail =
        docker.cmd().args(["logs", "--tail", "15", name]).output().map(|o| o.stdout + &o.stderr).unwrap_or_default();
    remove_project(docker, project, false)?;
    Ok(Some(WorkspaceError::NotRunning(format!(
        "compose service `{service}` exited at once (exit code {code}); the project's containers were removed again.\n{}\nGive the service a long-running command, or set \"overrideCommand\": true.",
        tail.trim_end()
    ))))
}

/// The ids of the containers (running or not) of a compose project,
/// narrowed to one service when `service` is given.
fn containers(docker: &Docker, project: &str, service: Option<&str>) -> Result<Vec<String>> {
    let mut c = docker.cmd().args(["ps", "-a", "-q", "--filter"]).arg(format!("label={PROJECT_LABEL}={project}"));
    if let Some(s) = service {
        c = c.arg("--filter").arg(format!("label={SERVICE_LABEL}={s}"));
    }
    Ok(docker.run_cmd(c)?.split_whitespace().map(String::from).collect())
}

/// Every container (running or not) of a compose project.
pub(crate) fn project_containers(docker: &Docker, project: &str) -> Result<Vec<String>> {
    containers(docker, project, None)
}

/// Starts every container of the project the workspace container is in.
pub(crate) fn start_project(docker: &Docker, project: &str) -> Result<()> {
    let ids = project_containers(docker, project)?;
    if !ids.is_empty() {
        docker.run_cmd(docker.cmd().arg("start").args(&ids))?;
    }
    Ok(())
}

/// Stops the project (`stopCompose`), or only the workspace's container
/// (`shutdownAction: none`).
pub(crate) fn stop(docker: &Docker, container: &den_driver::Container, project: &str) -> Result<()> {
    if container.label(SHUTDOWN_LABEL) == Some("none") {
        return Ok(docker.stop(container.name.trim_start_matches('/'))?);
    }
    let ids = project_containers(docker, project)?;
    if !ids.is_empty() {
        docker.run_cmd(docker.cmd().args(["stop", "-t", "10"]).args(&ids))?;
    }
    Ok(())
}

/// Removes the project's containers and networks (and named volumes with
/// `volumes`), and the image den built for its service.
pub(crate) fn remove_project(docker: &Docker, project: &str, volumes: bool) -> Result<()> {
    let ids = project_containers(docker, project)?;
    if !ids.is_empty() {
        docker.run_cmd(docker.cmd().args(["rm", "-f", "-v"]).args(&ids))?;
    }
    let filter = format!("label={PROJECT_LABEL}={project}");
    let networks = docker.run_cmd(docker.cmd().args(["network", "ls", "-q", "--filter", &filter]))?;
    for n in networks.split_whitespace() {
        docker.run_cmd(docker.cmd().args(["network", "rm", n]))?;
    }
    if volumes {
        let vols = docker.run_cmd(docker.cmd().args(["volume", "ls", "-q", "--filter", &filter]))?;
        for v in vols.split_whitespace() {
            docker.run_cmd(docker.cmd().args(["volume", "rm", v]))?;
        }
    }
    // By name (compose v2 names a built service's image PROJECT-SERVICE,
    // v1 PROJECT_SERVICE): an image that Features were built on stays as
    // their parent, untagged.
    let images = docker.run_cmd(docker.cmd().args([
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "--filter",
        &format!("reference={project}-*"),
        "--filter",
        &format!("reference={project}_*"),
    ]))?;
    for i in images.split_whitespace() {
        let _ = docker.run_cmd(docker.cmd().args(["rmi", i]));
    }
    Ok(())
}

/// The container of one service of the project (for `den logs --service`).
pub(crate) fn service_container(docker: &Docker, project: &str, service: &str) -> Result<Option<String>> {
    Ok(containers(docker, project, Some(service))?.into_iter().next())
}
